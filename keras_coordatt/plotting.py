"""matplotlib, loaded only when a plot is drawn, on its file-only backend."""


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend; ImportError says which extra brings it."""
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(
            "plots need matplotlib: pip install 'keras-coordatt[train]' (or matplotlib)"
        ) from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

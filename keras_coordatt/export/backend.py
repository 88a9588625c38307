"""What every exporter needs first: TensorFlow, and Keras running on it."""


def require_tensorflow(what):
    """Returns the ``tensorflow`` module, or says why ``what`` cannot run here.

    SavedModel and TFLite exports trace the Keras model with TensorFlow, so
    both the package and the Keras backend must be TensorFlow.
    """
    try:
        import tensorflow as tf
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            f"{what} needs TensorFlow: pip install 'keras-coordatt[cpu]'"
        ) from error
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"{what} traces the model with TensorFlow; set KERAS_BACKEND=tensorflow (the "
            f"backend now is {keras.backend.backend()!r}). Save the model as .keras on any "
            "backend and export it from a TensorFlow process."
        )
    return tf

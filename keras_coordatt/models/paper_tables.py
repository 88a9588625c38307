"""The paper's Params and M-Adds (Tables 2, 3 and 5) beside this package's counts.

`table_rows` lists the classifiers a comparison builds; `table_lines` builds
and counts each, giving the markdown that ``keras-coordatt table`` prints.

Example:

    rows = table_rows(["mobilenet_v2"], [1.0], ["none", "ca"])
    for line in table_lines(rows, input_size=224):
        print(line)
"""

import keras

from keras_coordatt.models.families import get_family
from keras_coordatt.models.macs import count_macs
from keras_coordatt.models.macs import count_trainable_params

TABLE_ATTENTIONS = ("none", "se", "cbam", "ca")
WIDTHS = (1.0, 0.75, 0.5)

# The paper's Params and M-Adds (Tables 2 and 3), by (family, width, row).
PUBLISHED = {
    ("mobilenet_v2", 1.0, "none"): ("3.5M", "300M"),
    ("mobilenet_v2", 1.0, "se"): ("3.89M", "300M"),
    ("mobilenet_v2", 1.0, "cbam"): ("3.89M", "300M"),
    ("mobilenet_v2", 1.0, "ca"): ("3.95M", "310M"),
    ("mobilenext", 1.0, "none"): ("3.5M", "300M"),
    ("mobilenext", 1.0, "se"): ("3.89M", "300M"),
    ("mobilenext", 1.0, "ca"): ("4.09M", "330M"),
    ("mobilenext", 1.0, "ca (after dw2)"): ("4.09M", "330M"),
}


def table_rows(families, widths, attentions):
    """``(family, width, row label, builder kwargs)`` for every row of the table.

    Args:
        families: model family keys (`keras_coordatt.models.FAMILIES`).
        widths: width multipliers, for the families that have one.
        attentions: attention names, e.g. `TABLE_ATTENTIONS`.
    """
    rows = []
    for family in map(get_family, families):
        for width in widths if family.has_width else (1.0,):
            labels = list(attentions)
            if family.own_attention:
                # Its own attention is the baseline the paper swaps for CA (Table 5).
                labels.insert(0, family.own_attention)
            for label in labels:
                kwargs = {"attention": label}
                if family.has_width:
                    kwargs["alpha"] = width
                rows.append((family, width, label, kwargs))
            # The MobileNeXt placement that gives the published 4.09M (see models.mobilenext).
            if family.key == "mobilenext" and "ca" in attentions:
                rows.append((family, width, "ca (after dw2)",
                             {"alpha": width, "attention": "ca", "attention_position": "last"}))
    return rows


def table_lines(rows, input_size=224, classes=1000):
    """The markdown table of `table_rows`, line by line, each model built as its row comes.

    Args:
        rows: `table_rows`' list.
        input_size: the square input size the multiply-adds are counted at.
        classes: the classifier's classes.

    Yields:
        The caption, the header and one ``| Model | Width | Attention |
        Params | Paper | M-Adds | Paper |`` row per model.
    """
    yield (f"Trainable parameters and multiply-adds at {input_size}x{input_size}, "
           f"{classes} classes; the paper's figures beside ours.\n")
    yield "| Model | Width | Attention | Params | Paper | M-Adds | Paper |"
    yield "|---|---|---|---:|---:|---:|---:|"
    for family, width, label, kwargs in rows:
        model = family.builder(input_shape=(input_size, input_size, 3), classes=classes, **kwargs)
        params = count_trainable_params(model)
        macs = count_macs(model)
        paper_params, paper_macs = PUBLISHED.get((family.key, width, label), ("", ""))
        yield (f"| {family.display_name} | {width} | {label} | {params:,} | "
               f"{paper_params} | {macs / 1e6:.1f}M | {paper_macs} |")
        # Thirty models at 224x224: free each graph before the next.
        keras.utils.clear_session()

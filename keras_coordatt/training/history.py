"""A run's per-epoch record: ``history.csv`` and the plot drawn from it."""

import csv
import os

from keras_coordatt.plotting import pyplot


def append_history(path, row):
    """Adds one epoch's row to ``history.csv`` (with a header for a new file).

    An existing file keeps its columns: a run resumed by a version that logs
    more (or fewer) values still writes rows that line up with the header.
    """
    exists = os.path.exists(path) and os.path.getsize(path) > 0
    fieldnames = list(row)
    if exists:
        with open(path, newline="") as f:
            fieldnames = next(csv.reader(f), fieldnames)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames, restval="", extrasaction="ignore")
        if not exists:
            writer.writeheader()
        writer.writerow(row)


def read_history(path):
    """The rows of ``history.csv`` as dicts, or [] if there is none."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def truncate_history(path, epochs_done):
    """Drops rows of epochs a resumed run will redo."""
    rows = [r for r in read_history(path) if int(r["epoch"]) <= epochs_done]
    if os.path.exists(path):
        os.remove(path)
    for row in rows:
        append_history(path, row)


def plot_curves(history_path, png_path):
    """Training curves from history.csv: loss and accuracy (or mIoU), train and held-out."""
    rows = read_history(history_path)
    if not rows:
        return
    plt = pyplot()
    epochs = [int(r["epoch"]) for r in rows]
    # accuracy (classification), mIoU (segmentation) or the loss alone (detection)
    quality = [key for key in ("accuracy", "mean_iou") if key in rows[0]]
    metrics = ["loss"] + quality[:1]
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for prefix, label in (("", "train"), ("val_", "held-out")):
            key = prefix + metric
            if key in rows[0] and rows[0][key] != "":
                axis.plot(epochs, [float(r[key]) for r in rows], marker="o", label=label)
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)

"""Epoch by epoch: a run's loss beside what its attention did (its attention.csv and history.csv).

    python -m training.attention_epochs RUN_FOLDER [RUN_FOLDER ...] [--loss boxes_loss]

For each run folder, a Markdown table with a row per epoch: the training and held-out
loss (``--loss``, a column of ``history.csv``), the attention layers' mean |gate - start|,
the layer that moved most (its distance and its share of saturated gates), and the median
gradient norm on the attention layers and on the convolutions that read them, measured on
the monitor's fixed probe batch at the epoch's end. It is how the DeepForest record in
docs/results/attention-learning.md was read: whether the gates swing when the loss does.
"""

import argparse
import os
import sys

import numpy as np

from keras_coordatt.errors import run_reporting_errors
from keras_coordatt.training.attention_monitor import CSV_FILE
from keras_coordatt.training.attention_monitor import read_records
from keras_coordatt.training.history import read_history


def epoch_rows(folder, loss="loss"):
    """One dict per epoch the monitor recorded after training began (epoch >= 1)."""
    records = read_records(os.path.join(folder, CSV_FILE))
    if not records:
        raise ValueError(f"{folder}: no {CSV_FILE} (a run with the attention monitor on, "
                         f"and an attention to monitor)")
    history = {int(row["epoch"]): row for row in read_history(os.path.join(folder, "history.csv"))}
    rows = []
    for epoch in sorted({int(r["epoch"]) for r in records if r["epoch"] >= 1}):
        layers = [r for r in records if int(r["epoch"]) == epoch]
        most = max(layers, key=lambda r: r["from_start"])
        losses = history.get(epoch, {})
        if losses and loss not in losses:
            raise ValueError(f"{folder}/history.csv has no column {loss!r}; it has "
                             f"{', '.join(k for k in losses if k != 'epoch')}")
        rows.append({
            "epoch": epoch,
            "loss": float(losses[loss]) if losses else None,
            "held_out_loss": (float(losses[f"val_{loss}"])
                              if losses.get(f"val_{loss}") not in (None, "") else None),
            "mean_from_start": float(np.mean([r["from_start"] for r in layers])),
            "most_moved": most["layer"],
            "most_moved_from_start": most["from_start"],
            "most_moved_saturated": most["saturated"],
            "attention_grad": float(np.median([r["grad_norm"] for r in layers])),
            "reader_grad": float(np.median([r["reader_grad_norm"] for r in layers])),
            # NaN in the records of a monitor from before the column
            "largest_mode_gap": float(max(r.get("mode_gap", np.nan) for r in layers)),
        })
    return rows


def markdown(folder, rows, loss):
    def number(value, digits):
        return "" if value is None else f"{value:.{digits}f}"

    lines = [f"{folder}", "",
             f"| epoch | {loss} | held-out | mean \\|g - start\\| | most moved layer | its "
             f"\\|g - start\\| | its saturated | median grad, attention / reader | "
             f"largest \\|g train - g inference\\| |",
             "|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(
            f"| {row['epoch']} | {number(row['loss'], 2)} | {number(row['held_out_loss'], 2)} | "
            f"{row['mean_from_start']:.4f} | {row['most_moved']} | "
            f"{row['most_moved_from_start']:.3f} | {row['most_moved_saturated']:.1%} | "
            f"{row['attention_grad']:.3f} / {row['reader_grad']:.3f} | "
            f"{'' if np.isnan(row['largest_mode_gap']) else format(row['largest_mode_gap'], '.3f')} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.attention_epochs",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", help="run folders (each with attention.csv)")
    parser.add_argument("--loss", default="loss",
                        help="the history.csv column to show beside the gates (default: loss; "
                             "boxes_loss for a detector's box loss)")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)

    def run():
        for folder in args.folders:
            print(markdown(folder, epoch_rows(folder, args.loss), args.loss) + "\n")
        return 0

    return run_reporting_errors("python -m training.attention_epochs", run, args.debug)


if __name__ == "__main__":
    sys.exit(main())

"""A Keras callback that records what the attention layers do while a network trains.

At the start of training and at every epoch end, on one fixed probe batch, it
writes one row a layer to ``attention.csv``: the gates' statistics
(`keras_coordatt.models.attention_statistics.gate_statistics`) and the
gradient norms on the layer's weights and on the convolution reading its
output (`gradient_norms`), with their ratio. It draws ``attention.png`` (how
far each layer's gates are from their start, and that ratio, per epoch) and,
on the TensorFlow backend, writes the same numbers as TensorBoard scalars.
Works on every Keras backend; a model without attention layers is left alone.
"""

import csv
import math
import os
import time

import keras
import numpy as np

from keras_coordatt.models.attention_statistics import STATISTICS
from keras_coordatt.models.attention_statistics import gate_statistics
from keras_coordatt.models.attention_statistics import gradient_norms
from keras_coordatt.models.identity import attention_layers
from keras_coordatt.plotting import pyplot

CSV_FILE = "attention.csv"
PLOT_FILE = "attention.png"
FIELDS = ("epoch", "layer", "type", *STATISTICS, "grad_norm", "reader_grad_norm", "grad_ratio",
          "seconds")


class AttentionMonitor(keras.callbacks.Callback):
    """Records the attention layers' gates and gradients at each epoch end.

    Args:
        probe: ``(x, y)``, one small batch the records are taken on (the
            same batch every epoch, so epochs compare); ``y`` may be None,
            and then no gradient norms are taken.
        output_dir: where ``attention.csv`` and ``attention.png`` go.
        tensorboard_dir: where TensorBoard scalars go (TensorFlow backend
            only); None for none.

    Example:

    >>> monitor = AttentionMonitor((images[:8], labels[:8]), "runs/try")  # doctest: +SKIP
    >>> model.fit(data, epochs=5, callbacks=[monitor])                    # doctest: +SKIP
    """

    def __init__(self, probe, output_dir, tensorboard_dir=None):
        super().__init__()
        self.probe_x, self.probe_y = probe
        self.output_dir = output_dir
        self.tensorboard_dir = tensorboard_dir
        self.csv_path = os.path.join(output_dir, CSV_FILE)
        self.seconds = 0.0

    def on_train_begin(self, logs=None):
        # The trainer calls fit once an epoch: the start is recorded once.
        if attention_layers(self.model) and not any(
                int(row["epoch"]) == 0 for row in read_records(self.csv_path)):
            self.record(0)

    def on_epoch_end(self, epoch, logs=None):
        if attention_layers(self.model):
            self.record(epoch + 1)

    def record(self, epoch):
        """Takes and writes the records after ``epoch`` epochs (0: the start)."""
        started = time.perf_counter()
        rows = gate_statistics(self.model, self.probe_x)
        norms = {}
        if self.probe_y is not None:
            norms = gradient_norms(self.model, self.probe_x, self.probe_y)
        seconds = time.perf_counter() - started
        self.seconds += seconds
        for row in rows:
            grad, reader = norms.get(row["layer"], (math.nan, math.nan))
            row.update(epoch=epoch, grad_norm=grad, reader_grad_norm=reader,
                       grad_ratio=grad / reader if reader else math.nan,
                       seconds=round(seconds, 3))
        write_records(self.csv_path, epoch, rows)
        self._tensorboard(epoch, rows)
        try:
            plot_records(self.csv_path, os.path.join(self.output_dir, PLOT_FILE))
        except ImportError:
            pass  # no matplotlib: the CSV and TensorBoard still have every number
        return rows

    def _tensorboard(self, epoch, rows):
        if not self.tensorboard_dir or keras.backend.backend() != "tensorflow":
            return
        import tensorflow as tf

        writer = tf.summary.create_file_writer(self.tensorboard_dir)
        with writer.as_default(step=epoch):
            for row in rows:
                for key in ("mean", "from_start", "position_std", "saturated", "mode_gap",
                            "grad_ratio"):
                    if not math.isnan(row[key]):
                        tf.summary.scalar(f"attention/{row['layer']}/{key}", row[key])
        writer.close()


def read_records(path):
    """The rows of an ``attention.csv`` (numbers as floats), or [] if there is none."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [{key: value if key in ("layer", "type") else float(value or "nan")
                 for key, value in row.items()} for row in csv.DictReader(f)]


def write_records(path, epoch, rows):
    """Replaces the records of ``epoch`` and of any later epoch (a resumed run redoes them)."""
    kept = [row for row in read_records(path) if row["epoch"] < epoch]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        for row in kept + rows:
            # rows from a monitor that had no such column yet (a resumed older run) leave it empty
            writer.writerow({key: row.get(key, "") for key in FIELDS})


def gate_movement(path, threshold=0.05, kind=None):
    """How far a run's gates moved by its last recorded epoch, from its ``attention.csv``.

    Returns ``{"epoch", "layers", "mean_from_start", "layers_moved",
    "most_saturated"}``: the mean over layers (of class ``kind``, e.g.
    "CoordAttention"; all by default) of the mean |gate - start|, the share of
    those layers whose gates moved at least ``threshold`` on average, and the
    largest share of saturated gates in any of them. None without records.
    """
    rows = [row for row in read_records(path) if kind in (None, row["type"])]
    if not rows:
        return None
    last = max(row["epoch"] for row in rows)
    rows = [row for row in rows if row["epoch"] == last]
    distances = np.array([row["from_start"] for row in rows])
    return {"epoch": int(last), "layers": int(len(distances)),
            "mean_from_start": float(distances.mean()),
            "layers_moved": float((distances >= threshold).mean()),
            "most_saturated": float(max(row["saturated"] for row in rows))}


def plot_records(csv_path, png_path):
    """``attention.png``: each layer's distance from its start and gradient ratio per epoch."""
    rows = read_records(csv_path)
    layers = list(dict.fromkeys(row["layer"] for row in rows))
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, max(len(layers), 1)))
    for colour, layer in zip(colours, layers):
        own = [row for row in rows if row["layer"] == layer]
        epochs = [row["epoch"] for row in own]
        left.plot(epochs, [row["from_start"] for row in own], color=colour, label=layer)
        right.plot(epochs, [row["grad_ratio"] for row in own], color=colour)
    left.set(xlabel="epoch", ylabel="mean |gate - start|",
             title="How far the gates moved from their start")
    right.set(xlabel="epoch", ylabel="|grad attention| / |grad reading conv|",
              title="Gradient on the attention vs its block's conv")
    if any(row["grad_ratio"] > 0 for row in rows):
        right.set_yscale("log")
    left.legend(fontsize=6, ncol=2, title="layer (shallow to deep)", title_fontsize=7)
    figure.tight_layout()
    figure.savefig(png_path, dpi=110)
    plt.close(figure)

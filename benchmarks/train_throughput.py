"""Training throughput (images/s) of MobileNetV2 with none / SE / CBAM / CA, beside the official PyTorch code.

Every model trains (forward, backward, SGD with momentum) on the same random
images; models take turns, round after round, so a slow patch of the machine
hits all of them alike. The PyTorch rows run in a second process
(``torch_worker.py``) that waits while TensorFlow runs and vice versa. Each figure is the median over
rounds with the range over rounds beside it, and the ratios divide medians
measured in this one run. Rows:

- ours (TensorFlow backend, cached ``tf.data`` pipeline with a random flip),
  CA with its fused training path (`keras_coordatt.layers.fused`, the
  default) and without it; ``--precision float32,mixed_bfloat16`` repeats
  them per dtype policy;
- ``MobileNetV2 + none (again)``: a second, identical network, so the table
  shows the benchmark's own noise (the two should agree within a few %);
- with ``--keras-applications``, keras.applications.MobileNetV2 (the same
  network as ours without attention);
- the official Coordinate Attention MobileNetV2 in PyTorch (``mbv2_ca``, the
  official module layout as ``tests/torch_reference.py`` builds it for the
  converter tests) with and without its CoordAtt blocks, eager NCHW and
  ``channels_last``; skipped when torch is not installed.

    python benchmarks/train_throughput.py                  # 224 px, batch 32
    python benchmarks/train_throughput.py --rounds 5 --steps 10
    python benchmarks/train_throughput.py --only ours --precision mixed_bfloat16

Writes the table (--name, default train_throughput) as CSV / JSON into
--results (docs/results/train-throughput/).
"""

import argparse
import importlib.util
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_coordatt.layers import fused_attention  # noqa: E402
from keras_coordatt.models import MobileNetV2  # noqa: E402
from keras_coordatt.models.backbone import dtype_policy_scope  # noqa: E402
from machine import command_line  # noqa: E402
from machine import cpu_model  # noqa: E402
from machine import matches  # noqa: E402
from machine import results_folder  # noqa: E402
from machine import write_results  # noqa: E402
from torch_worker import TorchProcess  # noqa: E402
from torch_worker import random_batches  # noqa: E402
from torch_worker import torch_rows  # noqa: E402


class KerasCandidate:
    def __init__(self, build, fused, precision, images, labels, batch_size):
        with dtype_policy_scope(precision):
            self.model = build()
        self.model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                           keras.losses.SparseCategoricalCrossentropy(from_logits=True))

        def prepare(image, label):
            image = tf.image.random_flip_left_right(tf.cast(image, tf.float32) / 127.5 - 1.0)
            return image, label

        self.data = (tf.data.Dataset.from_tensor_slices((images, labels))
                     .map(prepare, tf.data.AUTOTUNE).batch(batch_size, drop_remainder=True)
                     .cache().prefetch(tf.data.AUTOTUNE))
        with fused_attention(fused):  # read when fit() traces the step
            self.model.fit(self.data.take(2), verbose=0)

    def params(self):
        return sum(int(np.prod(w.shape)) for w in self.model.trainable_weights)

    def seconds(self):
        start = time.perf_counter()
        self.model.fit(self.data, verbose=0)
        return time.perf_counter() - start


def candidates(args, images, labels):
    shape = (args.image_size, args.image_size, 3)
    keras_rows = {
        "MobileNetV2 + none": (None, True),
        "MobileNetV2 + none (again)": (None, True),
        "MobileNetV2 + se": ("se", True),
        "MobileNetV2 + cbam": ("cbam", True),
        "MobileNetV2 + ca": ("ca", True),
        "MobileNetV2 + ca, fused path off": ("ca", False),
    }
    precisions = args.precision.split(",")
    if args.only in ("all", "ours"):
        for precision in precisions:
            suffix = f", {precision}" if len(precisions) > 1 else ""
            if args.keras_applications:
                yield f"keras.applications MobileNetV2{suffix}", lambda p=precision: KerasCandidate(
                    lambda: keras.applications.MobileNetV2(
                        input_shape=shape, alpha=args.alpha, weights=None, classifier_activation=None),
                    False, p, images, labels, args.batch_size)
            for name, (attention, fused) in keras_rows.items():
                yield name + suffix, lambda a=attention, f=fused, p=precision: KerasCandidate(
                    lambda: MobileNetV2(input_shape=shape, alpha=args.alpha, attention=a,
                                        classifier_activation=None),
                    f, p, images, labels, args.batch_size)


def torch_names(args):
    if args.only not in ("all", "pytorch"):
        return []
    if importlib.util.find_spec("torch") is None:  # torch itself loads in the worker only
        print("torch is not installed: no official PyTorch rows", file=sys.stderr)
        return []
    return [name for name in torch_rows() if matches(args.match, name)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", default="float32",
                        help="Keras dtype policies for our models, comma-separated "
                             "(e.g. float32,mixed_bfloat16: each row once per policy)")
    parser.add_argument("--keras-applications", action="store_true",
                        help="also keras.applications.MobileNetV2 (the same network as ours)")
    parser.add_argument("--only", choices=("all", "ours", "pytorch"), default="all")
    parser.add_argument("--match", default="",
                        help="comma-separated: only rows whose name contains one of these")
    parser.add_argument("--results", default=results_folder("train-throughput"), metavar="DIR",
                        help="folder for the table as CSV / JSON with the machine and versions "
                        "(default: docs/results/train-throughput)")
    parser.add_argument("--name", default="train_throughput",
                        help="the table's file name in --results (default: train_throughput)")
    args = parser.parse_args(argv)

    images, labels = random_batches(args.image_size, args.batch_size, args.steps)
    built = {}
    for name, build in candidates(args, images, labels):
        if matches(args.match, name):
            print(f"building and warming up {name}", file=sys.stderr, flush=True)
            built[name] = build()
    version = ""
    names = torch_names(args)
    if names:
        print(f"building and warming up {len(names)} PyTorch rows in their own process",
              file=sys.stderr, flush=True)
        worker = TorchProcess(names, args.image_size, args.batch_size, args.steps, args.alpha)
        version = f", {worker.version}"
        built.update({name: worker.row(name) for name in names})
    rates = {name: [] for name in built}
    for round_index in range(args.rounds):
        for name, candidate in built.items():
            rates[name].append(args.batch_size * args.steps / candidate.seconds())
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    medians = {name: statistics.median(r) for name, r in rates.items()}
    reference = next((medians[n] for n in medians if n.startswith("MobileNetV2 + none")), None)
    print(f"\n{cpu_model()}, {os.cpu_count()} cores; TensorFlow {tf.__version__}, Keras "
          f"{keras.__version__}{version}")
    print(f"Training throughput, {args.image_size}x{args.image_size}, alpha {args.alpha}, batch "
          f"{args.batch_size}, {args.precision} (ours), median (min-max) of {args.rounds} rounds x "
          f"{args.steps} steps")
    print("| model | trainable params | images/s | vs MobileNetV2 + none |")
    print("|---|---:|---:|---:|")
    for name, candidate in built.items():
        ratio = f"{medians[name] / reference:.3f}" if reference else "-"
        print(f"| {name} | {candidate.params():,} | {medians[name]:.1f} "
              f"({min(rates[name]):.1f}-{max(rates[name]):.1f}) | {ratio} |")
    write_results(args.results, args.name, [
        {"model": name, "trainable_params": candidate.params(),
         "images_per_second_median": round(medians[name], 1),
         "images_per_second_min": round(min(rates[name]), 1),
         "images_per_second_max": round(max(rates[name]), 1),
         "vs_mobilenet_v2_none": round(medians[name] / reference, 3) if reference else None}
        for name, candidate in built.items()],
        command=command_line("python benchmarks/train_throughput.py", argv),
        notes=[f"{args.image_size}x{args.image_size}, alpha {args.alpha}, batch {args.batch_size}, "
               f"{args.precision} (ours), {args.rounds} rounds x {args.steps} steps{version}"])


if __name__ == "__main__":
    main()

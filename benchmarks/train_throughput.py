"""Training throughput (images/s) of MobileNetV2 with none / SE / CBAM / CA through the library's trainer, beside the official PyTorch code.

Our rows time the trainer's own training step: each network is a
``keras_coordatt.training.train`` run in its own process
(``trainer_worker.py``) on a folder of JPEG images written here (1000
classes, as ImageNet, so the networks have the paper's parameter counts),
through the library's input pipeline (decode, random resized crop, flip).
A round is one epoch of ``--steps`` + 1 steps per network; its figure is the
trainer's ``images_per_second`` for that epoch (``history.csv``: the steps
after the epoch's first, validation and checkpoints not counted). Networks
take turns, round after round, so a slow patch of the machine hits all of
them alike. Each figure is the median over rounds with the range over
rounds beside it, and the ratios divide medians measured in this one run.
Rows:

- ours (TensorFlow backend unless KERAS_BACKEND says otherwise; ``--backends
  tensorflow,jax`` repeats them per backend), CA as the library trains it by
  default and with its XLA-fused training path forced on
  (`keras_coordatt.layers.fused`: by default on only where TensorFlow has a
  GPU); ``--precision float32,mixed_bfloat16`` repeats them per dtype
  policy (the trainer's ``precision``);
- ``MobileNetV2 + none (again)``: a second, identical run, so the table
  shows the benchmark's own noise (the two should agree within a few %);
- the official Coordinate Attention MobileNetV2 in PyTorch (``mbv2_ca``, the
  official module layout as ``tests/torch_reference.py`` builds it for the
  converter tests) with and without its CoordAtt blocks, eager NCHW and
  ``channels_last``, on random images already in memory (a plain training
  loop: PyTorch has no trainer of ours); skipped when torch is not installed.

    python benchmarks/train_throughput.py                  # 224 px, batch 32
    python benchmarks/train_throughput.py --rounds 5 --steps 10
    python benchmarks/train_throughput.py --only ours --precision mixed_bfloat16
    python benchmarks/train_throughput.py --only ours --backends tensorflow,jax --match "+ ca"

Writes the table (--name, default train_throughput) as CSV / JSON into
--results (docs/results/train-throughput/).
"""

import argparse
import importlib.util
import itertools
import os
import statistics
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from machine import command_line  # noqa: E402
from machine import cpu_model  # noqa: E402
from machine import matches  # noqa: E402
from machine import results_folder  # noqa: E402
from machine import write_results  # noqa: E402
from torch_worker import CLASSES  # noqa: E402
from torch_worker import TorchProcess  # noqa: E402
from torch_worker import torch_rows  # noqa: E402
from trainer_worker import TrainerProcess  # noqa: E402

# (attention, CA's fused path: None is the library's automatic default, on with a GPU)
KERAS_ROWS = {
    "MobileNetV2 + none": (None, None),
    "MobileNetV2 + none (again)": (None, None),
    "MobileNetV2 + se": ("se", None),
    "MobileNetV2 + cbam": ("cbam", None),
    "MobileNetV2 + ca": ("ca", None),
    "MobileNetV2 + ca, fused path on": ("ca", True),
}


def write_images(root, image_size, seed=0):
    """One random JPEG per class and split, a folder per class (the trainer's ``limit_train``
    and ``limit_eval`` take the images an epoch uses)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    side = image_size * 8 // 7  # larger than the crop, as photos are
    for split in ("train", "val"):
        for label in range(CLASSES):
            folder = os.path.join(root, split, f"class_{label:04d}")
            os.makedirs(folder)
            pixels = rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(os.path.join(folder, "0.jpg"), quality=90)
    return root


def trainer_rows(args, folder, runs):
    """{row name: TrainerProcess} for our rows, each a trainer run in its own process."""
    rows = {}
    precisions = args.precision.split(",")
    backends = args.backends.split(",") if args.backends else [None]
    for backend, precision in itertools.product(backends, precisions):
        suffix = (f", {precision}" if len(precisions) > 1 else "") + (
            f" ({backend})" if len(backends) > 1 else "")
        for name, (attention, fused) in KERAS_ROWS.items():
            if not matches(args.match, name + suffix):
                continue
            fields = dict(
                model="mobilenet_v2", attention=attention, alpha=args.alpha,
                image_size=args.image_size, dataset=f"folder:{folder}", train_split="train",
                eval_split="val", limit_train=args.batch_size * (args.steps + 1),
                limit_eval=args.batch_size, epochs=args.rounds, batch_size=args.batch_size,
                learning_rate=0.01, reference_batch_size=args.batch_size, precision=precision,
                # The monitor runs at the epoch's end, outside the timed steps.
                attention_monitor=False, verbose="quiet", seed=0,
                output_dir=os.path.join(runs, f"row{len(rows)}"))
            rows[name + suffix] = TrainerProcess(fields, fused, backend)
    return rows

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
    parser.add_argument("--steps", type=int, default=8,
                        help="timed steps per round (ours run one more: the epoch's first)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", default="float32",
                        help="Keras dtype policies for our models, comma-separated "
                             "(e.g. float32,mixed_bfloat16: each row once per policy)")
    parser.add_argument("--backends", default="",
                        help="Keras backends for our rows, comma-separated (e.g. tensorflow,jax: "
                             "each row once per backend; default: KERAS_BACKEND's)")
    parser.add_argument("--only", choices=("all", "ours", "pytorch"), default="all")
    parser.add_argument("--match", default="",
                        help="comma-separated: only rows whose name contains one of these")
    parser.add_argument("--results", default=results_folder("train-throughput"), metavar="DIR",
                        help="folder for the table as CSV / JSON with the machine and versions "
                        "(default: docs/results/train-throughput)")
    parser.add_argument("--name", default="train_throughput",
                        help="the table's file name in --results (default: train_throughput)")
    args = parser.parse_args(argv)

    built = {}
    with tempfile.TemporaryDirectory(prefix="train_throughput_") as scratch:
        if args.only in ("all", "ours"):
            print(f"writing {2 * CLASSES} JPEG images and starting the trainer runs",
                  file=sys.stderr, flush=True)
            folder = write_images(os.path.join(scratch, "images"), args.image_size)
            built = trainer_rows(args, folder, os.path.join(scratch, "runs"))
            for name, row in built.items():
                print(f"building {name}", file=sys.stderr, flush=True)
                row.ready()
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
                rates[name].append(candidate.images_per_second())
            print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        for candidate in built.values():  # the trainer runs end (and leave the folder)
            getattr(candidate, "close", lambda: None)()

    medians = {name: statistics.median(r) for name, r in rates.items()}
    reference = next((medians[n] for n in medians if n.startswith("MobileNetV2 + none")), None)
    print(f"\n{cpu_model()}, {os.cpu_count()} cores; Keras {keras.__version__} "
          f"({args.backends or keras.backend.backend()} backend){version}")
    print(f"Training throughput, {args.image_size}x{args.image_size}, alpha {args.alpha}, batch "
          f"{args.batch_size}, {args.precision} (ours), median (min-max) of {args.rounds} rounds x "
          f"{args.steps} steps (ours: the trainer's steps after each epoch's first)")
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
               f"{args.precision} (ours, {args.backends or keras.backend.backend()} backend, "
               f"through the trainer), {args.rounds} rounds x {args.steps} steps{version}"])


if __name__ == "__main__":
    main()

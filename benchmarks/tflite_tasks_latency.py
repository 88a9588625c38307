"""LiteRT (TFLite) latency of the task networks: SSDLite320 with NMS (none / SE / CA) and DeepLabV3 (CA).

What it measures: the median time of one ``invoke()`` on batch 1, float32,
with 1 and 2 interpreter threads, of

- SSDLite320 on MobileNetV2 1.0 with ``attention=None, "se", "ca"``, 80
  classes (COCO), converted by `keras_coordatt.export.detector_tflite`
  with the default post-processing inside (softmax, score threshold 0.01,
  400 candidates, 100 detections, builtin ``NON_MAX_SUPPRESSION_V4``);
- DeepLabV3 on MobileNetV2 1.0 + CA at output stride 16 and 8 (21 classes,
  VOC), converted by `keras_coordatt.export.segmenter_tflite` (argmax
  mask out).

How:

- Seeded random weights, BatchNorm statistics settled on 4 seeded random
  images (one training-mode pass at momentum 0, as in
  ``benchmarks/tflite_latency.py``: fresh statistics let activations vanish).
  With random weights every class scores about 1/81 > 0.01, so all 400
  candidates enter NMS: the NMS cost measured is the largest the settings allow.
- ``ai_edge_litert`` interpreters with ``OpResolverType.AUTO`` (the XNNPACK
  delegate, as on phones; ``NON_MAX_SUPPRESSION_V4``, ``TOPK_V2`` and the
  post-processing's int ops run on the builtin kernels). Each configuration
  is warmed up, then the configurations take turns in interleaved rounds
  (shuffled per round), each timing a block of single invokes with
  ``time.perf_counter``; a latency is the median of all its timed invokes.
  "vs none" divides by SSDLite + none at the same thread count; the
  DeepLabV3 rows divide by OS16.

Reproduce (from the repository root; a few minutes of conversion, then the
timing; run it on an otherwise idle machine):

    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/tflite_tasks_latency.py
    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/tflite_tasks_latency.py --seg-size 320 --runs 10

Progress goes to stderr, the table to stdout.
"""

import argparse
import importlib.metadata
import json
import math
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import command_line  # noqa: E402
from machine import cpu_model  # noqa: E402
from machine import results_folder  # noqa: E402
from machine import write_results  # noqa: E402

from keras_coordatt.export import TFLiteModel  # noqa: E402
from keras_coordatt.export import detector_tflite  # noqa: E402
from keras_coordatt.export import segmenter_tflite  # noqa: E402
from keras_coordatt.models import MobileNetV2  # noqa: E402
from keras_coordatt.models import count_macs  # noqa: E402
from keras_coordatt.tasks import DeepLabV3  # noqa: E402
from keras_coordatt.tasks import SSDLite  # noqa: E402

# key -> (table name, kind, attention, output stride)
MODELS = {
    "ssd_none": ("SSDLite320 MobileNetV2 + none, NMS", "detector", None, 32),
    "ssd_se": ("SSDLite320 MobileNetV2 + se, NMS", "detector", "se", 32),
    "ssd_ca": ("SSDLite320 MobileNetV2 + ca, NMS", "detector", "ca", 32),
    "deeplab_os16": ("DeepLabV3 MobileNetV2 + ca, OS16", "segmenter", "ca", 16),
    "deeplab_os8": ("DeepLabV3 MobileNetV2 + ca, OS8", "segmenter", "ca", 8),
}
REFERENCE = {"detector": "ssd_none", "segmenter": "deeplab_os16"}
COCO_CLASSES, VOC_CLASSES = 80, 21
WARMUP_INVOKES = 5
SEED = 0


def log(message):
    print(message, file=sys.stderr, flush=True)


def settle_batchnorm(model, side):
    """Moving statistics from one training-mode pass over 4 seeded random images."""
    norms = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
             if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    images = np.random.default_rng(SEED).uniform(-1, 1, (4, side, side, 3)).astype("float32")
    model(images, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum


def build_and_convert(key, args):
    """(flatbuffer bytes, MACs of the network) of one model."""
    _, kind, attention, stride = MODELS[key]
    keras.utils.set_random_seed(SEED)
    side = args.det_size if kind == "detector" else args.seg_size
    backbone = MobileNetV2(input_shape=(side, side, 3), include_top=False, alpha=1.0,
                           attention=attention, output_stride=stride)
    if kind == "detector":
        model = SSDLite(backbone, num_classes=COCO_CLASSES)
    else:
        model = DeepLabV3(backbone, num_classes=VOC_CLASSES)
    settle_batchnorm(model, side)
    macs = count_macs(model)
    start = time.perf_counter()
    content = detector_tflite(model) if kind == "detector" else segmenter_tflite(model)
    log(f"  converted in {time.perf_counter() - start:.1f} s, {len(content) / 1e6:.2f} MB")
    keras.backend.clear_session()
    return content, macs, side


def interpreter_for(content, threads):
    runner = TFLiteModel(content, threads)
    (detail,) = runner.interpreter.get_input_details()
    runner.set_input(np.random.default_rng(SEED + 1).uniform(-1, 1, detail["shape"]))
    for _ in range(WARMUP_INVOKES):
        runner.interpreter.invoke()
    return runner.interpreter


def time_all(interpreters, runs, rounds):
    per_block = math.ceil(runs / rounds)
    samples = {config: [] for config in interpreters}
    order = list(interpreters)
    rng = np.random.default_rng(SEED)
    for index in range(rounds):
        for i in rng.permutation(len(order)):
            interpreter = interpreters[order[i]]
            interpreter.invoke()
            for _ in range(per_block):
                start = time.perf_counter()
                interpreter.invoke()
                samples[order[i]].append((time.perf_counter() - start) * 1e3)
        log(f"round {index + 1}/{rounds} done")
    return samples


def plural(threads):
    return f"{threads} thread" + ("s" if threads != 1 else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--det-size", type=int, default=320, help="SSDLite input side")
    parser.add_argument("--seg-size", type=int, default=512, help="DeepLabV3 input side")
    parser.add_argument("--runs", type=int, default=20, help="timed invokes per configuration")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--skip", default="", help=f"comma-separated keys of {list(MODELS)}")
    parser.add_argument("--json", metavar="PATH",
                        help="also write every result, each invoke's time included, as JSON")
    parser.add_argument("--results", default=results_folder("litert-latency"), metavar="DIR",
                        help="folder for the table as CSV / JSON with the machine and versions")
    args = parser.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    skipped = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skipped - set(MODELS)
    if unknown or args.runs < 1 or args.rounds < 1 or not threads or min(threads) < 1:
        parser.error(f"bad --skip {sorted(unknown)} or --runs/--rounds/--threads below 1")
    args.rounds = min(args.rounds, args.runs)

    results, interpreters = {}, {}
    for key in (k for k in MODELS if k not in skipped):
        log(f"building and converting {MODELS[key][0]} ...")
        content, macs, side = build_and_convert(key, args)
        name = MODELS[key][0].replace("SSDLite320", f"SSDLite{side}")
        results[key] = {"name": name, "kind": MODELS[key][1], "size": side,
                        "bytes": len(content), "macs": macs, "latency_ms": {}}
        for t in threads:
            interpreters[key, t] = interpreter_for(content, t)
    samples = time_all(interpreters, args.runs, args.rounds)
    for (key, t), values in samples.items():
        results[key]["latency_ms"][t] = {"median": statistics.median(values), "samples": values}

    print(f"\nLiteRT float32 latency, batch 1, median of {math.ceil(args.runs / args.rounds) * args.rounds} "
          f"invokes per configuration ({args.rounds} interleaved rounds, {WARMUP_INVOKES} warm-up), "
          f"OpResolverType.AUTO (XNNPACK), ai-edge-litert {importlib.metadata.version('ai-edge-litert')}, "
          f"{cpu_model()}, {os.cpu_count()} CPUs, random weights\n")
    header = ["model", "input", "MACs (G)", "size (MB)"]
    header += [f"{plural(t)} (ms)" for t in threads]
    header += [f"vs reference ({plural(t)})" for t in threads]
    print("| " + " | ".join(header) + " |")
    print("|---|---|" + "---:|" * (len(header) - 2))
    rows = []
    for key, entry in results.items():
        reference = results.get(REFERENCE[entry["kind"]])
        medians = [entry["latency_ms"][t]["median"] for t in threads]
        ratios = [m / reference["latency_ms"][t]["median"] if reference else None
                  for m, t in zip(medians, threads)]
        cells = [entry["name"], f"{entry['size']}x{entry['size']}", f"{entry['macs'] / 1e9:.2f}",
                 f"{entry['bytes'] / 1e6:.2f}"] + [f"{m:.1f}" for m in medians]
        cells += [f"{r:.3f}" if r else "-" for r in ratios]
        print("| " + " | ".join(cells) + " |")
        rows.append({"model": entry["name"], "input": entry["size"],
                     "macs_g": round(entry["macs"] / 1e9, 2), "size_mb": round(entry["bytes"] / 1e6, 2),
                     **{f"ms_{t}_threads": round(m, 1) for t, m in zip(threads, medians)},
                     **{f"vs_reference_{t}_threads": round(r, 3) if r else None
                        for t, r in zip(threads, ratios)}})
    print("\nvs reference: SSDLite rows / SSDLite + none; DeepLabV3 rows / OS16.")
    write_results(args.results, "tasks_latency", rows,
                  command=command_line("python benchmarks/tflite_tasks_latency.py", argv),
                  notes=[f"LiteRT float32, batch 1, median of "
                         f"{math.ceil(args.runs / args.rounds) * args.rounds} invokes in "
                         f"{args.rounds} interleaved rounds, XNNPACK, random weights",
                         "vs reference: SSDLite rows / SSDLite + none; DeepLabV3 rows / OS16"])
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"cpu": cpu_model(), "threads": threads, "runs": args.runs,
                       "models": results}, handle, indent=1)
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()

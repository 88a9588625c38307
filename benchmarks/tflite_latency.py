"""LiteRT (TFLite) inference latency and file size of MobileNetV2 with none / SE / CBAM / CA.

What it measures: for `keras_coordatt.models.MobileNetV2` with
``attention=None, "se", "cbam", "ca"`` and `keras.applications.MobileNetV2`
as the reference (all with random weights, built in this run), the size of
the ``.tflite`` file and the median latency of one ``invoke()`` on batch 1,
in float32 and in full-integer int8, with 1 and 2 interpreter threads.

How:

- Each model has seeded random weights, with BatchNorm statistics settled on
  8 seeded random images in [-1, 1] (see ``settle_batchnorm``), and is
  converted with `keras_coordatt.export.to_tflite`; int8 is calibrated on the
  same 8 images.
- Each (model, format, threads) configuration gets its own
  ``ai_edge_litert`` interpreter with ``OpResolverType.AUTO``, which applies
  the XNNPACK delegate, as on phones. If XNNPACK refuses a graph at
  ``allocate_tensors`` (known for some int8 CBAM graphs), that configuration
  runs on the builtin kernels instead and its row says so. XNNPACK may also
  abort the whole process on such a graph; ``--skip cbam:int8`` (or
  ``--skip cbam``) routes around it.
- Every interpreter is warmed up, then the configurations take turns in
  rounds (a shuffled order per round), each timing a block of single
  ``invoke()`` calls with ``time.perf_counter``, so that a noisy patch of
  machine time hits all of them alike. A configuration's latency is the
  median of all its timed invokes; the "vs none" ratios divide by
  MobileNetV2 + none in the same format, measured in this same run.
- Delegation: after ``allocate_tensors``, the interpreter's node list holds
  the model's own ops plus one ``DELEGATE`` node per XNNPACK partition. The
  ops each partition replaced are found by walking back from the partition's
  output tensors to its input tensors; every op left over runs on the
  builtin kernels, outside XNNPACK. The second table lists them, and how many
  of them belong to an attention block (by tensor name).
- The last line sets the CA / none latency ratio beside the paper's M-Adds
  ratio (310M / 300M) and the M-Adds ratio `count_macs` gives at this size.

Reproduce (from the repository root; the full run converts 10 models, a few
minutes; run it on an otherwise idle machine):

    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/tflite_latency.py
    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/tflite_latency.py --json tflite_latency.json

The latency table goes as CSV / JSON to --results (docs/results/litert-latency/).

A quick check (a couple of minutes on 2 cores):

    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/tflite_latency.py --image-size 64 --alpha 0.35 --runs 10 --results none

Progress goes to stderr, the markdown tables to stdout.
"""

import argparse
import collections
import importlib.metadata
import json
import math
import os
import statistics
import sys
import time

# to_tflite traces the model with TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_coordatt.export import TFLiteModel  # noqa: E402
from keras_coordatt.export import to_tflite  # noqa: E402
from keras_coordatt.models import MobileNetV2  # noqa: E402
from keras_coordatt.models import count_macs  # noqa: E402
from machine import command_line  # noqa: E402
from machine import results_folder  # noqa: E402
from machine import write_results  # noqa: E402

# Short key (for --skip and the JSON) -> table name. "none" is the reference
# of the ratios.
MODELS = {
    "keras": "keras.applications MobileNetV2",
    "none": "MobileNetV2 + none",
    "se": "MobileNetV2 + se",
    "cbam": "MobileNetV2 + cbam",
    "ca": "MobileNetV2 + ca",
    # CA's successors (issue 25): ECA, SimAM (no weights) and ELA-B.
    "eca": "MobileNetV2 + eca",
    "simam": "MobileNetV2 + simam",
    "ela": "MobileNetV2 + ela",
}
REFERENCE = "none"
FORMATS = ("float32", "int8")
QUANTIZATION = {"float32": None, "int8": "int8"}
REFUSED_NOTE = "builtin kernels (XNNPACK refused)"
WARMUP_INVOKES = 10
CALIBRATION_BATCHES = 8
SEED = 0
# The paper's Table 2: MobileNetV2 300M M-Adds, + CA 310M.
PAPER_MADDS = {"none": 300, "ca": 310}


def log(message):
    print(message, file=sys.stderr, flush=True)


def build(key, image_size, alpha):
    """A fresh model with seeded random weights and settled BatchNorm statistics."""
    keras.utils.set_random_seed(SEED)
    shape = (image_size, image_size, 3)
    if key == "keras":
        model = keras.applications.MobileNetV2(input_shape=shape, alpha=alpha, weights=None)
    else:
        attention = None if key == "none" else key
        model = MobileNetV2(input_shape=shape, alpha=alpha, attention=attention, weights=None)
    settle_batchnorm(model, calibration_batches(image_size))
    return model


def settle_batchnorm(model, batches):
    """Sets every BatchNorm's moving statistics to those of ``batches``.

    A freshly initialised network keeps moving mean 0 and variance 1, so in
    inference nothing renormalises its activations; with attention gates of
    about 0.5 in every block, a random-weight CA network's activations shrink
    to ~1e-20 by the last block. Their int8 scales then fall below what
    XNNPACK accepts (an input/output scale ratio under 2^-10), and ops that
    a trained network keeps on XNNPACK (the h-swish ADDs, measured) leave
    it. One pass in training mode with momentum 0 gives every layer the
    statistics of real inputs, as training would.
    """
    layers = [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    model(np.concatenate(batches), training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum


def calibration_batches(image_size):
    rng = np.random.default_rng(SEED)
    return [
        rng.uniform(-1.0, 1.0, size=(1, image_size, image_size, 3)).astype(np.float32)
        for _ in range(CALIBRATION_BATCHES)
    ]


def delegation(interpreter):
    """Which ops run inside XNNPACK partitions and which are left outside.

    ``_get_ops_details()`` lists every node of the primary subgraph: the
    model's own ops (still listed after delegation, though no longer in the
    execution plan) followed by one ``DELEGATE`` node per partition. A
    partition's ops are those reached by walking back from the DELEGATE
    node's outputs through their producers, stopping at its inputs.
    """
    nodes = interpreter._get_ops_details()
    own = {node["index"]: node for node in nodes if node["op_name"] != "DELEGATE"}
    partitions = [node for node in nodes if node["op_name"] == "DELEGATE"]
    producer = {
        tensor: index for index, node in own.items() for tensor in node["outputs"]
    }
    delegated = set()
    for partition in partitions:
        boundary = set(int(t) for t in partition["inputs"])
        pending = [int(t) for t in partition["outputs"]]
        members = set()
        while pending:
            tensor = pending.pop()
            if tensor in boundary or tensor not in producer:
                continue
            index = producer[tensor]
            if index not in members:
                members.add(index)
                pending.extend(int(t) for t in own[index]["inputs"] if t >= 0)
        if members & delegated:
            raise RuntimeError("delegation: two XNNPACK partitions share an op")
        delegated |= members

    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    outside = [node for index, node in sorted(own.items()) if index not in delegated]
    in_attention = [
        node
        for node in outside
        if any("attention" in names.get(int(t), "") for t in node["outputs"])
    ]
    return {
        "ops": len(own),
        "partitions": len(partitions),
        "outside": dict(collections.Counter(node["op_name"] for node in outside)),
        "outside_in_attention": dict(
            collections.Counter(node["op_name"] for node in in_attention)
        ),
        "outside_tensors": [
            {
                "op": node["op_name"],
                "outputs": [names.get(int(t), "") for t in node["outputs"]],
            }
            for node in outside
        ],
    }


def parse_skip(text):
    """``"cbam:int8,se"`` -> {("cbam", "int8"), ("se", "float32"), ("se", "int8")}."""
    skipped = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, fmt = item.partition(":")
        if key not in MODELS or (fmt and fmt not in FORMATS):
            raise SystemExit(
                f"--skip: unknown entry {item!r}; use MODEL or MODEL:FORMAT with "
                f"MODEL in {list(MODELS)} and FORMAT in {list(FORMATS)}."
            )
        skipped |= {(key, f) for f in ([fmt] if fmt else FORMATS)}
    return skipped


def convert_all(args, skipped):
    """Builds and converts every model; returns (results, flatbuffers)."""
    data = calibration_batches(args.image_size)
    shape = (1, args.image_size, args.image_size, 3)
    results, flatbuffers = {}, {}
    for key, name in MODELS.items():
        formats = [fmt for fmt in FORMATS if (key, fmt) not in skipped]
        if not formats:
            continue
        model = build(key, args.image_size, args.alpha)
        results[key] = {"name": name, "macs": count_macs(model), "formats": {}}
        for fmt in formats:
            log(f"converting {name} ({fmt}) ...")
            start = time.perf_counter()
            content = to_tflite(
                model,
                input_shape=shape,
                quantization=QUANTIZATION[fmt],
                representative_data=data if fmt == "int8" else None,
            )
            log(
                f"  done in {time.perf_counter() - start:.1f} s, "
                f"{len(content) / 1e6:.2f} MB"
            )
            flatbuffers[key, fmt] = content
            results[key]["formats"][fmt] = {"size_bytes": len(content)}
        del model
        keras.backend.clear_session()
    return results, flatbuffers


def prepare(args, results, flatbuffers):
    """Allocated, warmed-up interpreters per (model, format, threads)."""
    image = np.random.default_rng(SEED + 1).uniform(
        -1.0, 1.0, size=(1, args.image_size, args.image_size, 3)
    ).astype(np.float32)
    interpreters = {}
    for (key, fmt), content in flatbuffers.items():
        entry = results[key]["formats"][fmt]
        entry["refusals"] = {}
        for threads in args.threads:
            # A line before allocating: if XNNPACK aborts the process, the
            # last line names the model to --skip.
            log(f"preparing {MODELS[key]} ({fmt}, {plural(threads)}) ...")
            runner = TFLiteModel(content, threads)
            if runner.xnnpack_refusal is not None:
                log(f"  XNNPACK refused it, using builtin kernels: {runner.xnnpack_refusal}")
                entry["refusals"][threads] = runner.xnnpack_refusal
            runner.set_input(image)
            for _ in range(WARMUP_INVOKES):
                runner.interpreter.invoke()
            interpreters[key, fmt, threads] = runner.interpreter
        # Delegation is a property of the graph; any thread count shows it.
        interpreter = interpreters[key, fmt, args.threads[0]]
        entry["xnnpack_refused"] = bool(entry["refusals"])
        entry["delegation"] = delegation(interpreter)
    return interpreters


def time_all(args, interpreters):
    """Interleaved timing; returns {config: [ms, ...]}."""
    per_block = math.ceil(args.runs / args.rounds)
    samples = {config: [] for config in interpreters}
    order = list(interpreters)
    rng = np.random.default_rng(SEED)
    for round_index in range(args.rounds):
        # A new order each round, so no configuration always follows the same
        # neighbour (whose thread pool may still be spinning down).
        for i in rng.permutation(len(order)):
            config = order[i]
            interpreter = interpreters[config]
            interpreter.invoke()  # untimed: bring its weights back into cache
            for _ in range(per_block):
                start = time.perf_counter()
                interpreter.invoke()
                samples[config].append((time.perf_counter() - start) * 1e3)
        log(f"round {round_index + 1}/{args.rounds} done")
    return samples


def ratio(value, reference):
    return f"{value / reference:.3f}" if value and reference else "-"


def plural(threads):
    return f"{threads} thread" + ("s" if threads != 1 else "")


def latency_rows(results, threads):
    """The latency table's rows: per format and model, size, median ms per thread count and
    the ratio to MobileNetV2 + none in the same format."""
    rows = []
    for fmt in FORMATS:
        reference = results.get(REFERENCE, {}).get("formats", {}).get(fmt, {})
        for model in results.values():
            entry = model["formats"].get(fmt)
            if entry is None:
                continue
            row = {"model": model["name"],
                   "format": fmt + (f", {REFUSED_NOTE}" if entry["xnnpack_refused"] else ""),
                   "size_mb": round(entry["size_bytes"] / 1e6, 2)}
            for t in threads:
                median = entry["latency_ms"][t]["median"]
                base = reference.get("latency_ms", {}).get(t, {}).get("median")
                row[f"ms_{t}_threads"] = round(median, 2)
                row[f"vs_none_{t}_threads"] = round(median / base, 3) if base else None
            row["xnnpack_partitions"] = entry["delegation"]["partitions"]
            rows.append(row)
    return rows


def report(args, results, settings):
    threads = args.threads
    print(
        f"\nLiteRT latency, {args.image_size}x{args.image_size}, alpha {args.alpha}, "
        f"batch 1, median of {settings['timed_invokes']} invokes per configuration "
        f"({args.rounds} interleaved rounds, {WARMUP_INVOKES} warm-up invokes), "
        f"OpResolverType.AUTO (XNNPACK), ai-edge-litert {settings['litert_version']}, "
        f"{settings['cpu_count']} CPUs\n"
    )
    header = ["model", "format", "size (MB)"]
    header += [f"{plural(t)} (ms)" for t in threads]
    header += [f"vs none ({plural(t)})" for t in threads]
    print("| " + " | ".join(header) + " |")
    print("|---|---|" + "---:|" * (len(header) - 2))
    for row in latency_rows(results, threads):
        cells = [row["model"], row["format"], f"{row['size_mb']:.2f}"]
        cells += [f"{row[f'ms_{t}_threads']:.2f}" for t in threads]
        cells += [f"{row[f'vs_none_{t}_threads']:.3f}" if row[f"vs_none_{t}_threads"] else "-"
                  for t in threads]
        print("| " + " | ".join(cells) + " |")

    print(
        "\nDelegation to XNNPACK (after allocate_tensors; ops outside run on the "
        "builtin kernels)\n"
    )
    print(
        "| model | format | ops | XNNPACK partitions | ops outside XNNPACK "
        "| of those, in attention blocks |"
    )
    print("|---|---|---:|---:|---|---|")

    def counts(counter):
        return ", ".join(f"{op} x{n}" for op, n in sorted(counter.items())) or "none"

    for fmt in FORMATS:
        for key, model in results.items():
            entry = model["formats"].get(fmt)
            if entry is None:
                continue
            found = entry["delegation"]
            label = fmt + (f", {REFUSED_NOTE}" if entry["xnnpack_refused"] else "")
            print(
                f"| {model['name']} | {label} | {found['ops']} | {found['partitions']} "
                f"| {counts(found['outside'])} | {counts(found['outside_in_attention'])} |"
            )

    if REFERENCE in results and "ca" in results:
        none, ca = results[REFERENCE], results["ca"]
        latency = []
        for fmt in FORMATS:
            if fmt in none["formats"] and fmt in ca["formats"]:
                for t in threads:
                    value = ratio(
                        ca["formats"][fmt]["latency_ms"][t]["median"],
                        none["formats"][fmt]["latency_ms"][t]["median"],
                    )
                    latency.append(f"{fmt} {plural(t)} {value}")
        paper = PAPER_MADDS["ca"] / PAPER_MADDS["none"]
        print(
            f"\nCA / none latency: {', '.join(latency)}. "
            f"M-Adds: paper {PAPER_MADDS['ca']}M / {PAPER_MADDS['none']}M = {paper:.3f} "
            f"(224 px, alpha 1.0); count_macs at {args.image_size} px, alpha "
            f"{args.alpha}: {ca['macs'] / 1e6:.1f}M / {none['macs'] / 1e6:.1f}M = "
            f"{ca['macs'] / none['macs']:.3f}."
        )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--image-size", type=int, default=224, help="input height and width")
    parser.add_argument("--alpha", type=float, default=1.0, help="width multiplier")
    parser.add_argument(
        "--runs", type=int, default=50, help="timed invokes per configuration (at least)"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds the runs are split into"
    )
    parser.add_argument(
        "--threads", default="1,2", help="comma-separated interpreter thread counts"
    )
    parser.add_argument(
        "--skip",
        default="",
        help=f"comma-separated MODEL or MODEL:FORMAT to leave out; MODEL in "
        f"{', '.join(MODELS)}, FORMAT in {', '.join(FORMATS)} (e.g. cbam:int8)",
    )
    parser.add_argument("--json", metavar="PATH",
                        help="also write every result, each invoke's time included, as JSON")
    parser.add_argument("--results", default=results_folder("litert-latency"), metavar="DIR",
                        help="folder for the latency table as CSV / JSON with the machine and "
                        "versions")
    args = parser.parse_args(argv)
    args.threads = [int(t) for t in args.threads.split(",") if t.strip()]
    if args.runs < 1 or args.rounds < 1 or not args.threads or min(args.threads) < 1:
        parser.error("--runs, --rounds and every --threads entry must be at least 1")
    args.rounds = min(args.rounds, args.runs)
    skipped = parse_skip(args.skip)

    results, flatbuffers = convert_all(args, skipped)
    if not flatbuffers:
        parser.error("--skip left no model to measure")
    interpreters = prepare(args, results, flatbuffers)
    samples = time_all(args, interpreters)
    for (key, fmt, threads), values in samples.items():
        results[key]["formats"][fmt].setdefault("latency_ms", {})[threads] = {
            "median": statistics.median(values),
            "samples": values,
        }

    settings = {
        "image_size": args.image_size,
        "alpha": args.alpha,
        "runs": args.runs,
        "rounds": args.rounds,
        "timed_invokes": math.ceil(args.runs / args.rounds) * args.rounds,
        "warmup_invokes": WARMUP_INVOKES,
        "threads": args.threads,
        "skip": sorted(f"{key}:{fmt}" for key, fmt in skipped),
        "litert_version": importlib.metadata.version("ai-edge-litert"),
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "cpu_count": os.cpu_count(),
    }
    report(args, results, settings)
    write_results(args.results, "tflite_latency", latency_rows(results, args.threads),
                  command=command_line("python benchmarks/tflite_latency.py", argv),
                  notes=[f"{args.image_size}x{args.image_size}, alpha {args.alpha}, batch 1, median "
                         f"of {settings['timed_invokes']} invokes per configuration in "
                         f"{args.rounds} interleaved rounds, XNNPACK"])
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"settings": settings, "models": results}, handle, indent=1)
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()

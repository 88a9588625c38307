"""int8 latency of MobileNetV2 + CA with h-swish as one HARD_SWISH op or as ADD + MUL.

The TFLite converter fuses ``x * relu6(x + 3) / 6`` into HARD_SWISH, which the
XNNPACK delegate of ai-edge-litert 2.3 does not take in int8; the layers
therefore write it as ``(x / 6) * relu6(x + 3)`` (see
``keras_coordatt.layers.base.hard_swish``). This script builds the same
network (same seed, BatchNorm settled as in ``tflite_latency.py``) both ways,
converts both to int8 and times them side by side on XNNPACK, interleaved:

    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/hard_swish_delegation.py
"""

import argparse
import statistics
import sys
import time

from keras import ops

import tflite_latency as bench  # noqa: E402 (benchmarks/ is on sys.path when run as a script)
from keras_coordatt.export import TFLiteModel
from keras_coordatt.export import to_tflite
from keras_coordatt.layers import base
from machine import command_line
from machine import results_folder
from machine import write_results


def convert(activation, image_size, alpha):
    original = dict(base.ACTIVATIONS)
    base.ACTIVATIONS.update(hard_swish=activation)
    try:
        model = bench.build("ca", image_size, alpha)
    finally:
        base.ACTIVATIONS.clear()
        base.ACTIVATIONS.update(original)
    return to_tflite(model, input_shape=(1, image_size, image_size, 3), quantization="int8",
                     representative_data=bench.calibration_batches(image_size))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--results", default=results_folder("litert-latency"), metavar="DIR",
                        help="folder for the table as CSV / JSON with the machine and versions")
    args = parser.parse_args(argv)

    variants = {"HARD_SWISH op (ops.hard_silu)": ops.hard_silu,
                "ADD + MUL (this package)": base.hard_swish}
    image = bench.calibration_batches(args.image_size)[0]
    interpreters, rows = {}, {}
    for name, activation in variants.items():
        print(f"converting: {name}", file=sys.stderr, flush=True)
        content = convert(activation, args.image_size, args.alpha)
        for threads in (1, 2):
            runner = TFLiteModel(content, threads)
            runner.set_input(image)
            for _ in range(10):
                runner.interpreter.invoke()
            interpreters[name, threads] = runner.interpreter
        rows[name] = bench.delegation(interpreters[name, 1])
    times = {key: [] for key in interpreters}
    per_round = max(1, args.runs // args.rounds)
    for _ in range(args.rounds):
        for key, interpreter in interpreters.items():
            for _ in range(per_round):
                start = time.perf_counter()
                interpreter.invoke()
                times[key].append(1000 * (time.perf_counter() - start))
    print(f"MobileNetV2 + CA, int8, {args.image_size}x{args.image_size}, alpha {args.alpha}, "
          f"XNNPACK, median of {per_round * args.rounds} invokes")
    print("| h-swish as | XNNPACK partitions | ops outside | 1 thread (ms) | 2 threads (ms) |")
    print("|---|---:|---|---:|---:|")
    for name in variants:
        outside = ", ".join(f"{op} x{n}" for op, n in rows[name]["outside"].items()) or "none"
        print(f"| {name} | {rows[name]['partitions']} | {outside} | "
              f"{statistics.median(times[name, 1]):.2f} | {statistics.median(times[name, 2]):.2f} |")
    write_results(args.results, "hard_swish", [
        {"hard_swish_as": name, "xnnpack_partitions": rows[name]["partitions"],
         "ops_outside": ", ".join(f"{op} x{n}" for op, n in rows[name]["outside"].items()),
         "ms_1_thread": round(statistics.median(times[name, 1]), 2),
         "ms_2_threads": round(statistics.median(times[name, 2]), 2)} for name in variants],
        command=command_line("python benchmarks/hard_swish_delegation.py", argv),
        notes=[f"MobileNetV2 + CA, int8, {args.image_size}x{args.image_size}, alpha {args.alpha}, "
               f"XNNPACK, median of {per_round * args.rounds} invokes"])


if __name__ == "__main__":
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    main()

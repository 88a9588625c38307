"""One attention layer's training work (forward + backward) op by op, through CA's fused path and fully XLA-compiled.

For each layer (CA, SE, CBAM), five instances at MobileNetV2's stage shapes
(batch 32) run forward + backward (gradients for the inputs and every weight)
inside one ``tf.function``, three ways, taking turns round after round:

- op by op: `keras_coordatt.layers.fused_attention(False)`;
- fused path on: `fused_attention(True)` (CA's XLA-fused path, which the
  library uses by default only where TensorFlow has a GPU; SE and CBAM have
  none and run op by op);
- whole call compiled: each layer's ``call`` wrapped in
  ``tf.function(jit_compile=True)``, BatchNorm update included (not usable
  under MirroredStrategy; the measure of what fusing a layer could give).

This is how fusing was chosen for CA and not for SE or CBAM, and why it is
off on CPUs by default (it paid on an Intel Xeon, not on an AMD EPYC).

    python benchmarks/attention_fusion.py            # about 2 minutes
    python benchmarks/attention_fusion.py --name attention_fusion_amd_epyc

Writes attention_fusion.csv / .json into --results (docs/results/train-throughput/).
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from keras_coordatt import CBAM  # noqa: E402
from keras_coordatt import CoordAttention  # noqa: E402
from keras_coordatt import SqueezeExcite  # noqa: E402
from keras_coordatt.layers import fused_attention  # noqa: E402
from machine import cpu_model  # noqa: E402
from machine import command_line  # noqa: E402
from machine import results_folder  # noqa: E402
from machine import write_results  # noqa: E402
from machine import median_ms_in_turns  # noqa: E402

# The expanded width at MobileNetV2-1.0's five resolutions.
SHAPES = ((112, 112, 96), (56, 56, 144), (28, 28, 192), (14, 14, 576), (7, 7, 960))
LAYERS = {"CoordAttention": CoordAttention, "SqueezeExcite": SqueezeExcite, "CBAM": CBAM}
MODES = ("op by op", "fused path on", "whole call compiled")


def training_work(layer_class, mode, inputs):
    layers = [layer_class() for _ in inputs]
    for layer, x in zip(layers, inputs):
        layer(x)
    calls = [lambda x, layer=layer: layer(x, training=True) for layer in layers]
    if mode == "whole call compiled":
        calls = [tf.function(call, jit_compile=True) for call in calls]
    variables = [v for layer in layers for v in layer.trainable_variables]

    def work():
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.add_n([tf.reduce_sum(call(x)) for call, x in zip(calls, inputs)])
        return tape.gradient(loss, inputs + variables)

    with fused_attention(mode == "fused path on"):  # read when the function is traced
        function = tf.function(work)
        function()
    return function


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--results", default=results_folder("train-throughput"), metavar="DIR",
                        help="folder for the table as CSV / JSON with the machine and versions "
                        "(default: docs/results/train-throughput)")
    parser.add_argument("--name", default="attention_fusion",
                        help="the table's file name in --results (default: attention_fusion)")
    args = parser.parse_args(argv)
    inputs = [tf.random.normal((args.batch_size, *shape), seed=0) for shape in SHAPES]
    rows = []
    for name, layer_class in LAYERS.items():
        functions = {mode: training_work(layer_class, mode, inputs) for mode in MODES}
        medians = median_ms_in_turns(functions, args.rounds)
        rows.append((name, [medians[mode] for mode in MODES]))
        print(f"{name} done", flush=True)
    print(f"\n{cpu_model()}, {os.cpu_count()} cores; TensorFlow {tf.__version__}; forward + "
          f"backward of 5 layers at MobileNetV2's stage shapes, batch {args.batch_size}, "
          f"median of {args.rounds} rounds, ms")
    print(f"| layer | {' | '.join(MODES)} | fused / op by op |")
    print("|---|---:|---:|---:|---:|")
    for name, (plain, fused, whole) in rows:
        print(f"| {name} | {plain:.0f} | {fused:.0f} | {whole:.0f} | {fused / plain:.2f} |")
    write_results(args.results, args.name, [
        {"layer": name, "op_by_op_ms": round(plain, 1), "fused_path_ms": round(fused, 1),
         "whole_call_compiled_ms": round(whole, 1), "fused_over_op_by_op": round(fused / plain, 3)}
        for name, (plain, fused, whole) in rows],
        command=command_line("python benchmarks/attention_fusion.py", argv),
        notes=[f"forward + backward of 5 layers at MobileNetV2's stage shapes, batch "
               f"{args.batch_size}, median of {args.rounds} rounds"])


if __name__ == "__main__":
    main()

"""Why whole-model XLA (``--jit``) trains slowly on CPU: MobileNetV2's ops one by one, with and without XLA.

Each op runs forward + backward (gradients for its input and weights) at
MobileNetV2 shapes, batch 32, as a ``tf.function`` and as a
``tf.function(jit_compile=True)``, taking turns; each figure is the median
over rounds, the ratio XLA / plain measured in this one run.

    python benchmarks/jit_ops.py

Writes jit_ops.csv / .json into --results (docs/results/train-throughput/).
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_coordatt import CoordAttention  # noqa: E402
from keras_coordatt.layers import fused_attention  # noqa: E402
from machine import cpu_model  # noqa: E402
from machine import command_line  # noqa: E402
from machine import results_folder  # noqa: E402
from machine import write_results  # noqa: E402
from machine import median_ms_in_turns  # noqa: E402


def cases(batch):
    """name -> (layer, input shape)"""
    return {
        "depthwise 3x3, 112x112x96, stride 2": (
            keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False), (batch, 112, 112, 96)),
        "depthwise 3x3, 56x56x144": (
            keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False), (batch, 56, 56, 144)),
        "depthwise 3x3, 14x14x576": (
            keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False), (batch, 14, 14, 576)),
        "1x1 conv 56x56, 144 -> 24": (keras.layers.Conv2D(24, 1, use_bias=False), (batch, 56, 56, 144)),
        "1x1 conv 14x14, 96 -> 576": (keras.layers.Conv2D(576, 1, use_bias=False), (batch, 14, 14, 96)),
        "3x3 conv stride 2, 224x224x3 -> 32": (
            keras.layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False), (batch, 224, 224, 3)),
        "BatchNorm 56x56x144": (keras.layers.BatchNormalization(), (batch, 56, 56, 144)),
        "ReLU6 56x56x144": (keras.layers.ReLU(6.0), (batch, 56, 56, 144)),
        "CoordAttention 56x56x144 (op by op)": (CoordAttention(), (batch, 56, 56, 144)),
    }


def step_function(layer, inputs, jit):
    variables = layer.trainable_variables

    def step():
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(tf.square(layer(inputs, training=True)))
        return tape.gradient(loss, [inputs] + variables)

    function = tf.function(step, jit_compile=jit)
    function()  # trace, compile, warm up
    return function


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--results", default=results_folder("train-throughput"), metavar="DIR",
                        help="folder for the table as CSV / JSON with the machine and versions "
                        "(default: docs/results/train-throughput)")
    args = parser.parse_args(argv)
    rows = []
    with fused_attention(False):  # CoordAttention op by op in both columns
        for name, (layer, shape) in cases(args.batch_size).items():
            inputs = tf.random.normal(shape)
            layer(inputs)
            functions = {jit: step_function(layer, inputs, jit) for jit in (False, True)}
            medians = median_ms_in_turns(functions, args.rounds)
            rows.append((name, medians[False], medians[True]))
            print(f"{name} done", flush=True)
    print(f"\n{cpu_model()}, {os.cpu_count()} cores; TensorFlow {tf.__version__}; forward + "
          f"backward, batch {args.batch_size}, median of {args.rounds} rounds")
    print("| op | tf.function ms | jit_compile ms | XLA / plain |")
    print("|---|---:|---:|---:|")
    for name, plain, xla in rows:
        print(f"| {name} | {plain:.1f} | {xla:.1f} | {xla / plain:.2f} |")
    write_results(args.results, "jit_ops", [
        {"op": name, "tf_function_ms": round(plain, 1), "jit_compile_ms": round(xla, 1),
         "xla_over_plain": round(xla / plain, 2)} for name, plain, xla in rows],
        command=command_line("python benchmarks/jit_ops.py", argv),
        notes=[f"forward + backward, batch {args.batch_size}, median of {args.rounds} rounds; "
               "CoordAttention op by op in both columns"])


if __name__ == "__main__":
    main()

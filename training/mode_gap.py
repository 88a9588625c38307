"""Training mode against inference mode, on one batch of a run's training data.

    python -m training.mode_gap RUN_FOLDER [--weights CHECKPOINT] [--images 8] [--gradient_batches N]

A BatchNorm layer normalises with the batch's statistics in training and with its moving
averages at inference. Where the two disagree, the network evaluated is not the one that was
trained. For a detection or segmentation run (its ``config.json``) and a checkpoint of it
(``RUN_FOLDER/checkpoints/ckpt-N``; default the finished ``model.keras``), this prints, per
BatchNorm layer, the median over channels of std(inference-mode output) / std(training-mode
output) on the same augmented training images (1 where the modes agree), and per attention
layer its gates' mean distance from 0.5 in each mode and the mean |gate in training - gate at
inference| on the same input (and, with ``--gradient_batches N``, the loss's global gradient
norm on N training batches). It is how docs/results/attention-learning.md located the DeepForest
detector's held-out jumps with Coordinate Attention: the gap opens at the convolution that
reads each attention's output and compounds with depth.
"""

import argparse
import json
import os
import sys

import numpy as np

from keras_coordatt.errors import run_reporting_errors


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.mode_gap",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a detection or segmentation run folder (its config.json)")
    parser.add_argument("--weights", default=None,
                        help="a checkpoint prefix (RUN/checkpoints/ckpt-N) or a .keras file "
                             "(default: RUN/model.keras)")
    parser.add_argument("--images", type=int, default=8,
                        help="training images in the batch (default 8)")
    parser.add_argument("--gradient_batches", type=int, default=0,
                        help="also the loss's global gradient norm (training mode) on this many "
                             "training batches: median and largest (default 0: not measured)")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    if args.images < 1 or args.gradient_batches < 0:
        parser.error(f"--images {args.images} / --gradient_batches {args.gradient_batches}: "
                     "at least one image, and no negative batch count")

    def run():
        print(report(args))
        return 0

    return run_reporting_errors("python -m training.mode_gap", run, args.debug)


def report(args):
    import keras

    from keras_coordatt.models.attention_statistics import attention_inputs
    from keras_coordatt.models.attention_statistics import statistics_kept
    from keras_coordatt.models.identity import attention_layers
    from keras_coordatt.training.config import TrainConfig
    from keras_coordatt.training.tasks import load_task_data

    config_path = os.path.join(args.run, "config.json")
    if not os.path.exists(config_path):
        raise ValueError(f"{args.run}: no config.json (a run folder of the trainer)")
    with open(config_path) as f:
        config = TrainConfig(**json.load(f))
    if config.task not in ("detection", "segmentation"):
        raise ValueError(f"{config_path}: task {config.task!r}; this tool reads detection and "
                         "segmentation runs")
    data = load_task_data(config, train=True)
    images = np.concatenate([np.asarray(batch[0]) for batch in
                             data.train_for_epoch(0).take(-(-args.images // config.batch_size))])
    images = images[:args.images]
    model = _model(args, config, data.num_classes)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    probe = keras.Model(model.inputs, [layer.output for layer in norms])
    at_inference = probe(images, training=False)
    with statistics_kept(model.non_trainable_variables):
        in_training = probe(images, training=True)
    lines = [f"{args.run} ({args.weights or 'model.keras'}), {len(images)} training images", "",
             "| BatchNorm layer | std at inference / std in training |", "|---|---:|"]
    for layer, a, b in zip(norms, at_inference, in_training):
        a, b = (np.asarray(t, "float32").reshape(-1, t.shape[-1]) for t in (a, b))
        lines.append(f"| {layer.name} | {np.median(a.std(0) / (b.std(0) + 1e-6)):.2f} |")
    layers = attention_layers(model)
    if layers:
        inputs = attention_inputs(model, images)
        lines += ["", "| attention layer | \\|g - 0.5\\| in training | \\|g - 0.5\\| at inference "
                  "| \\|g train - g inference\\| |", "|---|---:|---:|---:|"]
        for layer in layers:
            trained, inferred = (_gates(layer, inputs[layer.name], mode) for mode in (True, False))
            lines.append(f"| {layer.name} | {np.abs(trained - 0.5).mean():.4f} | "
                         f"{np.abs(inferred - 0.5).mean():.4f} | "
                         f"{np.abs(trained - inferred).mean():.4f} |")
    if args.gradient_batches > 0:
        lines += ["", _gradient_line(model, config, data, args.gradient_batches)]
    return "\n".join(lines)


def _gradient_line(model, config, data, count):
    """The global gradient norm of the config's loss on ``count`` training batches."""
    from keras import ops

    from keras_coordatt.models.attention_statistics import gradients
    from keras_coordatt.training.tasks import compile_task

    compile_task(model, config, max(1, count), data.num_classes)
    variables = model.trainable_variables
    norms = []
    for x, y in data.train_for_epoch(0).take(count):
        squares = [float(np.sum(np.square(ops.convert_to_numpy(g))))
                   for g in gradients(model, variables, x, y) if g is not None]
        norms.append(float(np.sqrt(sum(squares))))
    return (f"global gradient norm of the loss over {len(norms)} training batches of "
            f"{config.batch_size}: median {np.median(norms):.2f}, largest {max(norms):.2f}, "
            f"smallest {min(norms):.2f}")


def _model(args, config, num_classes):
    import keras

    weights = args.weights or os.path.join(args.run, "model.keras")
    if weights.endswith(".keras"):
        if not os.path.exists(weights):
            raise ValueError(f"{weights}: no such file (a finished run writes model.keras; "
                             "give --weights RUN/checkpoints/ckpt-N for an unfinished one)")
        return keras.saving.load_model(weights, compile=False)
    from keras_coordatt.training.checkpoints import restore_model
    from keras_coordatt.training.networks import task_model

    model = task_model(config, num_classes)
    try:
        restore_model(model, weights)
    except ValueError as error:
        raise ValueError(f"--weights: {error}") from None
    return model


def _gates(layer, inputs, training):
    from keras_coordatt.models.attention_statistics import gate_values

    return np.concatenate([gate.ravel() for gate in gate_values(layer, inputs, training)])


if __name__ == "__main__":
    sys.exit(main())

"""How much of the gates' gradient is signal? The gradient noise scale of each CA layer, ELPV.

Issue 22 asks why CA's gates barely move when MobileNetV2 from ImageNet is
fine-tuned on ELPV, whatever the step (SGD at 1-30x, Adam). This script looks at
the gradient itself. For K training batches of the ELPV recipe (the trainer's
augmented pipeline, batch B = 64) it takes the loss's gradient g_k on each
group of variables:

- ``gates``: each CA layer's conv_h and conv_w (kernels and biases), which set
  its gates (at the identity start they are the only CA variables with a
  gradient);
- ``reader``: the 1x1 projection of the same block, which reads CA's output;
- ``head``: the classifier.

From the K gradients: the mean G, the trace of their covariance S (the noise of
one batch's gradient), and the unbiased signal |G|^2 - S / K. The gradient
noise scale B_noise = B * S / (|G|^2 - S / K) (McCandlish et al., 2018, "An
Empirical Model of Large-Batch Training") is the batch at which a step's signal
and noise are the same size: where B_noise is far above B, successive steps
mostly cancel, and an optimizer moves the variables along a random walk rather
than along the signal. ``signal share`` = (|G|^2 - S / K) / mean |g_k|^2 says the
same per step (1: every batch agrees; 0: pure noise).

    python -m training.gate_gradients                       # the identity start
    python -m training.gate_gradients --model RUN/model.keras   # a trained run's model

Writes ``gate_gradients.csv`` / ``.json`` (one row per layer and group) to
``--results`` (docs/results/attention-learning/).
"""

import argparse
import os
import time

import numpy as np

from training.elpv_recipe import elpv_config
from training.elpv_recipe import imagenet_weights
from training.results import add_script_arguments
from training.results import results_destination
from training.results import run_script
from training.results import write_results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.gate_gradients",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="a trained run's model.keras (default: MobileNetV2 + CA from "
                        "ImageNet, the attention at its identity start, as a run begins)")
    parser.add_argument("--batches", type=int, default=None,
                        help="training batches the statistics are taken over (default: one "
                        "epoch's, 30)")
    parser.add_argument("--seed", type=int, default=0, help="the data order's seed (default: 0)")
    parser.add_argument("--output", default="study_output/gate_gradients",
                        help="folder for the converted ImageNet weights (default: "
                        "study_output/gate_gradients)")
    add_script_arguments(parser, "attention-learning")
    args = parser.parse_args(argv)
    if args.batches is not None and args.batches < 2:
        parser.error(f"--batches {args.batches}: the noise needs at least 2 batches")
    if args.model and not os.path.exists(args.model):
        parser.error(f"--model {args.model}: no such file")
    return run_script("python -m training.gate_gradients", args, argv, run)


def run(args):
    import keras

    from keras_coordatt.data.classification.pipeline import PipelineOptions
    from keras_coordatt.data.classification.pipeline import load_datasets
    from keras_coordatt.training.trainer import classifier_for_config
    from keras_coordatt.training.trainer import prepare_model

    if keras.backend.backend() != "tensorflow":
        raise ValueError("gate_gradients takes its gradients with TensorFlow: "
                         "KERAS_BACKEND=tensorflow")
    weights = imagenet_weights(os.path.join(args.output, "weights"))
    config = elpv_config("imagenet", "ca", args.seed, os.path.join(args.output, "run"), weights)
    options = PipelineOptions(image_size=config.image_size, batch_size=config.batch_size,
                              preprocessing=config.preprocessing,
                              crop_scale=(config.crop_scale_min, 1.0), deterministic=True,
                              seed=args.seed)
    data = load_datasets(config.dataset, options, eval_split=config.eval_split)
    if args.model:
        model = keras.saving.load_model(args.model)
        start = args.model
    else:
        model, _ = prepare_model(classifier_for_config(config, data.num_classes), config)
        start = "MobileNetV2 + CA from ImageNet, CA at its identity start"
    groups = variable_groups(model)
    if not groups:
        raise ValueError(f"{start}: no CoordAttention layer to measure")
    count = args.batches or data.train_examples // config.batch_size
    print(f"{start}: {len(groups)} variable groups, {count} batches of {config.batch_size}")
    started = time.time()
    gradients = batch_gradients(model, data.train_for_epoch(0), groups, count)
    rows = noise_table(gradients, config.batch_size)
    print(f"{count} gradients in {time.time() - started:.0f} s\n")
    print(table(rows))
    results = results_destination(args, "attention-learning")
    notes = [f"model: {start}",
             f"{count} training batches of {config.batch_size} (ELPV recipe, augmented, "
             f"seed {args.seed}); loss: cross-entropy of the recipe, training-mode BatchNorm",
             "noise_scale = B * tr(cov) / (|G|^2 - tr(cov) / K), empty where the signal is "
             "not above the noise; signal_share = (|G|^2 - tr(cov) / K) / mean |g|^2"]
    name = "gate_gradients" if not args.model else "gate_gradients_trained"
    write_results(results, name, rows, command=args.command, notes=notes)
    return 0


def variable_groups(model):
    """``{(layer, group): [variables]}``: each CA layer's gates, its block's reader, the head."""
    from keras_coordatt.layers import CoordAttention

    groups = {}
    for layer in model.layers:
        if not isinstance(layer, CoordAttention):
            continue
        block = layer.name[: -len("_attention")]
        groups[(block, "gates")] = [layer.conv_h.kernel, layer.conv_h.bias,
                                    layer.conv_w.kernel, layer.conv_w.bias]
        try:
            groups[(block, "reader")] = [model.get_layer(f"{block}_project").kernel]
        except ValueError:  # a network whose blocks name their projection otherwise
            pass
    if groups:
        groups[("head", "head")] = [model.get_layer("predictions").kernel]
    return groups


def batch_gradients(model, batches, groups, count):
    """``{group: array (count, size)}``: each batch's gradient on each group, flattened."""
    import keras
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    variables = [v for group in groups.values() for v in group]
    gradients = {key: [] for key in groups}
    for images, labels in batches.take(count):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        grads = dict(zip((id(v) for v in variables), tape.gradient(loss, variables)))
        for key, group in groups.items():
            gradients[key].append(np.concatenate(
                [np.ravel(grads[id(v)].numpy()) for v in group]).astype("float64"))
        print(".", end="", flush=True)
    print()
    taken = len(next(iter(gradients.values())))
    if taken < count:
        raise ValueError(f"the training split gives {taken} batches, fewer than --batches {count}")
    return {key: np.stack(value) for key, value in gradients.items()}


def noise_statistics(gradients, batch_size):
    """Signal, noise, noise scale and signal share of one group's ``(K, size)`` gradients."""
    count = len(gradients)
    mean = gradients.mean(axis=0)
    noise = float(((gradients - mean) ** 2).sum(axis=1).sum() / (count - 1))
    signal = float((mean ** 2).sum() - noise / count)
    per_step = float((gradients ** 2).sum(axis=1).mean())
    return {"gradient_norm": float(np.sqrt(per_step)), "signal": signal, "noise": noise,
            "noise_scale": batch_size * noise / signal if signal > 0 else None,
            "signal_share": signal / per_step if per_step > 0 else 0.0}


def noise_table(gradients, batch_size):
    rows = []
    for (block, group), values in gradients.items():
        stats = noise_statistics(values, batch_size)
        rows.append({"block": block, "group": group,
                     **{key: (None if value is None else float(f"{value:.4g}"))
                        for key, value in stats.items()}})
    return rows


def table(rows):
    lines = ["| block | group | gradient norm | signal share | noise scale (images) |",
             "|---|---|---:|---:|---:|"]
    for row in rows:
        scale = "signal not above noise" if row["noise_scale"] is None else \
            f"{row['noise_scale']:,.0f}"
        lines.append(f"| {row['block']} | {row['group']} | {row['gradient_norm']:.3g} | "
                     f"{row['signal_share']:.3f} | {scale} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

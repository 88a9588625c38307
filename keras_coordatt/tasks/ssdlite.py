"""SSDLite320: the paper's detection network on a MobileNetV2 backbone (any attention).

As in the paper's detection code: predictions from two backbone maps, the
stride-16 output of the last 96-channel block (``P4``; keras.applications'
``block_12_add``) and the final 1280-channel map (``P5``, ``out_relu``), and
from four extra stride-2 inverted-residual layers (1280 -> 512 -> 256 -> 256
-> 64 channels, expansion 0.2, 0.5, 0.5, 0.5), so the maps are 20/10/5/3/2/1
at 320x320. Each map gets a class and a box predictor: a 3x3 depthwise
convolution + BatchNorm + ReLU6 + a 1x1 convolution, the last (1x1) map a
plain 1x1 convolution. The outputs are per anchor (`SSDAnchors` order):
``"boxes"`` the coded offsets, ``"classes"`` logits over background (0) and
the classes. The ``"boxes"`` layer (`AnchorOffsets`) keeps the anchors in
its config, so a model loaded from a ``.keras`` file still decodes its
boxes (`anchors_of`).
"""

import json
import math

import keras

from keras_coordatt.models.common import Norm
from keras_coordatt.models.common import conv_bn
from keras_coordatt.tasks.anchors import SSDAnchors
from keras_coordatt.tasks.anchors import anchors_config
from keras_coordatt.tasks.anchors import anchors_from_config

# (output channels, expansion of the input channels) of the four extra layers
EXTRA_LAYERS = ((512, 0.2), (256, 0.5), (256, 0.5), (64, 0.5))
TAPS = ("P4", "P5")


def SSDLite(backbone, num_classes, anchors=None, extra_layers=EXTRA_LAYERS, bn_momentum=0.99,
            name=None):
    """An SSDLite detector on ``backbone``'s ``P4`` and ``P5`` maps.

    Args:
        backbone: a `MobileNetV2` (backbone or classifier) with a fixed square
            input and output stride 32.
        num_classes: object classes, background not counted.
        anchors: an `SSDAnchors` whose feature sizes are the maps'; default
            SSDLite320's (sizes scaled to the input side).
        extra_layers: ``(channels, expansion)`` of the extra stride-2 layers.
        bn_momentum: the head's BatchNorm momentum (Keras convention); the
            trainer passes its ``bn_momentum`` (0.9).
        name: the model's name.

    Returns:
        A `keras.Model` from the image to ``{"boxes": (B, A, 4), "classes":
        (B, A, num_classes + 1)}``; ``model.anchors`` holds the `SSDAnchors`.
    """
    pyramid = getattr(backbone, "pyramid_outputs", None) or {}
    missing = [level for level in TAPS if level not in pyramid]
    if missing:
        raise ValueError(
            f"SSDLite: backbone '{backbone.name}' has no {missing} feature maps (pyramid: "
            f"{sorted(pyramid)}); it needs output stride 32")
    side = backbone.input.shape[1]
    if side is None or side != backbone.input.shape[2]:
        raise ValueError(f"SSDLite: the backbone's input must be a fixed square, got "
                         f"{tuple(backbone.input.shape[1:])}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"SSDLite: num_classes must be a positive int, got {num_classes!r}")
    norm = Norm(1e-3, bn_momentum)
    maps = [pyramid[level] for level in TAPS]
    x = maps[-1]
    for index, (channels, expansion) in enumerate(extra_layers):
        prefix = f"ssd_extra_{index + 1}"
        hidden = int(round(int(x.shape[-1]) * expansion))
        x = conv_bn(x, hidden, 1, (f"{prefix}_expand", f"{prefix}_expand_bn", f"{prefix}_expand_relu"),
                    norm, activation="relu6")
        x = conv_bn(x, None, 3, (f"{prefix}_depthwise", f"{prefix}_depthwise_bn",
                                 f"{prefix}_depthwise_relu"),
                    norm, strides=2, activation="relu6", pad_name=f"{prefix}_pad")
        x = conv_bn(x, channels, 1, (f"{prefix}_project", f"{prefix}_project_bn"), norm)
        maps.append(x)
    sizes = tuple(int(m.shape[1]) for m in maps)
    if anchors is None:
        anchors = ssdlite_anchors(side, maps=sizes)
    if tuple(anchors.feature_sizes) != sizes:
        raise ValueError(f"SSDLite: anchors for feature maps {tuple(anchors.feature_sizes)}, "
                         f"but the network's maps are {sizes} at {side}x{side}")
    boxes, classes = [], []
    for level, (feature_map, count) in enumerate(zip(maps, anchors.boxes_per_location)):
        last = level == len(maps) - 1
        for kind, width, outputs in (("box", 4, boxes), ("class", num_classes + 1, classes)):
            y = _predictor(feature_map, count * width, last, f"ssd_{kind}_{level}", norm)
            outputs.append(keras.layers.Reshape((-1, width), name=f"ssd_{kind}_{level}_flat")(y))
    outputs = {
        "boxes": AnchorOffsets(anchors, name="boxes")(boxes),
        "classes": keras.layers.Concatenate(axis=1, name="classes")(classes),
    }
    model = keras.Model(backbone.input, outputs, name=name or f"ssdlite{side}_{backbone.name}")
    model.anchors = anchors
    model.backbone_config = json.dumps(keras.saving.serialize_keras_object(backbone))
    return model


@keras.saving.register_keras_serializable(package="keras_coordatt")
class AnchorOffsets(keras.layers.Concatenate):
    """The head's box output: every map's offsets, one row per anchor, in `SSDAnchors` order.

    A concatenation that also holds the anchors the offsets are coded
    against, in its config: they are what makes the offsets boxes, and a
    `keras.Model` keeps no other attribute through a ``.keras`` file.

    Args:
        anchors: the `SSDAnchors`, or a dict of their fields.
        **kwargs: `keras.layers.Concatenate`'s (``axis`` is 1, the anchors).
    """

    def __init__(self, anchors, **kwargs):
        kwargs.pop("axis", None)
        super().__init__(axis=1, **kwargs)
        self.anchors = anchors_from_config(anchors)

    def get_config(self):
        return {**super().get_config(), "anchors": anchors_config(self.anchors)}


def anchors_of(model):
    """An SSD model's `SSDAnchors`: its ``.anchors``, or those its ``"boxes"`` layer keeps
    (a model loaded from a ``.keras`` file); None for another model."""
    anchors = getattr(model, "anchors", None)
    if anchors is not None:
        return anchors
    boxes = next((layer for layer in model.layers if layer.name == "boxes"), None)
    return getattr(boxes, "anchors", None)


def feature_sizes(side, levels=6):
    """The sides of SSDLite's maps for a ``side``-pixel input: stride 16, 32, then halving."""
    sizes = [math.ceil(side / 16), math.ceil(side / 32)]
    while len(sizes) < levels:
        sizes.append(math.ceil(sizes[-1] / 2))
    return tuple(sizes)


def ssdlite_anchors(side=320, size_scale=1.0, maps=None):
    """SSDLite320's anchors for a ``side``-pixel input, their sizes times ``size_scale``.

    The reference steps and sizes are scaled by ``side / 320`` (so the
    anchors cover the same share of the image); ``size_scale`` below 1 shrinks
    the boxes for small objects while keeping their centres (aerial tree
    crowns: 0.6, so the finest map's squares are 27 and 38 px at 320).
    """
    reference = SSDAnchors()
    scale = side / reference.image_size
    return SSDAnchors(
        image_size=side, feature_sizes=maps or feature_sizes(side),
        steps=tuple(step * scale for step in reference.steps),
        min_sizes=tuple(s * scale * size_scale for s in reference.min_sizes),
        max_sizes=tuple(s * scale * size_scale for s in reference.max_sizes))


def _predictor(x, filters, plain, prefix, norm):
    if not plain:
        x = keras.layers.DepthwiseConv2D(3, padding="same", name=f"{prefix}_depthwise")(x)
        x = norm(f"{prefix}_depthwise_bn")(x)
        x = keras.layers.ReLU(6.0, name=f"{prefix}_depthwise_relu")(x)
    return keras.layers.Conv2D(filters, 1, name=f"{prefix}_conv")(x)

"""Pieces every backbone shares: the stage tables, channel rounding, conv-BN-activation,
padding, the stem, the attention slot and the default names.

The backbones follow `keras.applications`: a table of stages read by one
builder, every layer named after where it sits.
"""

import collections
import dataclasses

import keras

from keras_coordatt.layers import get_attention

PADDINGS = ("keras", "pytorch")

# One row of an architecture table: ``repeats`` blocks with expansion (or, in
# a sandglass block, reduction) ratio ``expansion``, ``channels`` output
# channels before width scaling, ``stride`` on the first block only.
Stage = collections.namedtuple(
    "Stage", ["expansion", "channels", "repeats", "stride", "kernel_size"], defaults=[3]
)


def blocks(stages):
    """Yields ``(stage_index, repeat_index, stage, stride)`` for every block."""
    for stage_index, stage in enumerate(stages):
        for repeat in range(stage.repeats):
            yield stage_index, repeat, stage, stage.stride if repeat == 0 else 1


def make_divisible(value, divisor=8, min_value=None):
    """Rounds a channel count to a multiple of ``divisor``, at most 10% down.

    The rule of the MobileNet family (TensorFlow slim, keras.applications and
    the official PyTorch MobileNetV2/MobileNeXt code all share it): round to
    the nearest multiple, but never below ``min_value`` (default ``divisor``)
    and never more than 10% below ``value``.

    Args:
        value: the unrounded channel count, for example ``24 * alpha``.
        divisor: the multiple to round to. Defaults to 8.
        min_value: the smallest result. Defaults to ``divisor``.

    Example:

    >>> make_divisible(24 * 0.75), make_divisible(32 * 0.35)
    (24, 16)
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclasses.dataclass(frozen=True)
class Norm:
    """The BatchNormalization settings of one model, in Keras' convention.

    keras.applications' MobileNetV2 uses ``epsilon=1e-3, momentum=0.999``;
    PyTorch's defaults are ``eps=1e-5`` and ``momentum=0.1``, which is
    ``momentum=0.9`` here (Keras keeps ``momentum`` of the old statistic).
    """

    epsilon: float
    momentum: float

    def __call__(self, name):
        return keras.layers.BatchNormalization(
            epsilon=self.epsilon, momentum=self.momentum, name=name
        )


def activation_layer(activation, name):
    """``"relu6"`` as keras.applications' `ReLU(6.0)` layer, else an `Activation`."""
    if activation == "relu6":
        return keras.layers.ReLU(6.0, name=name)
    return keras.layers.Activation(activation, name=name)


def stride_padding(x, kernel_size, padding, name):
    """Zero-pads ahead of a strided "valid" convolution.

    ``"keras"`` pads as keras.applications does (one pixel fewer at the top
    and left when the size is even, TensorFlow's "same"); ``"pytorch"`` pads
    ``kernel_size // 2`` on every side, as PyTorch's ``padding=k // 2`` does.
    The two give different outputs at stride 2, so converted PyTorch weights
    need ``"pytorch"``.
    """
    half = kernel_size // 2
    if padding == "pytorch":
        pads = ((half, half), (half, half))
    else:
        # Unknown sizes are taken as even, like keras.applications' correct_pad.
        pads = tuple(
            (half - (1 if size is None or size % 2 == 0 else 0), half)
            for size in x.shape[1:3]
        )
    return keras.layers.ZeroPadding2D(pads, name=name)(x)


def conv_bn(
    x,
    filters,
    kernel_size,
    names,
    norm,
    strides=1,
    dilation_rate=1,
    activation=None,
    padding="keras",
    pad_name=None,
    kernel_initializer="glorot_uniform",
):
    """Convolution (no bias) -> BatchNormalization -> optional activation.

    Args:
        x: the input tensor.
        filters: output channels, or None for a depthwise convolution.
        kernel_size: int.
        names: ``(conv, bn)`` or ``(conv, bn, activation)`` layer names.
        norm: a `Norm`.
        strides: 1 or 2. A strided convolution is preceded by a
            ``ZeroPadding2D`` named ``pad_name`` (see `stride_padding`); with
            ``pad_name=None`` it uses the convolution's own "same" padding,
            as keras.applications' MobileNetV2 stem does.
        dilation_rate: int; stride-1 convolutions only.
        activation: None, ``"relu6"`` or an activation name.
        padding: ``"keras"`` or ``"pytorch"``, see `stride_padding`.
        pad_name: the padding layer's name.
        kernel_initializer: the convolution's initializer.
    """
    conv_padding = "same"
    if strides > 1 and pad_name is not None:
        x = stride_padding(x, kernel_size, padding, pad_name)
        conv_padding = "valid"
    options = dict(
        kernel_size=kernel_size,
        strides=strides,
        dilation_rate=dilation_rate,
        padding=conv_padding,
        use_bias=False,
        name=names[0],
    )
    if filters is None:
        conv = keras.layers.DepthwiseConv2D(
            depthwise_initializer=kernel_initializer, **options
        )
    else:
        conv = keras.layers.Conv2D(
            filters, kernel_initializer=kernel_initializer, **options
        )
    x = norm(names[1])(conv(x))
    if activation is not None:
        x = activation_layer(activation, names[2])(x)
    return x


# MobileNetV2's and MobileNeXt's stem width at alpha = 1.
STEM_CHANNELS = 32


def mobile_stem(image, alpha, norm, padding, pad_name=None):
    """The 3x3, stride-2, ReLU6 stem of MobileNetV2 and MobileNeXt.

    32 channels times ``alpha`` (rounded to a multiple of 8), with
    keras.applications' layer names ``Conv1``, ``bn_Conv1``, ``Conv1_relu``
    (and ``pad_name`` for an explicit PyTorch-style pad layer).
    """
    return conv_bn(
        image,
        make_divisible(STEM_CHANNELS * alpha),
        3,
        ("Conv1", "bn_Conv1", "Conv1_relu"),
        norm,
        strides=2,
        activation="relu6",
        padding=padding,
        pad_name=pad_name,
    )


def attend(x, attention, attention_kwargs, name):
    """Applies a new ``get_attention(attention, name=name, **attention_kwargs)``."""
    layer = get_attention(attention, name=name, **attention_kwargs)
    return x if layer is None else layer(x)


def check_backbone_arguments(owner, alpha, padding):
    """Raises a ValueError naming a bad width multiplier or padding."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ValueError(
            f"{owner}: alpha (the width multiplier) must be a positive "
            f"number, got alpha={alpha!r}."
        )
    if padding not in PADDINGS:
        raise ValueError(
            f"{owner}: unknown padding={padding!r}. Expected 'keras' "
            "(keras.applications' asymmetric padding before strided convs) or "
            "'pytorch' (symmetric padding, as in PyTorch checkpoints)."
        )


def default_name(prefix, attention, own="none"):
    """``prefix`` plus ``_{attention}`` for a named attention the architecture lacks.

    ``own`` is the architecture's own attention ("none", or EfficientNet's
    "efficientnet_se"), which keeps the plain name.
    """
    if attention is not None and not isinstance(attention, str):
        return prefix
    label = (attention or "none").lower()
    return prefix if label == own else f"{prefix}_{label}"

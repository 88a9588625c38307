"""Pieces every model builder shares: channel rounding, conv-BN-activation, padding,
the input, the classifier head, weight loading and the pyramid levels.

The builders follow `keras.applications`: a function that builds a functional
`keras.Model` from a table of stages, names every layer after where it sits,
and takes ``input_shape``, ``include_top``, ``weights``, ``input_tensor``,
``pooling``, ``classes`` and ``classifier_activation`` with the same meaning.
"""

import collections
import dataclasses
import os

import keras

from keras_coordatt.layers import get_attention

PADDINGS = ("keras", "pytorch")
POOLINGS = (None, "avg", "max")
MIN_INPUT_SIZE = 32
PYRAMID_LEVELS = ("P2", "P3", "P4", "P5")

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


def pyramid_level(stride):
    """The level name of a feature map at ``stride``: 4 -> ``"P2"``, 32 -> ``"P5"``."""
    return f"P{stride.bit_length() - 1}"


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


def check_arguments(
    builder,
    alpha,
    include_top,
    weights,
    pooling,
    classes,
    padding,
    dropout_rate,
):
    """Raises a ValueError naming the first bad builder argument."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ValueError(
            f"{builder}: alpha (the width multiplier) must be a positive "
            f"number, got alpha={alpha!r}."
        )
    check_weights(builder, weights)
    if pooling not in POOLINGS:
        raise ValueError(
            f"{builder}: unknown pooling={pooling!r}. Expected one of {POOLINGS}."
        )
    if include_top and (
        isinstance(classes, bool) or not isinstance(classes, int) or classes < 1
    ):
        raise ValueError(
            f"{builder}: with include_top=True, classes must be a positive "
            f"integer, got classes={classes!r}."
        )
    if padding not in PADDINGS:
        raise ValueError(
            f"{builder}: unknown padding={padding!r}. Expected 'keras' "
            "(keras.applications' asymmetric padding before strided convs) or "
            "'pytorch' (symmetric padding, as in PyTorch checkpoints)."
        )
    if not 0 <= dropout_rate < 1:
        raise ValueError(
            f"{builder}: dropout_rate must be in [0, 1), got {dropout_rate!r}."
        )


def check_weights(builder, weights):
    if weights is None:
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            f"{builder}: weights must be None or the path of a weights file, "
            f"got {type(weights).__name__} {weights!r}."
        )
    if os.fspath(weights) == "imagenet":
        raise ValueError(
            f"{builder}: weights='imagenet' is not available: keras-coordatt "
            "downloads nothing and ships no ImageNet checkpoints. Pass "
            "weights=None, or the path of a .weights.h5 file saved by "
            "model.save_weights() (for MobileNetV2 with attention=None, "
            "keras.applications' MobileNetV2 .h5 files load too)."
        )
    if not os.path.isfile(weights):
        raise ValueError(f"{builder}: weights file {os.fspath(weights)!r} does not exist.")


def image_input(builder, input_shape, input_tensor, include_top, default_size=224):
    """Returns ``(image_tensor, model_inputs)`` as keras.applications does.

    Without ``input_shape``, the shape comes from ``input_tensor``, else it is
    ``(default_size, default_size, 3)`` with the classifier and
    ``(None, None, 3)`` without it.
    """
    if keras.config.image_data_format() != "channels_last":
        raise ValueError(
            f"{builder}: the models are built channels-last; got "
            f"keras.config.image_data_format()="
            f"{keras.config.image_data_format()!r}."
        )
    if input_tensor is not None and not keras.backend.is_keras_tensor(input_tensor):
        raise ValueError(
            f"{builder}: input_tensor must be a Keras tensor (keras.Input(...) "
            f"or a layer's output), got {type(input_tensor).__name__}."
        )
    if input_shape is None:
        if input_tensor is not None:
            input_shape = tuple(input_tensor.shape[1:])
        elif include_top:
            input_shape = (default_size, default_size, 3)
        else:
            input_shape = (None, None, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[2] is None:
        raise ValueError(
            f"{builder}: input_shape must be (height, width, channels) with "
            f"known channels, got input_shape={input_shape}."
        )
    if any(size is not None and size < MIN_INPUT_SIZE for size in input_shape[:2]):
        raise ValueError(
            f"{builder}: input_shape={input_shape} is too small; height and "
            f"width must be at least {MIN_INPUT_SIZE} (the network divides them "
            "by 32)."
        )
    if input_tensor is None:
        image = keras.Input(shape=input_shape)
        return image, image
    if tuple(input_tensor.shape[1:]) != input_shape:
        raise ValueError(
            f"{builder}: input_shape={input_shape} does not match "
            f"input_tensor's shape {tuple(input_tensor.shape[1:])}."
        )
    return input_tensor, keras.utils.get_source_inputs(input_tensor)


def classifier_head(
    x,
    include_top,
    pooling,
    classes,
    classifier_activation,
    dropout_rate,
    kernel_initializer="glorot_uniform",
):
    """keras.applications' top: pool -> [Dropout] -> Dense, or just a pooling."""
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate > 0:
            x = keras.layers.Dropout(dropout_rate, name="top_dropout")(x)
        return keras.layers.Dense(
            classes,
            activation=classifier_activation,
            kernel_initializer=kernel_initializer,
            name="predictions",
        )(x)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def default_name(prefix, attention, own="none"):
    """``prefix`` plus ``_{attention}`` for a named attention the architecture lacks.

    ``own`` is the architecture's own attention ("none", or EfficientNet's
    "se"), which keeps the plain name.
    """
    if attention is not None and not isinstance(attention, str):
        return prefix
    label = (attention or "none").lower()
    return prefix if label == own else f"{prefix}_{label}"


def finish_model(builder, inputs, outputs, name, weights, pyramid):
    """Builds the `keras.Model`, attaches ``pyramid_outputs`` and loads ``weights``.

    ``pyramid`` maps levels to feature maps, at least ``"P2"`` to ``"P5"``;
    the model keeps those four as ``model.pyramid_outputs`` (keras-hub's
    attribute, see `feature_pyramid`).
    """
    model = keras.Model(inputs, outputs, name=name)
    model.pyramid_outputs = {level: pyramid[level] for level in PYRAMID_LEVELS}
    if weights is not None:
        try:
            model.load_weights(weights)
        except ValueError as error:
            raise ValueError(
                f"{builder}: could not load weights={os.fspath(weights)!r} into "
                f"'{model.name}'; the file must come from a model built with the "
                f"same alpha, attention, include_top and classes. {error}"
            ) from error
    return model

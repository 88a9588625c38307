"""Model cost as the paper reports it: multiply-adds ("M-Adds") and parameters.

What is counted: one multiply-add per weight use in ``Conv2D``,
``DepthwiseConv2D`` and ``Dense`` layers (grouped and dilated convs
included), and in the convs inside `CoordAttention`, `SqueezeExcite`,
`CBAM`, `EfficientChannelAttention` and `EfficientLocalAttention` (SimAM has
none: it is element-wise throughout; EfficientNet's own SE is made of plain
``Conv2D`` layers, so it is counted as such). Biases, BatchNorm, activations,
pooling, additions and the element-wise products that apply attention gates are
not counted, as in the usual MobileNet accounting (torchvision,
keras.applications, the MobileNetV2 paper's 300M).

That choice is the one consistent with the paper's Table 2 at 224x224:
MobileNetV2 300.8M, + SE 301.2M, + CBAM 302.5M, + CA 306.7M, which round to
the published 300M / 300M / 300M / 310M. Counting the gate products too would
give CBAM 306.3M, published as 300M.
"""

import math

import keras

from keras_coordatt.layers import CBAM
from keras_coordatt.layers import CoordAttention
from keras_coordatt.layers import EfficientChannelAttention
from keras_coordatt.layers import EfficientLocalAttention
from keras_coordatt.layers import SqueezeExcite


def count_macs(model):
    """Multiply-adds of one forward pass of one example (the paper's M-Adds).

    Reference: Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile
    Network Design", CVPR 2021, Tables 2-5 ("M-Adds"). See the module
    docstring for what is counted.

    Args:
        model: a built functional `keras.Model` with static spatial sizes
            (build it with a fixed ``input_shape``); nested models are
            counted through.

    Returns:
        int, the multiply-adds.

    Example:

    >>> import keras
    >>> from keras_coordatt.models import count_macs
    >>> inputs = keras.Input((8, 8, 3))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same")(inputs))
    >>> count_macs(model)  # 8 * 8 positions * 4 filters * 3 * 3 * 3 weights
    6912
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
            continue
        counter = _counter(layer)
        if counter is not None:
            input_shape = _static_shape(layer, layer.input.shape)
            output_shape = _static_shape(layer, layer.output.shape)
            total += counter(layer, input_shape, output_shape)
    return int(total)


def count_trainable_params(model):
    """Trainable parameters: the paper's "Params" (BN moving statistics excluded).

    Example:

    >>> import keras
    >>> from keras_coordatt.models import count_trainable_params
    >>> count_trainable_params(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    10
    """
    return int(sum(math.prod(weight.shape) for weight in model.trainable_weights))


def _static_shape(layer, shape):
    if any(size is None for size in shape[1:]):
        raise ValueError(
            f"count_macs: layer '{layer.name}' has the shape {tuple(shape)} with "
            "unknown sizes; build the model with a fixed input_shape, for "
            "example input_shape=(224, 224, 3)."
        )
    return tuple(shape)


def _conv_macs(layer, input_shape, output_shape):
    kernel_height, kernel_width = layer.kernel_size
    fan_in = kernel_height * kernel_width * input_shape[-1] // layer.groups
    return math.prod(output_shape[1:]) * fan_in


def _depthwise_conv_macs(layer, input_shape, output_shape):
    kernel_height, kernel_width = layer.kernel_size
    return math.prod(output_shape[1:]) * kernel_height * kernel_width


def _dense_macs(layer, input_shape, output_shape):
    return math.prod(input_shape[1:]) * output_shape[-1]


def _spatial_size(layer, input_shape):
    if layer.data_format == "channels_first":
        return input_shape[2:]
    return input_shape[1:3]


def _coord_attention_macs(layer, input_shape, output_shape):
    # F1 (C -> mip) runs on the H + W pooled positions (only H or W with one
    # direction), and F_h and F_w (mip -> C) on the H and the W positions.
    height, width = _spatial_size(layer, input_shape)
    positions = {"h": height, "w": width}
    length = sum(positions[direction] for direction in layer.directions)
    return 2 * length * layer.channels * layer.mip


def _squeeze_excite_macs(layer, input_shape, output_shape):
    return 2 * layer.channels * layer.squeezed


def _cbam_macs(layer, input_shape, output_shape):
    # The shared MLP runs on the average- and on the max-pooled descriptor;
    # the spatial conv maps 2 maps to 1 at every position.
    height, width = _spatial_size(layer, input_shape)
    mlp = 2 * (2 * layer.channels * layer.squeezed)
    spatial = height * width * 2 * layer.kernel_size**2
    return mlp + spatial


def _eca_macs(layer, input_shape, output_shape):
    # k taps for each of the C pooled channels.
    return layer.channels * layer.kernel_size_used


def _ela_macs(layer, input_shape, output_shape):
    # The depthwise k-tap conv at each of the H + W pooled positions and C channels.
    height, width = _spatial_size(layer, input_shape)
    return (height + width) * layer.channels * layer.kernel_size_used


# Checked in order: DepthwiseConv2D before anything it could subclass.
_COUNTERS = (
    (keras.layers.DepthwiseConv2D, _depthwise_conv_macs),
    (keras.layers.Conv2D, _conv_macs),
    (keras.layers.Dense, _dense_macs),
    (CoordAttention, _coord_attention_macs),
    (SqueezeExcite, _squeeze_excite_macs),
    (CBAM, _cbam_macs),
    (EfficientChannelAttention, _eca_macs),
    (EfficientLocalAttention, _ela_macs),
)


def _counter(layer):
    for layer_class, counter in _COUNTERS:
        if isinstance(layer, layer_class):
            return counter
    return None

"""Coordinate Attention's neighbours: ECA, SimAM and Efficient Local Attention.

Each as in its paper, with the API of the other attention layers here
(``gates``, ``start_as_constant`` where the block has learned gates, any data
format, serialisable):

- `EfficientChannelAttention`: Wang et al., "ECA-Net: Efficient Channel
  Attention for Deep Convolutional Neural Networks", CVPR 2020.
- `SimAM`: Yang et al., "SimAM: A Simple, Parameter-Free Attention Module for
  Convolutional Neural Networks", ICML 2021.
- `EfficientLocalAttention`: Xu and Wan, "ELA: Efficient Local Attention for
  Deep Convolutional Neural Networks", arXiv:2403.01123, 2024.
"""

import math

import keras
from keras import ops

from keras_coordatt.layers.base import AttentionLayer
from keras_coordatt.layers.base import check_positive_int


class _ParameterLightAttention(AttentionLayer):
    """An `AttentionLayer` without the bottleneck of CA / SE / CBAM.

    The base class's ``reduction``, ``min_channels`` and ``activation`` do not
    apply: they are fixed here and left out of the config.
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(1, 1, "sigmoid", data_format, **kwargs)

    def get_config(self):
        config = keras.layers.Layer.get_config(self)
        config["data_format"] = self.data_format
        return config


def _optional_odd_kernel(kernel_size, layer_name):
    """``kernel_size`` if it is None or a positive odd int; else a ValueError naming it."""
    if kernel_size is not None and (isinstance(kernel_size, bool)
                                    or not isinstance(kernel_size, int)
                                    or kernel_size <= 0 or kernel_size % 2 == 0):
        raise ValueError(f"{layer_name}: kernel_size must be a positive odd integer or None "
                         f"(the default rule), got {kernel_size!r}.")
    return kernel_size


def eca_kernel_size(channels, gamma=2, b=1):
    """ECA's adaptive kernel size: ``|log2(C) / gamma + b / gamma|``, made odd (Eq. 12).

    >>> [eca_kernel_size(c) for c in (16, 96, 320, 1280)]
    [3, 3, 5, 5]
    """
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


@keras.saving.register_keras_serializable(package="keras_coordatt")
class EfficientChannelAttention(_ParameterLightAttention):
    """ECA: channel attention from a 1D convolution across neighbouring channels.

    Reference: Wang, Wu, Zhu, Li, Zuo, Hu, "ECA-Net: Efficient Channel
    Attention for Deep Convolutional Neural Networks", CVPR 2020.

    Global average pooling gives one value per channel; a 1D convolution
    ``conv`` of ``kernel_size`` taps, without bias and shared by all channels,
    runs along the channel axis (zero padded, so each channel sees its
    ``k // 2`` neighbours on each side); a sigmoid turns it into one gate per
    channel. No dimensionality reduction: ``k`` parameters in all. With
    ``kernel_size=None`` (default) ``k`` follows the paper's rule from the
    channel count, `eca_kernel_size` (gamma 2, b 1).

    Args:
        kernel_size: odd int, or None for the adaptive rule.
        gamma, b: the adaptive rule's constants. Default 2 and 1 (the paper).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        **kwargs: the usual `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> from keras_coordatt import EfficientChannelAttention
    >>> layer = EfficientChannelAttention()
    >>> tuple(layer(np.ones((2, 14, 14, 96), "float32")).shape)
    (2, 14, 14, 96)
    >>> layer.kernel_size_used, layer.count_params()
    (3, 3)
    """

    def __init__(self, kernel_size=None, gamma=2, b=1, data_format=None, **kwargs):
        super().__init__(data_format, **kwargs)
        self.kernel_size = _optional_odd_kernel(kernel_size, "EfficientChannelAttention")
        self.gamma = gamma
        self.b = b

    def build_attention(self, channels):
        self.kernel_size_used = self.kernel_size or eca_kernel_size(channels, self.gamma, self.b)
        self.gate_conv = keras.layers.Conv1D(1, self.kernel_size_used, padding="same",
                                             use_bias=False, dtype=self.dtype_policy, name="conv")
        self.gate_conv.build((None, channels, 1))

    def gate_convs(self):
        return [self.gate_conv]

    def gate_midpoints(self):
        return [0.5]

    def gates(self, inputs, training=False):
        pooled = self.to_channels_last(ops.mean(inputs, axis=self.spatial_axes(), keepdims=True))
        # (N, 1, 1, C) -> (N, C, 1): the channels are the sequence the conv runs along.
        sequence = ops.reshape(pooled, (-1, self.channels, 1))
        logits = ops.reshape(self.gate_conv(sequence), (-1, 1, 1, self.channels))
        return {"channel": ops.sigmoid(logits)}

    def call(self, inputs):
        return inputs * self.from_channels_last(self.gates(inputs)["channel"])

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "gamma": self.gamma,
                "b": self.b}


@keras.saving.register_keras_serializable(package="keras_coordatt")
class SimAM(_ParameterLightAttention):
    """SimAM: a parameter-free 3D attention from each neuron's energy.

    Reference: Yang, Zhang, Li, Xie, "SimAM: A Simple, Parameter-Free
    Attention Module for Convolutional Neural Networks", ICML 2021.

    Per channel, with ``n = H * W - 1``: ``d = (x - mean)^2``, ``v = sum(d) / n``
    and the inverse minimal energy ``e = d / (4 (v + lambda)) + 1/2``; the output
    is ``x * sigmoid(e)``. A neuron far from its channel's mean gets a larger
    gate. No weights. (A 1x1 map has ``n = 0``; its ``d`` is 0, and ``n`` is
    taken as 1 there so the gate is ``sigmoid(1/2)`` instead of NaN.)

    Args:
        e_lambda: the energy's regulariser ``lambda``. Default 1e-4 (the paper).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        **kwargs: the usual `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> from keras_coordatt import SimAM
    >>> layer = SimAM()
    >>> tuple(layer(np.ones((2, 14, 14, 96), "float32")).shape), layer.count_params()
    ((2, 14, 14, 96), 0)
    """

    def __init__(self, e_lambda=1e-4, data_format=None, **kwargs):
        super().__init__(data_format, **kwargs)
        if not isinstance(e_lambda, (int, float)) or isinstance(e_lambda, bool) or e_lambda <= 0:
            raise ValueError(f"SimAM: e_lambda must be a positive number, got {e_lambda!r}.")
        self.e_lambda = float(e_lambda)

    def build_attention(self, channels):
        pass

    def gate_convs(self):
        return []

    def gate_midpoints(self):
        # No learned start: a neuron at its channel's mean has e = 1/2.
        return [1.0 / (1.0 + math.exp(-0.5))]

    def start_as_constant(self):
        raise ValueError(f"SimAM '{self.name}' has no weights, so it cannot start as the "
                         "identity: inserted into a trained network it changes the outputs "
                         "from the first step (each gate is between sigmoid(1/2) and 1).")

    def gates(self, inputs, training=False):
        x = self.to_channels_last(ops.convert_to_tensor(inputs, self.compute_dtype))
        shape = ops.shape(x)
        n = ops.maximum(ops.cast(shape[1] * shape[2], x.dtype) - 1.0, 1.0)
        centred = x - ops.mean(x, axis=(1, 2), keepdims=True)
        v = ops.sum(ops.square(centred), axis=(1, 2), keepdims=True) / n
        # d / (4 (v + lambda)) written as (centred * rsqrt(4 (v + lambda)))^2: the same
        # number, and no division by v + lambda, which in an int8 file quantizes to zero for
        # a channel of small variance (LiteRT's int8 DIV then fails; its RSQRT does not)
        energy = ops.square(centred * ops.rsqrt(4.0 * (v + self.e_lambda))) + 0.5
        return {"energy": ops.sigmoid(energy)}

    def call(self, inputs):
        return inputs * self.from_channels_last(self.gates(inputs)["energy"])

    def get_config(self):
        return {**super().get_config(), "e_lambda": self.e_lambda}


# The paper's variants: (kernel size, GroupNorm groups). T and B are its
# settings for light networks such as MobileNetV2.
ELA_VARIANTS = {"t": (5, 32), "b": (7, 16)}


def group_count(channels, groups):
    """The GroupNorm groups for ``channels``: ``groups`` where it divides them, else its
    largest divisor of ``channels`` below it (144 channels with 32 asked: 24)."""
    return max(g for g in range(1, min(groups, channels) + 1) if channels % g == 0)


@keras.saving.register_keras_serializable(package="keras_coordatt")
class EfficientLocalAttention(_ParameterLightAttention):
    """ELA: Coordinate Attention's strip pooling with a 1D conv and GroupNorm.

    Reference: Xu, Wan, "ELA: Efficient Local Attention for Deep
    Convolutional Neural Networks", arXiv:2403.01123, 2024.

    As in CA, the input is averaged along its width (a descriptor per row)
    and along its height (per column). Each descriptor goes through the same
    depthwise 1D convolution ``conv`` along its spatial axis (``kernel_size``
    taps per channel, no bias), the same GroupNorm ``norm`` and a sigmoid,
    giving ``g_h`` and ``g_w``; the output is ``x * g_h * g_w``. No channel
    reduction: ``k * C + 2 C`` weights. ``variant="b"`` (default) is the
    paper's ELA-B (kernel 7, 16 groups), ``"t"`` its ELA-T (kernel 5, 32
    groups); explicit ``kernel_size`` / ``groups`` override the variant. A
    channel count the groups do not divide takes the largest divisor below
    them (`group_count`), which the paper does not say.

    Args:
        variant: ``"b"`` or ``"t"``.
        kernel_size: odd int, or None for the variant's.
        groups: GroupNorm groups, or None for the variant's.
        epsilon: GroupNorm epsilon. Default 1e-5 (PyTorch's).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        **kwargs: the usual `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> from keras_coordatt import EfficientLocalAttention
    >>> layer = EfficientLocalAttention()
    >>> tuple(layer(np.ones((2, 14, 14, 96), "float32")).shape), layer.count_params()
    ((2, 14, 14, 96), 864)
    """

    def __init__(self, variant="b", kernel_size=None, groups=None, epsilon=1e-5,
                 data_format=None, **kwargs):
        super().__init__(data_format, **kwargs)
        if variant not in ELA_VARIANTS:
            raise ValueError(f"EfficientLocalAttention: unknown variant={variant!r}; expected one "
                             f"of {sorted(ELA_VARIANTS)}.")
        _optional_odd_kernel(kernel_size, "EfficientLocalAttention")
        if groups is not None:
            check_positive_int(groups, "groups", "EfficientLocalAttention")
        self.variant = variant
        self.kernel_size = kernel_size
        self.groups = groups
        self.epsilon = epsilon

    def build_attention(self, channels):
        kernel_size, groups = ELA_VARIANTS[self.variant]
        self.kernel_size_used = self.kernel_size or kernel_size
        self.groups_used = group_count(channels, self.groups or groups)
        # A (k, 1) depthwise conv over (N, L, 1, C): the 1D depthwise conv, in ops TFLite has.
        self.gate_conv = keras.layers.DepthwiseConv2D(
            (self.kernel_size_used, 1), padding="same", use_bias=False, dtype=self.dtype_policy,
            name="conv")
        self.gate_conv.build((None, None, 1, channels))
        self.norm = keras.layers.GroupNormalization(self.groups_used, axis=-1,
                                                    epsilon=self.epsilon,
                                                    dtype=self.dtype_policy, name="norm")
        self.norm.build((None, None, 1, channels))

    def gate_convs(self):
        return [self.gate_conv]

    def gate_midpoints(self):
        return [0.5, 0.5]

    def start_as_constant(self):
        """Zeroes the conv and the GroupNorm's offset: both gates 0.5, the factor 1/4."""
        factor = super().start_as_constant()
        self.norm.beta.assign(ops.zeros(self.norm.beta.shape, self.norm.beta.dtype))
        return factor

    def _gate(self, descriptor):
        return ops.sigmoid(self.norm(self.gate_conv(descriptor)))

    def gates(self, inputs, training=False):
        x_last = self.data_format == "channels_last"
        rows = ops.mean(inputs, axis=2 if x_last else 3)   # (N, H, C) or (N, C, H)
        columns = ops.mean(inputs, axis=1 if x_last else 2)  # (N, W, C) or (N, C, W)
        if not x_last:
            rows, columns = ops.transpose(rows, (0, 2, 1)), ops.transpose(columns, (0, 2, 1))
        g_h = self._gate(ops.expand_dims(rows, 2))      # (N, H, 1, C)
        g_w = self._gate(ops.expand_dims(columns, 2))   # (N, W, 1, C)
        return {"h": g_h, "w": ops.transpose(g_w, (0, 2, 1, 3))}  # (N, 1, W, C)

    def call(self, inputs):
        gates = self.gates(inputs)
        return inputs * self.from_channels_last(gates["h"]) * self.from_channels_last(gates["w"])

    def get_config(self):
        return {**super().get_config(), "variant": self.variant, "kernel_size": self.kernel_size,
                "groups": self.groups, "epsilon": self.epsilon}

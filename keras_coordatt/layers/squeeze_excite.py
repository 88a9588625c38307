"""Squeeze-and-Excitation, at the paper's MobileNetV2 baseline settings."""

import keras
from keras import ops

from keras_coordatt.layers.base import AttentionLayer
from keras_coordatt.layers.base import resolve_activation


@keras.saving.register_keras_serializable(package="keras_coordatt")
class SqueezeExcite(AttentionLayer):
    """Squeeze-and-Excitation channel attention.

    Reference: Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018;
    settings as in the Coordinate Attention paper's SE baseline.

    Global average pooling, a 1x1 conv ``conv_reduce`` (C -> C // reduction,
    with bias), ``activation``, a 1x1 conv ``conv_expand`` (back to C, with
    bias) and ``gate_activation`` give one gate per channel; the output is the
    input times its gate. The defaults (reduction 24, ReLU6, sigmoid) give the
    paper's MobileNetV2 + SE count of 3,888,208 parameters.

    Args:
        reduction: int, channel reduction ratio. Defaults to 24.
        min_channels: int, the smallest bottleneck width. Defaults to 1.
        activation: the bottleneck non-linearity. Defaults to ``"relu6"``.
        gate_activation: ``"sigmoid"`` (default) or ``"hard_sigmoid"``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        **kwargs: the usual `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> from keras_coordatt import SqueezeExcite
    >>> layer = SqueezeExcite()
    >>> tuple(layer(np.ones((2, 14, 14, 96), "float32")).shape)
    (2, 14, 14, 96)
    >>> layer.count_params()
    868
    """

    def __init__(
        self,
        reduction=24,
        min_channels=1,
        activation="relu6",
        gate_activation="sigmoid",
        data_format=None,
        **kwargs,
    ):
        super().__init__(reduction, min_channels, activation, data_format, **kwargs)
        cls = self.__class__.__name__
        self.gate_activation = gate_activation
        self.gate_fn = resolve_activation(gate_activation, "gate_activation", cls)

    def build_attention(self, channels):
        self.squeezed = self.bottleneck_width(channels)
        self.conv_reduce = self.conv(self.squeezed, "conv_reduce", input_channels=channels)
        self.conv_expand = self.conv(channels, "conv_expand", input_channels=self.squeezed)

    def gate_convs(self):
        return [self.conv_expand]

    def gate_midpoints(self):
        return [float(self.gate_fn(0.0))]  # 0.5 for the sigmoid and the hard sigmoid

    def gates(self, inputs, training=False):
        squeezed = self.to_channels_last(
            ops.mean(inputs, axis=self.spatial_axes(), keepdims=True)
        )
        gate = self.gate_fn(
            self.conv_expand(self.activation_fn(self.conv_reduce(squeezed)))
        )
        return {"channel": gate}

    def call(self, inputs):
        return inputs * self.from_channels_last(self.gates(inputs)["channel"])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "gate_activation": self.gate_activation,
            }
        )
        return config

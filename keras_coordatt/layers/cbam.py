"""CBAM: channel then spatial attention, at the paper's baseline settings."""

import keras
from keras import ops

from keras_coordatt.layers.base import AttentionLayer
from keras_coordatt.layers.base import check_positive_int


@keras.saving.register_keras_serializable(package="keras_coordatt")
class CBAM(AttentionLayer):
    """Convolutional Block Attention Module.

    Reference: Woo, Park, Lee, Kweon, "CBAM: Convolutional Block Attention
    Module", ECCV 2018; settings as in the Coordinate Attention paper's CBAM
    baseline.

    Channel attention: the average- and max-pooled descriptors go through one
    shared MLP (1x1 convs ``conv_reduce``, C -> C // reduction, and
    ``conv_expand``, back to C, both with bias, ``activation`` between); the
    two results are summed and squashed by a sigmoid. Spatial attention: the
    channel-wise mean and max maps of the re-weighted input (in that order)
    are concatenated and a ``kernel_size`` x ``kernel_size`` conv
    ``conv_spatial`` (2 -> 1, with bias, "same" padding) and a sigmoid give one
    gate per position. The defaults give the paper's MobileNetV2 + CBAM count
    of 3,889,792 parameters.

    Args:
        reduction: int, channel reduction ratio. Defaults to 24.
        min_channels: int, the smallest bottleneck width. Defaults to 1.
        activation: the MLP non-linearity. Defaults to ``"relu"``.
        kernel_size: odd int, the spatial conv's size. Defaults to 7.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        **kwargs: the usual `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> from keras_coordatt import CBAM
    >>> layer = CBAM()
    >>> tuple(layer(np.ones((2, 14, 14, 96), "float32")).shape)
    (2, 14, 14, 96)
    >>> layer.count_params()
    967
    """

    def __init__(
        self,
        reduction=24,
        min_channels=1,
        activation="relu",
        kernel_size=7,
        data_format=None,
        **kwargs,
    ):
        super().__init__(reduction, min_channels, activation, data_format, **kwargs)
        cls = self.__class__.__name__
        check_positive_int(kernel_size, "kernel_size", cls)
        if kernel_size % 2 == 0:
            raise ValueError(
                f"{cls}: kernel_size must be odd so the spatial gate stays "
                f"centred on its position, got {kernel_size}."
            )
        self.kernel_size = kernel_size

    def build_attention(self, channels):
        self.squeezed = self.bottleneck_width(channels)
        self.conv_reduce = self.conv(self.squeezed, "conv_reduce", input_channels=channels)
        self.conv_expand = self.conv(channels, "conv_expand", input_channels=self.squeezed)
        self.conv_spatial = self.conv(
            1, "conv_spatial", kernel_size=self.kernel_size, input_channels=2
        )

    def shared_mlp(self, descriptor):
        return self.conv_expand(self.activation_fn(self.conv_reduce(descriptor)))

    def spatial_logits(self, mean_map, max_map):
        """``conv_spatial`` over the concatenated [mean, max] maps.

        Written as one convolution per input channel, summed: the same
        numbers, but the int8 TFLite converter forces a CONCATENATION's
        inputs onto one scale, which REDUCE_MAX cannot rescale to, and the
        concatenated form came out up to 20% of its range off in int8.
        """
        kernel = ops.cast(self.conv_spatial.kernel, mean_map.dtype)
        bias = ops.cast(self.conv_spatial.bias, mean_map.dtype)
        logits = [
            ops.conv(m, kernel[:, :, i : i + 1], padding="same", data_format="channels_last")
            for i, m in enumerate((mean_map, max_map))
        ]
        return logits[0] + logits[1] + bias

    def gate_convs(self):
        # The shared MLP's last conv runs twice (average and max): zero, it
        # gives 0 + 0 for the channel gate; conv_spatial for the spatial one.
        return [self.conv_expand, self.conv_spatial]

    def gate_midpoints(self):
        return [0.5, 0.5]  # sigmoid(0): the channel gate, then the spatial gate

    def refine(self, inputs):
        """The channel-gated input and both gates (channels-last)."""
        spatial_axes = self.spatial_axes()
        average = self.to_channels_last(ops.mean(inputs, axis=spatial_axes, keepdims=True))
        maximum = self.to_channels_last(ops.max(inputs, axis=spatial_axes, keepdims=True))
        channel_gate = ops.sigmoid(self.shared_mlp(average) + self.shared_mlp(maximum))
        refined = inputs * self.from_channels_last(channel_gate)

        mean_map = self.to_channels_last(
            ops.mean(refined, axis=self.channel_axis, keepdims=True)
        )
        max_map = self.to_channels_last(
            ops.max(refined, axis=self.channel_axis, keepdims=True)
        )
        spatial_gate = ops.sigmoid(self.spatial_logits(mean_map, max_map))
        return refined, channel_gate, spatial_gate

    def gates(self, inputs, training=False):
        _, channel_gate, spatial_gate = self.refine(inputs)
        return {"channel": channel_gate, "spatial": spatial_gate}

    def call(self, inputs):
        refined, _, spatial_gate = self.refine(inputs)
        return refined * self.from_channels_last(spatial_gate)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
            }
        )
        return config

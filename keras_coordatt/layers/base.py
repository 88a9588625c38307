"""Shared machinery of the attention layers: argument checks, activations, 1x1 convs.

Every attention layer here pools the input into a small descriptor, runs a few
convolutions on it and multiplies the input by the resulting gates. The
convolutions always run in channels-last layout, whatever the layer's
``data_format``: TensorFlow has no NCHW convolution kernels on CPU, and the
descriptors are tiny, so transposing them costs nothing measurable.
"""

import keras
from keras import ops

DATA_FORMATS = ("channels_last", "channels_first")



def hard_swish(x):
    """h-swish, x * relu6(x + 3) / 6, written so int8 TFLite keeps it on XNNPACK.

    The TFLite converter fuses the textbook forms (``x * relu6(x + 3) / 6``,
    ``ops.hard_silu``) into one HARD_SWISH op, and the XNNPACK delegate of
    ai-edge-litert 2.3 does not take int8 HARD_SWISH: every CA block of an
    int8 MobileNetV2 then left XNNPACK and split the graph into 17 delegate
    partitions (measured with benchmarks/tflite_latency.py). Scaling x by 1/6
    first is the same function, and it converts to ADD (with a fused RELU6)
    and two MULs, which XNNPACK runs.
    """
    return (x * (1.0 / 6.0)) * ops.relu6(x + 3.0)


ACTIVATIONS = {
    "hard_swish": hard_swish,
    "h_swish": hard_swish,
    "hard_silu": hard_swish,
    "relu": ops.relu,
    "relu6": ops.relu6,
    "swish": ops.silu,
    "silu": ops.silu,
    "sigmoid": ops.sigmoid,
    "hard_sigmoid": ops.hard_sigmoid,
}


def resolve_activation(name, argument, layer_name):
    """Returns the function named ``name``; a clear error names the argument."""
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ValueError(
            f"{layer_name}: unknown {argument}={name!r}. "
            f"Expected one of {sorted(ACTIVATIONS)}."
        )
    return ACTIVATIONS[name.lower()]


def check_positive_int(value, argument, layer_name):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"{layer_name}: {argument} must be a positive integer, got {value!r}."
        )
    return value


def reduced_channels(channels, reduction, min_channels):
    """Width of the bottleneck: ``max(min_channels, channels // reduction)``."""
    return max(min_channels, channels // reduction)


class AttentionLayer(keras.layers.Layer):
    """Base class: validates the arguments and the input, knows the layout.

    Every attention here has a bottleneck of ``max(min_channels, C //
    reduction)`` channels and one named non-linearity in it. Subclasses
    implement ``build_attention(channels)`` and ``call``; the output always
    has the input's shape.
    """

    def __init__(self, reduction, min_channels, activation, data_format=None, **kwargs):
        super().__init__(**kwargs)
        cls = self.__class__.__name__
        self.reduction = check_positive_int(reduction, "reduction", cls)
        self.min_channels = check_positive_int(min_channels, "min_channels", cls)
        self.activation = activation
        self.activation_fn = resolve_activation(activation, "activation", cls)
        data_format = data_format or keras.config.image_data_format()
        if data_format not in DATA_FORMATS:
            raise ValueError(
                f"{self.__class__.__name__}: unknown data_format={data_format!r}. "
                f"Expected one of {DATA_FORMATS}."
            )
        self.data_format = data_format
        self.channel_axis = -1 if data_format == "channels_last" else 1

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError(
                f"{self.__class__.__name__} '{self.name}' expects a 4D input "
                f"(batch, height, width, channels) or (batch, channels, height, "
                f"width); got shape {input_shape} of rank {len(input_shape)}."
            )
        channels = input_shape[self.channel_axis]
        if channels is None:
            raise ValueError(
                f"{self.__class__.__name__} '{self.name}' needs a known channel "
                f"dimension (axis {self.channel_axis} for {self.data_format}); "
                f"got shape {input_shape}."
            )
        self.channels = int(channels)
        self.input_spec = keras.InputSpec(
            ndim=4, axes={self.channel_axis: self.channels}
        )
        self.build_attention(self.channels)

    def build_attention(self, channels):
        raise NotImplementedError

    def bottleneck_width(self, channels):
        return reduced_channels(channels, self.reduction, self.min_channels)

    def conv(self, filters, name, kernel_size=1, input_channels=None):
        """A channels-last convolution with bias, in this layer's dtype policy."""
        layer = keras.layers.Conv2D(
            filters,
            kernel_size,
            padding="same",
            use_bias=True,
            data_format="channels_last",
            dtype=self.dtype_policy,
            name=name,
        )
        layer.build((None, None, None, input_channels))
        return layer

    def to_channels_last(self, tensor):
        if self.data_format == "channels_last":
            return tensor
        return ops.transpose(tensor, (0, 2, 3, 1))

    def from_channels_last(self, tensor):
        if self.data_format == "channels_last":
            return tensor
        return ops.transpose(tensor, (0, 3, 1, 2))

    def spatial_axes(self):
        """The input's height and width axes in this layer's data format."""
        return (1, 2) if self.data_format == "channels_last" else (2, 3)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def gate_convs(self):
        """The convolutions whose outputs become the gates' logits."""
        raise NotImplementedError

    def gate_midpoints(self):
        """The value of each gate at logit 0, in the order they multiply the input."""
        raise NotImplementedError

    def gates(self, inputs, training=False):
        """The gates this layer multiplies ``inputs`` by, channels-last, by name.

        In the order they multiply the input, which is the order of
        `gate_midpoints`, each shaped to broadcast against the (channels-last)
        input: ``{"h": (N, H, 1, C), "w": (N, 1, W, C)}`` for CA,
        ``{"channel": (N, 1, 1, C)}`` for SE. What
        `keras_coordatt.models.attention_statistics` summarises.
        """
        raise NotImplementedError

    def start_as_constant(self):
        """Zeroes the gates' last convolutions (kernel and any bias); returns the factor.

        Every gate then takes its value at logit 0 (0.5 for the sigmoid and
        the hard sigmoid) at every position and channel, so the layer
        multiplies its input by one constant, which this returns (0.25 for
        CA, 0.5 for SE, 0.25 for CBAM). A power of two: a linear layer after
        this one whose kernel is divided by it computes exactly what it
        computed without the attention (``models.start_attention_as_identity``).
        The gates still learn: the gradient reaches the zeroed kernels
        through the gates' slope at 0 (0.25 for the sigmoid), and the layers
        before them once those kernels move.
        """
        if not self.built:
            raise ValueError(
                f"{self.__class__.__name__} '{self.name}' is not built yet; call it on "
                "an input (or build the model) before start_as_constant()."
            )
        for conv in self.gate_convs():
            conv.kernel.assign(ops.zeros(conv.kernel.shape, conv.kernel.dtype))
            if conv.bias is not None:
                conv.bias.assign(ops.zeros(conv.bias.shape, conv.bias.dtype))
        factor = 1.0
        for midpoint in self.gate_midpoints():
            factor *= midpoint
        return factor

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "reduction": self.reduction,
                "min_channels": self.min_channels,
                "activation": self.activation,
                "data_format": self.data_format,
            }
        )
        return config

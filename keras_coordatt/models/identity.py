"""Attention inserted into a trained network that starts by changing nothing."""

import keras
from keras import ops

from keras_coordatt.layers.base import AttentionLayer

# Layers that are linear in their input, so a constant factor on it can move
# into their kernel.
LINEAR_CONSUMERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


def all_layers(model):
    """The model's layers and those of the models nested in it."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def attention_layers(model):
    """The attention layers of ``model`` (this package's), searched through nested models."""
    return [layer for layer in all_layers(model) if isinstance(layer, AttentionLayer)]


def start_new_attention_as_identity(model, loaded):
    """Starts the attention layers whose names are not in ``loaded`` as the identity.

    For a model whose other layers were just loaded by name (``loaded``: the
    names of the layers that got weights); returns the layers it set.
    """
    loaded = set(loaded)
    new = [layer for layer in attention_layers(model) if layer.name not in loaded]
    if new:
        start_attention_as_identity(model, new)
    return new


def start_attention_as_identity(model, layers=None):
    """Makes attention layers start as the identity of the network around them.

    Each attention layer's gates are set constant (`AttentionLayer.start_as_constant`:
    the gates' last convolutions zeroed, every gate at 0.5) and the one
    convolution that reads the layer's output has its kernel divided by the
    resulting factor (4 for CA, 2 for SE, 4 for CBAM). Dividing by a power of
    two is exact in floating point, so the network computes what it computed
    without the attention layers, bit for bit where the convolution's
    arithmetic is the same, while the gates keep their full gradient (the
    sigmoid's slope at 0) and learn from the first step. Use it after
    inserting attention into a trained network (`add_attention` and
    `convert(..., attention=...)` do, by default), so fine-tuning starts at the
    trained network's accuracy instead of below it.

    Args:
        model: a built functional model.
        layers: the attention layers to set (default: every one in ``model``).

    Returns:
        ``{layer name: factor}``.

    Raises:
        ValueError: a layer's output goes anywhere but into exactly one
            convolution or Dense layer (nothing could absorb the factor then);
            nothing is changed in that case.
    """
    layers = attention_layers(model) if layers is None else list(layers)
    plans = [(layer, reader_of(layer)) for layer in layers]
    factors = {}
    for layer, consumer in plans:
        factor = layer.start_as_constant()
        kernel = consumer.kernel
        kernel.assign(kernel / ops.cast(factor, kernel.dtype))
        factors[layer.name] = factor
    return factors


def reader_of(layer):
    consumers = [node.operation for node in layer._outbound_nodes]
    if len(consumers) != 1 or not isinstance(consumers[0], LINEAR_CONSUMERS):
        names = ", ".join(f"'{c.name}' ({type(c).__name__})" for c in consumers) or "nothing"
        raise ValueError(
            f"start_attention_as_identity: the output of '{layer.name}' goes to {names}; it "
            "must go into exactly one Conv2D, DepthwiseConv2D or Dense layer, whose kernel "
            "takes up the attention's constant factor. Leave this layer out (layers=...)."
        )
    consumer = consumers[0]
    if len(consumer._inbound_nodes) != 1:
        raise ValueError(
            f"start_attention_as_identity: '{consumer.name}', which reads '{layer.name}', is "
            "shared by several inputs; dividing its kernel would change the others too."
        )
    return consumer

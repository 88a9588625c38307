"""Attention inserted into a trained network that starts by changing nothing."""

import keras
import numpy as np
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
    factors = start_attention_as_identity(model, new) if new else {}
    return [layer for layer in new if layer.name in factors]


def start_attention_as_identity(model, layers=None):
    """Makes attention layers start as the identity of the network around them.

    Each attention layer's gates are set constant (`AttentionLayer.start_as_constant`:
    the gates' last convolutions zeroed, every gate at 0.5), so the layer
    multiplies its input by a factor (1/4 for CA, 1/2 for SE, 1/4 for CBAM),
    and the one layer that reads its output takes that factor up:

    - a Conv2D followed by a BatchNormalization (every inverted-residual
      block's projection): the BatchNorm's moving statistics. Its mean and
      variance become those of the scaled output (mean x factor, variance x
      factor^2, less epsilon's share), so inference computes what it computed
      before, and a BatchNorm normalising a batch is unchanged by the scale
      anyway. The convolution's kernel keeps its size, so it learns as fast
      as in the network without attention. (Dividing the kernel instead
      makes it 4x larger for CA; behind a BatchNorm the loss does not depend
      on a kernel's scale, so its gradient shrinks 4x while the step needed
      grows 4x: the block learned about 16x slower.) A channel whose variance
      is too small to take the factor that way (under 15 epsilon for CA)
      takes it in its gamma (`_scale_statistics`); its kernel keeps its size.
    - anything else linear (Conv2D without a BatchNorm after it,
      DepthwiseConv2D, Dense): its kernel, divided by the factor.

    Powers of two scale exactly in floating point, so the network computes
    what it computed without the attention layers (to rounding in the
    BatchNorm statistics), while the gates keep their full gradient (the
    sigmoid's slope at 0) and learn from the first step. Use it after
    inserting attention into a trained network (`add_attention` and
    `convert(..., attention=...)` do, by default), so fine-tuning starts at the
    trained network's accuracy instead of below it.

    Args:
        model: a built functional model.
        layers: the attention layers to set (default: every one in ``model``);
            those without weights (SimAM) have no gates and are left as they are.

    Returns:
        ``{layer name: factor}`` of the layers it set.

    Raises:
        ValueError: a layer's output goes anywhere but into exactly one
            convolution or Dense layer (nothing could absorb the factor then);
            nothing is changed in that case.
    """
    # A layer without weights (SimAM) has no gates to set: it stays as it is.
    layers = [layer for layer in (attention_layers(model) if layers is None else layers)
              if layer.weights]
    plans = [(layer, reader_of(layer)) for layer in layers]
    factors = {}
    for layer, reader in plans:
        factor = layer.start_as_constant()
        norm = batchnorm_after(reader)
        if norm is None:
            reader.kernel.assign(reader.kernel / ops.cast(factor, reader.kernel.dtype))
        else:
            _scale_statistics(reader, norm, factor)
        factors[layer.name] = factor
    return factors


def batchnorm_after(reader):
    """The BatchNormalization that alone normalises a Conv2D ``reader``'s output, or None."""
    if not isinstance(reader, keras.layers.Conv2D) or reader.data_format != "channels_last":
        return None
    consumers = [node.operation for node in reader._outbound_nodes]
    if len(consumers) != 1 or not isinstance(consumers[0], keras.layers.BatchNormalization):
        return None
    norm = consumers[0]
    if norm.axis not in (-1, 3) or len(norm._inbound_nodes) != 1:
        return None
    return norm


def _scale_statistics(reader, norm, factor):
    """The BatchNorm's statistics of ``reader``'s output once its input is ``factor`` x smaller.

    The output becomes ``factor * (out - bias) + bias``; inference normalises
    exactly as before when mean' = factor (mean - bias) + bias and
    variance' + eps = factor^2 (variance + eps). A channel too quiet for that
    (variance' would be negative: under 15 eps for CA) takes variance' =
    factor^2 variance, and its gamma the rest: gamma' = gamma sqrt(factor^2
    variance + eps) / (factor sqrt(variance + eps)). Its kernel keeps its size
    too, so its gradient is the network's without attention. (Networks whose
    epsilon is large beside their statistics have many such channels: in
    torchvision's MobileNetV2 read with Keras' epsilon of 1e-3, every channel
    of block_16's projection.) Without a gamma (``scale=False``) such a
    channel keeps its statistics and its kernel slice takes the factor.
    """
    dtype = norm.moving_variance.dtype
    mean = ops.convert_to_numpy(norm.moving_mean).astype("float64")
    variance = ops.convert_to_numpy(norm.moving_variance).astype("float64")
    bias = ops.convert_to_numpy(reader.bias).astype("float64") if reader.use_bias else 0.0
    eps = norm.epsilon
    scaled = factor**2 * (variance + eps) - eps
    fits = scaled >= 0
    by_gamma = ~fits if norm.scale else np.zeros_like(fits)
    by_kernel = ~fits & ~by_gamma
    norm.moving_mean.assign(np.where(by_kernel, mean, factor * (mean - bias) + bias).astype(dtype))
    norm.moving_variance.assign(
        np.where(fits, scaled, np.where(by_gamma, factor**2 * variance, variance)).astype(dtype))
    if by_gamma.any():
        gamma = ops.convert_to_numpy(norm.gamma).astype("float64")
        quiet = gamma * np.sqrt(factor**2 * variance + eps) / (factor * np.sqrt(variance + eps))
        norm.gamma.assign(np.where(by_gamma, quiet, gamma).astype(norm.gamma.dtype))
    if by_kernel.any():
        kernel = ops.convert_to_numpy(reader.kernel)
        reader.kernel.assign(np.where(by_kernel, kernel / factor, kernel).astype(kernel.dtype))


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

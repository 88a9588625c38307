"""Coordinate Attention's training step, fused by XLA on the TensorFlow backend.

Coordinate Attention spends almost nothing on arithmetic: it pools the
full-size input twice, runs three tiny 1x1 convolutions and a BatchNorm on
the (H + W)-long descriptor and multiplies the full-size input by two gates.
Run op by op, TensorFlow reads and writes the full-size tensor once per
pooling, once per gate product and again for each of their gradients, with a
full-size temporary each time.

`coord_attention_training` is the whole block as one pure function of the
input and the weights (BatchNorm with batch statistics, which it returns).
On TensorFlow, while training, the layer calls it through
``tf.function(jit_compile=True)``, so XLA compiles the forward pass and its
gradient each into a few passes over the input. BatchNorm's moving averages
are then updated by the layer, outside the compiled function, exactly as
Keras' BatchNormalization does (so also under ``MirroredStrategy``). A
synchronized BatchNorm (statistics all-reduced across replicas, which the
trainer switches on under a distribution strategy) cannot all-reduce inside a
compiled function: such a layer runs op by op.

Everywhere else the layer runs op by op: inference (``training=False``:
``predict``, evaluation and every export, so SavedModel and TFLite files carry
the same standard ops as before), the JAX backend (which compiles the whole
training step already) and PyTorch.

Whether fusing pays depends on the machine, so by default (``auto``) the
path is on only where TensorFlow sees a GPU, the memory-bound case XLA's
fusion is made for (not measured here: the project's GPU machines have no
TensorFlow). On CPUs it is off: measured with
``python benchmarks/attention_fusion.py`` (the layer alone) and
``benchmarks/train_throughput.py`` (the trainer's step), CA's work took
20-24% less time fused on an Intel Xeon with AVX-512 but the whole network
trained no faster beyond noise, and on an AMD EPYC (AVX2) the layer took
7-15% more time fused and MobileNetV2 + CA trained at 0.75x the speed it
has unfused (two runs each). SE compiled whole was
slower, so it runs op by op; CBAM compiled whole was faster on both CPUs but
is not fused yet.

Switch: ``keras_coordatt.layers.set_fused_attention(True / False / None)``
(None: auto), the context manager ``fused_attention(...)``, or
``KERAS_COORDATT_FUSED=1 / 0 / auto`` in the environment. The setting is
read when the training step is traced (at the first ``fit``), not on every
step.
"""

import contextlib
import functools
import os

import keras
from keras import ops

_SWITCH = {"1": True, "true": True, "on": True, "0": False, "false": False, "off": False,
           "auto": None}


def _from_environment():
    value = os.environ.get("KERAS_COORDATT_FUSED", "auto")
    key = value.strip().lower()
    if key not in _SWITCH:
        raise ValueError(f"KERAS_COORDATT_FUSED={value!r}: expected 1, 0 or auto (the default: "
                         "fused where TensorFlow has a GPU)")
    return _SWITCH[key]


_STATE = {"enabled": _from_environment()}


@functools.lru_cache(maxsize=None)
def _tensorflow_has_gpu():
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def fused_attention_enabled():
    """Whether CoordAttention fuses its training-time work with XLA (TensorFlow only).

    The automatic default says yes where TensorFlow has a GPU and no on CPUs.
    """
    enabled = _STATE["enabled"]
    if enabled is None:
        return keras.backend.backend() == "tensorflow" and _tensorflow_has_gpu()
    return enabled


def set_fused_attention(enabled):
    """Turns the XLA-fused training path on (True), off (False) or back to automatic (None:
    on where TensorFlow has a GPU); returns the previous setting."""
    previous = _STATE["enabled"]
    _STATE["enabled"] = None if enabled is None else bool(enabled)
    return previous


@contextlib.contextmanager
def fused_attention(enabled):
    """Context manager form of `set_fused_attention`."""
    previous = set_fused_attention(enabled)
    try:
        yield
    finally:
        set_fused_attention(previous)


def use_fused(training):
    """True where a training call should go through the XLA-compiled function."""
    return bool(training) and keras.backend.backend() == "tensorflow" and fused_attention_enabled()


@functools.lru_cache(maxsize=None)
def compiled(function):
    """``function`` as an XLA-compiled ``tf.function`` (one per function)."""
    import tensorflow as tf

    return tf.function(function, jit_compile=True, reduce_retracing=True, autograph=False)


def coord_pool(inputs, directions, channels_last):
    """Channels-last (N, H + W, 1, C): each row averaged over the width, then
    each column over the height (only the parts ``directions`` names)."""
    if channels_last:
        pooled = {"h": ops.mean(inputs, axis=2), "w": ops.mean(inputs, axis=1)}
    else:
        pooled = {
            "h": ops.transpose(ops.mean(inputs, axis=3), (0, 2, 1)),
            "w": ops.transpose(ops.mean(inputs, axis=2), (0, 2, 1)),
        }
    parts = [pooled[d] for d in directions]
    descriptor = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)
    return ops.expand_dims(descriptor, 2)


def coord_gate(inputs, logits_h, logits_w, channels_last):
    """``inputs * sigmoid(logits_h) * sigmoid(logits_w)``; the logits are
    channels-last (N, H, 1, C) and (N, W, 1, C), either may be None."""
    outputs = inputs
    if logits_h is not None:
        g_h = ops.sigmoid(logits_h)  # (N, H, 1, C)
        if not channels_last:
            g_h = ops.transpose(g_h, (0, 3, 1, 2))  # (N, C, H, 1)
        outputs = outputs * g_h
    if logits_w is not None:
        g_w = ops.sigmoid(logits_w)
        # (N, 1, W, C), or (N, C, 1, W)
        g_w = ops.transpose(g_w, (0, 2, 1, 3) if channels_last else (0, 3, 2, 1))
        outputs = outputs * g_w
    return outputs


def split_descriptor(f, inputs, directions, channels_last):
    """(f_h, f_w): the rows' and the columns' parts of the pooled descriptor
    after F1, BatchNorm and the activation; None for a direction not pooled."""
    if directions == "hw":
        height = ops.shape(inputs)[1 if channels_last else 2]
        return f[:, :height], f[:, height:]
    return (f, None) if directions == "h" else (None, f)


def _conv1x1(tensor, kernel, bias):
    kernel = ops.cast(kernel, tensor.dtype)
    return ops.matmul(tensor, kernel[0, 0]) + ops.cast(bias, tensor.dtype)


def coord_attention_training(inputs, weights, statistics, settings):
    """The whole Coordinate Attention block as a pure function.

    Args:
        inputs: the block's input.
        weights: dict with ``reduce_kernel``, ``reduce_bias``, ``gamma``,
            ``beta`` and, per direction, ``h_kernel``/``h_bias`` and
            ``w_kernel``/``w_bias``.
        statistics: None to normalise with the batch's statistics (BatchNorm
            in training), else the (moving_mean, moving_variance) to use
            (a frozen BatchNorm).
        settings: a hashable tuple (activation function, epsilon, directions,
            channels_last).

    Returns:
        (outputs, mean, variance): the block's output and the statistics it
        normalised with, in float32 (float64 under a float64 policy).
    """
    activation, epsilon, directions, channels_last = settings
    descriptor = coord_pool(inputs, directions, channels_last)
    reduced = _conv1x1(descriptor, weights["reduce_kernel"], weights["reduce_bias"])
    # BatchNorm as Keras computes it: in float32 at least, whatever the policy.
    compute_dtype = reduced.dtype
    norm_dtype = keras.backend.result_type(compute_dtype, "float32")
    reduced = ops.cast(reduced, norm_dtype)
    if statistics is None:
        mean, variance = ops.moments(reduced, axes=(0, 1, 2))
    else:
        mean, variance = (ops.cast(s, norm_dtype) for s in statistics)
    normalised = ops.batch_normalization(
        reduced,
        mean,
        variance,
        axis=-1,
        offset=ops.cast(weights["beta"], norm_dtype),
        scale=ops.cast(weights["gamma"], norm_dtype),
        epsilon=epsilon,
    )
    f = activation(ops.cast(normalised, compute_dtype))
    f_h, f_w = split_descriptor(f, inputs, directions, channels_last)
    logits_h = None if f_h is None else _conv1x1(f_h, weights["h_kernel"], weights["h_bias"])
    logits_w = None if f_w is None else _conv1x1(f_w, weights["w_kernel"], weights["w_bias"])
    return coord_gate(inputs, logits_h, logits_w, channels_last), mean, variance

"""Coordinate Attention (Hou, Zhou, Feng, CVPR 2021)."""

import keras
from keras import ops

from keras_coordatt.layers import fused
from keras_coordatt.layers.base import AttentionLayer

DIRECTIONS = ("hw", "h", "w")
NORMALIZATIONS = ("batch", "layer")


@keras.saving.register_keras_serializable(package="keras_coordatt")
class CoordAttention(AttentionLayer):
    """Coordinate Attention: channel attention that keeps positions along H and W.

    Reference: Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile
    Network Design", CVPR 2021 (arXiv:2103.02907).

    The input is averaged along its width (giving one descriptor per row) and
    along its height (one per column). Both descriptors are concatenated along
    the spatial axis and go through one shared 1x1 conv ``F1`` (C -> mip, with
    bias), BatchNorm over the concatenated tensor and h-swish. The result is
    split back into its row and column parts; 1x1 convs ``F_h`` and ``F_w``
    (mip -> C, with bias) and a sigmoid turn them into gates ``g_h`` (one value
    per row and channel) and ``g_w`` (per column and channel), and the output
    is ``x * g_h * g_w``. ``mip = max(min_channels, C // reduction)``.

    Sub-layers and weights (stable names, used by the checkpoint converter):

    | sub-layer     | paper | official PyTorch | weights                    |
    |---------------|-------|------------------|----------------------------|
    | `conv_reduce` | F1    | `conv1`          | `kernel` (1,1,C,mip), `bias` |
    | `bn`          | BN    | `bn1`            | `gamma`, `beta`, `moving_mean`, `moving_variance` |
    | `conv_h`      | F_h   | `conv2`          | `kernel` (1,1,mip,C), `bias` |
    | `conv_w`      | F_w   | `conv3`          | `kernel` (1,1,mip,C), `bias` |

    With ``directions="h"`` (or ``"w"``) only that direction is pooled and
    gated, as in the paper's ablation (Table 1); ``conv_w`` (or ``conv_h``)
    then does not exist.

    Args:
        reduction: int, the reduction ratio ``r``. Defaults to 32 (the paper).
        min_channels: int, the smallest bottleneck width. Defaults to 8.
        activation: the non-linearity after BatchNorm: ``"hard_swish"``
            (default, the paper's h-swish), ``"relu"``, ``"relu6"`` or
            ``"swish"``.
        directions: ``"hw"`` (default, both), ``"h"`` or ``"w"``.
        bn_momentum: BatchNorm momentum in Keras' convention. Defaults to 0.9,
            PyTorch's 0.1.
        bn_epsilon: BatchNorm epsilon. Defaults to 1e-5, PyTorch's default.
        normalization: what normalises ``F1``'s output: ``"batch"`` (default,
            the paper's BatchNorm) or ``"layer"``: each image's descriptor over
            its own rows, columns and channels (``GroupNormalization`` with one
            group, sub-layer ``norm``, epsilon ``bn_epsilon``). With ``"layer"``
            the gates are the same function of the image in training and at
            inference: no batch statistics, no moving averages. BatchNorm's
            gates are computed from the batch's statistics in training and the
            moving ones at inference, and in small-batch fine-tuning at a high
            learning rate the two drift apart: on the DeepForest detector at
            lr 0.02 and batch 8 the same input's gates differed by up to 0.13
            between the modes (docs/results/attention-learning.md). Not the
            paper's layer: the official checkpoint cannot be loaded into it.
            ``get_attention("ca_ln")`` builds it.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        **kwargs: the usual `keras.layers.Layer` arguments (``name``,
            ``dtype``, ``trainable``).

    Example:

    >>> import numpy as np, keras
    >>> from keras_coordatt import CoordAttention
    >>> layer = CoordAttention()
    >>> tuple(layer(np.ones((2, 14, 14, 96), "float32")).shape)
    (2, 14, 14, 96)
    >>> layer.count_params()
    2536
    """

    def __init__(
        self,
        reduction=32,
        min_channels=8,
        activation="hard_swish",
        directions="hw",
        bn_momentum=0.9,
        bn_epsilon=1e-5,
        normalization="batch",
        data_format=None,
        **kwargs,
    ):
        super().__init__(reduction, min_channels, activation, data_format, **kwargs)
        cls = self.__class__.__name__
        if directions not in DIRECTIONS:
            raise ValueError(
                f"{cls}: unknown directions={directions!r}. Expected one of "
                f"{DIRECTIONS}: 'hw' pools and gates along both height and "
                "width, 'h' or 'w' along one only."
            )
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"{cls}: unknown normalization={normalization!r}. Expected one of "
                f"{NORMALIZATIONS}: 'batch' is the paper's BatchNorm, 'layer' normalises "
                "each image's descriptor on its own (the same in training and inference)."
            )
        self.directions = directions
        self.normalization = normalization
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon

    def build_attention(self, channels):
        self.mip = self.bottleneck_width(channels)
        self.conv_reduce = self.conv(self.mip, "conv_reduce", input_channels=channels)
        if self.normalization == "batch":
            self.bn = keras.layers.BatchNormalization(
                axis=-1,
                momentum=self.bn_momentum,
                epsilon=self.bn_epsilon,
                dtype=self.dtype_policy,
                name="bn",
            )
            self.norm = self.bn
        else:
            self.bn = None  # the paper's sub-layer is absent; the converter says so
            self.norm = keras.layers.GroupNormalization(
                groups=1, axis=-1, epsilon=self.bn_epsilon, dtype=self.dtype_policy, name="norm"
            )
        self.norm.build((None, None, 1, self.mip))
        if "h" in self.directions:
            self.conv_h = self.conv(channels, "conv_h", input_channels=self.mip)
        if "w" in self.directions:
            self.conv_w = self.conv(channels, "conv_w", input_channels=self.mip)

    def call(self, inputs, training=None):
        channels_last = self.data_format == "channels_last"
        # A synchronized BatchNorm all-reduces its statistics across replicas,
        # which cannot happen inside the compiled function.
        if fused.use_fused(training) and self.bn is not None and not self.bn.synchronized:
            return self.fused_training_call(inputs, channels_last)
        logits_h, logits_w = self.gate_logits(inputs, training)
        # x * g_h * g_w, with g = sigmoid(logits).
        return fused.coord_gate(inputs, logits_h, logits_w, channels_last)

    def gate_logits(self, inputs, training=None):
        """The gates before their sigmoid: ``(N, H, 1, C)`` and ``(N, W, 1, C)``.

        Channels-last whatever the layout; None for a direction not gated.
        ``keras_coordatt.visualize.coord_attention_gates`` draws them.
        """
        channels_last = self.data_format == "channels_last"
        # Coordinate information embedding: z^h (N, H, C) averages each row
        # over the width, z^w (N, W, C) each column over the height; both
        # concatenated as (N, H + W, 1, C) for one shared F1 and one BatchNorm.
        descriptor = fused.coord_pool(inputs, self.directions, channels_last)
        f = self.activation_fn(
            self.norm(self.conv_reduce(descriptor), training=training)
        )
        f_h, f_w = fused.split_descriptor(f, inputs, self.directions, channels_last)
        logits_h = None if f_h is None else self.conv_h(f_h)  # (N, H, 1, C)
        logits_w = None if f_w is None else self.conv_w(f_w)  # (N, W, 1, C)
        return logits_h, logits_w

    def gates(self, inputs, training=False):
        logits_h, logits_w = self.gate_logits(inputs, training)
        gates = {}
        if logits_h is not None:
            gates["h"] = ops.sigmoid(logits_h)  # (N, H, 1, C)
        if logits_w is not None:
            gates["w"] = ops.transpose(ops.sigmoid(logits_w), (0, 2, 1, 3))  # (N, 1, W, C)
        return gates

    def gate_convs(self):
        return [getattr(self, f"conv_{direction}") for direction in self.directions]

    def gate_midpoints(self):
        return [0.5] * len(self.directions)  # sigmoid(0), per direction

    def fused_training_call(self, inputs, channels_last):
        """The same block, XLA-compiled as one function (see `layers.fused`)."""
        import tensorflow as tf  # this path runs on the TensorFlow backend only

        bn = self.bn
        weights = {
            "reduce_kernel": self.conv_reduce.kernel,
            "reduce_bias": self.conv_reduce.bias,
            "gamma": bn.gamma,
            "beta": bn.beta,
        }
        for direction in self.directions:
            conv = getattr(self, f"conv_{direction}")
            weights[f"{direction}_kernel"] = conv.kernel
            weights[f"{direction}_bias"] = conv.bias
        # Read values, not variables: the compiled function stays pure.
        weights = {k: tf.identity(v) for k, v in weights.items()}
        # A frozen BatchNorm (trainable=False) normalises with its moving
        # statistics even while training, as keras.layers.BatchNormalization does.
        statistics = None
        if not bn.trainable:
            statistics = (tf.identity(bn.moving_mean), tf.identity(bn.moving_variance))
        settings = (self.activation_fn, bn.epsilon, self.directions, channels_last)
        outputs, mean, variance = fused.compiled(fused.coord_attention_training)(
            inputs, weights, statistics, settings
        )
        if statistics is None:
            momentum = bn.momentum
            moving_mean = ops.cast(bn.moving_mean, mean.dtype)
            moving_variance = ops.cast(bn.moving_variance, mean.dtype)
            bn.moving_mean.assign(moving_mean * momentum + mean * (1.0 - momentum))
            bn.moving_variance.assign(moving_variance * momentum + variance * (1.0 - momentum))
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "directions": self.directions,
                "bn_momentum": self.bn_momentum,
                "bn_epsilon": self.bn_epsilon,
                "normalization": self.normalization,
            }
        )
        return config

"""MobileNetV2 with an attention block in every inverted residual block.

Reference:
- Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile Network Design",
  CVPR 2021 (arXiv:2103.02907), Figure 3 and Table 2.
- Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
  CVPR 2018.

With ``attention=None`` and ``padding="keras"`` the graph is
`keras.applications.MobileNetV2`'s, layer for layer and name for name, so its
weight files load as they are. The attention layer of block ``i`` is
``block_{i}_attention``, between the depthwise conv's ReLU6 and the linear
projection, as in the paper's Figure 3 and the official ``mbv2_ca``.

`MobileNetV2Backbone` is the feature extractor (a `Backbone`: its config is
its arguments, it exposes ``pyramid_outputs``); `MobileNetV2` is the
keras.applications-style front door that adds the classification top.
"""

import functools

import keras

from keras_coordatt.models.applications import build_application
from keras_coordatt.models.backbone import PYRAMID_LEVELS
from keras_coordatt.models.backbone import Backbone
from keras_coordatt.models.backbone import backbone_input
from keras_coordatt.models.backbone import check_image_shape
from keras_coordatt.models.backbone import dtype_policy_scope
from keras_coordatt.models.backbone import pyramid_level
from keras_coordatt.models.common import Norm
from keras_coordatt.models.common import Stage
from keras_coordatt.models.common import attend
from keras_coordatt.models.common import blocks
from keras_coordatt.models.common import check_backbone_arguments
from keras_coordatt.models.common import conv_bn
from keras_coordatt.models.common import default_name
from keras_coordatt.models.common import make_divisible
from keras_coordatt.models.common import mobile_stem
from keras_coordatt.models.imagenet import mobilenet_v2_file

# (t, c, n, s) of the MobileNetV2 paper's Table 2.
STAGES = (
    Stage(1, 16, 1, 1),
    Stage(6, 24, 2, 2),
    Stage(6, 32, 3, 2),
    Stage(6, 64, 4, 2),
    Stage(6, 96, 3, 1),
    Stage(6, 160, 3, 2),
    Stage(6, 320, 1, 1),
)
LAST_CHANNELS = 1280
OUTPUT_STRIDES = (8, 16, 32)


@keras.saving.register_keras_serializable(package="keras_coordatt")
class MobileNetV2Backbone(Backbone):
    """MobileNetV2's feature extractor with an attention block in every expanded block.

    Reference: Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile
    Network Design", CVPR 2021 (arXiv:2103.02907); Sandler et al.,
    "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018.

    The layers are keras.applications' up to ``out_relu`` (the final
    1280-channel map, the output); see `MobileNetV2` for the arguments, which
    are the same except ``image_shape`` (keras.applications' ``input_shape``,
    default ``(None, None, 3)``: any size).

    Example:

    >>> backbone = MobileNetV2Backbone(image_shape=(64, 64, 3), alpha=0.35, attention="ca")
    >>> {level: tuple(t.shape[1:]) for level, t in backbone.pyramid_outputs.items()}
    {'P2': (16, 16, 8), 'P3': (8, 8, 16), 'P4': (4, 4, 32), 'P5': (2, 2, 1280)}
    >>> MobileNetV2Backbone.from_config(backbone.get_config()).count_params() == backbone.count_params()
    True
    """

    config_fields = ("image_shape", "alpha", "attention", "attention_kwargs", "output_stride",
                     "padding", "bn_epsilon", "bn_momentum")

    def __init__(
        self,
        image_shape=(None, None, 3),
        alpha=1.0,
        attention=None,
        attention_kwargs=None,
        output_stride=32,
        padding="keras",
        bn_epsilon=1e-3,
        bn_momentum=0.999,
        input_tensor=None,
        name=None,
        dtype=None,
        **kwargs,
    ):
        owner = "MobileNetV2"
        check_backbone_arguments(owner, alpha, padding)
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(
                f"{owner}: output_stride must be one of {OUTPUT_STRIDES}, got "
                f"output_stride={output_stride!r}."
            )
        image_shape = check_image_shape(owner, image_shape)
        with dtype_policy_scope(dtype) as policy:
            image = backbone_input(owner, image_shape, input_tensor)
            features, pyramid = _features(
                image, alpha, attention, attention_kwargs or {}, output_stride,
                padding, Norm(bn_epsilon, bn_momentum),
            )
        super().__init__(
            image, features, pyramid, dtype=policy,
            name=name or default_name(f"mobilenetv2_{alpha:0.2f}_{image_shape[0]}", attention),
            **kwargs,
        )
        self.image_shape = image_shape
        self.alpha = alpha
        self.attention = attention
        self.attention_kwargs = attention_kwargs
        self.output_stride = output_stride
        self.padding = padding
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum


def MobileNetV2(
    input_shape=None,
    alpha=1.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    attention=None,
    attention_kwargs=None,
    output_stride=32,
    padding="keras",
    bn_epsilon=1e-3,
    bn_momentum=0.999,
    dropout_rate=0.0,
):
    """Instantiates MobileNetV2, optionally with Coordinate Attention or a baseline.

    Reference: Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile
    Network Design", CVPR 2021 (arXiv:2103.02907); Sandler et al.,
    "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018.

    The arguments up to ``name`` are `keras.applications.MobileNetV2`'s. At
    width 1.0, 224x224 and 1000 classes the trainable parameters are
    3,504,872 without attention, 3,888,208 with ``"se"``, 3,889,792 with
    ``"cbam"`` and 3,950,648 with ``"ca"``: the paper's Table 2.

    The model has a ``pyramid_outputs`` attribute, ``{"P2": ..., "P5": ...}``:
    the outputs of blocks 2, 5 and 12 (strides 4, 8, 16) and of ``out_relu``
    (stride 32); with ``output_stride=16`` (8) ``out_relu`` is ``P4`` (``P3``)
    and the deeper levels are absent. See `feature_pyramid`.

    Args:
        input_shape: ``(height, width, channels)``. Defaults to
            ``(224, 224, 3)`` with ``include_top`` and ``(None, None, 3)``
            without; height and width are at least 32.
        alpha: width multiplier; every layer's channels are scaled and rounded
            with `make_divisible` (to multiples of 8, at most 10% down). The
            last 1x1 conv keeps 1280 channels for ``alpha <= 1``.
        include_top: whether to add global average pooling and the
            ``predictions`` Dense layer.
        weights: None (random initialization), ``"imagenet"`` (keras.applications'
            ImageNet file for this alpha, downloaded once into ``~/.keras/models``
            and loaded by layer name; attention layers start as the identity,
            see `keras_coordatt.models.imagenet`), or the path of a weights
            file (a ``.weights.h5`` saved by ``save_weights``, or
            keras.applications' ``.h5`` for the same alpha when
            ``attention=None``).
        input_tensor: optional Keras tensor to build the model on.
        pooling: without the top, None (the 4D feature map), ``"avg"`` or
            ``"max"``.
        classes: number of classes, with ``include_top``.
        classifier_activation: the ``predictions`` activation; None for
            logits.
        name: the model name. Defaults to ``"mobilenetv2_{alpha}_{rows}"``
            plus ``"_{attention}"`` when ``attention`` names one.
        attention: the attention of every block with expansion 6: None,
            ``"se"``, ``"cbam"``, ``"ca"``, ``"ca_h"``, ``"ca_w"`` or anything
            `get_attention` accepts.
        attention_kwargs: dict of keyword arguments for every attention layer,
            for example ``{"reduction": 16}``.
        output_stride: 32, 16 or 8. Below 32, the blocks past that stride
            keep stride 1 and dilate their depthwise convs instead (the
            DeepLabV3 setting); the parameters do not change.
        padding: ``"keras"`` (keras.applications' asymmetric padding before
            stride-2 convs) or ``"pytorch"`` (symmetric padding of 1, what
            PyTorch checkpoints were trained with).
        bn_epsilon: BatchNormalization epsilon; keras.applications' 1e-3,
            PyTorch's 1e-5.
        bn_momentum: BatchNormalization momentum, Keras convention;
            keras.applications' 0.999, PyTorch's 0.9.
        dropout_rate: dropout before ``predictions``. Defaults to 0, which
            keeps keras.applications' graph; the paper's ``mbv2_ca`` was
            trained with 0.1.

    Returns:
        A `MobileNetV2Backbone` (``include_top=False, pooling=None``) or an
        `ImageClassifier` on one; both save to ``.keras`` with their
        arguments and pyramid.

    Example:

    >>> from keras_coordatt.models import MobileNetV2
    >>> model = MobileNetV2(attention="ca")
    >>> sum(int(w.numpy().size) for w in model.trainable_weights)
    3950648
    >>> model.get_layer("block_1_attention").__class__.__name__
    'CoordAttention'
    """
    make_backbone = functools.partial(
        MobileNetV2Backbone, alpha=alpha, attention=attention,
        attention_kwargs=attention_kwargs, output_stride=output_stride, padding=padding,
        bn_epsilon=bn_epsilon, bn_momentum=bn_momentum,
    )
    def imagenet(top, rows):
        if padding != "keras" or bn_epsilon != 1e-3:
            raise ValueError("MobileNetV2: weights='imagenet' are keras.applications' and need "
                             f"padding='keras', bn_epsilon=1e-3 (got {padding!r}, {bn_epsilon})")
        return mobilenet_v2_file(alpha, rows, top)

    return build_application(
        "MobileNetV2", make_backbone, input_shape, include_top, weights, input_tensor,
        pooling, classes, classifier_activation, name, dropout_rate, imagenet,
    )


def _features(image, alpha, attention, attention_kwargs, output_stride, padding, norm):
    """The graph from the image to ``out_relu``, and the feature maps by level."""
    # keras.applications' stem pads with Conv2D's own "same" (no pad layer).
    x = mobile_stem(image, alpha, norm, padding,
                    pad_name="Conv1_pad" if padding == "pytorch" else None)
    pyramid, total_stride = {}, 2
    for block_id, (stage, _, stride, dilation) in enumerate(dilated_blocks(STAGES, output_stride)):
        x = inverted_residual_block(
            x,
            expansion=stage.expansion,
            filters=make_divisible(stage.channels * alpha),
            stride=stride,
            dilation=dilation,
            block_id=block_id,
            attention=attention,
            attention_kwargs=attention_kwargs,
            norm=norm,
            padding=padding,
        )
        total_stride *= stride
        pyramid[pyramid_level(total_stride)] = x

    # The last 1x1 conv is widened above width 1 but never narrowed.
    x = conv_bn(
        x,
        make_divisible(LAST_CHANNELS * max(alpha, 1.0)),
        1,
        ("Conv_1", "Conv_1_bn", "out_relu"),
        norm,
        activation="relu6",
    )
    pyramid[pyramid_level(total_stride)] = x
    return x, {level: pyramid[level] for level in PYRAMID_LEVELS if level in pyramid}


def dilated_blocks(stages, output_stride, stem_stride=2):
    """Yields ``(stage, block_stride, stride, dilation)`` per block.

    ``block_stride`` is the block's stride in the table, ``stride`` and
    ``dilation`` what it gets for ``output_stride``. As in DeepLabV3's
    MobileNetV2: once the target stride is reached, a block that would
    downsample keeps stride 1 at the current rate, and the depthwise convs of
    every later block dilate by the strides skipped so far.
    """
    current, rate = stem_stride, 1
    for _, _, stage, block_stride in blocks(stages):
        if current * block_stride > output_stride:
            yield stage, block_stride, 1, rate
            rate *= block_stride
        else:
            current *= block_stride
            yield stage, block_stride, block_stride, rate


def inverted_residual_block(
    x,
    expansion,
    filters,
    stride,
    dilation,
    block_id,
    attention,
    attention_kwargs,
    norm,
    padding,
):
    """1x1 expand -> 3x3 depthwise -> attention -> 1x1 linear projection (+ input)."""
    in_channels = x.shape[-1]
    # keras.applications names the first block, which has no expansion,
    # "expanded_conv"; the others are "block_{id}".
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    inputs = x
    if expansion != 1:
        x = conv_bn(
            x,
            expansion * in_channels,
            1,
            (f"{prefix}expand", f"{prefix}expand_BN", f"{prefix}expand_relu"),
            norm,
            activation="relu6",
        )
    x = conv_bn(
        x,
        None,
        3,
        (f"{prefix}depthwise", f"{prefix}depthwise_BN", f"{prefix}depthwise_relu"),
        norm,
        strides=stride,
        dilation_rate=dilation,
        activation="relu6",
        padding=padding,
        pad_name=f"{prefix}pad",
    )
    # The paper puts no attention in the expansion-1 block (official mbv2_ca).
    if expansion != 1:
        x = attend(x, attention, attention_kwargs, f"{prefix}attention")
    x = conv_bn(x, filters, 1, (f"{prefix}project", f"{prefix}project_BN"), norm)
    if stride == 1 and in_channels == filters:
        x = keras.layers.Add(name=f"{prefix}add")([inputs, x])
    return x

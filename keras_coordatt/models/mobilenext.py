"""MobileNeXt (sandglass blocks) with an attention block in every sandglass block.

Reference:
- Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile Network Design",
  CVPR 2021 (arXiv:2103.02907), Figure 3 and Table 3.
- Zhou, Hou, Chen, Feng, Yan, "Rethinking Bottleneck Structure for Efficient
  Mobile Network Design", ECCV 2020 (arXiv:2007.02269).

The sandglass block of block ``i``: ``block_{i}_dw1`` (3x3 depthwise, BN,
ReLU6) -> ``block_{i}_reduce`` (1x1 linear to ``in // t`` channels, BN) ->
``block_{i}_expand`` (1x1, BN, ReLU6) -> ``block_{i}_dw2`` (3x3 depthwise
with the block's stride, BN) (+ input). As in the official code, a block
only has ``dw1`` when it keeps its width, is the first (t=2) block, or is a
stage's single stride-1 block; the others drop it, and also ``dw2`` unless
they downsample. There is no final 1x1 conv: the last block outputs 1280
channels.

Where the attention goes, and the published parameter counts
-------------------------------------------------------------
The official README places the attention "after the first depthwise 3x3"
(``attention_position="first"``, the default). Counting trainable parameters
at width 1.0, 224x224, 1000 classes (BN gamma/beta included, moving
statistics not):

| attention placement            | none      | SE        | CBAM      | CA        |
|--------------------------------|-----------|-----------|-----------|-----------|
| paper (Table 3)                | 3.5M      | 3.89M     | -         | 4.09M     |
| after dw1, 15 blocks ("first") | 3,535,416 | 3,913,557 | 3,915,042 | 3,971,626 |
| block input, all 20 blocks     | 3,535,416 | 3,966,855 | 3,968,835 | 4,035,727 |
| after dw2, 18 blocks ("last")  | 3,535,416 | 4,013,283 | 4,015,065 | 4,088,113 |
| block output, all 20 blocks    | 3,535,416 | 4,103,771 | 4,105,751 | 4,191,151 |
| reduced width, all 20 blocks   | 3,535,416 | 3,551,141 | 3,553,121 | 3,577,912 |
| after dw1 and after dw2        | 3,535,416 | 4,391,424 | 4,394,691 | 4,524,323 |
| dw1 and dw2 in every block [1] | 3,567,624 | 3,999,063 | 4,001,043 | 4,067,935 |

[1] The sandglass block as the paper's figure draws it, attention after dw1.
A smaller CA reduction after dw1 gives 4,108,336 (r=24) or 4,386,388 (r=16).

Only Coordinate Attention after the *second* depthwise conv (on the block's
output width, in the 18 blocks that keep dw2) gives the published 4.09M
(4,088,113); ``attention_position="last"`` builds it. The README's "first"
placement gives 3.97M. The published SE count (3.89M) matches no placement
at the paper's SE settings (reduction 24); it equals the MobileNetV2 + SE
figure of Table 2, as MobileNeXt's 3.5M and 300M equal MobileNetV2's.

Example:

>>> from keras_coordatt.models import MobileNeXt
>>> model = MobileNeXt(attention="ca", attention_position="last")
>>> sum(int(w.numpy().size) for w in model.trainable_weights)
4088113
"""

import functools
import math

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

# (t, c, n, s) of the official MobileNeXt: t is the sandglass reduction ratio.
STAGES = (
    Stage(2, 96, 1, 2),
    Stage(6, 144, 1, 1),
    Stage(6, 192, 3, 2),
    Stage(6, 288, 3, 2),
    Stage(6, 384, 4, 1),
    Stage(6, 576, 4, 2),
    Stage(6, 960, 3, 1),
    Stage(6, 1280, 1, 1),
)
ATTENTION_POSITIONS = ("first", "last")


@keras.saving.register_keras_serializable(package="keras_coordatt")
class MobileNeXtBackbone(Backbone):
    """MobileNeXt's feature extractor (sandglass blocks) with an attention block in each.

    Reference: Zhou et al., "Rethinking Bottleneck Structure for Efficient
    Mobile Network Design", ECCV 2020; Hou, Zhou, Feng, CVPR 2021, Table 3.

    The output is the last block's 1280-channel map; see `MobileNeXt` for the
    arguments (``image_shape`` is keras.applications' ``input_shape``,
    default ``(None, None, 3)``).

    Example:

    >>> backbone = MobileNeXtBackbone(image_shape=(64, 64, 3), alpha=0.5, attention="ca")
    >>> sorted(backbone.pyramid_outputs), backbone.feature_channels
    (['P2', 'P3', 'P4', 'P5'], 1280)
    """

    config_fields = ("image_shape", "alpha", "attention", "attention_kwargs",
                     "attention_position", "padding", "bn_epsilon", "bn_momentum")

    def __init__(
        self,
        image_shape=(None, None, 3),
        alpha=1.0,
        attention=None,
        attention_kwargs=None,
        attention_position="first",
        padding="keras",
        bn_epsilon=1e-3,
        bn_momentum=0.999,
        input_tensor=None,
        name=None,
        dtype=None,
        **kwargs,
    ):
        owner = "MobileNeXt"
        check_backbone_arguments(owner, alpha, padding)
        if attention_position not in ATTENTION_POSITIONS:
            raise ValueError(
                f"{owner}: unknown attention_position={attention_position!r}. "
                f"Expected one of {ATTENTION_POSITIONS}."
            )
        image_shape = check_image_shape(owner, image_shape)
        with dtype_policy_scope(dtype) as policy:
            image = backbone_input(owner, image_shape, input_tensor)
            features, pyramid = _features(
                image, alpha, attention, attention_kwargs or {}, attention_position, padding,
                Norm(bn_epsilon, bn_momentum),
            )
        super().__init__(
            image, features, pyramid, dtype=policy,
            name=name or default_name(f"mobilenext_{alpha:0.2f}_{image_shape[0]}", attention),
            **kwargs,
        )
        self.image_shape = image_shape
        self.alpha = alpha
        self.attention = attention
        self.attention_kwargs = attention_kwargs
        self.attention_position = attention_position
        self.padding = padding
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum


def MobileNeXt(
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
    attention_position="first",
    padding="keras",
    bn_epsilon=1e-3,
    bn_momentum=0.999,
    dropout_rate=0.2,
):
    """Instantiates MobileNeXt, optionally with Coordinate Attention or a baseline.

    Reference: Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile
    Network Design", CVPR 2021 (arXiv:2103.02907); Zhou et al., "Rethinking
    Bottleneck Structure for Efficient Mobile Network Design", ECCV 2020.

    At width 1.0, 224x224 and 1000 classes the model has 3,535,416 trainable
    parameters (the paper's 3.5M); see the module docstring for the
    attention placements and their counts. The model has a
    ``pyramid_outputs`` attribute: the last block at strides 4, 8, 16 and the
    final 1280-channel map, see `feature_pyramid`.

    Args:
        input_shape: ``(height, width, channels)``. Defaults to
            ``(224, 224, 3)`` with ``include_top`` and ``(None, None, 3)``
            without; height and width are at least 32.
        alpha: width multiplier, channels rounded with `make_divisible`; the
            last block keeps 1280 channels for ``alpha <= 1``.
        include_top: whether to add pooling, dropout and ``predictions``.
        weights: None or the path of a ``.weights.h5`` file (no ImageNet
            downloads).
        input_tensor: optional Keras tensor to build the model on.
        pooling: without the top, None, ``"avg"`` or ``"max"``.
        classes: number of classes, with ``include_top``.
        classifier_activation: the ``predictions`` activation; None for
            logits.
        name: the model name. Defaults to ``"mobilenext_{alpha}_{rows}"``
            plus ``"_{attention}"`` when ``attention`` names one.
        attention: None, ``"se"``, ``"cbam"``, ``"ca"`` or anything
            `get_attention` accepts; one layer ``block_{i}_attention`` per
            block that has the depthwise conv of ``attention_position``.
        attention_kwargs: dict of keyword arguments for every attention layer.
        attention_position: ``"first"`` (after the first depthwise conv and
            its ReLU6, the official README's advice) or ``"last"`` (after the
            second depthwise conv's BN, which reproduces the published
            4.09M parameters with CA).
        padding: ``"keras"`` (asymmetric padding before stride-2 convs, as
            keras.applications) or ``"pytorch"`` (symmetric, as the official
            PyTorch code).
        bn_epsilon: BatchNormalization epsilon; PyTorch's is 1e-5.
        bn_momentum: BatchNormalization momentum, Keras convention; PyTorch's
            is 0.9.
        dropout_rate: dropout before ``predictions``; the official 0.2.

    Returns:
        A `MobileNeXtBackbone` (``include_top=False, pooling=None``) or an
        `ImageClassifier` on one.

    Example:

    >>> from keras_coordatt.models import MobileNeXt
    >>> model = MobileNeXt(input_shape=(96, 96, 3), alpha=0.5, attention="ca")
    >>> model.output.shape
    (None, 1000)
    """
    make_backbone = functools.partial(
        MobileNeXtBackbone, alpha=alpha, attention=attention,
        attention_kwargs=attention_kwargs, attention_position=attention_position,
        padding=padding, bn_epsilon=bn_epsilon, bn_momentum=bn_momentum,
    )
    return build_application(
        "MobileNeXt", make_backbone, input_shape, include_top, weights, input_tensor,
        pooling, classes, classifier_activation, name, dropout_rate,
    )


def _features(image, alpha, attention, attention_kwargs, attention_position, padding, norm):
    """The graph from the image to the last block, and the feature maps by level."""
    x = mobile_stem(image, alpha, norm, padding, pad_name="Conv1_pad")
    pyramid, total_stride = {}, 2
    for block_id, (stage_id, _, stage, stride) in enumerate(blocks(STAGES)):
        # Like MobileNetV2's last 1x1 conv, the last block is not narrowed.
        width = max(alpha, 1.0) if stage_id == len(STAGES) - 1 else alpha
        x = sandglass_block(
            x,
            reduction=stage.expansion,
            filters=make_divisible(stage.channels * width),
            stride=stride,
            single_block_stage=stage.repeats == 1 and stage.stride == 1,
            block_id=block_id,
            attention=attention,
            attention_kwargs=attention_kwargs,
            attention_position=attention_position,
            norm=norm,
            padding=padding,
        )
        total_stride *= stride
        pyramid[pyramid_level(total_stride)] = x
    return x, {level: pyramid[level] for level in PYRAMID_LEVELS}


def sandglass_block(
    x,
    reduction,
    filters,
    stride,
    single_block_stage,
    block_id,
    attention,
    attention_kwargs,
    attention_position,
    norm,
    padding,
):
    """3x3 depthwise -> 1x1 linear reduce -> 1x1 expand -> 3x3 depthwise (+ input)."""
    in_channels = x.shape[-1]
    prefix = f"block_{block_id}_"
    hidden = in_channels // reduction
    if hidden < filters / 6:
        hidden = make_divisible(math.ceil(filters / 6), 16)
    # The official block keeps both depthwise convs only where the identity
    # mapping is wide (in == out), in the first block (t=2) and in the single
    # block of a stride-1 stage; elsewhere only a strided dw2 remains.
    has_dw1 = reduction == 2 or in_channels == filters or single_block_stage
    has_dw2 = has_dw1 or stride == 2

    inputs = x
    if has_dw1:
        x = conv_bn(
            x,
            None,
            3,
            (f"{prefix}dw1", f"{prefix}dw1_BN", f"{prefix}dw1_relu"),
            norm,
            activation="relu6",
        )
        if attention_position == "first":
            x = attend(x, attention, attention_kwargs, f"{prefix}attention")
    x = conv_bn(x, hidden, 1, (f"{prefix}reduce", f"{prefix}reduce_BN"), norm)
    x = conv_bn(
        x,
        filters,
        1,
        (f"{prefix}expand", f"{prefix}expand_BN", f"{prefix}expand_relu"),
        norm,
        activation="relu6",
    )
    if has_dw2:
        x = conv_bn(
            x,
            None,
            3,
            (f"{prefix}dw2", f"{prefix}dw2_BN"),
            norm,
            strides=stride,
            padding=padding,
            pad_name=f"{prefix}pad",
        )
        if attention_position == "last":
            x = attend(x, attention, attention_kwargs, f"{prefix}attention")
    if stride == 1 and in_channels == filters:
        x = keras.layers.Add(name=f"{prefix}add")([inputs, x])
    return x

"""EfficientNet-B0 whose squeeze-and-excitation can be swapped for another attention.

Reference:
- Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile Network Design",
  CVPR 2021 (arXiv:2103.02907), Table 5: the SE blocks of EfficientNet-B0
  replaced by Coordinate Attention.
- Tan, Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
  Networks", ICML 2019.

The graph and layer names are `keras.applications.EfficientNetB0`'s
(``stem_conv``, ``block2a_expand_conv``, ``block2a_dwconv``,
``block2a_se_reduce``, ``block2a_project_conv``, ``top_conv``, ...), including
its in-model input scaling (``rescaling``, ``normalization``: the model takes
pixels in [0, 255]). ``attention="efficientnet_se"`` (the default) keeps
EfficientNet's own SE, so the model is keras.applications' B0; any other
attention, the paper's ``"se"`` baseline included, becomes
``block{n}{letter}_attention`` at the same place, after the depthwise conv's
activation.
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
from keras_coordatt.models.imagenet import efficientnet_b0_file
from keras_coordatt.preprocessing import RAW_PIXEL_RANGE
from keras_coordatt.preprocessing import Preprocessing

# (expansion, channels, repeats, stride, kernel_size) of EfficientNet-B0.
STAGES = (
    Stage(1, 16, 1, 1, 3),
    Stage(6, 24, 2, 2, 3),
    Stage(6, 40, 2, 2, 5),
    Stage(6, 80, 3, 2, 3),
    Stage(6, 112, 3, 1, 5),
    Stage(6, 192, 4, 2, 5),
    Stage(6, 320, 1, 1, 3),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
SE_RATIO = 0.25
ACTIVATION = "swish"
# The name of EfficientNet's own squeeze-and-excitation, built from plain
# layers as keras.applications builds it; "se" is the paper's SE baseline.
OWN_SE = "efficientnet_se"

# keras.applications' initializers: He-normal-like for convs, a small uniform
# range for the classifier.
CONV_KERNEL_INITIALIZER = keras.initializers.VarianceScaling(
    scale=2.0, mode="fan_out", distribution="truncated_normal"
)
DENSE_KERNEL_INITIALIZER = keras.initializers.VarianceScaling(
    scale=1.0 / 3.0, mode="fan_out", distribution="uniform"
)


@keras.saving.register_keras_serializable(package="keras_coordatt")
class EfficientNetB0Backbone(Backbone):
    """EfficientNet-B0's feature extractor, with its own SE, another attention, or none.

    Reference: Tan, Le, "EfficientNet: Rethinking Model Scaling for
    Convolutional Neural Networks", ICML 2019; Hou, Zhou, Feng, CVPR 2021,
    Table 5.

    The layers are keras.applications' up to ``top_activation`` (the final
    1280-channel map). The network takes pixels in [0, 255] and scales them
    itself (``preprocessing.pixel_range`` is (0, 255)). See `EfficientNetB0`
    for the arguments (``image_shape`` is keras.applications'
    ``input_shape``, default ``(None, None, 3)``).

    Example:

    >>> backbone = EfficientNetB0Backbone(image_shape=(64, 64, 3), attention="ca")
    >>> backbone.preprocessing.pixel_range, backbone.get_layer("block2a_attention").__class__.__name__
    ((0.0, 255.0), 'CoordAttention')
    """

    preprocessing = Preprocessing(RAW_PIXEL_RANGE)
    classifier_kernel_initializer = DENSE_KERNEL_INITIALIZER
    own_attention = OWN_SE
    config_fields = ("image_shape", "alpha", "attention", "attention_kwargs", "padding",
                     "bn_epsilon", "bn_momentum", "drop_connect_rate")

    def __init__(
        self,
        image_shape=(None, None, 3),
        alpha=1.0,
        attention=OWN_SE,
        attention_kwargs=None,
        padding="keras",
        bn_epsilon=1e-3,
        bn_momentum=0.99,
        drop_connect_rate=0.2,
        input_tensor=None,
        name=None,
        dtype=None,
        **kwargs,
    ):
        owner = "EfficientNetB0"
        check_backbone_arguments(owner, alpha, padding)
        image_shape = check_image_shape(owner, image_shape)
        with dtype_policy_scope(dtype) as policy:
            image = backbone_input(owner, image_shape, input_tensor)
            features, pyramid = _features(
                image, alpha, attention, attention_kwargs or {}, padding,
                Norm(bn_epsilon, bn_momentum), drop_connect_rate,
            )
        super().__init__(
            image, features, pyramid, dtype=policy,
            name=name or default_name("efficientnetb0", attention, own=OWN_SE),
            **kwargs,
        )
        self.image_shape = image_shape
        self.alpha = alpha
        self.attention = attention
        self.attention_kwargs = attention_kwargs
        self.padding = padding
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum
        self.drop_connect_rate = drop_connect_rate


def EfficientNetB0(
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
    attention=OWN_SE,
    attention_kwargs=None,
    padding="keras",
    bn_epsilon=1e-3,
    bn_momentum=0.99,
    dropout_rate=0.2,
    drop_connect_rate=0.2,
):
    """Instantiates EfficientNet-B0 with its SE, another attention, or none.

    Reference: Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile
    Network Design", CVPR 2021 (arXiv:2103.02907), Table 5; Tan, Le,
    "EfficientNet: Rethinking Model Scaling for Convolutional Neural
    Networks", ICML 2019.

    With ``attention="efficientnet_se"`` (the default) the model is
    `keras.applications.EfficientNetB0` (5,288,548 trainable parameters at
    1000 classes) and its weights copy over layer by layer. The model takes
    pixels in [0, 255] and scales them itself, as keras.applications does.
    It has a ``pyramid_outputs`` attribute: blocks ``2b``, ``3b``, ``5c``
    (strides 4, 8, 16) and ``top_activation`` (stride 32), see
    `feature_pyramid`.

    Args:
        input_shape: ``(height, width, channels)``. Defaults to
            ``(224, 224, 3)`` with ``include_top`` and ``(None, None, 3)``
            without; height and width are at least 32.
        alpha: width multiplier (EfficientNet's width coefficient), channels
            rounded with `make_divisible`. B0 is 1.0.
        include_top: whether to add pooling, dropout and ``predictions``.
        weights: None, ``"imagenet"`` (keras.applications' EfficientNetB0
            file, downloaded once and loaded by layer name; another attention
            than its own SE starts as the identity, without SE's work) or the
            path of a weights file.
        input_tensor: optional Keras tensor to build the model on.
        pooling: without the top, None, ``"avg"`` or ``"max"``.
        classes: number of classes, with ``include_top``.
        classifier_activation: the ``predictions`` activation; None for
            logits.
        name: the model name. Defaults to ``"efficientnetb0"``, plus
            ``"_{attention}"`` (``"_none"``, ``"_ca"``, ``"_se"``, ...) unless
            the attention is EfficientNet's own.
        attention: ``"efficientnet_se"`` (EfficientNet's own
            squeeze-and-excitation: the squeeze width is a quarter of the
            block's *input* channels, swish, sigmoid), None (no attention),
            or anything `get_attention` accepts, such as ``"ca"`` (the
            paper's Table 5) or ``"se"`` (the paper's SE baseline,
            `SqueezeExcite`, as in every other model here).
        attention_kwargs: dict of keyword arguments for every attention layer
            made by `get_attention` (not used by ``"efficientnet_se"``).
        padding: ``"keras"`` or ``"pytorch"``, the padding before stride-2
            convs (see `MobileNetV2`).
        bn_epsilon: BatchNormalization epsilon.
        bn_momentum: BatchNormalization momentum, Keras convention.
        dropout_rate: dropout before ``predictions``.
        drop_connect_rate: the largest stochastic-depth rate on the residual
            branches, growing linearly from 0 over the blocks.

    Returns:
        An `EfficientNetB0Backbone` (``include_top=False, pooling=None``) or
        an `ImageClassifier` on one.

    Example:

    >>> from keras_coordatt.models import EfficientNetB0
    >>> model = EfficientNetB0(input_shape=(64, 64, 3), attention="ca")
    >>> model.get_layer("block2a_attention").__class__.__name__
    'CoordAttention'
    """
    make_backbone = functools.partial(
        EfficientNetB0Backbone, alpha=alpha, attention=attention,
        attention_kwargs=attention_kwargs, padding=padding, bn_epsilon=bn_epsilon,
        bn_momentum=bn_momentum, drop_connect_rate=drop_connect_rate,
    )
    def imagenet(top, rows):
        if alpha != 1.0 or padding != "keras" or bn_epsilon != 1e-3:
            raise ValueError("EfficientNetB0: weights='imagenet' are keras.applications' and need "
                             "alpha=1.0, padding='keras', bn_epsilon=1e-3")
        return efficientnet_b0_file(top)

    return build_application(
        "EfficientNetB0", make_backbone, input_shape, include_top, weights, input_tensor,
        pooling, classes, classifier_activation, name, dropout_rate, imagenet,
    )


def _features(image, alpha, attention, attention_kwargs, padding, norm, drop_connect_rate):
    """The graph from the image to ``top_activation``, and the feature maps by level."""
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescaling")(image)
    x = keras.layers.Normalization(axis=-1, name="normalization")(x)
    x = conv_bn(
        x,
        make_divisible(STEM_CHANNELS * alpha),
        3,
        ("stem_conv", "stem_bn", "stem_activation"),
        norm,
        strides=2,
        activation=ACTIVATION,
        padding=padding,
        pad_name="stem_conv_pad",
        kernel_initializer=CONV_KERNEL_INITIALIZER,
    )
    block_list = list(blocks(STAGES))
    pyramid, total_stride = {}, 2
    for index, (stage_id, repeat, stage, stride) in enumerate(block_list):
        x = mobile_inverted_block(
            x,
            stage=stage,
            filters=make_divisible(stage.channels * alpha),
            stride=stride,
            drop_rate=drop_connect_rate * index / len(block_list),
            prefix=f"block{stage_id + 1}{chr(ord('a') + repeat)}_",
            attention=attention,
            attention_kwargs=attention_kwargs,
            norm=norm,
            padding=padding,
        )
        total_stride *= stride
        pyramid[pyramid_level(total_stride)] = x
    x = conv_bn(
        x,
        make_divisible(LAST_CHANNELS * alpha),
        1,
        ("top_conv", "top_bn", "top_activation"),
        norm,
        activation=ACTIVATION,
        kernel_initializer=CONV_KERNEL_INITIALIZER,
    )
    pyramid[pyramid_level(total_stride)] = x
    return x, {level: pyramid[level] for level in PYRAMID_LEVELS}


def mobile_inverted_block(
    x,
    stage,
    filters,
    stride,
    drop_rate,
    prefix,
    attention,
    attention_kwargs,
    norm,
    padding,
):
    """MBConv: 1x1 expand -> kxk depthwise -> attention -> 1x1 projection (+ input)."""
    filters_in = x.shape[-1]
    expanded = filters_in * stage.expansion
    inputs = x
    if stage.expansion != 1:
        x = conv_bn(
            x,
            expanded,
            1,
            (f"{prefix}expand_conv", f"{prefix}expand_bn", f"{prefix}expand_activation"),
            norm,
            activation=ACTIVATION,
            kernel_initializer=CONV_KERNEL_INITIALIZER,
        )
    x = conv_bn(
        x,
        None,
        stage.kernel_size,
        (f"{prefix}dwconv", f"{prefix}bn", f"{prefix}activation"),
        norm,
        strides=stride,
        activation=ACTIVATION,
        padding=padding,
        pad_name=f"{prefix}dwconv_pad",
        kernel_initializer=CONV_KERNEL_INITIALIZER,
    )
    if isinstance(attention, str) and attention.lower() == OWN_SE:
        x = efficientnet_squeeze_excite(x, filters_in, prefix)
    else:
        x = attend(x, attention, attention_kwargs, f"{prefix}attention")
    x = conv_bn(
        x,
        filters,
        1,
        (f"{prefix}project_conv", f"{prefix}project_bn"),
        norm,
        kernel_initializer=CONV_KERNEL_INITIALIZER,
    )
    if stride == 1 and filters_in == filters:
        if drop_rate > 0:
            # Stochastic depth: drop the whole residual branch per example.
            x = keras.layers.Dropout(
                drop_rate, noise_shape=(None, 1, 1, 1), name=f"{prefix}drop"
            )(x)
        x = keras.layers.Add(name=f"{prefix}add")([x, inputs])
    return x


def efficientnet_squeeze_excite(x, filters_in, prefix):
    """EfficientNet's SE, from plain layers named as keras.applications names them.

    Unlike the paper's SE baseline (`SqueezeExcite`, reduction 24 of the
    expanded width), the squeeze width is a quarter of the block's input
    channels and both activations are EfficientNet's (swish, sigmoid).
    """
    channels = x.shape[-1]
    squeezed = max(1, int(filters_in * SE_RATIO))
    se = keras.layers.GlobalAveragePooling2D(name=f"{prefix}se_squeeze")(x)
    se = keras.layers.Reshape((1, 1, channels), name=f"{prefix}se_reshape")(se)
    se = keras.layers.Conv2D(
        squeezed,
        1,
        padding="same",
        activation=ACTIVATION,
        kernel_initializer=CONV_KERNEL_INITIALIZER,
        name=f"{prefix}se_reduce",
    )(se)
    se = keras.layers.Conv2D(
        channels,
        1,
        padding="same",
        activation="sigmoid",
        kernel_initializer=CONV_KERNEL_INITIALIZER,
        name=f"{prefix}se_expand",
    )(se)
    return keras.layers.Multiply(name=f"{prefix}se_excite")([x, se])

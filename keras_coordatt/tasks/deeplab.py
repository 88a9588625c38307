"""DeepLabV3 as the paper uses it for segmentation, on any backbone of the zoo.

Atrous spatial pyramid pooling (ASPP; Chen et al., *Rethinking Atrous
Convolution for Semantic Image Segmentation*, 2017) on the backbone's last
feature map: a 1x1 branch, three 3x3 branches at dilation rates (6, 12, 18)
with output stride 16 or (12, 24, 36) with 8, and an image-pooling branch,
256 channels each, concatenated and projected to 256, then a 1x1 classifier
and bilinear upsampling to the input. The paper makes the 3x3 convolutions
depthwise-separable (``separable=True``, the default); ``separable=False``
gives the original regular convolutions.
"""

import json

import keras

from keras_coordatt.models.common import Norm
from keras_coordatt.models.common import conv_bn

RATES = {16: (6, 12, 18), 8: (12, 24, 36)}
CHANNELS = 256


def DeepLabV3(backbone, num_classes, separable=True, rates=None, feature=None,
              dropout_rate=0.1, bn_momentum=0.99, name=None):
    """A DeepLabV3 segmenter: ``(B, H, W, 3)`` image -> ``(B, H, W, num_classes)`` logits.

    Args:
        backbone: a backbone or classifier of this package (its output stride
            16 or 8 for the paper's setting), with a fixed input size.
        num_classes: classes, background included (21 for Pascal VOC).
        separable: depthwise-separable 3x3 ASPP convolutions (the paper's).
        rates: the three dilation rates; default by the output stride.
        feature: the name of the backbone layer ASPP reads; default its
            final feature map.
        dropout_rate: dropout after the projection.
        bn_momentum: the head's BatchNorm momentum (Keras convention); the
            trainer passes its ``bn_momentum`` (0.9), since at 0.99 short runs
            evaluate on moving statistics still near their initial values.
        name: the model's name.
    """
    height, width = backbone.input.shape[1:3]
    if height is None or width is None:
        raise ValueError("DeepLabV3: the backbone needs a fixed input size (the image-pooling "
                         f"branch is broadcast back to the feature map), got "
                         f"{tuple(backbone.input.shape[1:])}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"DeepLabV3: num_classes must be a positive int, got {num_classes!r}")
    pyramid = getattr(backbone, "pyramid_outputs", None) or {}
    if feature is None:
        if not pyramid:
            raise ValueError(f"DeepLabV3: backbone '{backbone.name}' has no pyramid_outputs")
        x = pyramid[max(pyramid)]
    else:
        x = backbone.get_layer(feature).output
    stride = height // int(x.shape[1])
    if rates is None:
        if stride not in RATES:
            raise ValueError(f"DeepLabV3: the feature map is at output stride {stride}; the "
                             f"paper's rates exist for {sorted(RATES)}: pass rates=")
        rates = RATES[stride]
    norm = Norm(1e-3, bn_momentum)
    branches = [_conv_bn_relu(x, 1, "aspp_1x1", norm)]
    for rate in rates:
        prefix = f"aspp_rate{rate}"
        if separable:
            y = conv_bn(x, None, 3, (f"{prefix}_depthwise", f"{prefix}_depthwise_bn",
                                     f"{prefix}_depthwise_relu"),
                        norm, dilation_rate=rate, activation="relu")
            branches.append(_conv_bn_relu(y, 1, prefix, norm))
        else:
            branches.append(_conv_bn_relu(x, 3, prefix, norm, dilation_rate=rate))
    pooled = keras.layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pool")(x)
    pooled = _conv_bn_relu(pooled, 1, "aspp_pool_conv", norm)
    branches.append(keras.layers.UpSampling2D(tuple(int(s) for s in x.shape[1:3]),
                                              name="aspp_pool_broadcast")(pooled))
    y = keras.layers.Concatenate(name="aspp_concat")(branches)
    y = _conv_bn_relu(y, 1, "aspp_project", norm)
    if dropout_rate:
        y = keras.layers.Dropout(dropout_rate, name="aspp_dropout")(y)
    y = keras.layers.Conv2D(num_classes, 1, name="segmentation_logits")(y)
    y = keras.layers.Resizing(int(height), int(width), interpolation="bilinear",
                              name="upsample_to_input")(y)
    model = keras.Model(backbone.input, y, name=name or f"deeplabv3_{backbone.name}")
    model.backbone_config = json.dumps(keras.saving.serialize_keras_object(backbone))
    return model


def _conv_bn_relu(x, kernel_size, prefix, norm, dilation_rate=1):
    return conv_bn(x, CHANNELS, kernel_size, (f"{prefix}_conv", f"{prefix}_bn", f"{prefix}_relu"),
                   norm, dilation_rate=dilation_rate, activation="relu")

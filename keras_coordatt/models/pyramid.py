"""Multi-scale feature maps for dense heads (detection, segmentation), keras-hub style.

Every backbone here (and every classifier on one) has a ``pyramid_outputs``
attribute, ``{"P2": ..., "P3": ..., "P4": ..., "P5": ...}``: level ``Pk`` is
the last feature map whose true stride is ``2**k``, and the final feature map
(the one pooling sees) is the deepest level. With MobileNetV2's
``output_stride=16`` (``8``) the final map stays at stride 16 (8), so it is
``P4`` (``P3``) and the deeper levels are absent, as DeepLabV3 needs.

The backbones are configured by their arguments, so a model reloaded from a
``.keras`` file has its pyramid again.
"""

import keras


def feature_pyramid(model):
    """Returns a model from ``model``'s input to its feature maps by level.

    Reference: Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile
    Network Design", CVPR 2021, Section 4.3 (detection and segmentation
    heads on MobileNetV2 + CA features).

    Args:
        model: a `Backbone` or an `ImageClassifier` (what `MobileNetV2`,
            `MobileNeXt` and `EfficientNetB0` return), or anything with a
            ``pyramid_outputs`` dict of its own tensors.

    Returns:
        A `keras.Model` sharing ``model``'s layers and weights whose output is
        the dict ``{"P2": ..., "P5": ...}``.

    Example:

    >>> from keras_coordatt.models import MobileNetV2, feature_pyramid
    >>> backbone = MobileNetV2(input_shape=(64, 64, 3), include_top=False, attention="ca")
    >>> for level, feature_map in feature_pyramid(backbone).output.items():
    ...     print(level, tuple(feature_map.shape))
    P2 (None, 16, 16, 24)
    P3 (None, 8, 8, 32)
    P4 (None, 4, 4, 96)
    P5 (None, 2, 2, 1280)
    """
    outputs = getattr(model, "pyramid_outputs", None)
    if not outputs:
        raise ValueError(
            f"feature_pyramid: model '{model.name}' has no pyramid_outputs. "
            "Build it with MobileNetV2, MobileNeXt or EfficientNetB0 (or their "
            "Backbone classes)."
        )
    return keras.Model(model.input, dict(outputs), name=f"{model.name}_pyramid")

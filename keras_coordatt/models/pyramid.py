"""Multi-scale feature maps for dense heads (detection, segmentation), keras-hub style.

Every builder here returns a model with a ``pyramid_outputs`` attribute,
``{"P2": ..., "P3": ..., "P4": ..., "P5": ...}``: level ``Pk`` is the output
of the last block at stride ``2**k`` of the network's table, and ``P5`` the
final feature map (the one pooling sees). With MobileNetV2's
``output_stride=16`` or ``8`` the levels keep their blocks but stop
shrinking at that stride, as DeepLabV3 needs.

The attribute lives on the Python object: a model reloaded from a ``.keras``
file no longer has it; rebuild it with its builder and load its weights.
"""

import keras


def feature_pyramid(model):
    """Returns a model from ``model``'s input to its feature maps by level.

    Reference: Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile
    Network Design", CVPR 2021, Section 4.3 (detection and segmentation
    heads on MobileNetV2 + CA features).

    Args:
        model: a model from `MobileNetV2`, `MobileNeXt` or `EfficientNetB0`
            (anything with a ``pyramid_outputs`` dict of its own tensors).

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
            "Build it with MobileNetV2, MobileNeXt or EfficientNetB0; a model "
            "reloaded from a .keras file loses the attribute, so rebuild it "
            "with its builder and load its weights."
        )
    return keras.Model(model.input, dict(outputs), name=f"{model.name}_pyramid")

"""The model builders by name, as configs and command lines spell them."""

from keras_coordatt.models.efficientnet import EfficientNetB0
from keras_coordatt.models.mobilenet_v2 import MobileNetV2
from keras_coordatt.models.mobilenext import MobileNeXt

BUILDERS = {
    "mobilenet_v2": MobileNetV2,
    "mobilenext": MobileNeXt,
    "efficientnet_b0": EfficientNetB0,
}


def build_model(name, alpha=1.0, **kwargs):
    """Builds the network called ``name`` (a key of `BUILDERS`).

    ``alpha`` goes to the builders that have a width multiplier; EfficientNet-B0
    has one width and does not take it. Other keyword arguments go to the
    builder as they are.

    Example:

    >>> build_model("mobilenet_v2", alpha=0.5, input_shape=(96, 96, 3), classes=4).name
    'mobilenetv2_0.50_96'
    """
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(BUILDERS)}")
    if name != "efficientnet_b0":
        kwargs["alpha"] = alpha
    return BUILDERS[name](**kwargs)

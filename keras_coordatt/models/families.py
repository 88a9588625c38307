"""The model families by name: the one table the CLI, the trainer and the exporter read."""

import dataclasses
from typing import Callable

from keras_coordatt.layers import attention_names
from keras_coordatt.models.efficientnet import EfficientNetB0
from keras_coordatt.models.efficientnet import EfficientNetB0Backbone
from keras_coordatt.models.mobilenet_v2 import MobileNetV2
from keras_coordatt.models.mobilenet_v2 import MobileNetV2Backbone
from keras_coordatt.models.mobilenext import MobileNeXt
from keras_coordatt.models.mobilenext import MobileNeXtBackbone


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """One architecture: how configs spell it, how tables print it, how to build it.

    Attributes:
        key: the name in configs and on command lines (``"mobilenet_v2"``).
        display_name: the name in tables (``"MobileNetV2"``).
        builder: the keras.applications-style function.
        backbone: the `Backbone` class; it knows the preprocessing and the
            architecture's own attention, if any.
        has_width: whether the builder takes a width multiplier ``alpha``.
    """

    key: str
    display_name: str
    builder: Callable
    backbone: type
    has_width: bool = True

    @property
    def preprocessing(self):
        """The `Preprocessing` the family's networks expect."""
        return self.backbone.preprocessing

    @property
    def own_attention(self):
        """The attention that is part of the architecture (EfficientNet's SE), or None."""
        return self.backbone.own_attention

    def attentions(self):
        """Every name ``attention=`` takes for this family."""
        own = (self.own_attention,) if self.own_attention else ()
        return ("none", *attention_names(), *own)

    def check_attention(self, attention):
        """A ValueError naming an attention name this family cannot build."""
        if attention is None or not isinstance(attention, str):
            return
        if attention.lower() not in self.attentions():
            raise ValueError(
                f"attention={attention!r} is not known for {self.key}; expected one of "
                f"{', '.join(self.attentions())}"
            )


FAMILIES = {
    family.key: family
    for family in (
        ModelFamily("mobilenet_v2", "MobileNetV2", MobileNetV2, MobileNetV2Backbone),
        ModelFamily("mobilenext", "MobileNeXt", MobileNeXt, MobileNeXtBackbone),
        ModelFamily("efficientnet_b0", "EfficientNet-B0", EfficientNetB0, EfficientNetB0Backbone,
                    has_width=False),
    )
}


def get_family(key):
    """The `ModelFamily` called ``key``; a ValueError listing the families otherwise."""
    if key not in FAMILIES:
        raise ValueError(f"unknown model {key!r}; expected one of {', '.join(FAMILIES)}")
    return FAMILIES[key]


def build_model(name, alpha=1.0, **kwargs):
    """Builds the network called ``name`` (a key of `FAMILIES`).

    ``alpha`` goes to the builders that have a width multiplier; EfficientNet-B0
    has one width and does not take it. Other keyword arguments go to the
    builder as they are.

    Example:

    >>> build_model("mobilenet_v2", alpha=0.5, input_shape=(96, 96, 3), classes=4).name
    'mobilenetv2_0.50_96'
    """
    family = get_family(name)
    if family.has_width:
        kwargs["alpha"] = alpha
    return family.builder(**kwargs)

"""One entry point that turns an ``attention=`` argument into a layer.

Model builders call ``get_attention(attention, name=..., **attention_kwargs)``
once per block and never need to know which attention they got.
"""

import keras

from keras_coordatt.layers.cbam import CBAM
from keras_coordatt.layers.coord_attention import CoordAttention
from keras_coordatt.layers.squeeze_excite import SqueezeExcite
from keras_coordatt.layers.successors import EfficientChannelAttention
from keras_coordatt.layers.successors import EfficientLocalAttention
from keras_coordatt.layers.successors import SimAM

# name -> (class, defaults that the name implies)
ATTENTION_LAYERS = {
    "se": (SqueezeExcite, {}),
    "cbam": (CBAM, {}),
    "ca": (CoordAttention, {}),
    "ca_h": (CoordAttention, {"directions": "h"}),
    "ca_w": (CoordAttention, {"directions": "w"}),
    "ca_ln": (CoordAttention, {"normalization": "layer"}),
    "eca": (EfficientChannelAttention, {}),
    "simam": (SimAM, {}),
    "ela": (EfficientLocalAttention, {}),
    "ela_t": (EfficientLocalAttention, {"variant": "t"}),
}
ALIASES = {
    "squeeze_excite": "se",
    "squeezeexcite": "se",
    "coord_attention": "ca",
    "coordattention": "ca",
    "coordatt": "ca",
    "efficient_channel_attention": "eca",
    "ela_b": "ela",
    "efficient_local_attention": "ela",
}
NO_ATTENTION = (None, "none", "")


def attention_names():
    """The names ``get_attention`` accepts, besides None."""
    return sorted(ATTENTION_LAYERS)


def get_attention(spec, **kwargs):
    """Returns a new attention layer for ``spec``, or None for no attention.

    Args:
        spec: one of
            - ``None`` or ``"none"``: no attention (returns None);
            - a name: ``"se"``, ``"cbam"``, ``"ca"``, ``"ca_h"``, ``"ca_w"``
              (``"ca_h"``/``"ca_w"`` are Coordinate Attention along one
              direction, the paper's ablation), ``"ca_ln"`` (CA normalising
              each image on its own instead of BatchNorm: the same gates in
              training and inference), and CA's successors
              ``"eca"``, ``"simam"``, ``"ela"`` (ELA-B) and ``"ela_t"``;
            - a dict: ``{"type": "ca", "reduction": 16}``, or a Keras
              serialization dict (``{"class_name": ..., "config": ...}``, as
              ``keras.saving.serialize_keras_object`` writes);
            - a `keras.layers.Layer` subclass, called as ``spec(**kwargs)``;
            - any callable returning a new layer, called as ``spec(**kwargs)``.
        **kwargs: passed to the layer's constructor; they override the
            defaults that ``spec`` implies (for example ``name=`` or
            ``reduction=``).

    Example:

    >>> from keras_coordatt import get_attention
    >>> get_attention("ca", reduction=16, name="block_2_attention").reduction
    16
    >>> get_attention(None) is None
    True
    """
    if isinstance(spec, str) or spec is None:
        key = (spec or "none").lower()
        key = ALIASES.get(key, key)
        if key in NO_ATTENTION:
            return None
        if key not in ATTENTION_LAYERS:
            raise ValueError(
                f"get_attention: unknown attention {spec!r}. Expected None, "
                f"'none', one of {attention_names()}, a config dict, a Layer "
                "class or a callable returning a layer."
            )
        cls, defaults = ATTENTION_LAYERS[key]
        return cls(**{**defaults, **kwargs})

    if isinstance(spec, dict):
        if "class_name" in spec:
            config = {**spec.get("config", {}), **kwargs}
            return keras.saving.deserialize_keras_object({**spec, "config": config})
        if "type" not in spec:
            raise ValueError(
                "get_attention: a config dict needs a 'type' key (for example "
                "{'type': 'ca', 'reduction': 16}) or Keras' 'class_name' and "
                f"'config' keys; got keys {sorted(spec)}."
            )
        options = {k: v for k, v in spec.items() if k != "type"}
        return get_attention(spec["type"], **{**options, **kwargs})

    if isinstance(spec, keras.layers.Layer):
        raise TypeError(
            f"get_attention: got the layer instance {spec.name!r}; a builder "
            "needs a new layer for every block, so pass its class, a name or a "
            "callable that returns a new layer."
        )

    if callable(spec):
        layer = spec(**kwargs)
        if layer is not None and not isinstance(layer, keras.layers.Layer):
            raise TypeError(
                f"get_attention: the callable {spec!r} returned "
                f"{type(layer).__name__}, not a keras.layers.Layer or None."
            )
        return layer

    raise TypeError(
        f"get_attention: cannot make an attention layer from {spec!r} of type "
        f"{type(spec).__name__}."
    )

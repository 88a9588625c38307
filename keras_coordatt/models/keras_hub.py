"""Our backbones as keras-hub ``FeaturePyramidBackbone`` models, for keras-hub's task heads.

`as_keras_hub_backbone` wraps a `Backbone` (or the backbone of an
`ImageClassifier`) in a subclass of ``keras_hub.models.FeaturePyramidBackbone``
built on the same graph: the same layers and variables (ImageNet weights
loaded into the model stay, and training the keras-hub task trains the
model), the final feature map as its output and the model's
``pyramid_outputs`` (``"P2"``..``"P5"``; fewer with ``output_stride`` 16 or
8). keras-hub's ``DeepLabV3Backbone`` and ``RetinaNetBackbone`` take it as
their ``image_encoder``, so ``DeepLabV3ImageSegmenter`` and
``RetinaNetObjectDetector`` run on MobileNetV2, MobileNeXt or EfficientNetB0
with any attention (none, se, cbam, ca) and width.

The wrapper's config is the wrapped backbone's config (its arguments), so a
keras-hub task on it saves to ``.keras`` and loads back with
``keras.saving.load_model`` (weights included) in a process that has
imported ``keras_coordatt``; keras_hub itself is imported on first use.

keras-hub is optional and imported only here, when called. Its
``tensorflow-text`` requirement depends on the full ``tensorflow`` wheel,
which would be installed beside ``tensorflow-cpu``, so install it without its
dependencies, then the two it needs to import (see `INSTALL`).

keras-hub's tasks take images as the network expects them when
``preprocessor=None``: for these backbones, pixels scaled to
``backbone.preprocessing.pixel_range`` ((-1, 1), or (0, 255) for
EfficientNetB0), which a keras-hub ``ImageConverter`` does with
``scale=(high - low) / 255, offset=low``.
"""

import functools

import keras

from keras_coordatt.models.backbone import Backbone
from keras_coordatt.models.classifier import ImageClassifier

KERAS_HUB_VERSION = "0.32.0"
INSTALL = f"pip install --no-deps keras-hub=={KERAS_HUB_VERSION} && pip install regex tokenizers"
REGISTERED_NAME = "keras_coordatt>KerasHubBackbone"


def as_keras_hub_backbone(model, name=None):
    """A ``keras_hub.models.FeaturePyramidBackbone`` on ``model``'s layers and weights.

    Args:
        model: a keras_coordatt `Backbone` (`MobileNetV2Backbone`, ...) or an
            `ImageClassifier` (what `MobileNetV2`, `MobileNeXt` and
            `EfficientNetB0` return); a classifier's top is left out.
        name: the keras-hub backbone's name; ``"<model name>_hub"`` by default.

    Returns:
        A ``keras_hub.models.FeaturePyramidBackbone`` whose output is the
        model's final feature map and whose ``pyramid_outputs`` are the
        model's. It shares the model's layers, so the model's weights are its
        weights. ``coordatt_backbone`` is the wrapped `Backbone`;
        ``preprocessing`` and ``image_shape`` are the backbone's.

    Raises:
        ImportError: keras-hub is not installed (the message gives the
            install commands), or too old to have ``FeaturePyramidBackbone``.
        ValueError: ``model`` has no ``pyramid_outputs``.
        TypeError: ``model`` has a pyramid but is not a keras_coordatt
            `Backbone` or `ImageClassifier`, whose arguments the keras-hub
            backbone's config is.

    Example:

    >>> import keras_hub
    >>> from keras_coordatt.models import MobileNetV2Backbone, as_keras_hub_backbone
    >>> backbone = MobileNetV2Backbone(image_shape=(64, 64, 3), alpha=0.35, attention="ca")
    >>> encoder = as_keras_hub_backbone(backbone)
    >>> isinstance(encoder, keras_hub.models.FeaturePyramidBackbone)
    True
    >>> sorted(encoder.pyramid_outputs), encoder.get_layer("block_1_attention") is backbone.get_layer("block_1_attention")
    (['P2', 'P3', 'P4', 'P5'], True)
    """
    backbone = _coordatt_backbone(model)
    _import_keras_hub()
    return keras_hub_backbone_class()(backbone, name=name)


def _coordatt_backbone(model):
    """The keras_coordatt `Backbone` in ``model``; a clear error for anything else."""
    if isinstance(model, ImageClassifier):
        return model.backbone
    if isinstance(model, Backbone):
        return model
    if isinstance(getattr(model, "coordatt_backbone", None), Backbone):  # already wrapped
        return model.coordatt_backbone
    name = getattr(model, "name", type(model).__name__)
    if not getattr(model, "pyramid_outputs", None):
        raise ValueError(
            f"as_keras_hub_backbone: model '{name}' ({type(model).__name__}) has no "
            "pyramid_outputs, which keras-hub's DeepLabV3 and RetinaNet read. Build it with "
            "keras_coordatt's MobileNetV2, MobileNeXt or EfficientNetB0 (or their Backbone "
            "classes)."
        )
    raise TypeError(
        f"as_keras_hub_backbone: model '{name}' is a {type(model).__name__}, not a "
        "keras_coordatt Backbone or ImageClassifier; the keras-hub backbone is saved as "
        "the arguments of one of those, so only they can be wrapped."
    )


def _import_keras_hub():
    try:
        import keras_hub
    except ImportError as error:
        raise ImportError(
            f"as_keras_hub_backbone needs keras-hub, which could not be imported ({error}). "
            f"Install it with: {INSTALL}. (--no-deps because keras-hub requires "
            "tensorflow-text, which pulls the full tensorflow wheel beside tensorflow-cpu; "
            "regex and tokenizers are what it needs to import.)"
        ) from error
    if not hasattr(keras_hub.models, "FeaturePyramidBackbone"):
        raise ImportError(
            f"as_keras_hub_backbone: keras-hub {getattr(keras_hub, '__version__', '?')} has "
            f"no models.FeaturePyramidBackbone; install keras-hub=={KERAS_HUB_VERSION} "
            f"({INSTALL})."
        )
    return keras_hub


@functools.cache
def keras_hub_backbone_class():
    """The ``FeaturePyramidBackbone`` subclass `as_keras_hub_backbone` makes (imports keras_hub)."""
    keras_hub = _import_keras_hub()

    class KerasHubBackbone(keras_hub.models.FeaturePyramidBackbone):
        """A keras_coordatt `Backbone` as a keras-hub ``FeaturePyramidBackbone``.

        Args:
            backbone: the keras_coordatt `Backbone`, or its serialized config.
            **kwargs: keras-hub ``Backbone`` arguments (``name``, ``dtype``, ...);
                ``dtype`` defaults to the backbone's policy.
        """

        def __init__(self, backbone, name=None, dtype=None, **kwargs):
            if isinstance(backbone, dict):
                backbone = keras.saving.deserialize_keras_object(backbone)
            backbone = _coordatt_backbone(backbone)
            super().__init__(
                inputs=backbone.inputs,
                outputs=backbone.output,
                name=name or f"{backbone.name}_hub",
                dtype=dtype if dtype is not None else backbone.dtype_policy,
                **kwargs,
            )
            self.pyramid_outputs = dict(backbone.pyramid_outputs)
            self.coordatt_backbone = backbone

        @property
        def image_shape(self):
            """The backbone's ``(height, width, channels)``."""
            return self.coordatt_backbone.image_shape

        @property
        def preprocessing(self):
            """The `Preprocessing` the backbone expects."""
            return self.coordatt_backbone.preprocessing

        def get_config(self):
            config = super().get_config()
            config["backbone"] = keras.saving.serialize_keras_object(self.coordatt_backbone)
            return config

    KerasHubBackbone.__qualname__ = KerasHubBackbone.__name__
    keras.saving.register_keras_serializable(
        package=REGISTERED_NAME.split(">")[0], name=REGISTERED_NAME.split(">")[1]
    )(KerasHubBackbone)
    return KerasHubBackbone


class _LoadKerasHubBackbone:
    """Stands in for the keras-hub backbone class in the registry until keras_hub is imported.

    The real class subclasses keras_hub's, so it exists only once keras_hub
    is imported; a ``.keras`` file holding one names ``REGISTERED_NAME``,
    and this loads it by making the class (which then takes the name over).
    """

    @classmethod
    def from_config(cls, config):
        return keras_hub_backbone_class().from_config(config)


keras.saving.get_custom_objects().setdefault(REGISTERED_NAME, _LoadKerasHubBackbone)

"""An image classifier: a backbone plus keras.applications' classification top."""

import keras

from keras_coordatt.models.backbone import Backbone
from keras_coordatt.models.backbone import dtype_policy_scope

POOLINGS = ("avg", "max")


@keras.saving.register_keras_serializable(package="keras_coordatt")
class ImageClassifier(keras.Model):
    """A `Backbone` with a classification top: global pooling -> [dropout] -> ``predictions``.

    The top's layers continue the backbone's own graph rather than wrapping
    the backbone as one nested layer, so the classifier has keras.applications'
    flat layer names (``block_1_expand``, ..., ``avg_pool``, ``predictions``),
    its weight files load, and ``get_layer`` finds every block. Its
    configuration is the backbone's plus the arguments below, so a ``.keras``
    file rebuilds the same classifier.

    Args:
        backbone: a `Backbone` (`MobileNetV2Backbone`, ...).
        classes: the number of classes, or None for no ``predictions``
            layer: the output is then the pooled feature vector
            (keras.applications' ``include_top=False, pooling=...``).
        pooling: ``"avg"`` (``avg_pool``) or ``"max"`` (``max_pool``).
        dropout_rate: dropout before ``predictions`` (``top_dropout``).
        classifier_activation: the ``predictions`` activation; None for logits.
        name: the model name; the backbone's by default.

    Example:

    >>> from keras_coordatt.models import ImageClassifier, MobileNetV2Backbone
    >>> backbone = MobileNetV2Backbone(image_shape=(96, 96, 3), alpha=0.35, attention="ca")
    >>> classifier = ImageClassifier(backbone, classes=4, classifier_activation=None)
    >>> classifier.output.shape, classifier.get_layer("block_1_attention") is backbone.get_layer("block_1_attention")
    ((None, 4), True)
    """

    def __init__(
        self,
        backbone,
        classes=1000,
        pooling="avg",
        dropout_rate=0.0,
        classifier_activation="softmax",
        name=None,
        **kwargs,
    ):
        _check_head(backbone, classes, pooling, dropout_rate)
        with dtype_policy_scope(backbone.build_dtype):
            x = backbone.output
            if pooling == "avg":
                x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
            else:
                x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
            if classes is not None:
                if dropout_rate > 0:
                    x = keras.layers.Dropout(dropout_rate, name="top_dropout")(x)
                x = keras.layers.Dense(
                    classes,
                    activation=classifier_activation,
                    kernel_initializer=backbone.classifier_kernel_initializer,
                    name="predictions",
                )(x)
        super().__init__(inputs=backbone.input, outputs=x, name=name or backbone.name, **kwargs)
        self.backbone = backbone
        self.classes = classes
        self.pooling = pooling
        self.dropout_rate = dropout_rate
        self.classifier_activation = classifier_activation

    @property
    def pyramid_outputs(self):
        """The backbone's feature maps by level (the same tensors)."""
        return self.backbone.pyramid_outputs

    @property
    def preprocessing(self):
        """The `Preprocessing` the backbone expects."""
        return self.backbone.preprocessing

    @property
    def outputs_probabilities(self):
        """True when ``predictions`` ends in softmax, False for logits or features."""
        return self.classes is not None and self.classifier_activation in ("softmax", keras.activations.softmax)

    def get_config(self):
        activation = self.classifier_activation
        if callable(activation):
            activation = keras.activations.serialize(activation)
        return {
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "classes": self.classes,
            "pooling": self.pooling,
            "dropout_rate": self.dropout_rate,
            "classifier_activation": activation,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_preset(cls, handle, load_weights=True):
        """A classifier from a preset (a folder, ``hf://`` or ``kaggle://``; see `from_preset`)."""
        from keras_coordatt.models.presets import load_backbone_preset

        return load_backbone_preset(cls, handle, load_weights)

    def save_to_preset(self, preset_dir, **card):
        """Writes this classifier as a preset folder; see `keras_coordatt.models.save_to_preset`."""
        from keras_coordatt.models.presets import save_to_preset

        return save_to_preset(self, preset_dir, **card)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        backbone = config.pop("backbone")
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        if isinstance(config.get("classifier_activation"), dict):
            config["classifier_activation"] = keras.activations.deserialize(
                config["classifier_activation"])
        return cls(backbone, **config)


def _check_head(backbone, classes, pooling, dropout_rate):
    if not isinstance(backbone, Backbone):
        raise TypeError(
            f"ImageClassifier: backbone must be a keras_coordatt Backbone "
            f"(MobileNetV2Backbone, ...), got {type(backbone).__name__}."
        )
    if classes is not None and (isinstance(classes, bool) or not isinstance(classes, int)
                                or classes < 1):
        raise ValueError(
            f"ImageClassifier: classes must be a positive integer (or None for the pooled "
            f"features), got classes={classes!r}."
        )
    if pooling not in POOLINGS:
        raise ValueError(f"ImageClassifier: unknown pooling={pooling!r}. Expected one of {POOLINGS}.")
    if not 0 <= dropout_rate < 1:
        raise ValueError(f"ImageClassifier: dropout_rate must be in [0, 1), got {dropout_rate!r}.")


def rebuild(model, **backbone_changes):
    """The same kind of model with some backbone arguments changed, and new weights.

    Args:
        model: a `Backbone` or an `ImageClassifier`.
        **backbone_changes: backbone arguments to change, e.g.
            ``image_shape=(96, 96, 3)`` or ``attention="ca"``.
    """
    if isinstance(model, ImageClassifier):
        config = model.get_config()
        config["backbone"] = model.backbone.with_config(**backbone_changes)
        return ImageClassifier.from_config(config)
    if isinstance(model, Backbone):
        return model.with_config(**backbone_changes)
    raise TypeError(
        f"rebuild: '{model.name}' is a {type(model).__name__}, not a keras_coordatt "
        "Backbone or ImageClassifier; only those carry the arguments to rebuild from."
    )

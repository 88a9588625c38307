"""Backbones: functional Keras models that know what they are.

The pattern is keras-hub's ``Backbone`` / ``FeaturePyramidBackbone``: a
subclass of `keras.Model` whose ``__init__`` takes the architecture's
arguments and builds the functional graph, whose ``get_config()`` returns
those arguments, and which exposes its feature maps by level in
``pyramid_outputs``. Saving to ``.keras`` stores the arguments; loading calls
the constructor again, so the pyramid, the preprocessing and every
architecture argument come back intact.

Every backbone also says which `Preprocessing` it expects
(``backbone.preprocessing``) and, for the classifier built on it, which
initializer its ``predictions`` layer uses.
"""

import contextlib
import dataclasses

import keras

from keras_coordatt.preprocessing import Preprocessing

PYRAMID_LEVELS = ("P2", "P3", "P4", "P5")
MIN_INPUT_SIZE = 32


def pyramid_level(stride):
    """The level name of a feature map at ``stride``: 4 -> ``"P2"``, 32 -> ``"P5"``."""
    return f"P{stride.bit_length() - 1}"


@contextlib.contextmanager
def dtype_policy_scope(dtype):
    """Builds layers under ``dtype`` (a policy name); yields the policy's name.

    The process-wide policy is restored on the way out. With ``dtype=None``
    the current policy applies, and its name is what the model records, so a
    model built under ``mixed_float16`` reloads in mixed precision.
    """
    previous = keras.config.dtype_policy()
    if dtype is not None:
        keras.config.set_dtype_policy(dtype)
    try:
        yield keras.config.dtype_policy().name
    finally:
        keras.config.set_dtype_policy(previous)


def serializable_attention(attention, model):
    """``attention`` as a config value: names and dicts as they are, else the layer's config.

    A Layer class or a callable cannot go into a JSON config; the first
    attention layer it made does, as Keras' serialization dict without what
    is particular to that layer (its name, its built input shape), which
    `get_attention` accepts.
    """
    if attention is None or isinstance(attention, (str, dict)):
        return attention
    for layer in model.layers:
        if layer.name.endswith("attention"):
            serialized = keras.saving.serialize_keras_object(layer)
            config = {k: v for k, v in serialized["config"].items() if k != "name"}
            return {k: v for k, v in serialized.items() if k != "build_config"} | {"config": config}
    return None


def check_image_shape(owner, image_shape):
    """``image_shape`` as a tuple ``(height, width, channels)``; a ValueError naming what is wrong."""
    if keras.config.image_data_format() != "channels_last":
        raise ValueError(
            f"{owner}: the models are built channels-last; got "
            f"keras.config.image_data_format()={keras.config.image_data_format()!r}."
        )
    image_shape = tuple(image_shape)
    if len(image_shape) != 3 or image_shape[2] is None:
        raise ValueError(
            f"{owner}: input_shape must be (height, width, channels) with known channels, "
            f"got input_shape={image_shape}."
        )
    height, width, channels = image_shape
    if channels > 4 and height in (1, 3) and (width is None or width > 4):
        raise ValueError(
            f"{owner}: input_shape={image_shape} looks channels-first; the models take "
            f"channels last: (height, width, channels), e.g. {(channels, width, height)}."
        )
    if any(size is not None and size < MIN_INPUT_SIZE for size in (height, width)):
        raise ValueError(
            f"{owner}: input_shape={image_shape} is too small; height and width must be at "
            f"least {MIN_INPUT_SIZE} (the network divides them by 32)."
        )
    return image_shape


def backbone_input(owner, image_shape, input_tensor):
    """The image tensor a backbone starts from: ``input_tensor`` or a new ``keras.Input``."""
    if input_tensor is None:
        return keras.Input(shape=image_shape)
    if tuple(input_tensor.shape[1:]) != tuple(image_shape):
        raise ValueError(
            f"{owner}: input_shape={tuple(image_shape)} does not match input_tensor's "
            f"shape {tuple(input_tensor.shape[1:])}."
        )
    return input_tensor


class Backbone(keras.Model):
    """Base class of the feature extractors: a functional model configured by its arguments.

    Subclasses build the graph in ``__init__`` (inside `dtype_policy_scope`),
    call ``super().__init__(inputs, outputs, pyramid_outputs, ...)``, then set
    one attribute per name in ``config_fields``; `get_config` returns those.

    Attributes:
        pyramid_outputs: ``{"P2": ..., "P5": ...}``, each level ``Pk`` the
            last feature map whose true stride is ``2**k`` (with a smaller
            output stride the deeper levels are absent and the final map is
            the deepest level present).
        preprocessing: the `Preprocessing` the network expects.
        classifier_kernel_initializer: the initializer of a classifier's
            ``predictions`` layer on this backbone.
        own_attention: the name of an attention that is part of the
            architecture (EfficientNet's SE), or None.
    """

    preprocessing = Preprocessing()
    classifier_kernel_initializer = "glorot_uniform"
    own_attention = None
    config_fields = ()

    def __init__(self, inputs, outputs, pyramid_outputs, dtype=None, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.pyramid_outputs = dict(pyramid_outputs)
        self.build_dtype = dtype

    @property
    def feature_channels(self):
        """Channels of the final feature map."""
        return int(self.output.shape[-1])

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.build_dtype}
        for field in self.config_fields:
            config[field] = getattr(self, field)
        if "attention" in config:
            config["attention"] = serializable_attention(config["attention"], self)
        if self.preprocessing != type(self).preprocessing:  # e.g. another eval crop, set by the trainer
            config["preprocessing"] = dataclasses.asdict(self.preprocessing)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        preprocessing = config.pop("preprocessing", None)
        backbone = cls(**config)
        if preprocessing is not None:
            backbone.preprocessing = Preprocessing(**preprocessing)
        return backbone

    @classmethod
    def from_preset(cls, handle, load_weights=True):
        """This backbone from a preset (a folder, ``hf://`` or ``kaggle://``; see `from_preset`).

        A classifier's or a task's preset gives its backbone; a preset of
        another class is an error naming both.
        """
        from keras_coordatt.models.presets import load_backbone_preset

        return load_backbone_preset(cls, handle, load_weights)

    def save_to_preset(self, preset_dir, **card):
        """Writes this backbone as a preset folder; see `keras_coordatt.models.save_to_preset`."""
        from keras_coordatt.models.presets import save_to_preset

        return save_to_preset(self, preset_dir, **card)

    def with_config(self, **changes):
        """A new backbone of the same class with some arguments changed (new weights)."""
        config = self.get_config()
        config.update(changes)
        return type(self).from_config(config)

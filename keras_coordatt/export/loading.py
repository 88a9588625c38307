"""What a classifier export starts from: the model, its class names, and check images.

``keras-coordatt export`` takes a ``.keras`` file (rebuilt at another input
size if asked) or a model family with a weights file; the class names come
from a labels file or the ``metrics.json`` a training run leaves beside its
``model.keras``; the check and calibration images from a data source.
"""

import json
import os
import sys
import warnings

import keras

from keras_coordatt import models


def load_classifier(model, input_size=None, weights=None, attention="ca", alpha=1.0,
                    classes=1000):
    """A ``.keras`` classifier, or a model family built and given ``weights``.

    Args:
        model: a ``.keras`` path or a family key (`keras_coordatt.models.FAMILIES`).
        input_size: the square input size (default: the file's; 224 for a family).
        weights: for a family, a ``.weights.h5`` (or legacy ``.h5``) file;
            without it the weights are random, and a note says so.
        attention, alpha, classes: for a family, what the weights were trained with.
    """
    if model.endswith(".keras"):
        if not os.path.exists(model):
            raise FileNotFoundError(f"no model file {model!r}")
        loaded = keras.saving.load_model(model, compile=False)
        if input_size and tuple(loaded.inputs[0].shape[1:3]) != (input_size,) * 2:
            loaded = _rebuilt_at(loaded, input_size)
        return loaded
    if model not in models.FAMILIES:
        raise ValueError(f"{model!r} is neither a .keras file nor a model family "
                         f"({', '.join(models.FAMILIES)})")
    family = models.get_family(model)
    family.check_attention(attention)
    size = input_size or 224
    built = models.build_model(family.key, alpha=alpha, input_shape=(size, size, 3),
                               classes=classes, attention=attention, classifier_activation=None)
    if weights is None:
        print("keras-coordatt export: no --weights; exporting random weights", file=sys.stderr)
        return built
    if not os.path.exists(weights):
        raise FileNotFoundError(f"no weights file {weights!r}")
    try:
        with warnings.catch_warnings():
            # On a mismatch Keras warns once per layer before its error.
            warnings.simplefilter("ignore")
            built.load_weights(weights)
    except ValueError:
        # Keras' own message prints whole weight arrays; the options are what to fix.
        raise ValueError(
            f"the weights in {weights} do not fit {family.key} with --alpha {alpha} "
            f"--attention {attention} --classes {classes}: pass "
            "the options the weights were trained with (or export the run's model.keras)"
        ) from None
    return built


def class_names(labels_file=None, model=None):
    """A labels file's names (one a line), else those of the training run beside ``model``.

    Returns:
        The names, or None when neither is there.
    """
    if labels_file:
        with open(labels_file) as f:
            return [line.strip() for line in f if line.strip()]
    if model and model.endswith(".keras"):
        metrics = os.path.join(os.path.dirname(os.path.abspath(model)), "metrics.json")
        if os.path.exists(metrics):
            with open(metrics) as f:
                return json.load(f).get("class_names")
    return None


def check_and_calibration_images(model, source, check_split, check_examples, calibration_split,
                                 calibration_examples, data_dir=None):
    """uint8 check images, their labels, calibration images and the class names of ``source``.

    Both sets are read at the model's input size with its eval crop
    (`keras_coordatt.data.load_images`).
    """
    from keras_coordatt.data import load_images
    from keras_coordatt.preprocessing import preprocessing_of

    size = int(model.inputs[0].shape[1])
    crop = preprocessing_of(model).crop_fraction
    images, truth, names = load_images(source, check_split, check_examples, size, data_dir, crop)
    calibration, _, _ = load_images(source, calibration_split, calibration_examples, size,
                                    data_dir, crop)
    return images, truth, calibration, names


def _rebuilt_at(model, size):
    """The same network and weights at another (fixed) input size."""
    rebuilt = models.rebuild(model, image_shape=(size, size, 3))
    rebuilt.set_weights(model.get_weights())
    return rebuilt

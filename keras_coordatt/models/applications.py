"""The keras.applications-style front door every architecture shares.

``MobileNetV2(...)``, ``MobileNeXt(...)`` and ``EfficientNetB0(...)`` take
keras.applications' arguments (``input_shape``, ``include_top``, ``weights``,
``input_tensor``, ``pooling``, ``classes``, ``classifier_activation``) with the
same meaning, build their `Backbone`, and finish here: the classification
top (`ImageClassifier`), the input tensor and the weights file.
"""

import os

import keras

from keras_coordatt.models.classifier import ImageClassifier

DEFAULT_SIZE = 224


def build_application(
    builder,
    make_backbone,
    input_shape,
    include_top,
    weights,
    input_tensor,
    pooling,
    classes,
    classifier_activation,
    name,
    dropout_rate,
    imagenet=None,
):
    """The model a keras.applications-style builder returns.

    Args:
        builder: the builder's name, for error messages.
        make_backbone: ``make_backbone(image_shape=..., input_tensor=...,
            name=...)`` returns the `Backbone` (the builder's other arguments
            already bound).
        imagenet: ``imagenet(include_top, rows)`` returns keras.applications'
            ImageNet file for ``weights="imagenet"`` as ``(name, url)``
            (raising ValueError for a setting without one); None where the
            family has none.
        the others: keras.applications' arguments.

    Returns:
        The `Backbone` itself with ``include_top=False, pooling=None``, else
        an `ImageClassifier` on it (``classes=None`` when only pooling). An
        ``input_tensor`` that is not a ``keras.Input`` (the output of other
        layers) gives a plain functional model from its source inputs, with
        the network as one nested layer.
    """
    use_imagenet = isinstance(weights, str) and weights == "imagenet"
    if use_imagenet:
        if imagenet is None:
            raise ValueError(
                f"{builder}: weights='imagenet': there are no ImageNet weights for this network "
                "to download. Pass "
                "weights=None, or the path of a .weights.h5 file saved by model.save_weights().")
    else:
        check_weights(builder, weights)
    image_shape = _image_shape(builder, input_shape, input_tensor, include_top)
    from_source = input_tensor is None or _is_source_input(input_tensor)
    with_head = include_top or pooling is not None
    backbone = make_backbone(
        image_shape=image_shape,
        input_tensor=input_tensor if from_source else None,
        name=None if with_head else name,
    )
    model = backbone
    if with_head:
        model = ImageClassifier(
            backbone,
            classes=classes if include_top else None,
            pooling="avg" if include_top else pooling,
            dropout_rate=dropout_rate if include_top else 0.0,
            classifier_activation=classifier_activation,
            name=name,
        )
    if not from_source:
        model = keras.Model(
            keras.utils.get_source_inputs(input_tensor), model(input_tensor), name=model.name
        )
    if use_imagenet:
        from keras_coordatt.models.imagenet import load_imagenet

        file_name, url = imagenet(include_top, image_shape[0])
        load_imagenet(builder, model, file_name, url, classes, include_top)
    elif weights is not None:
        load_weights_file(builder, model, weights)
    return model


def check_weights(builder, weights):
    """A ValueError naming a ``weights`` argument that is not None or an existing file."""
    if weights is None:
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            f"{builder}: weights must be None or the path of a weights file, "
            f"got {type(weights).__name__} {weights!r}."
        )
    if not os.path.isfile(weights):
        raise ValueError(f"{builder}: weights file {os.fspath(weights)!r} does not exist.")


def load_weights_file(builder, model, weights):
    """``model.load_weights(weights)`` with an error that names the file and what must match."""
    try:
        model.load_weights(weights)
    except ValueError as error:
        raise ValueError(
            f"{builder}: could not load weights={os.fspath(weights)!r} into "
            f"'{model.name}'; the file must come from a model built with the "
            f"same alpha, attention, include_top and classes. {error}"
        ) from error


def _image_shape(builder, input_shape, input_tensor, include_top):
    """keras.applications' rule: the given shape, the tensor's, or 224x224 with the top."""
    if input_tensor is not None and not keras.backend.is_keras_tensor(input_tensor):
        raise ValueError(
            f"{builder}: input_tensor must be a Keras tensor (keras.Input(...) "
            f"or a layer's output), got {type(input_tensor).__name__}."
        )
    if input_shape is not None:
        return tuple(input_shape)
    if input_tensor is not None:
        return tuple(input_tensor.shape[1:])
    if include_top:
        return (DEFAULT_SIZE, DEFAULT_SIZE, 3)
    return (None, None, 3)


def _is_source_input(tensor):
    sources = keras.utils.get_source_inputs(tensor)
    return len(sources) == 1 and sources[0] is tensor

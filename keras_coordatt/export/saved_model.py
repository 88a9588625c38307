"""SavedModels: one for serving, and TF Hub-format ones for reuse in Keras.

``export_serving`` writes a SavedModel whose ``serving_default`` signature
takes raw uint8 images of any size, does the model's preprocessing inside
(resize, center crop, pixel scaling; `keras_coordatt.preprocessing`)
and returns logits, probabilities and the top-k classes with their labels:
what TensorFlow Serving, a Vertex AI endpoint or ``saved_model_cli`` expect.

``export_hub`` writes the TF Hub (TF2 SavedModel) format: a ``__call__``
over float images in [0, 1], plus ``variables``, ``trainable_variables`` and
``regularization_losses``. ``kind="classification"`` returns logits,
``kind="feature_vector"`` the pooled features before the classifier. Both
load with ``keras.layers.TFSMLayer(path, call_endpoint="__call__")`` under
Keras 3 and with ``tensorflow_hub.KerasLayer(path)`` where tf_keras is
installed.
"""

import json
import os

from keras_coordatt.export.backend import require_tensorflow
from keras_coordatt.preprocessing import preprocessing_of

HUB_KINDS = ("classification", "feature_vector")


def image_size_of(model):
    """The model's square input side; a clear error for other input shapes."""
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(
            f"'{model.name}' takes inputs of shape {shape}; export expects one "
            "NHWC image input with 3 channels."
        )
    if shape[1] is None or shape[2] is None:
        raise ValueError(
            f"'{model.name}' takes images of any size {shape}; export needs a fixed "
            "size (it sets the resize and the TFLite input): rebuild it at one with "
            "keras_coordatt.models.rebuild(model, image_shape=(S, S, 3)) and copy its "
            "weights, or pass --input-size S to keras-coordatt export."
        )
    if shape[1] != shape[2]:
        raise ValueError(f"'{model.name}' takes non-square images {shape[1:3]}; export expects square ones.")
    return int(shape[1])


def outputs_are_probabilities(model):
    """True when the model already ends in softmax (classifier_activation='softmax').

    An `ImageClassifier` says so itself; for other models the last layer's
    activation tells.
    """
    own = getattr(model, "outputs_probabilities", None)
    if own is not None:
        return own
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", "") == "softmax"


def feature_model(model):
    """The model up to the input of its final Dense layer (the pooled features)."""
    import keras

    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense):
        raise ValueError(
            f"'{model.name}' does not end in a Dense classifier (its last layer is "
            f"{last.__class__.__name__} '{last.name}'); a feature-vector export needs one "
            "to cut before."
        )
    return keras.Model(model.inputs, last.input, name=f"{model.name}_features")


def class_labels(labels, classes):
    """The class names, checked against the class count; ``class_i`` by default."""
    if labels is None:
        return [f"class_{i}" for i in range(classes)]
    labels = [str(label) for label in labels]
    if len(labels) != classes:
        raise ValueError(f"labels has {len(labels)} entries but the model has {classes} classes")
    return labels


def export_serving(model, path, labels=None, top_k=5, image_size=None, preprocessing=None):
    """Writes a serving SavedModel: uint8 images of any size in, classes out.

    The ``serving_default`` signature takes ``images``, uint8
    ``(batch, height, width, 3)`` of any height and width, and returns
    ``logits``, ``probabilities``, ``top_k_indices``, ``top_k_probabilities``
    and ``top_k_labels`` (strings).

    Args:
        model: a `keras.Model` classifier, logits or softmax output.
        path: the SavedModel directory to write.
        labels: the class names, in label order; ``class_i`` by default.
        top_k: how many classes the top-k outputs hold.
        image_size: the square side the model takes; read from the model.
        preprocessing: the `Preprocessing` inside the signature; the
            model's own (`preprocessing_of`) by default.

    Returns:
        ``path``.
    """
    import keras

    tf = require_tensorflow("SavedModel export")
    image_size = image_size or image_size_of(model)
    preprocessing = preprocessing or preprocessing_of(model)
    classes = int(model.outputs[0].shape[-1])
    labels = class_labels(labels, classes)
    top_k = min(int(top_k), classes)
    probabilities_out = outputs_are_probabilities(model)

    def serve(images):
        x = preprocessing.for_eval(images, image_size)
        scores = tf.cast(model(x, training=False), tf.float32)
        if probabilities_out:
            probabilities = scores
            logits = tf.math.log(tf.maximum(scores, 1e-12))
        else:
            logits = scores
            probabilities = tf.nn.softmax(scores, axis=-1)
        top = tf.math.top_k(probabilities, k=top_k)
        return {
            "logits": logits,
            "probabilities": probabilities,
            "top_k_indices": top.indices,
            "top_k_probabilities": top.values,
            "top_k_labels": tf.gather(tf.constant(labels), top.indices),
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default", serve,
        input_signature=[tf.TensorSpec((None, None, None, 3), tf.uint8, name="images")],
    )
    archive.write_out(str(path), verbose=False)
    # TensorFlow Serving's place for files the graph does not read.
    extra = os.path.join(path, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, "labels.txt"), "w") as f:
        f.write("\n".join(labels) + "\n")
    with open(os.path.join(extra, "preprocessing.json"), "w") as f:
        json.dump({"signature": "serving_default", "input": "images: uint8 (batch, H, W, 3), any H, W",
                   "inside_the_signature": preprocessing.spec(image_size)}, f, indent=2)
    return path


def export_hub(model, path, kind="classification", image_size=None, preprocessing=None):
    """Writes a TF Hub-format SavedModel (``__call__`` over [0, 1] float images).

    Args:
        model: a `keras.Model` classifier ending in a Dense layer.
        path: the SavedModel directory to write.
        kind: ``"classification"`` (logits) or ``"feature_vector"`` (the
            pooled features the classifier reads).
        image_size, preprocessing: as in `export_serving`.

    Returns:
        ``path``. Load it with ``keras.layers.TFSMLayer(path,
        call_endpoint="__call__")``.
    """
    import keras

    tf = require_tensorflow("SavedModel export")
    if kind not in HUB_KINDS:
        raise ValueError(f"export_hub: kind={kind!r}; expected one of {HUB_KINDS}")
    image_size = image_size or image_size_of(model)
    low, high = (preprocessing or preprocessing_of(model)).pixel_range
    network = model if kind == "classification" else feature_model(model)

    def call(images):
        # Hub image modules take RGB floats in [0, 1]; the network's own
        # pixel range is applied here.
        x = tf.cast(images, tf.float32) * (high - low) + low
        return tf.cast(network(x, training=False), tf.float32)

    archive = keras.export.ExportArchive()
    archive.track(network)
    spec = tf.TensorSpec((None, image_size, image_size, 3), tf.float32, name="images")
    archive.add_endpoint("__call__", call, input_signature=[spec])
    # The TF Hub format's reusable-SavedModel attributes; ExportArchive
    # already writes variables and trainable_variables.
    archive.add_variable_collection("regularization_losses", [])
    archive.write_out(str(path), verbose=False)
    return path

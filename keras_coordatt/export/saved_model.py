"""SavedModels: for serving (classifiers, detectors, segmenters), and TF Hub-format ones.

``export_serving`` writes a classifier's SavedModel whose ``serving_default``
signature takes raw uint8 images of any size, does the model's preprocessing
inside (resize, center crop, pixel scaling; `keras_coordatt.preprocessing`)
and returns logits, probabilities and the top-k classes with their labels:
what TensorFlow Serving, a Vertex AI endpoint or ``saved_model_cli`` expect.

``export_hub`` writes the TF Hub (TF2 SavedModel) format: a ``__call__``
over float images in [0, 1], plus ``variables``, ``trainable_variables`` and
``regularization_losses``. ``kind="classification"`` returns logits,
``kind="feature_vector"`` the pooled features before the classifier. Both
load with ``keras.layers.TFSMLayer(path, call_endpoint="__call__")`` under
Keras 3 and with ``tensorflow_hub.KerasLayer(path)`` where tf_keras is
installed.

The detection and segmentation signatures also take uint8 images of any
size, stretched (bilinear, antialiased, no crop, so boxes and masks map back
to the image) to the model's square input and scaled to its pixel range, as
the detection data pipeline does (`model_input`):

- `export_detector_serving`: decoding and class-aware NMS run inside
  (`keras_coordatt.tasks.SSDPostprocess`). Out: ``boxes`` ``(B, N, 4)``
  float32 ``[xmin, ymin, xmax, ymax]`` in pixels of the original image,
  ``classes`` int32 (0-based, background excluded), ``class_names``
  (strings, "" on padding rows), ``scores`` float32 (descending, 0 on
  padding) and ``count`` int32.
- `export_segmenter_serving`: the logits are resized back to the image's own
  size (bilinear) before the argmax. Out: ``mask`` ``(B, H, W)`` uint8 class
  indices (int32 past 256 classes).
"""

import json
import os

from keras_coordatt.export.backend import require_tensorflow
from keras_coordatt.preprocessing import preprocessing_of
from keras_coordatt.preprocessing import stretch_to_input
from keras_coordatt.tasks.postprocess import detector

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
            "weights, or pass --input_size S to keras-coordatt export."
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
    _write_extra(path, labels, preprocessing.spec(image_size))
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
    scale, offset = (preprocessing or preprocessing_of(model)).scale_offset()
    network = model if kind == "classification" else feature_model(model)

    def call(images):
        # Hub image modules take RGB floats in [0, 1]; the network's own
        # pixel range is applied here.
        x = tf.cast(images, tf.float32) * (scale * 255.0) + offset
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


def model_input(images, image_size, preprocessing):
    """uint8 ``(B, H, W, 3)`` images of any size -> the model's float input ``(B, S, S, 3)``.

    The whole image is stretched to ``image_size`` squared (bilinear,
    antialiased; no crop, so boxes and masks map back to it) and scaled to
    ``preprocessing.pixel_range``: what the detection pipeline feeds training.
    """
    require_tensorflow("task export")
    return stretch_to_input(images, image_size, preprocessing.pixel_range)


def export_detector_serving(ssd_model, path, class_names, **postprocess_kwargs):
    """Writes a serving SavedModel of an SSDLite detector, NMS inside.

    Args:
        ssd_model: an `SSDLite` model (fixed square input, ``.anchors``).
        path: the SavedModel directory to write.
        class_names: the object class names (background excluded), in class order.
        **postprocess_kwargs: `SSDPostprocess`'s arguments (score_threshold,
            iou_threshold, max_detections, candidates, activation).

    Returns:
        ``path``. Its ``serving_default`` takes ``images`` uint8 ``(B, H, W, 3)``
        and returns ``boxes`` (pixels, ``xyxy``), ``classes``, ``class_names``,
        ``scores`` and ``count``; labels and preprocessing go to ``assets.extra/``.
    """
    tf = require_tensorflow("SavedModel export")
    image_size = image_size_of(ssd_model)
    preprocessing = preprocessing_of(ssd_model)
    names = class_labels(class_names, _num_classes(ssd_model))
    model = detector(ssd_model, **postprocess_kwargs)
    table = tf.constant(names)

    def serve(images):
        out = model(model_input(images, image_size, preprocessing), training=False)
        size = tf.cast(tf.shape(images)[1:3], tf.float32)
        scale = tf.stack([size[1], size[0], size[1], size[0]])
        real = tf.range(tf.shape(out["classes"])[1])[None, :] < out["count"][:, None]
        return {
            "boxes": out["boxes"] * scale,
            "classes": out["classes"],
            "class_names": tf.where(real, tf.gather(table, out["classes"]), ""),
            "scores": out["scores"],
            "count": out["count"],
        }

    return _write_serving(model, serve, path, names, stretched_spec(preprocessing, image_size), {
        "boxes": "float32 (B, N, 4) [xmin, ymin, xmax, ymax], pixels of the input image",
        "classes": "int32 (B, N), 0-based object class", "class_names": "string (B, N)",
        "scores": "float32 (B, N), descending, 0 on padding rows",
        "count": "int32 (B,), detections per image"})


def export_segmenter_serving(deeplab_model, path, class_names):
    """Writes a serving SavedModel of a segmenter: uint8 images in, class masks out.

    Args:
        deeplab_model: a `DeepLabV3` (or any model image -> ``(B, S, S, C)`` logits).
        path: the SavedModel directory to write.
        class_names: the ``C`` class names, background included, in class order.

    Returns:
        ``path``. Its ``serving_default`` takes ``images`` uint8 ``(B, H, W, 3)``
        and returns ``mask`` ``(B, H, W)``: the argmax of the logits resized
        (bilinear) to each image's size, uint8 (int32 beyond 256 classes).
    """
    tf = require_tensorflow("SavedModel export")
    image_size = image_size_of(deeplab_model)
    preprocessing = preprocessing_of(deeplab_model)
    classes = int(deeplab_model.outputs[0].shape[-1])
    names = class_labels(class_names, classes)
    mask_type = tf.uint8 if classes <= 256 else tf.int32

    def serve(images):
        logits = deeplab_model(model_input(images, image_size, preprocessing), training=False)
        logits = tf.image.resize(tf.cast(logits, tf.float32), tf.shape(images)[1:3],
                                 method="bilinear")
        return {"mask": tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32), mask_type)}

    return _write_serving(deeplab_model, serve, path, names,
                          stretched_spec(preprocessing, image_size), {
        "mask": f"{mask_type.name} (B, H, W), class index per pixel at the input's size"})


def _write_serving(model, serve, path, names, spec, outputs):
    """A SavedModel whose ``serving_default`` is ``serve`` on uint8 ``images``, and its extras."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=[
        tf.TensorSpec((None, None, None, 3), tf.uint8, name="images")])
    archive.write_out(str(path), verbose=False)
    _write_extra(path, names, spec, outputs)
    return path


def _num_classes(ssd_model):
    return int(ssd_model.output["classes"].shape[-1]) - 1


def _write_extra(path, names, inside_the_signature, outputs=None):
    """TensorFlow Serving's place for files the graph does not read: labels, preprocessing."""
    extra = os.path.join(path, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, "labels.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    spec = {"signature": "serving_default", "input": "images: uint8 (batch, H, W, 3), any H, W",
            "inside_the_signature": inside_the_signature}
    if outputs:
        spec["outputs"] = outputs
    with open(os.path.join(extra, "preprocessing.json"), "w") as f:
        json.dump(spec, f, indent=2)


def stretched_spec(preprocessing, image_size):
    """The preprocessing spec of the task models: the whole image stretched, no crop."""
    spec = preprocessing.spec(image_size)
    spec["resize"] = {"to": [image_size, image_size], "interpolation": "bilinear, antialiased",
                      "then": "no crop: the whole image, aspect ratio not kept"}
    return spec

"""Detection (SSDLite) and segmentation (DeepLabV3) exports: serving SavedModels and TFLite.

Serving SavedModels (``serving_default``, uint8 images of any size in):

- `export_detector_serving`: the image is resized (stretched, bilinear,
  antialiased) to the model's square input and scaled to its pixel range, as
  the detection data pipeline does; decoding and class-aware NMS run inside
  (`keras_coordatt.tasks.SSDPostprocess`). Out: ``boxes`` ``(B, N, 4)``
  float32 ``[xmin, ymin, xmax, ymax]`` in pixels of the original image,
  ``classes`` int32 (0-based, background excluded), ``class_names``
  (strings, "" on padding rows), ``scores`` float32 (descending, 0 on
  padding) and ``count`` int32.
- `export_segmenter_serving`: the same resize; the logits are resized back
  to the image's own size (bilinear) before the argmax. Out: ``mask``
  ``(B, H, W)`` uint8 class indices (int32 past 256 classes).

TFLite (builtin ops only, fixed batch 1, for phones):

- `detector_tflite`: input ``images`` float32 ``(1, S, S, 3)``, already
  preprocessed (the Keras model's own input, so one preprocessing definition
  serves Keras, the SavedModel and the app; the formula is in
  `keras_coordatt.preprocessing.Preprocessing.spec`); with
  ``quantization="int8"`` the input is int8 with the file's scale and zero
  point (``x_int8 = round(x / scale + zero_point)``). NMS is the builtin
  ``NON_MAX_SUPPRESSION_V4``. The four outputs follow the
  ``TFLite_Detection_PostProcess`` convention that Android's and iOS's
  detector APIs read, in this order (the signature's output names, which the
  converter sorts alphabetically, fix it):

  ====  =====================  ===========  =====================================
  0     ``detection_boxes``    (1, N, 4)    float32 ``[ymin, xmin, ymax, xmax]``,
                                            relative (0..1)
  1     ``detection_classes``  (1, N)       float32 class index (0-based)
  2     ``detection_scores``   (1, N)       float32, descending; 0 on padding
  3     ``num_detections``     (1,)         float32
  ====  =====================  ===========  =====================================

  int8 quantizes the network fully (calibrated on ``representative_data``);
  the box decoding, the scores and the NMS stay float32 (the class offset
  of the NMS spans ``2 * classes``, far beyond an int8 range's resolution).
- `segmenter_tflite`: input as the detector's; output ``mask`` ``(1, S, S)``
  int32 class indices at the model's input size (the argmax inside: a phone
  reads S x S indices instead of S x S x C logits).

`check_detector_tflite` and `check_segmenter_tflite` run a file with
ai-edge-litert beside Keras on the same images and raise `ExportCheckError`
(with the report) when it falls below the stated tolerance.
"""

import json
import os
import tempfile

import numpy as np

from keras_coordatt.export.backend import require_tensorflow
from keras_coordatt.export.bundle import ExportCheckError
from keras_coordatt.export.litert import _allocated_interpreter
from keras_coordatt.export.litert import tflite_op_names
from keras_coordatt.export.saved_model import class_labels
from keras_coordatt.export.saved_model import image_size_of
from keras_coordatt.preprocessing import preprocessing_of
from keras_coordatt.preprocessing import stretch_to_input
from keras_coordatt.tasks.postprocess import detector

# The detector file's outputs, in their order (TFLite_Detection_PostProcess).
DETECTOR_OUTPUTS = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")
TASK_QUANTIZATIONS = (None, "int8")


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
    import keras

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

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=[
        tf.TensorSpec((None, None, None, 3), tf.uint8, name="images")])
    archive.write_out(str(path), verbose=False)
    _write_extra(path, names, image_size, preprocessing, {
        "boxes": "float32 (B, N, 4) [xmin, ymin, xmax, ymax], pixels of the input image",
        "classes": "int32 (B, N), 0-based object class", "class_names": "string (B, N)",
        "scores": "float32 (B, N), descending, 0 on padding rows",
        "count": "int32 (B,), detections per image"})
    return path


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
    import keras

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

    archive = keras.export.ExportArchive()
    archive.track(deeplab_model)
    archive.add_endpoint("serving_default", serve, input_signature=[
        tf.TensorSpec((None, None, None, 3), tf.uint8, name="images")])
    archive.write_out(str(path), verbose=False)
    _write_extra(path, names, image_size, preprocessing, {
        "mask": f"{mask_type.name} (B, H, W), class index per pixel at the input's size"})
    return path


def detector_tflite(ssd_model, quantization=None, representative_data=None,
                    **postprocess_kwargs):
    """An SSDLite detector with NMS inside as a TFLite flatbuffer, builtin ops only.

    Args:
        ssd_model: an `SSDLite` model.
        quantization: None (float32) or ``"int8"`` (the network full-integer,
            decoding and NMS float32; int8 input, float32 outputs).
        representative_data: for ``"int8"``, preprocessed float32 images
            ``(N, S, S, 3)`` (or an iterable of ``(1, S, S, 3)`` batches).
        **postprocess_kwargs: `SSDPostprocess`'s arguments.

    Returns:
        bytes: input ``images`` ``(1, S, S, 3)``, outputs `DETECTOR_OUTPUTS`
        in that order (see the module docstring).
    """
    tf = require_tensorflow("TFLite conversion")
    side = image_size_of(ssd_model)
    model = detector(ssd_model, **postprocess_kwargs)

    def serve(images):
        out = model(images, training=False)
        return {
            "detection_boxes": tf.gather(out["boxes"], [1, 0, 3, 2], axis=-1),
            "detection_classes": tf.cast(out["classes"], tf.float32),
            "detection_scores": out["scores"],
            "num_detections": tf.cast(out["count"], tf.float32),
        }

    # int8: the network only; "ssd_postprocess" (decoding, scores, NMS) stays float32.
    content = _convert(model, serve, side, quantization, representative_data,
                       float_scope="ssd_postprocess", float_ops=("TOPK_V2",))
    content = order_outputs(content, DETECTOR_OUTPUTS)
    if "NON_MAX_SUPPRESSION_V4" not in tflite_op_names(content):
        raise RuntimeError("detector_tflite: the converted file has no NON_MAX_SUPPRESSION_V4 op")
    return content


def segmenter_tflite(deeplab_model, quantization=None, representative_data=None):
    """A segmenter as a TFLite flatbuffer, builtin ops only: image in, class mask out.

    Args:
        deeplab_model: a `DeepLabV3` (image -> ``(B, S, S, C)`` logits).
        quantization, representative_data: as in `detector_tflite` (int8:
            int8 input; the mask stays int32).

    Returns:
        bytes: input ``images`` ``(1, S, S, 3)``, output ``mask`` ``(1, S, S)``
        int32, the argmax over the classes.
    """
    tf = require_tensorflow("TFLite conversion")
    side = image_size_of(deeplab_model)

    def serve(images):
        logits = deeplab_model(images, training=False)
        return {"mask": tf.argmax(logits, axis=-1, output_type=tf.int32)}

    content = _convert(deeplab_model, serve, side, quantization, representative_data)
    return order_outputs(content, ("mask",))


def run_detector_tflite(model_content, images, num_threads=1, xnnpack=True):
    """Runs a `detector_tflite` file on preprocessed float images, one at a time.

    Returns:
        A dict like `SSDPostprocess`'s output, stacked over the images:
        ``boxes`` ``(N, D, 4)`` relative ``xyxy``, ``classes`` int32,
        ``scores`` float32, ``count`` int32.
    """
    outputs = _run(model_content, images, num_threads, xnnpack)
    boxes, classes, scores, count = (outputs[name] for name in DETECTOR_OUTPUTS)
    return {
        "boxes": boxes[..., [1, 0, 3, 2]],
        "classes": np.rint(classes).astype(np.int32),
        "scores": scores.astype(np.float32),
        "count": np.rint(count).reshape(-1).astype(np.int32),
    }


def run_segmenter_tflite(model_content, images, num_threads=1, xnnpack=True):
    """Runs a `segmenter_tflite` file on preprocessed float images: ``(N, S, S)`` masks."""
    return _run(model_content, images, num_threads, xnnpack)["mask"].astype(np.int32)


def check_detector_tflite(model_content, ssd_model, images, min_matched=None, match_iou=0.5,
                          max_box_difference=None, num_threads=1, **postprocess_kwargs):
    """Runs a detector file beside Keras and raises `ExportCheckError` if they disagree.

    Each Keras detection is matched to an unmatched TFLite detection of the
    same class with the highest IoU, at least ``match_iou``.

    Args:
        model_content: `detector_tflite` bytes or a ``.tflite`` path.
        ssd_model: the `SSDLite` model it was converted from.
        images: preprocessed float32 ``(N, S, S, 3)`` images.
        min_matched: the share of detections that must match: matched pairs
            over the larger of the two detection counts. Default 0.99 for a
            float32 file, 0.5 for int8.
        match_iou: the IoU a match needs.
        max_box_difference: the largest allowed ``|box difference|`` of a
            matched pair (relative units); default 1e-3 for float32, none
            for int8.
        num_threads: interpreter threads.
        **postprocess_kwargs: the `SSDPostprocess` arguments the file was
            converted with (the Keras side needs the same).

    Returns:
        The report: detection counts, ``matched``, ``matched_share``,
        ``max_box_difference``, ``max_score_difference``, ``quantized`` and
        the tolerances; ``ok`` True.
    """
    import keras

    images = np.asarray(images, np.float32)
    keras_out = keras.ops.convert_to_numpy
    model = detector(ssd_model, **postprocess_kwargs)
    expected = {k: keras_out(v) for k, v in model(images, training=False).items()}
    got = run_detector_tflite(model_content, images, num_threads)
    quantized = _input_is_quantized(model_content)
    min_matched = (0.5 if quantized else 0.99) if min_matched is None else min_matched
    if max_box_difference is None and not quantized:
        max_box_difference = 1e-3
    matched, box_diffs, score_diffs = 0, [0.0], [0.0]
    for i in range(len(images)):
        pairs = match_detections(*(_detections(expected, i)), *(_detections(got, i)), match_iou)
        matched += len(pairs)
        for a, b in pairs:
            box_diffs.append(float(np.abs(expected["boxes"][i, a] - got["boxes"][i, b]).max()))
            score_diffs.append(float(abs(expected["scores"][i, a] - got["scores"][i, b])))
    total = int(max(expected["count"].sum(), got["count"].sum()))
    report = {
        "images": int(len(images)),
        "quantized": quantized,
        "keras_detections": int(expected["count"].sum()),
        "tflite_detections": int(got["count"].sum()),
        "matched": matched,
        "matched_share": matched / total if total else 1.0,
        "max_box_difference": max(box_diffs),
        "max_score_difference": max(score_diffs),
        "same_counts": bool(np.array_equal(expected["count"], got["count"])),
        "match_iou": match_iou,
        "min_matched": min_matched,
        "max_box_difference_allowed": max_box_difference,
    }
    problems = []
    if report["matched_share"] < min_matched:
        problems.append(f"{matched} of {total} detections matched (share "
                        f"{report['matched_share']:.4f} < {min_matched})")
    if max_box_difference is not None and report["max_box_difference"] > max_box_difference:
        problems.append(f"a matched box differs by {report['max_box_difference']:.2e} > "
                        f"{max_box_difference}")
    report["ok"] = not problems
    if problems:
        raise ExportCheckError("check_detector_tflite: the TFLite detector disagrees with Keras: "
                               + "; ".join(problems), report)
    return report


def check_segmenter_tflite(model_content, deeplab_model, images, min_agreement=None,
                           num_threads=1):
    """Runs a segmenter file beside Keras; `ExportCheckError` below ``min_agreement``.

    Args:
        model_content: `segmenter_tflite` bytes or a ``.tflite`` path.
        deeplab_model: the Keras model it was converted from.
        images: preprocessed float32 ``(N, S, S, 3)`` images.
        min_agreement: the share of pixels whose class must equal Keras'
            argmax; default 0.999 for float32, 0.9 for int8.
        num_threads: interpreter threads.

    Returns:
        The report: ``pixel_agreement``, ``pixels``, ``quantized``,
        ``min_agreement``, ``ok``.
    """
    import keras

    images = np.asarray(images, np.float32)
    expected = np.argmax(keras.ops.convert_to_numpy(deeplab_model(images, training=False)), -1)
    got = run_segmenter_tflite(model_content, images, num_threads)
    quantized = _input_is_quantized(model_content)
    min_agreement = (0.9 if quantized else 0.999) if min_agreement is None else min_agreement
    agreement = float(np.mean(expected == got))
    report = {"images": int(len(images)), "quantized": quantized, "pixels": int(expected.size),
              "pixel_agreement": agreement, "min_agreement": min_agreement,
              "ok": agreement >= min_agreement}
    if not report["ok"]:
        raise ExportCheckError(f"check_segmenter_tflite: {agreement:.4%} of pixels agree with "
                               f"Keras, below {min_agreement:.4%}", report)
    return report


def match_detections(boxes_a, classes_a, boxes_b, classes_b, match_iou=0.5):
    """Greedy same-class matching by IoU: ``[(index in a, index in b), ...]``.

    Each box of ``a`` in turn takes the unmatched box of ``b`` of its class
    with the highest IoU, if at least ``match_iou``.
    """
    pairs, taken = [], set()
    for i, (box, cls) in enumerate(zip(boxes_a, classes_a)):
        best, best_iou = None, match_iou
        for j, (other, other_cls) in enumerate(zip(boxes_b, classes_b)):
            if j in taken or other_cls != cls:
                continue
            iou = _iou(box, other)
            if iou >= best_iou:
                best, best_iou = j, iou
        if best is not None:
            taken.add(best)
            pairs.append((i, best))
    return pairs


def _iou(a, b):
    width = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    height = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _detections(out, i):
    n = int(out["count"][i])
    return out["boxes"][i, :n], out["classes"][i, :n]


def _num_classes(ssd_model):
    return int(ssd_model.output["classes"].shape[-1]) - 1


def _write_extra(path, names, image_size, preprocessing, outputs):
    extra = os.path.join(path, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, "labels.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    spec = preprocessing.spec(image_size)
    spec["resize"] = {"to": [image_size, image_size], "interpolation": "bilinear, antialiased",
                      "then": "no crop: the whole image, aspect ratio not kept"}
    with open(os.path.join(extra, "preprocessing.json"), "w") as f:
        json.dump({"signature": "serving_default",
                   "input": "images: uint8 (batch, H, W, 3), any H, W",
                   "inside_the_signature": spec, "outputs": outputs}, f, indent=2)


def _convert(model, serve, side, quantization, representative_data, float_scope=None,
             float_ops=()):
    """``serve`` traced at ``(1, side, side, 3)`` float32 into a SavedModel, then to TFLite.

    For int8 the converter only calibrates; the quantization pass then runs
    with the calibration statistics of the tensors under ``float_scope`` (a
    layer name) removed and those tensors and ``float_ops`` denylisted, so
    that part stays float32 while the rest is int8 (int8 input, float32
    outputs).
    """
    import keras

    tf = require_tensorflow("TFLite conversion")
    if quantization not in TASK_QUANTIZATIONS:
        raise ValueError(f"unknown quantization={quantization!r}; expected one of "
                         f"{TASK_QUANTIZATIONS}")
    if quantization == "int8" and representative_data is None:
        raise ValueError("quantization='int8' needs representative_data: preprocessed float32 "
                         "images to calibrate the activations")
    shape = (1, side, side, 3)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve,
                         input_signature=[tf.TensorSpec(shape, tf.float32, name="images")])
    with tempfile.TemporaryDirectory(prefix="keras_coordatt_tflite_") as saved:
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]

            def calibration():
                for batch in representative_data:
                    yield [np.asarray(batch, np.float32).reshape(shape)]

            converter.representative_dataset = calibration
            # What tf.lite.experimental.QuantizationDebugger does to quantize
            # with a denylist: calibrate only, then the quantization pass.
            converter._experimental_calibrate_only = True
        content = converter.convert()
    if quantization == "int8":
        from tensorflow.lite.python import convert

        content, kept_float = _drop_statistics(content, float_scope)
        content = convert.mlir_quantize(
            content, fully_quantize=False, input_data_type=tf.int8,
            output_data_type=tf.float32, denylisted_nodes=kept_float or None,
            denylisted_ops=list(float_ops) or None)
    foreign = [op for op in tflite_op_names(content)
               if op.startswith("Flex") or op == "CUSTOM"]
    if foreign:
        raise RuntimeError(f"the TFLite file needs non-builtin ops {sorted(set(foreign))}")
    return content


def _drop_statistics(calibrated, scope):
    """A calibrated file without the statistics of the tensors whose names contain ``scope``.

    Returns ``(content, names)``: the quantizer cannot quantize a tensor it
    has no range for, and the names go to its denylist.
    """
    if not scope:
        return calibrated, []
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(calibrated))
    outputs = {int(i) for subgraph in model.subgraphs for i in subgraph.outputs}
    names = []
    for subgraph in model.subgraphs:
        for index, tensor in enumerate(subgraph.tensors):
            name = _text(tensor.name)
            if scope in name or index in outputs:
                names.append(name)
                if tensor.quantization is not None and tensor.quantization.min is not None:
                    tensor.quantization = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), names


def order_outputs(model_content, names):
    """A TFLite file with its outputs put in ``names`` order and its output tensors so named.

    The converter orders a signature's outputs by no rule it documents (not
    by name, nor by the function's return order), so the order apps index is
    set here in the flatbuffer: the subgraph's output list, the tensor names,
    and the signature (name -> tensor) kept.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_content))
    if len(model.subgraphs) < 1 or not model.signatureDefs:
        raise ValueError("order_outputs: the TFLite file has no signature to name its outputs")
    signature = model.signatureDefs[0]
    index = {_text(entry.name): entry.tensorIndex for entry in signature.outputs}
    if sorted(index) != sorted(names):
        raise ValueError(f"order_outputs: the file's outputs are {sorted(index)}, not {list(names)}")
    subgraph = model.subgraphs[signature.subgraphIndex or 0]
    subgraph.outputs = np.asarray([index[name] for name in names], dtype=np.int32)
    for name in names:
        subgraph.tensors[index[name]].name = name.encode()
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def output_names(model_content):
    """The output tensor names of a TFLite file, in its output order."""
    interpreter = _allocated_interpreter(model_content, 1, xnnpack=False)
    return [detail["name"] for detail in interpreter.get_output_details()]


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _input_is_quantized(model_content):
    interpreter = _allocated_interpreter(model_content, 1, xnnpack=False)
    return interpreter.get_input_details()[0]["dtype"] != np.float32


def _run(model_content, images, num_threads, xnnpack):
    interpreter = _allocated_interpreter(model_content, num_threads, xnnpack)
    runner = interpreter.get_signature_runner()
    (input_name, input_detail), = runner.get_input_details().items()
    images = np.asarray(images, np.float32)
    expected = tuple(input_detail["shape"][1:])
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise ValueError(f"the TFLite model takes images of shape (N,) + {expected}, got "
                         f"{images.shape}")
    results = {}
    for image in images:
        value = image[None]
        if input_detail["dtype"] != np.float32:
            scale, zero_point = input_detail["quantization"]
            info = np.iinfo(input_detail["dtype"])
            value = np.clip(np.round(value / scale + zero_point), info.min, info.max)
            value = value.astype(input_detail["dtype"])
        for name, array in runner(**{input_name: value}).items():
            results.setdefault(name, []).append(np.asarray(array)[0])
    return {name: np.stack(arrays) for name, arrays in results.items()}

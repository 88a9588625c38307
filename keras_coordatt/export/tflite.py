"""Conversion to TFLite (LiteRT) with builtin ops only: classifiers, detectors, segmenters.

The conversion traces the Keras model (TensorFlow backend) at a fixed input
shape, so every shape inside the attention layers is static and the graph
lowers to builtin TFLite ops (MEAN, CONCATENATION, CONV_2D, HARD_SWISH,
LOGISTIC, MUL, ...). No Flex / SELECT_TF_OPS kernels are allowed: a model
that would need them fails to convert with the converter's own message.

- `to_tflite` (`traced_saved_model` + `convert_saved_model`): a classifier,
  float32, float16, dynamic-range or full-integer int8.
- `detector_tflite`: input ``images`` float32 ``(1, S, S, 3)``, already
  preprocessed (the Keras model's own input, so one preprocessing definition
  serves Keras, the SavedModel and the app; the formula is in
  `keras_coordatt.preprocessing.Preprocessing.spec`); with
  ``quantization="int8"`` the input is int8 with the file's scale and zero
  point (``x_int8 = round(x / scale + zero_point)``). NMS is the builtin
  ``NON_MAX_SUPPRESSION_V4``. The four outputs follow the
  ``TFLite_Detection_PostProcess`` convention that Android's and iOS's
  detector APIs read, in this order (`order_outputs` edits the flatbuffer so):

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
"""

import contextlib
import tempfile

import numpy as np

from keras_coordatt.export.backend import require_tensorflow
from keras_coordatt.export.litert import tflite_op_names
from keras_coordatt.export.saved_model import image_size_of
from keras_coordatt.tasks.postprocess import detector

QUANTIZATIONS = (None, "float16", "dynamic_range", "int8")
# The detector file's outputs, in their order (TFLite_Detection_PostProcess).
DETECTOR_OUTPUTS = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")
TASK_QUANTIZATIONS = (None, "int8")


def to_tflite(model, input_shape=None, quantization=None, representative_data=None):
    """Converts a Keras model to a TFLite flatbuffer (bytes), builtin ops only.

    Args:
        model: a `keras.Model` with one image input.
        input_shape: the input shape to trace, batch included, for example
            ``(1, 224, 224, 3)`` (what phones want: every shape static). A
            batch of None gives a model whose batch the caller sets with
            ``resize_tensor_input``. Defaults to the model's input shape with
            batch 1; unknown spatial sizes must then be given here.
        quantization: None (float32), ``"float16"`` (float16 weights),
            ``"dynamic_range"`` (int8 weights, float activations) or
            ``"int8"`` (full integer, int8 input and output).
        representative_data: for ``"int8"``, an iterable of float32 input
            batches (each of shape ``input_shape``) used to calibrate the
            activation ranges.

    Returns:
        The TFLite model as bytes.
    """
    _check_quantization("to_tflite", quantization, QUANTIZATIONS, representative_data)
    with traced_saved_model(model, input_shape) as (saved, input_shape):
        return convert_saved_model(saved, input_shape, quantization, representative_data)


@contextlib.contextmanager
def traced_saved_model(model, input_shape=None):
    """The model traced at ``input_shape`` into a temporary SavedModel.

    Going through a SavedModel freezes the variables into constants; a
    concrete function converted directly keeps resource-variable ops that the
    int8 calibrator cannot run. Tracing is the slow part for a large graph,
    so several quantizations can share one (`convert_saved_model` each).

    Yields:
        ``(path, input_shape)`` with the batch-included shape it traced.
    """
    tf = require_tensorflow("TFLite conversion")
    if input_shape is None:
        input_shape = (1,) + tuple(model.inputs[0].shape[1:])
    input_shape = tuple(input_shape)
    if any(dim is None for dim in input_shape[1:]):
        raise ValueError(
            f"to_tflite: the model '{model.name}' has input shape "
            f"{tuple(model.inputs[0].shape)} with unknown sizes; pass a fixed "
            "input_shape=(1, H, W, C) to convert it (the batch alone may be None)."
        )
    with tempfile.TemporaryDirectory(prefix="keras_coordatt_tflite_") as saved:
        model.export(
            saved,
            format="tf_saved_model",
            input_signature=[tf.TensorSpec(input_shape, tf.float32)],
            verbose=False,
        )
        yield saved, input_shape


def convert_saved_model(path, input_shape, quantization=None, representative_data=None):
    """One TFLite flatbuffer (builtin ops only) from a `traced_saved_model`."""
    tf = require_tensorflow("TFLite conversion")
    converter = tf.lite.TFLiteConverter.from_saved_model(path)
    _configure(converter, tf, tuple(input_shape), quantization, representative_data)
    return converter.convert()


def _configure(converter, tf, input_shape, quantization, representative_data):
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        converter.representative_dataset = _calibration(representative_data, input_shape)


def _check_quantization(who, quantization, known, representative_data):
    if quantization not in known:
        raise ValueError(f"{who}: unknown quantization={quantization!r}; expected one of {known}")
    if quantization == "int8" and representative_data is None:
        raise ValueError(f"{who}: quantization='int8' needs representative_data, float32 input "
                         "batches (preprocessed images) to calibrate the activations")


def _calibration(representative_data, input_shape):
    """The converter's representative dataset: each batch as the traced input shape."""

    def batches():
        for batch in representative_data:
            yield [np.asarray(batch, np.float32).reshape((-1,) + tuple(input_shape[1:]))]

    return batches


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
    _check_quantization(f"{model.name} to TFLite", quantization, TASK_QUANTIZATIONS,
                        representative_data)
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
            converter.representative_dataset = _calibration(representative_data, shape)
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


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)

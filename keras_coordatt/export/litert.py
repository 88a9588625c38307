"""Conversion to TFLite (LiteRT) with builtin ops only, and running the result.

The conversion traces the Keras model (TensorFlow backend) at a fixed input
shape, so every shape inside the attention layers is static and the graph
lowers to builtin TFLite ops (MEAN, CONCATENATION, CONV_2D, HARD_SWISH,
LOGISTIC, MUL, ...). No Flex / SELECT_TF_OPS kernels are allowed: a model
that would need them fails to convert with the converter's own message.
"""

import contextlib
import tempfile
import warnings

import numpy as np

from keras_coordatt.export.backend import require_tensorflow

QUANTIZATIONS = (None, "float16", "dynamic_range", "int8")


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
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"to_tflite: unknown quantization={quantization!r}. Expected one of "
            f"{QUANTIZATIONS}."
        )
    if quantization == "int8" and representative_data is None:
        raise ValueError(
            "to_tflite: quantization='int8' needs representative_data, an "
            "iterable of float32 input batches to calibrate activations."
        )
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

        def calibration():
            for batch in representative_data:
                yield [np.asarray(batch, dtype=np.float32).reshape((-1,) + input_shape[1:])]

        converter.representative_dataset = calibration


def _interpreter(model_content, num_threads, delegates=True):
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.interpreter import OpResolverType

    source = (
        {"model_content": bytes(model_content)}
        if isinstance(model_content, (bytes, bytearray))
        else {"model_path": str(model_content)}
    )
    resolver = (
        OpResolverType.AUTO
        if delegates
        else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    return Interpreter(
        **source, num_threads=num_threads, experimental_op_resolver_type=resolver
    )


def _allocated_interpreter(model_content, num_threads, xnnpack):
    """An interpreter with XNNPACK where it prepares, builtin kernels otherwise.

    The XNNPACK delegate of ai-edge-litert 2.3 refuses some int8 CBAM graphs,
    with an error or, for some weights, by aborting the process; the builtin
    kernels run them.
    """
    if not xnnpack:
        interpreter = _interpreter(model_content, num_threads, delegates=False)
        interpreter.allocate_tensors()
        return interpreter
    interpreter = _interpreter(model_content, num_threads)
    try:
        interpreter.allocate_tensors()
        return interpreter
    except RuntimeError as error:
        if "XNNPACK" not in str(error):
            raise
        warnings.warn(
            f"run_tflite: the XNNPACK delegate could not prepare this model "
            f"({str(error).strip()}); running it on the builtin kernels.",
            stacklevel=3,
        )
    interpreter = _interpreter(model_content, num_threads, delegates=False)
    interpreter.allocate_tensors()
    return interpreter


def tflite_op_names(model_content):
    """The builtin op names a TFLite model uses, in execution order."""
    interpreter = _interpreter(model_content, num_threads=1)
    return [op["op_name"] for op in interpreter._get_ops_details()]


def run_tflite(model_content, inputs, num_threads=1, xnnpack=True):
    """Runs a TFLite model on float inputs, one example at a time.

    Quantized (int8) inputs and outputs are (de)quantized with the model's own
    scale and zero point, so callers always pass and get float32.

    Args:
        model_content: the flatbuffer bytes or a ``.tflite`` path.
        inputs: float array of shape ``(N, ...)``; each example is run with
            the model's own batch size of 1.
        num_threads: interpreter threads.
        xnnpack: run on the XNNPACK delegate (the default, as on phones); if
            it cannot prepare the model, a warning says so and the builtin
            kernels run it. False uses the builtin kernels only.

    Returns:
        float32 array of the stacked outputs.
    """
    interpreter = _allocated_interpreter(model_content, num_threads, xnnpack)
    input_detail = interpreter.get_input_details()[0]
    output_detail = interpreter.get_output_details()[0]
    expected = tuple(input_detail["shape"][1:])
    inputs = np.asarray(inputs, dtype=np.float32)
    if tuple(inputs.shape[1:]) != expected:
        raise ValueError(
            f"run_tflite: the model takes examples of shape {expected}, got "
            f"inputs of shape {inputs.shape}."
        )
    outputs = []
    for example in inputs:
        value = example[None]
        if input_detail["dtype"] != np.float32:
            scale, zero_point = input_detail["quantization"]
            info = np.iinfo(input_detail["dtype"])
            value = np.clip(np.round(value / scale + zero_point), info.min, info.max)
            value = value.astype(input_detail["dtype"])
        interpreter.set_tensor(input_detail["index"], value)
        interpreter.invoke()
        result = interpreter.get_tensor(output_detail["index"])
        if output_detail["dtype"] != np.float32:
            scale, zero_point = output_detail["quantization"]
            result = (result.astype(np.float32) - zero_point) * scale
        outputs.append(result[0])
    return np.stack(outputs).astype(np.float32)

"""Running ``.tflite`` files with LiteRT (ai-edge-litert): one runner for every file.

`TFLiteModel` loads a file into ai-edge-litert's interpreter, on the XNNPACK
delegate as on phones (the builtin kernels where XNNPACK refuses it), and
runs it one example at a time on float inputs: an int8 input is quantized
and an int8 output dequantized with the file's own scale and zero point.
The classifier's checks (`run_tflite`), the detector's and segmenter's
(`run_detector_tflite`, `run_segmenter_tflite`) and the benchmarks, which
time its ``interpreter``, all run files through it.
"""

import warnings

import numpy as np


class TFLiteModel:
    """A ``.tflite`` file in ai-edge-litert's interpreter, allocated and ready to run.

    Args:
        model_content: the flatbuffer bytes or a ``.tflite`` path.
        num_threads: interpreter threads.
        xnnpack: run on the XNNPACK delegate (the default, as on phones); if
            it cannot prepare the model, a warning says so and the builtin
            kernels run it. False uses the builtin kernels only: the XNNPACK
            delegate of ai-edge-litert 2.3 refuses some int8 CBAM graphs with
            an error or, for some weights, by aborting the process.

    Attributes:
        interpreter: the allocated ``ai_edge_litert.interpreter.Interpreter``.
        xnnpack_refusal: XNNPACK's error when it refused the model, else None.

    Example:

        logits = TFLiteModel("exported/mobilenet_v2_ca_int8.tflite", xnnpack=False).run(x)[0]
    """

    def __init__(self, model_content, num_threads=1, xnnpack=True):
        self.xnnpack_refusal = None
        if xnnpack:
            self.interpreter = _interpreter(model_content, num_threads, delegates=True)
            try:
                self.interpreter.allocate_tensors()
                return
            except RuntimeError as error:
                if "XNNPACK" not in str(error):
                    raise
                self.xnnpack_refusal = str(error).strip()
            warnings.warn(f"run_tflite: the XNNPACK delegate could not prepare this model "
                          f"({self.xnnpack_refusal}); running it on the builtin kernels.",
                          stacklevel=2)
        self.interpreter = _interpreter(model_content, num_threads, delegates=False)
        self.interpreter.allocate_tensors()

    @property
    def quantized(self):
        """True when the file takes integer (quantized) input."""
        return self.interpreter.get_input_details()[0]["dtype"] != np.float32

    @property
    def output_names(self):
        """The output tensors' names, in the file's output order."""
        return [detail["name"] for detail in self.interpreter.get_output_details()]

    @property
    def op_names(self):
        """The builtin op names the file uses, in execution order."""
        return [op["op_name"] for op in self.interpreter._get_ops_details()]

    def set_input(self, example):
        """Sets the input to ``example`` ``(1, ...)`` float, quantized where the file takes int8."""
        detail = self.interpreter.get_input_details()[0]
        value = np.asarray(example, np.float32)
        if detail["dtype"] != np.float32:
            scale, zero_point = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            value = np.clip(np.round(value / scale + zero_point), info.min, info.max)
        self.interpreter.set_tensor(detail["index"], value.astype(detail["dtype"]))

    def run(self, inputs):
        """Every output of the file on ``inputs`` ``(N, ...)``, run one example at a time.

        Returns:
            A list in the file's output order (the order apps index), each
            output stacked over the examples; quantized outputs dequantized
            to float32, the others in their own type.
        """
        inputs = np.asarray(inputs, np.float32)
        expected = tuple(int(d) for d in self.interpreter.get_input_details()[0]["shape"][1:])
        if inputs.ndim != len(expected) + 1 or tuple(inputs.shape[1:]) != expected:
            raise ValueError(f"run_tflite: the model takes examples of shape {expected}, got "
                             f"inputs of shape {inputs.shape}.")
        details = self.interpreter.get_output_details()
        examples = []
        for example in inputs:
            self.set_input(example[None])
            self.interpreter.invoke()
            examples.append([_dequantized(self.interpreter.get_tensor(d["index"]), d)[0]
                             for d in details])
        return [np.stack(output) for output in zip(*examples)]

    def detections(self, images):
        """A `detector_tflite` file's outputs as `SSDPostprocess`'s dict, stacked over ``images``.

        Returns:
            ``boxes`` ``(N, D, 4)`` relative ``xyxy``, ``classes`` int32,
            ``scores`` float32, ``count`` int32.
        """
        boxes, classes, scores, count = self.run(images)
        return {
            "boxes": boxes[..., [1, 0, 3, 2]],
            "classes": np.rint(classes).astype(np.int32),
            "scores": scores.astype(np.float32),
            "count": np.rint(count).reshape(-1).astype(np.int32),
        }

    def masks(self, images):
        """A `segmenter_tflite` file's class masks ``(N, S, S)`` int32."""
        return self.run(images)[0].astype(np.int32)


def run_tflite(model_content, inputs, num_threads=1, xnnpack=True):
    """Runs a classifier's TFLite file on float inputs: its (first) output, float32.

    Args:
        model_content: the flatbuffer bytes or a ``.tflite`` path.
        inputs: float array ``(N, ...)``; each example runs at the file's batch of 1.
        num_threads, xnnpack: as in `TFLiteModel`.

    Returns:
        float32 array of the stacked outputs (int8 outputs dequantized).
    """
    return TFLiteModel(model_content, num_threads, xnnpack).run(inputs)[0].astype(np.float32)


def run_detector_tflite(model_content, images, num_threads=1, xnnpack=True):
    """Runs a `detector_tflite` file on preprocessed float images (`TFLiteModel.detections`)."""
    return TFLiteModel(model_content, num_threads, xnnpack).detections(images)


def run_segmenter_tflite(model_content, images, num_threads=1, xnnpack=True):
    """Runs a `segmenter_tflite` file on preprocessed float images: ``(N, S, S)`` masks."""
    return TFLiteModel(model_content, num_threads, xnnpack).masks(images)


def tflite_op_names(model_content):
    """The builtin op names a TFLite file uses, in execution order."""
    return TFLiteModel(model_content, xnnpack=False).op_names


def _interpreter(model_content, num_threads, delegates):
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.interpreter import OpResolverType

    source = ({"model_content": bytes(model_content)}
              if isinstance(model_content, (bytes, bytearray))
              else {"model_path": str(model_content)})
    resolver = (OpResolverType.AUTO if delegates
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    return Interpreter(**source, num_threads=num_threads, experimental_op_resolver_type=resolver)


def _dequantized(value, detail):
    scale, zero_point = detail["quantization"]
    if not scale:
        return value
    return (value.astype(np.float32) - zero_point) * scale

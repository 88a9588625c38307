"""Every deployment format of one classifier, each reloaded and checked against Keras.

``export_model(model, "exported/")`` writes, by default, all of:

======================================  ============================================
``saved_model/``                        serving SavedModel: uint8 images of any size
                                        in; logits, probabilities, top-k labels out
``hub_classification/``                 TF Hub format, ``__call__`` -> logits
``hub_feature_vector/``                 TF Hub format, ``__call__`` -> pooled features
``NAME_float32.tflite``                 fixed (1, H, W, 3), for phones
``NAME_float32_dynamic_batch.tflite``   (batch, H, W, 3); set the batch with
                                        ``resize_tensor_input``
``NAME_float16.tflite``                 float16 weights (half the size)
``NAME_dynamic_range.tflite``           int8 weights, float activations
``NAME_int8.tflite``                    full integer, int8 input and output
``NAME.onnx``                           only when asked for (needs tf2onnx, onnxruntime)
``labels.txt``, ``preprocessing.json``  class names; the preprocessing and each
                                        TFLite file's input/output quantization
``export_report.json``                  what was written and how each check went
======================================  ============================================

Each file is reloaded as soon as it is written and run on the same images as
the Keras model: float32 formats must agree within ``atol + rtol * scale``
on every output, where ``scale`` is the largest magnitude Keras outputs on
the check images (1e-4 + 1e-4 x scale by default). Logits are unbounded, and
float32 kernels that sum in another order differ by a share of them: up to
1.6e-5 of the scale on a trained classifier (logits to 130), which rtol
leaves six times over, while a file whose weights are off by 0.1% differs
by 2e-3 of the scale, one without its attention by more than the scale
(float16 weights: 1.6e-4). An ill-conditioned network turns rounding into
more: the tolerance is at least twice the change that one-step float32
nudges of the input and the weights make in Keras' outputs
(`keras_coordatt.export.checks.rounding_sensitivity`). float16,
dynamic-range and int8 files report their top-1 agreement with Keras and,
given labels, the accuracy change. A format that fails to convert or to
check does not stop the others and removes nothing: at the end
`ExportCheckError` names each failed file and by how much.
"""

import contextlib
import dataclasses
import json
import os
import sys
import time
from typing import Callable

import numpy as np

from keras_coordatt.export.checks import SENSITIVITY_FACTOR
from keras_coordatt.export.checks import ExportCheckError
from keras_coordatt.export.checks import rounding_sensitivity
from keras_coordatt.export.litert import TFLiteModel
from keras_coordatt.export.litert import run_tflite
from keras_coordatt.export.saved_model import class_labels
from keras_coordatt.export.saved_model import export_hub
from keras_coordatt.export.saved_model import export_serving
from keras_coordatt.export.saved_model import feature_model
from keras_coordatt.export.saved_model import image_size_of
from keras_coordatt.export.saved_model import outputs_are_probabilities
from keras_coordatt.export.tflite import convert_saved_model
from keras_coordatt.export.tflite import traced_saved_model
from keras_coordatt.preprocessing import Preprocessing
from keras_coordatt.preprocessing import preprocessing_of
from keras_coordatt.preprocessing import resize_size

FORMATS = (
    "saved_model",
    "hub_classification",
    "hub_feature_vector",
    "tflite_float32",
    "tflite_float32_dynamic_batch",
    "tflite_float16",
    "tflite_dynamic_range",
    "tflite_int8",
    "onnx",
)
# What export_model writes unless told: ONNX needs the optional
# ``tf2onnx`` and ``onnxruntime`` packages (``pip install 'keras-coordatt[onnx]'``).
DEFAULT_FORMATS = FORMATS[:-1]
# Formats whose numbers must match Keras to a tolerance; the others are quantized.
FLOAT32_FORMATS = FORMATS[:5] + ("onnx",)
TFLITE_QUANTIZATION = {
    "tflite_float32": None,
    "tflite_float32_dynamic_batch": None,
    "tflite_float16": "float16",
    "tflite_dynamic_range": "dynamic_range",
    "tflite_int8": "int8",
}
# int8 files are calibrated on at most this many images.
CALIBRATION_IMAGES = 200


def export_model(
    model,
    output_dir,
    formats=DEFAULT_FORMATS,
    labels=None,
    check_images=None,
    check_labels=None,
    representative_images=None,
    top_k=5,
    atol=1e-4,
    rtol=1e-4,
    min_agreement=None,
    name=None,
    log=print,
):
    """Writes the deployment formats of a classifier and checks each against Keras.

    Args:
        model: a `keras.Model` classifier with a square RGB input of fixed
            size (logits or softmax output). Its preprocessing is its own
            (``model.preprocessing``) or the keras.applications convention
            (`keras_coordatt.preprocessing.preprocessing_of`).
        output_dir: where to write; created if missing. Files already there
            with the same names are overwritten, others are left alone.
        formats: any of `FORMATS`; by default all but ``"onnx"``.
        labels: the class names in label order (``class_i`` by default);
            written to ``labels.txt`` and into the serving signature.
        check_images: uint8 images ``(N, H, W, 3)`` (any H, W; 1 channel is
            repeated) the checks run on. Default: 16 seeded random images.
        check_labels: their labels; then the accuracy of Keras and of every
            export is reported.
        representative_images: uint8 images to calibrate int8 activations;
            default ``check_images`` (better: a few hundred training images).
        top_k: the classes the serving signature returns.
        atol, rtol: a float32 export may differ from Keras by at most
            ``atol + rtol * scale``, ``scale`` the largest ``|output|`` of
            Keras on the check images.
        min_agreement: if given, quantized exports whose top-1 agreement
            with Keras falls below it fail.
        name: the TFLite files' stem; default the model's name.
        log: a print-like function for progress lines (None: silent).

    Returns:
        The report dict (also written to ``export_report.json``).

    Raises:
        ExportCheckError: after all formats ran, if any failed.
        ValueError: for an unknown format or a model that cannot be exported.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"export_model: unknown formats {unknown}; expected some of {FORMATS}")
    image_size = image_size_of(model)
    preprocessing = preprocessing_of(model)
    checks = CheckSet.prepare(model, image_size, preprocessing, check_images, check_labels,
                              representative_images)
    exporter = Exporter(
        model=model, output_dir=output_dir, name=name or model.name,
        labels=class_labels(labels, int(model.outputs[0].shape[-1])),
        image_size=image_size, preprocessing=preprocessing, checks=checks, top_k=top_k,
        atol=atol, rtol=rtol, min_agreement=min_agreement, log=log,
    )
    report = exporter.run(formats)
    failed = {k: v for k, v in report["exports"].items() if not v["ok"]}
    if failed:
        lines = [f"{v['file']}: {v.get('error') or _summary(k, v)}" for k, v in failed.items()]
        raise ExportCheckError(
            f"{len(failed)} of {len(formats)} exports failed (every file written is kept, "
            f"see {os.path.join(output_dir, 'export_report.json')}):\n  " + "\n  ".join(lines),
            report,
        )
    return report


@dataclasses.dataclass(frozen=True)
class CheckSet:
    """The images every export is checked on, and what Keras makes of them.

    Attributes:
        raw: uint8 ``(N, H, W, 3)`` images (the serving signature's input).
        inputs: the same after the eval preprocessing (every other format's input).
        expected: Keras' outputs on ``inputs``.
        truth: the labels, or None.
        calibration: preprocessed images that calibrate int8.
        sensitivity: how far float32 rounding of the inputs moves ``expected``
            (`rounding_sensitivity`).
    """

    raw: np.ndarray
    inputs: np.ndarray
    expected: np.ndarray
    truth: np.ndarray | None
    calibration: np.ndarray
    sensitivity: float

    @classmethod
    def prepare(cls, model, image_size, preprocessing, images, labels, representative):
        raw = _uint8_images(images, image_size)
        inputs = preprocessing.for_eval(raw, image_size).numpy()
        truth = None if labels is None else np.asarray(labels).reshape(-1)
        if truth is not None and len(truth) != len(raw):
            raise ValueError(f"export_model: {len(truth)} check_labels for {len(raw)} check_images")
        calibration = inputs if representative is None else preprocessing.for_eval(
            _uint8_images(representative, image_size), image_size).numpy()
        expected = _predictions(model, inputs)
        (sensitivity,) = rounding_sensitivity(lambda x: [_predictions(model, x)], inputs,
                                             variables=model.weights)
        return cls(raw, inputs, expected, truth, calibration, sensitivity)


@dataclasses.dataclass
class Exporter:
    """Writes one model's formats into ``output_dir``, checking each as it goes."""

    model: object
    output_dir: str
    name: str
    labels: list
    image_size: int
    preprocessing: Preprocessing
    checks: CheckSet
    top_k: int
    atol: float
    rtol: float
    min_agreement: float | None
    log: Callable | None
    report: dict = dataclasses.field(default_factory=dict)
    spec: dict = dataclasses.field(default_factory=dict)
    # TFLite input batch (1 or None) -> (traced SavedModel path, input shape).
    _traced: dict = dataclasses.field(default_factory=dict, repr=False)
    _traces: contextlib.ExitStack | None = dataclasses.field(default=None, repr=False)

    def run(self, formats):
        """Every format in turn; a failure is recorded and the next one runs."""
        os.makedirs(self.output_dir, exist_ok=True)
        with open(os.path.join(self.output_dir, "labels.txt"), "w") as f:
            f.write("\n".join(self.labels) + "\n")
        self.spec = {
            **self.preprocessing.spec(self.image_size),
            "outputs": "probabilities" if outputs_are_probabilities(self.model) else "logits",
            "labels_file": "labels.txt",
            "tflite": {},
        }
        truth = self.checks.truth
        self.report = {
            "model": self.model.name,
            "image_size": self.image_size,
            "pixel_range": self.preprocessing.spec(self.image_size)["pixel_range"],
            "classes": len(self.labels),
            "check_images": int(len(self.checks.raw)),
            "atol": self.atol,
            "rtol": self.rtol,
            "keras_accuracy": None if truth is None else _accuracy(self.checks.expected, truth),
            "exports": {},
        }
        # One traced SavedModel per TFLite input shape serves every quantization.
        with contextlib.ExitStack() as self._traces:
            for index, export_format in enumerate(formats, 1):
                self.export_one(f"[{index}/{len(formats)}]", export_format)
        return self.report

    def export_one(self, counter, export_format):
        """Writes one format, checks it, and records the outcome; never raises."""
        path = os.path.join(self.output_dir, _file_name(export_format, self.name))
        self._say(f"{counter} {export_format}: writing {path}")
        started = time.perf_counter()
        entry = {"file": path}
        try:
            self.write(export_format, path)
            entry["bytes"] = _size(path)
            entry.update(self.check(export_format, path))
            if export_format.startswith("tflite"):
                self.spec["tflite"][os.path.basename(path)] = _tflite_io(path)
        except Exception as error:  # noqa: BLE001 - recorded, reported, raised at the end
            entry["error"] = f"{type(error).__name__}: {error}"
        entry["ok"] = "error" not in entry and _passes(export_format, entry, self.min_agreement)
        entry["seconds"] = round(time.perf_counter() - started, 1)
        self.report["exports"][export_format] = entry
        self._save()
        self._say(f"    {_summary(export_format, entry)}")

    def write(self, export_format, path):
        side = self.image_size
        if export_format == "saved_model":
            export_serving(self.model, path, labels=self.labels, top_k=self.top_k,
                           image_size=side, preprocessing=self.preprocessing)
        elif export_format.startswith("hub_"):
            export_hub(self.model, path, kind=export_format[len("hub_"):], image_size=side,
                       preprocessing=self.preprocessing)
        elif export_format == "onnx":
            import tensorflow as tf

            self.model.export(path, format="onnx", verbose=False,
                              input_signature=[tf.TensorSpec((None, side, side, 3), tf.float32)])
        else:
            self._write_tflite(export_format, path)

    def _write_tflite(self, export_format, path):
        batch = None if export_format.endswith("dynamic_batch") else 1
        quantization = TFLITE_QUANTIZATION[export_format]
        if batch not in self._traced:
            self._traced[batch] = self._traces.enter_context(
                traced_saved_model(self.model, (batch, self.image_size, self.image_size, 3)))
        saved, input_shape = self._traced[batch]
        calibration = None
        if quantization == "int8":
            calibration = [image[None] for image in self.checks.calibration[:CALIBRATION_IMAGES]]
        flatbuffer = convert_saved_model(saved, input_shape, quantization, calibration)
        with open(path, "wb") as f:
            f.write(flatbuffer)

    def check(self, export_format, path):
        """Runs the written file on the check images beside Keras' outputs."""
        expected, got = self.checks.expected, self._outputs_of(export_format, path)
        sensitivity = self.checks.sensitivity
        if export_format == "hub_feature_vector":
            features = feature_model(self.model)
            expected = _predictions(features, self.checks.inputs)
            (sensitivity,) = rounding_sensitivity(lambda x: [_predictions(features, x)],
                                                  self.checks.inputs, variables=features.weights)
        scale = float(np.abs(expected).max())
        result = {"max_abs_diff": float(np.abs(got - expected).max()),
                  "output_scale": scale,
                  "rounding_sensitivity": sensitivity,
                  "tolerance": max(self.atol + self.rtol * scale,
                                   SENSITIVITY_FACTOR * sensitivity),
                  "top1_agreement": float((got.argmax(-1) == expected.argmax(-1)).mean())}
        truth = self.checks.truth
        if truth is not None and export_format != "hub_feature_vector":
            result["accuracy"] = _accuracy(got, truth)
            result["accuracy_change"] = result["accuracy"] - _accuracy(expected, truth)
        return result

    def _outputs_of(self, export_format, path):
        import keras
        import tensorflow as tf

        x = self.checks.inputs
        if export_format == "saved_model":
            served = tf.saved_model.load(path).signatures["serving_default"]
            outputs = served(images=tf.constant(self.checks.raw))
            _check_top_k(path, outputs)
            key = "probabilities" if outputs_are_probabilities(self.model) else "logits"
            return outputs[key].numpy()
        if export_format.startswith("hub_"):
            layer = keras.layers.TFSMLayer(path, call_endpoint="__call__")
            return np.asarray(layer(self.preprocessing.to_unit(x)))
        if export_format == "onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
            return session.run(None, {session.get_inputs()[0].name: x})[0]
        # int8 runs on the builtin kernels, the quantization's reference:
        # XNNPACK (ai-edge-litert 2.3) aborts on some int8 CBAM graphs.
        return run_tflite(path, x, xnnpack=export_format != "tflite_int8")

    def _save(self):
        with open(os.path.join(self.output_dir, "export_report.json"), "w") as f:
            json.dump(self.report, f, indent=2)
        with open(os.path.join(self.output_dir, "preprocessing.json"), "w") as f:
            json.dump(self.spec, f, indent=2)

    def _say(self, message):
        if self.log is not None:
            self.log(message)
            sys.stdout.flush()


def _check_top_k(path, outputs):
    """The serving signature's top-k are the largest probabilities, in order."""
    probabilities = outputs["probabilities"].numpy()
    picked = np.take_along_axis(probabilities, outputs["top_k_indices"].numpy(), axis=-1)
    best = -np.sort(-probabilities, axis=-1)[:, : picked.shape[-1]]
    if not (np.allclose(picked, outputs["top_k_probabilities"].numpy())
            and np.allclose(picked, best)):
        raise AssertionError(f"{path}: the top-k outputs are not the largest probabilities")


def _file_name(export_format, name):
    if export_format == "onnx":
        return f"{name}.onnx"
    if export_format.startswith("tflite_"):
        return f"{name}_{export_format[len('tflite_'):]}.tflite"
    return export_format


def _uint8_images(images, image_size):
    if images is None:
        rng = np.random.default_rng(0)
        side = resize_size(image_size)
        return rng.integers(0, 256, size=(16, side, side + side // 4, 3), dtype=np.uint8)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            "export_model: check and representative images must be uint8 (N, H, W, 3) "
            f"(or 1 channel), got {images.dtype} {images.shape}"
        )
    return images


def _passes(export_format, entry, min_agreement):
    if export_format in FLOAT32_FORMATS:
        return entry["max_abs_diff"] <= entry["tolerance"]
    return min_agreement is None or entry["top1_agreement"] >= min_agreement


def _summary(export_format, entry):
    if "error" in entry:
        return f"FAILED: {entry['error']}"
    size = f"{entry['bytes'] / 1e6:.2f} MB"
    diff = f"max |diff| vs Keras {entry['max_abs_diff']:.2e}"
    if export_format in FLOAT32_FORMATS:
        allowed = (f"tolerance {entry['tolerance']:.2e} for outputs up to "
                   f"{entry['output_scale']:.3g}")
        verdict = "ok" if entry["ok"] else f"FAILED: {diff} > {allowed}"
        return f"{verdict} ({size}, {diff}, {allowed})"
    text = f"{size}, top-1 agreement {100 * entry['top1_agreement']:.1f}%, {diff}"
    if "accuracy" in entry:
        text += (f", accuracy {100 * entry['accuracy']:.2f}% "
                 f"({100 * entry['accuracy_change']:+.2f} points vs Keras)")
    return ("ok" if entry["ok"] else "FAILED: top-1 agreement below min_agreement") + f" ({text})"


def _predictions(model, inputs):
    return np.asarray(model.predict(inputs, verbose=0, batch_size=32), dtype=np.float32)


def _accuracy(scores, truth):
    return float((np.asarray(scores).argmax(-1) == truth).mean())


def _size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files)


def _tflite_io(path):
    """Shape, dtype and (for int8) scale/zero point of a TFLite file's input and output."""
    interpreter = TFLiteModel(path, xnnpack=False).interpreter

    def describe(detail):
        item = {"shape": [int(d) for d in detail["shape_signature"]],
                "dtype": np.dtype(detail["dtype"]).name}
        scale, zero_point = detail["quantization"]
        if scale:
            item["quantization"] = {"scale": float(scale), "zero_point": int(zero_point),
                                    "real_value": "(q - zero_point) * scale"}
        return item

    return {"input": describe(interpreter.get_input_details()[0]),
            "output": describe(interpreter.get_output_details()[0])}

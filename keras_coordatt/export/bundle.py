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
the Keras model: float32 formats must agree within ``atol`` (1e-4 by
default) on every output; float16, dynamic-range and int8 files report their
top-1 agreement with Keras and, given labels, the accuracy change. A format
that fails to convert or to check does not stop the others and removes
nothing: at the end `ExportCheckError` names each failed file and by how much.
"""

import contextlib
import json
import os
import sys
import time

import numpy as np

from keras_coordatt.export.litert import convert_saved_model
from keras_coordatt.export.litert import run_tflite
from keras_coordatt.export.litert import traced_saved_model
from keras_coordatt.export.preprocessing import pixel_range_of
from keras_coordatt.export.preprocessing import preprocess_for_eval
from keras_coordatt.export.preprocessing import preprocessing_spec
from keras_coordatt.export.saved_model import _labels
from keras_coordatt.export.saved_model import export_hub
from keras_coordatt.export.saved_model import export_serving
from keras_coordatt.export.saved_model import feature_model
from keras_coordatt.export.saved_model import image_size_of
from keras_coordatt.export.saved_model import outputs_are_probabilities

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
# Formats whose numbers must match Keras to atol; the others are quantized.
FLOAT32_FORMATS = FORMATS[:5] + ("onnx",)
TFLITE_QUANTIZATION = {
    "tflite_float32": None,
    "tflite_float32_dynamic_batch": None,
    "tflite_float16": "float16",
    "tflite_dynamic_range": "dynamic_range",
    "tflite_int8": "int8",
}


class ExportCheckError(RuntimeError):
    """Some export failed to convert or to match Keras; the files are kept.

    ``report`` holds the whole export report (the same as
    ``export_report.json``).
    """

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


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
    min_agreement=None,
    name=None,
    log=print,
):
    """Writes the deployment formats of a classifier and checks each against Keras.

    Args:
        model: a `keras.Model` classifier with a square RGB input of fixed
            size (logits or softmax output).
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
        atol: the largest output difference a float32 export may have.
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

    def say(message):
        if log is not None:
            log(message)
            sys.stdout.flush()

    image_size = image_size_of(model)
    pixel_range = pixel_range_of(model)
    classes = int(model.outputs[0].shape[-1])
    labels = _labels(labels, classes)
    name = name or model.name
    os.makedirs(output_dir, exist_ok=True)

    raw = _check_images(check_images, image_size)
    x = preprocess_for_eval(raw, image_size, pixel_range).numpy()
    expected = np.asarray(model.predict(x, verbose=0, batch_size=32), dtype=np.float32)
    calibration = x if representative_images is None else preprocess_for_eval(
        _check_images(representative_images, image_size), image_size, pixel_range).numpy()
    truth = None if check_labels is None else np.asarray(check_labels).reshape(-1)
    if truth is not None and len(truth) != len(raw):
        raise ValueError(
            f"export_model: {len(truth)} check_labels for {len(raw)} check_images"
        )

    with open(os.path.join(output_dir, "labels.txt"), "w") as f:
        f.write("\n".join(labels) + "\n")
    spec = {
        **preprocessing_spec(image_size, pixel_range),
        "outputs": "probabilities" if outputs_are_probabilities(model) else "logits",
        "labels_file": "labels.txt",
        "tflite": {},
    }
    report = {
        "model": model.name,
        "image_size": image_size,
        "pixel_range": list(pixel_range),
        "classes": classes,
        "check_images": int(len(raw)),
        "atol": atol,
        "keras_accuracy": None if truth is None else _accuracy(expected, truth),
        "exports": {},
    }

    def save_report():
        with open(os.path.join(output_dir, "export_report.json"), "w") as f:
            json.dump(report, f, indent=2)
        with open(os.path.join(output_dir, "preprocessing.json"), "w") as f:
            json.dump(spec, f, indent=2)

    context = dict(model=model, x=x, raw=raw, expected=expected, truth=truth,
                   calibration=calibration, image_size=image_size, pixel_range=pixel_range,
                   labels=labels, top_k=top_k, traced={})
    with contextlib.ExitStack() as cleanup:
        context["cleanup"] = cleanup
        for index, export_format in enumerate(formats, 1):
            _export_one(index, export_format, formats, output_dir, name, context, report,
                        spec, atol, min_agreement, say, save_report)

    failed = {k: v for k, v in report["exports"].items() if not v["ok"]}
    if failed:
        lines = [f"{v['file']}: {v.get('error') or _summary(k, v, atol)}" for k, v in failed.items()]
        raise ExportCheckError(
            f"{len(failed)} of {len(formats)} exports failed (every file written is kept, "
            f"see {os.path.join(output_dir, 'export_report.json')}):\n  " + "\n  ".join(lines),
            report,
        )
    return report


def _export_one(index, export_format, formats, output_dir, name, context, report, spec,
                atol, min_agreement, say, save_report):
    """Writes one format, checks it, and records the outcome; never raises."""
    path = os.path.join(output_dir, _file_name(export_format, name))
    say(f"[{index}/{len(formats)}] {export_format}: writing {path}")
    started = time.perf_counter()
    entry = {"file": path}
    try:
        _write(export_format, path, context)
        entry["bytes"] = _size(path)
        entry.update(_check(export_format, path, context))
        if export_format.startswith("tflite"):
            spec["tflite"][os.path.basename(path)] = _tflite_io(path)
    except Exception as error:  # noqa: BLE001 - recorded, reported, raised at the end
        entry["error"] = f"{type(error).__name__}: {error}"
    entry["ok"] = "error" not in entry and _passes(export_format, entry, atol, min_agreement)
    entry["seconds"] = round(time.perf_counter() - started, 1)
    report["exports"][export_format] = entry
    save_report()
    say(f"    {_summary(export_format, entry, atol)}")


def _file_name(export_format, name):
    if export_format == "onnx":
        return f"{name}.onnx"
    if export_format.startswith("tflite_"):
        return f"{name}_{export_format[len('tflite_'):]}.tflite"
    return export_format


def _check_images(images, image_size):
    if images is None:
        rng = np.random.default_rng(0)
        side = int(round(image_size / 0.875))
        return rng.integers(0, 256, size=(16, side, side + side // 4, 3), dtype=np.uint8)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            "export_model: check and representative images must be uint8 (N, H, W, 3) "
            f"(or 1 channel), got {images.dtype} {images.shape}"
        )
    return images


def _write(export_format, path, c):
    model = c["model"]
    if export_format == "saved_model":
        export_serving(model, path, labels=c["labels"], top_k=c["top_k"],
                       image_size=c["image_size"], pixel_range=c["pixel_range"])
    elif export_format.startswith("hub_"):
        export_hub(model, path, kind=export_format[len("hub_"):],
                   image_size=c["image_size"], pixel_range=c["pixel_range"])
    elif export_format == "onnx":
        import tensorflow as tf

        side = c["image_size"]
        model.export(path, format="onnx", verbose=False,
                     input_signature=[tf.TensorSpec((None, side, side, 3), tf.float32)])
    else:
        side = c["image_size"]
        batch = None if export_format.endswith("dynamic_batch") else 1
        quantization = TFLITE_QUANTIZATION[export_format]
        # One traced SavedModel per input shape serves every quantization.
        if batch not in c["traced"]:
            c["traced"][batch] = c["cleanup"].enter_context(
                traced_saved_model(model, (batch, side, side, 3)))
        saved, input_shape = c["traced"][batch]
        flatbuffer = convert_saved_model(
            saved, input_shape, quantization,
            [image[None] for image in c["calibration"][:200]] if quantization == "int8" else None,
        )
        with open(path, "wb") as f:
            f.write(flatbuffer)


def _check(export_format, path, c):
    """Runs the written file on the check images beside Keras' outputs."""
    import keras
    import tensorflow as tf

    expected, x = c["expected"], c["x"]
    if export_format == "saved_model":
        served = tf.saved_model.load(path).signatures["serving_default"]
        outputs = served(images=tf.constant(c["raw"]))
        key = "probabilities" if outputs_are_probabilities(c["model"]) else "logits"
        got = outputs[key].numpy()
        probabilities = outputs["probabilities"].numpy()
        picked = np.take_along_axis(probabilities, outputs["top_k_indices"].numpy(), axis=-1)
        best = -np.sort(-probabilities, axis=-1)[:, : picked.shape[-1]]
        if not (np.allclose(picked, outputs["top_k_probabilities"].numpy())
                and np.allclose(picked, best)):
            raise AssertionError(f"{path}: the top-k outputs are not the largest probabilities")
    elif export_format.startswith("hub_"):
        low, high = c["pixel_range"]
        layer = keras.layers.TFSMLayer(path, call_endpoint="__call__")
        got = np.asarray(layer((x - low) / (high - low)))
        if export_format == "hub_feature_vector":
            expected = np.asarray(feature_model(c["model"]).predict(x, verbose=0))
    elif export_format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
    else:
        int8 = export_format == "tflite_int8"
        # int8 runs on the builtin kernels, the quantization's reference:
        # XNNPACK (ai-edge-litert 2.3) aborts on some int8 CBAM graphs.
        got = run_tflite(path, x, xnnpack=not int8)
    result = {"max_abs_diff": float(np.abs(got - expected).max()),
              "top1_agreement": float((got.argmax(-1) == expected.argmax(-1)).mean())}
    if c["truth"] is not None and export_format != "hub_feature_vector":
        result["accuracy"] = _accuracy(got, c["truth"])
        result["accuracy_change"] = result["accuracy"] - _accuracy(expected, c["truth"])
    return result


def _passes(export_format, entry, atol, min_agreement):
    if export_format in FLOAT32_FORMATS:
        return entry["max_abs_diff"] <= atol
    return min_agreement is None or entry["top1_agreement"] >= min_agreement


def _summary(export_format, entry, atol):
    if "error" in entry:
        return f"FAILED: {entry['error']}"
    size = f"{entry['bytes'] / 1e6:.2f} MB"
    diff = f"max |diff| vs Keras {entry['max_abs_diff']:.2e}"
    if export_format in FLOAT32_FORMATS:
        verdict = "ok" if entry["ok"] else f"FAILED: {diff} > atol {atol:g}"
        return f"{verdict} ({size}, {diff})"
    text = f"{size}, top-1 agreement {100 * entry['top1_agreement']:.1f}%, {diff}"
    if "accuracy" in entry:
        text += (f", accuracy {100 * entry['accuracy']:.2f}% "
                 f"({100 * entry['accuracy_change']:+.2f} points vs Keras)")
    return ("ok" if entry["ok"] else "FAILED: top-1 agreement below min_agreement") + f" ({text})"


def _accuracy(scores, truth):
    return float((np.asarray(scores).argmax(-1) == truth).mean())


def _size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files)


def _tflite_io(path):
    """Shape, dtype and (for int8) scale/zero point of a TFLite file's input and output."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)

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

"""Every deployment format of a detector or segmenter, each TFLite file checked against Keras.

``export_task_model(model, "detection", "exported/", ...)`` writes:

=================================  ===============================================
``saved_model/``                   serving SavedModel: uint8 images of any size in
                                   (`export_detector_serving`,
                                   `export_segmenter_serving`)
``<task>_float32.tflite``          fixed (1, S, S, 3), builtin ops only
``<task>_int8.tflite``             the network int8, calibrated on training images
``labels.txt``                     the class names, one a line (detection: the
                                   objects, class 0 first; segmentation: by index)
``preprocessing.json``             the task, the input size and pixel range: what
                                   `keras_coordatt.predict` reads beside a file
``export_report.json``             what was written and how each check went
=================================  ===============================================

Each TFLite file is run beside Keras on the check images (as the model sees
them, `model_input`); a file that disagrees beyond its tolerance (see
`check_detector_tflite` and `check_segmenter_tflite`) keeps every file and
the report, and `ExportCheckError` names it at the end.
"""

import itertools
import json
import os

import numpy as np

from keras_coordatt.export.checks import DETECTION_TOLERANCES
from keras_coordatt.export.checks import ExportCheckError
from keras_coordatt.export.checks import check_detector_tflite
from keras_coordatt.export.checks import check_segmenter_tflite
from keras_coordatt.export.saved_model import export_detector_serving
from keras_coordatt.export.saved_model import export_segmenter_serving
from keras_coordatt.export.saved_model import image_size_of
from keras_coordatt.export.saved_model import model_input
from keras_coordatt.export.saved_model import stretched_spec
from keras_coordatt.export.tflite import TASK_QUANTIZATIONS
from keras_coordatt.export.tflite import detector_tflite
from keras_coordatt.export.tflite import segmenter_tflite
from keras_coordatt.preprocessing import preprocessing_of

TASKS = ("detection", "segmentation")


def export_task_model(model, task, output_dir, class_names, check_examples, calibration_examples,
                      check_images=16, calibration_images=64, run=None, log=print,
                      **postprocess_kwargs):
    """Writes a detector's or segmenter's serving SavedModel, TFLite float32 and int8.

    Args:
        model: an `SSDLite` (task ``"detection"``) or `DeepLabV3`
            (``"segmentation"``) with a fixed square input.
        task: ``"detection"`` or ``"segmentation"``.
        output_dir: where to write; created if missing.
        class_names: the class names (detection: background excluded).
        check_examples: examples (dicts with an ``image``) the files are
            checked on, as the model sees them (tiles where it was tiled).
        calibration_examples: examples that calibrate int8 (training ones).
        check_images, calibration_images: how many of each to use.
        run: the training run's folder, recorded in the report.
        log: a print-like function for progress lines.
        **postprocess_kwargs: `SSDPostprocess`'s arguments for a detector
            (``activation="sigmoid"`` for a focal-loss run).

    Returns:
        The report (also written to ``export_report.json``).

    Raises:
        ExportCheckError: when a file disagrees with Keras beyond its
            tolerance; every file and the report are kept.
    """
    if task not in TASKS:
        raise ValueError(f"export_task_model: task={task!r}; expected one of {TASKS}")
    checks = _model_inputs(model, check_examples, check_images)
    calibration = _model_inputs(model, calibration_examples, calibration_images)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "labels.txt"), "w") as f:
        f.write("\n".join(class_names) + "\n")
    with open(os.path.join(output_dir, "preprocessing.json"), "w") as f:
        json.dump({"task": task, **stretched_spec(preprocessing_of(model), image_size_of(model)),
                   **postprocess_kwargs}, f, indent=2)
    report = {"run": run, "task": task, "check_images": len(checks)}
    serving = os.path.join(output_dir, "saved_model")
    if task == "detection":
        export_detector_serving(model, serving, class_names, **postprocess_kwargs)
    else:
        export_segmenter_serving(model, serving, class_names)
    report["saved_model"] = serving
    log(f"wrote {serving}")
    failed = []
    for quantization in TASK_QUANTIZATIONS:
        name = f"{task}_{quantization or 'float32'}.tflite"
        report[name] = _write_and_check(model, task, os.path.join(output_dir, name), quantization,
                                        calibration, checks, log, postprocess_kwargs)
        if not report[name]["ok"]:
            failed.append(name)
    report_path = os.path.join(output_dir, "export_report.json")
    with open(report_path, "w") as f:
        json.dump(report, f, indent=2,
                  default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
    if failed:
        raise ExportCheckError(f"{', '.join(failed)} disagree with Keras beyond tolerance (the "
                               f"files are kept); see {report_path}", report)
    return report


def _write_and_check(model, task, path, quantization, calibration, checks, log,
                     postprocess_kwargs):
    """Converts, writes and checks one TFLite file; its report entry (``ok`` False on a failed check)."""
    if task == "detection":
        content = detector_tflite(model, quantization, calibration, **postprocess_kwargs)
    else:
        content = segmenter_tflite(model, quantization, calibration)
    with open(path, "wb") as f:
        f.write(content)
    try:
        if task == "detection":
            entry = {"ok": True, **check_detector_tflite(content, model, checks,
                                                         **postprocess_kwargs)}
        else:
            entry = {"ok": True, **check_segmenter_tflite(content, model, checks)}
    except ExportCheckError as error:
        entry = {"ok": False, "error": str(error), **error.report}
    log(f"wrote {path} ({len(content) / 1e6:.2f} MB): "
        f"{'checked against Keras' if entry['ok'] else 'FAILED its check'}{_caveat(entry)}")
    return entry


def _caveat(entry):
    """What a passed detector check could not tell, when the network's own rounding widened it."""
    if not entry["ok"] or "rounding_sensitivity" not in entry:
        return ""
    default_score = DETECTION_TOLERANCES[entry["quantized"]][0]
    if entry["score_tolerance"] <= default_score:
        return ""
    return (f" (an ill-conditioned network: float32 rounding of its input and weights moves "
            f"its scores by up to {entry['rounding_sensitivity']['score']:.2g}, so the check "
            f"only shows differences beyond {entry['score_tolerance']:.2g}; train longer for "
            f"a sharper check)")


def _model_inputs(model, examples, count):
    """The first ``count`` examples' images as the model's float input ``(N, S, S, 3)``."""
    # Here, not at the top: the data pipelines are heavy to import, and only this reads examples.
    from keras_coordatt.data.core.images import image_of

    side, preprocessing = image_size_of(model), preprocessing_of(model)
    return np.stack([np.asarray(model_input(image_of(example)[None], side, preprocessing))[0]
                     for example in itertools.islice(examples, count)])

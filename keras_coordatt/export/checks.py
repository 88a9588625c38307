"""Checks that run an exported file beside the Keras model it came from.

`check_detector_tflite` and `check_segmenter_tflite` run a detector's or
segmenter's TFLite file with ai-edge-litert (`keras_coordatt.export.litert`)
beside Keras on the same images and raise `ExportCheckError`, with the
report, when it falls below the stated tolerance; `export_model` checks a
classifier's every format the same way.
"""

import numpy as np

from keras_coordatt.errors import CheckFailed
from keras_coordatt.export.litert import TFLiteModel
from keras_coordatt.tasks.boxes import box_iou
from keras_coordatt.tasks.postprocess import detector


class ExportCheckError(CheckFailed):
    """Some export failed to convert or to match Keras; the files are kept.

    ``report`` holds what the check found (for `export_model`, the whole
    export report, the same as ``export_report.json``).
    """

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


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
    runner = TFLiteModel(model_content, num_threads)
    got, quantized = runner.detections(images), runner.quantized
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
    runner = TFLiteModel(model_content, num_threads)
    got, quantized = runner.masks(images), runner.quantized
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
    ious = box_iou(np.asarray(boxes_a).reshape(-1, 4), np.asarray(boxes_b).reshape(-1, 4))
    pairs, taken = [], set()
    for i, cls in enumerate(classes_a):
        best, best_iou = None, match_iou
        for j, other_cls in enumerate(classes_b):
            if j not in taken and other_cls == cls and ious[i, j] >= best_iou:
                best, best_iou = j, ious[i, j]
        if best is not None:
            taken.add(best)
            pairs.append((i, best))
    return pairs


def _detections(out, i):
    n = int(out["count"][i])
    return out["boxes"][i, :n], out["classes"][i, :n]

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
from keras_coordatt.tasks.postprocess import SSDPostprocess
from keras_coordatt.tasks.ssdlite import anchors_of


class ExportCheckError(CheckFailed):
    """Some export failed to convert or to match Keras; the files are kept.

    ``report`` holds what the check found (for `export_model`, the whole
    export report, the same as ``export_report.json``).
    """

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


# How far a correct file's detections may be from Keras' at least (score, box coordinate
# in relative units), and the share of detections that must be within that, by the file's
# precision (quantized or not). float32 kernels that sum in another order move a settled
# network's scores by about 1e-5, so every difference must be a tie. int8 moves scores by
# hundredths on a trained network, but by up to 0.9 on an untrained one (half its
# detections past 0.1), so only half must hold: the check tells a wrong file, not a lossy one.
DETECTION_TOLERANCES = {False: (1e-3, 1e-3, 1.0), True: (0.1, 0.1, 0.5)}
# A tolerance is at least this many times the change that one-step float32 nudges of the
# input and the weights make in Keras' own outputs (`rounding_sensitivity`).
SENSITIVITY_FACTOR = 2.0
# Two boxes closer than this to NMS's IoU threshold may fall on either side of it.
IOU_MARGIN = 0.01


def check_detector_tflite(model_content, ssd_model, images, min_agreement=None,
                          score_tolerance=None, box_tolerance=None, num_threads=1,
                          **postprocess_kwargs):
    """Runs a detector file beside Keras and raises `ExportCheckError` if they disagree.

    A correct file can still list other detections than Keras where scores
    tie within its precision: which of two near-equal boxes NMS keeps, which
    near-equal scores make the top ``max_detections``. And an ill-conditioned
    network (a barely trained one) turns float32 rounding into differences
    far above it: one-step nudges of its input moved a two-step detector's
    boxes by 0.04 and scores by 0.1. So the check does not ask for the same
    list; it asks, for float32 and int8 files alike, two things of each
    detection within tolerances: the file precision's (`DETECTION_TOLERANCES`),
    or `SENSITIVITY_FACTOR` times the network's `rounding_sensitivity` where
    that is more:

    - every detection of the file is one Keras makes: some anchor's box and
      class score in Keras, before NMS, are within the tolerances of it;
    - every clear detection of Keras is in the file. Clear: its score is
      above the score threshold, the candidates' cut-off and (when the file
      holds ``max_detections``) the file's lowest score by more than the
      score tolerance, and above the score of every other box of its class
      that overlaps it past NMS's threshold, so no tie can drop it.

    The share of detections that hold must reach ``min_agreement``: all of
    them for float32, whose differences can only be ties; half for int8,
    whose rounding moves detections of an untrained network past any fixed
    tolerance. A float32 file of weights 1% off fails, and a file of another
    network in either precision.

    Args:
        model_content: `detector_tflite` bytes or a ``.tflite`` path.
        ssd_model: the `SSDLite` model it was converted from.
        images: preprocessed float32 ``(N, S, S, 3)`` images.
        min_agreement: the share of the detections checked (the file's and
            the clear ones of Keras) that must hold.
        score_tolerance, box_tolerance: a score's and a box coordinate's
            largest difference (relative units). These three default to the
            file precision's (`DETECTION_TOLERANCES`).
        num_threads: interpreter threads.
        **postprocess_kwargs: the `SSDPostprocess` arguments the file was
            converted with (the Keras side needs the same).

    Returns:
        The report: detection counts, ``explained`` (file detections Keras
        makes), ``clear`` and ``found`` (clear Keras detections, and those
        in the file), ``agreement``, ``matched_share`` (detections paired
        one to one by class and IoU >= 0.5, for information), the largest
        differences of those pairs, ``quantized``, the tolerances; ``ok``.
    """
    import keras

    images = np.asarray(images, np.float32)
    postprocess = SSDPostprocess(anchors_of(ssd_model), **postprocess_kwargs)

    def candidates(x):
        return [keras.ops.convert_to_numpy(v)
                for v in postprocess.candidates_of(ssd_model(x, training=False))]

    raw = ssd_model(images, training=False)
    boxes, scores = candidates(images)
    expected = {k: keras.ops.convert_to_numpy(v) for k, v in postprocess(raw).items()}
    runner = TFLiteModel(model_content, num_threads)
    got, quantized = runner.detections(images), runner.quantized
    box_sensitivity, score_sensitivity = rounding_sensitivity(candidates, images,
                                                               variables=ssd_model.weights)
    default_score, default_box, default_agreement = DETECTION_TOLERANCES[quantized]
    tolerance = (
        max(default_score, SENSITIVITY_FACTOR * score_sensitivity) if score_tolerance is None
        else score_tolerance,
        max(default_box, SENSITIVITY_FACTOR * box_sensitivity) if box_tolerance is None
        else box_tolerance)
    min_agreement = default_agreement if min_agreement is None else min_agreement
    explained = clear = found = matched = 0
    box_diffs, score_diffs = [0.0], [0.0]
    for i in range(len(images)):
        file_detections = _detections(got, i)
        for box, label, score in zip(*file_detections):
            explained += bool(_near(box, score, boxes[i], scores[i][:, label], tolerance).any())
        floor = _floor(scores[i], postprocess, file_detections[2])
        for box, label, score in zip(*_detections(expected, i)):
            if _clear(box, score, boxes[i], scores[i][:, label], floor,
                      postprocess.iou_threshold, tolerance[0]):
                clear += 1
                same = file_detections[1] == label
                found += bool(_near(box, score, file_detections[0][same],
                                    file_detections[2][same], tolerance).any())
        pairs = match_detections(*_detections(expected, i)[:2], *file_detections[:2])
        matched += len(pairs)
        for a, b in pairs:
            box_diffs.append(float(np.abs(expected["boxes"][i, a] - got["boxes"][i, b]).max()))
            score_diffs.append(float(abs(expected["scores"][i, a] - got["scores"][i, b])))
    file_count, keras_count = int(got["count"].sum()), int(expected["count"].sum())
    checked = file_count + clear
    report = {
        "images": int(len(images)),
        "quantized": quantized,
        "keras_detections": keras_count,
        "tflite_detections": file_count,
        "explained": explained,
        "clear": clear,
        "found": found,
        "agreement": float((explained + found) / checked) if checked else 1.0,
        "min_agreement": min_agreement,
        "score_tolerance": tolerance[0],
        "box_tolerance": tolerance[1],
        "rounding_sensitivity": {"score": score_sensitivity, "box": box_sensitivity},
        "matched": matched,
        "matched_share": matched / max(file_count, keras_count, 1),
        "max_box_difference": max(box_diffs),
        "max_score_difference": max(score_diffs),
        "same_counts": bool(np.array_equal(expected["count"], got["count"])),
    }
    report["ok"] = bool(report["agreement"] >= min_agreement)
    if not report["ok"]:
        raise ExportCheckError(
            f"check_detector_tflite: the TFLite detector disagrees with Keras: "
            f"{file_count - explained} of its {file_count} detections are none Keras makes and "
            f"{clear - found} of Keras' {clear} clear detections are missing (score tolerance "
            f"{tolerance[0]}, box tolerance {tolerance[1]}; agreement "
            f"{report['agreement']:.4f} < {min_agreement})", report)
    return report


def rounding_sensitivity(function, inputs, nudges=3, variables=()):
    """How far a network's outputs move when its numbers move by float32 rounding.

    Every input value, and every float32 value of ``variables`` (a model's
    weights: a converter that folds BatchNorm into a convolution rounds them
    again), is moved one float32 step up or down (seeded random directions),
    ``nudges`` times; kernels that sum in another order round each layer's
    values by about as much, so this is how much a correct float32 file may
    differ from Keras: nothing to speak of on a settled network, a lot on an
    ill-conditioned one. Input steps alone can miss that: a barely trained
    network whose every ReLU6 sits at 0 or 6 absorbs them within a few
    layers, while one step of its weights moves its outputs by whole units.

    Args:
        function: float32 inputs -> a list of NumPy outputs.
        inputs: float32 inputs.
        nudges: how many nudged copies to run.
        variables: Keras variables to nudge as well; each is back to its
            value when this returns, or raises.

    Returns:
        The largest ``|change|`` of each output, a list of floats.
    """
    import keras

    inputs = np.asarray(inputs, np.float32)
    reference = function(inputs)
    largest = [0.0] * len(reference)
    directions = np.random.default_rng(0)
    variables = [v for v in variables if keras.backend.standardize_dtype(v.dtype) == "float32"]
    saved = [keras.ops.convert_to_numpy(v) for v in variables]

    def step(values):
        towards = directions.choice([-np.inf, np.inf], values.shape).astype(np.float32)
        return np.nextafter(values, towards)

    try:
        for _ in range(nudges):
            for variable, value in zip(variables, saved):
                variable.assign(step(value))
            moved = function(step(inputs))
            largest = [max(most, float(np.abs(new - old).max()))
                       for most, new, old in zip(largest, moved, reference)]
    finally:
        for variable, value in zip(variables, saved):
            variable.assign(value)
    return largest


def _near(box, score, boxes, scores, tolerance):
    """Which of ``boxes`` / ``scores`` are within the (score, box) tolerance of one detection."""
    return ((np.abs(scores - score) <= tolerance[0])
            & (np.abs(boxes - box).max(axis=-1) <= tolerance[1]))


def _floor(scores, postprocess, file_scores):
    """The highest score at which a detection of an image may drop out of the output: the
    score threshold, the candidates' cut-off and, if the file's list is full, its lowest.

    ``scores`` are every anchor's class scores ``(A, C)`` in Keras.
    """
    floor = postprocess.score_threshold
    if postprocess.candidates < scores.size:
        floor = max(floor, float(np.sort(scores.ravel())[-postprocess.candidates]))
    if len(file_scores) >= postprocess.max_detections:
        floor = max(floor, float(file_scores.min()))
    return floor


def _clear(box, score, boxes, scores, floor, iou_threshold, score_tolerance):
    """Whether a Keras detection stays in the output whatever ties within the tolerance do.

    ``boxes`` / ``scores`` are every anchor's box and score of its class.
    """
    if score <= floor + score_tolerance:
        return False
    rivals = box_iou(box[None], boxes)[0] > iou_threshold - IOU_MARGIN
    # The detection's own anchor is one rival; any other scoring near it or higher may win.
    return int(np.sum(rivals & (scores >= score - score_tolerance))) <= 1


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
    """Image ``i``'s detections: boxes, classes, scores."""
    n = int(out["count"][i])
    return out["boxes"][i, :n], out["classes"][i, :n], out["scores"][i, :n]

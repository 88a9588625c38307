"""Large images through a fixed-size detector: square tiles, and detections merged back.

Aerial and microscope images are many times a detector's input. They are cut
into ``tile`` x ``tile`` windows (`tile_windows`, `window_of`), for training
(`tile_examples`, boxes clipped to each window) and for prediction
(`predict_detections`: each window predicted, its boxes shifted back, and the
windows' boxes of one object merged with class-aware NMS, as DeepForest's
``predict_tile`` does). NumPy and `keras.ops` only, so it runs on every Keras
backend.
"""

import math

import keras
import numpy as np

from keras_coordatt.preprocessing import stretch_to_input
from keras_coordatt.tasks.boxes import box_iou

MERGE_IOU = 0.15  # tiles' boxes of one object merged above this IoU (DeepForest's predict_tile)
SCORE_THRESHOLD = 0.05  # detections kept for AP


def tile_windows(width, height, tile, overlap=0.0):
    """``(x0, y0)`` corners of ``tile``-sided windows covering a ``width`` x ``height`` image.

    Neighbouring windows overlap by at least ``overlap`` of a tile; the last
    window of each row and column ends at the image's edge. An image smaller
    than a tile gets one window at (0, 0) (the tile is padded).
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"tile overlap must be in [0, 1), got {overlap}")

    def starts(length):
        if length <= tile:
            return [0]
        stride = tile * (1 - overlap)
        count = math.ceil((length - tile) / stride) + 1
        return [int(round(i * (length - tile) / (count - 1))) for i in range(count)]

    return [(x, y) for y in starts(height) for x in starts(width)]


def window_of(array, x0, y0, tile, fill=0):
    """The ``tile`` x ``tile`` window of an image or mask at ``(x0, y0)``, filled with
    ``fill`` where the array ends; and the ``(height, width)`` of the part inside it."""
    window = np.full((tile, tile) + array.shape[2:], fill, array.dtype)
    crop = array[y0:y0 + tile, x0:x0 + tile]
    window[:crop.shape[0], :crop.shape[1]] = crop
    return window, crop.shape[:2]


def _array_image(example):
    image = example["image"]
    if not isinstance(image, np.ndarray):
        raise ValueError(f"example {example.get('id', '?')!r}: 'image' is a "
                         f"{type(image).__name__}, not a uint8 array; pass load= to read it")
    return image


def tile_examples(examples, tile, overlap=0.0, min_visible=0.5, load=None):
    """Each example cut into ``tile`` x ``tile`` windows (images smaller than a tile padded with 0).

    A box goes into a window, clipped to it, when at least ``min_visible`` of
    its area is inside. Returns new examples with ``"image"`` arrays, their
    boxes in the tile's pixels, and ``"id"`` / ``"origin"`` (source id, x0, y0).
    ``load(example)`` gives an example's image (default: its ``"image"`` array).
    """
    load = load or _array_image
    tiles = []
    for number, example in enumerate(examples):
        image = load(example)
        height, width = image.shape[:2]
        boxes = np.asarray(example["boxes"], np.float32).reshape(-1, 4)
        labels = np.asarray(example["labels"], np.int32).reshape(-1)
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        for x0, y0 in tile_windows(width, height, tile, overlap):
            window, (inside_h, inside_w) = window_of(image, x0, y0, tile)
            clipped = np.clip(boxes - [x0, y0, x0, y0], 0, [inside_w, inside_h] * 2)
            visible = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
            keep = visible >= min_visible * np.maximum(areas, 1e-9)
            tiles.append({"image": window, "boxes": clipped[keep], "labels": labels[keep],
                          "id": f"{example.get('id', number)}@{x0},{y0}",
                          "origin": (example.get("id", number), x0, y0)})
    return tiles


def model_tiles(image, side, pixel_range, tile_size=None):
    """An image as the detector sees it in `predict_detections`: ``(tiles, windows, sizes)``.

    ``tiles`` are float32 ``(side, side, 3)`` arrays in ``pixel_range``, one per
    window of `tile_windows` (the whole image when ``tile_size`` is None);
    ``windows`` their ``(x0, y0)`` in the image, ``sizes`` their ``(width,
    height)`` before stretching.
    """
    height, width = image.shape[:2]
    windows = tile_windows(width, height, tile_size) if tile_size else [(0, 0)]
    tiles, sizes = [], []
    for x0, y0 in windows:
        crop = window_of(image, x0, y0, tile_size)[0] if tile_size else image
        tiles.append(keras.ops.convert_to_numpy(stretch_to_input(crop, side, pixel_range)))
        sizes.append((crop.shape[1], crop.shape[0]))
    return tiles, windows, sizes


def predict_detections(model, examples, preprocessing, tile_size=None, score_threshold=SCORE_THRESHOLD,
                       batch_size=8, activation="softmax", max_detections=100, load=None,
                       predictor=None, side=None):
    """Each example's detections in its own pixels: ``[{"boxes" xyxy, "labels", "scores"}]``.

    Whole images are resized to the model's input; with ``tile_size`` they
    are cut into tiles covering them (overlapping as little as needed), each
    tile predicted at the model's side, the boxes shifted back and merged
    with class-aware NMS at IoU ``MERGE_IOU``.

    Args:
        model: an `SSDLite` model (raw outputs; decoding and NMS are added
            with `keras_coordatt.tasks.detector`); None with ``predictor``
            and ``side``.
        examples: dicts with an ``"image"`` (uint8 ``(H, W, 3)``), or what
            ``load`` reads.
        preprocessing: the model's `Preprocessing` (its pixel range is used).
        tile_size: tile side in the image's pixels, or None for whole images.
        score_threshold: the lowest score kept.
        batch_size: tiles per forward pass.
        activation: ``"softmax"`` (multibox loss) or ``"sigmoid"`` (focal loss).
        max_detections: detections per tile (or whole image) before the merge.
        load: ``load(example)`` -> uint8 image, for examples that hold a path.
        predictor: what runs the detector instead of Keras, e.g. an exported
            file: ``predictor(images)`` takes preprocessed float32 tiles
            ``(N, S, S, 3)`` and returns `SSDPostprocess`'s dict (relative
            ``xyxy`` boxes, ``classes``, ``scores``, ``count``), such as
            ``lambda x: run_detector_tflite(content, x)`` for a file converted
            with the same ``score_threshold``, ``activation`` and
            ``max_detections``.
        side: the detector's input side (default: ``model``'s).
    """
    from keras_coordatt.tasks.postprocess import detector

    load = load or _array_image
    side = side or model.input.shape[1]
    if predictor is None:
        keras_detector = detector(model, score_threshold=score_threshold, activation=activation,
                                  max_detections=max_detections)

        def predictor(tiles):
            return keras_detector(tiles, training=False)
    results = []
    for example in examples:
        image = load(example)
        height, width = image.shape[:2]
        crops, windows, scales = model_tiles(image, side, preprocessing.pixel_range, tile_size)
        boxes, labels, scores = [], [], []
        for start in range(0, len(crops), batch_size):
            out = predictor(np.stack(crops[start:start + batch_size]))
            out = {k: keras.ops.convert_to_numpy(v) for k, v in out.items()}
            for row in range(len(out["count"])):
                index = start + row
                count = int(out["count"][row])
                (x0, y0), (w, h) = windows[index], scales[index]
                boxes.append(out["boxes"][row, :count] * [w, h, w, h] + [x0, y0, x0, y0])
                labels.append(out["classes"][row, :count])
                scores.append(out["scores"][row, :count])
        boxes = np.concatenate(boxes).astype(np.float32)
        boxes = np.clip(boxes, 0, [width, height, width, height])
        labels, scores = np.concatenate(labels).astype(np.int32), np.concatenate(scores)
        if len(windows) > 1 and len(boxes):
            keep = class_nms(boxes, labels, scores, MERGE_IOU)
            boxes, labels, scores = boxes[keep], labels[keep], scores[keep]
        results.append({"boxes": boxes, "labels": labels, "scores": scores})
    return results


def class_nms(boxes, labels, scores, iou_threshold):
    """Indices kept by greedy class-aware NMS (NumPy), best score first: a box is dropped
    when its IoU with a kept box of its class is above ``iou_threshold``."""
    boxes = np.asarray(boxes, np.float64)
    order = np.argsort(-np.asarray(scores), kind="stable")
    suppressed = np.zeros(len(boxes), bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        iou = box_iou(boxes[i:i + 1], boxes)[0]
        suppressed |= (iou > iou_threshold) & (labels == labels[i])
    return np.asarray(keep, np.int64)

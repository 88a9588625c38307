"""Predictions and scores of a trained model, for every task: `predict`, `evaluate`.

A model is a `keras.Model`, a ``.keras`` file (a training run's
``model.keras``), a training run's folder, or an exported ``.tflite`` file
(run by `keras_coordatt.export.litert.TFLiteModel`). What it needs comes
with it: the task from its outputs; the class names from the run's
``metrics.json`` beside it, or the ``labels.txt`` beside an exported file;
the preprocessing from the model, or the ``preprocessing.json`` beside the
file; a run's tiling and detection loss from its ``config.json``.

`predict` gives one result per image (a file or a uint8 ``(H, W, 3)``
array), plain data:

- classification: ``{"image", "task", "top": [{"class", "name", "score"}]}``,
  the ``top_k`` classes by probability;
- detection: ``{"image", "task", "detections": [{"box", "class", "name",
  "score"}]}``, best first, each box ``[x0, y0, x1, y1]`` in the image's
  pixels;
- segmentation: ``{"image", "task", "mask", "shares"}``: the class of each
  pixel (uint8 ``(H, W)``, at the image's size) and each class's share of the
  pixels.

`write_predictions` writes them into a folder (``predictions.json``, each
detection image with its boxes drawn, each mask as a palette PNG whose values
are the class indices, as Pascal VOC's are). `evaluate` scores a run on any
split of its data or of another source, and a classifier file on a source.
``keras-coordatt predict`` and ``keras-coordatt evaluate`` are the same on
the command line.

Example:

    import keras_coordatt

    (result,) = keras_coordatt.predict("runs/ca/model.keras", "cell.png")
    print(result["top"][0])  # {'class': 3, 'name': 'defective (100%)', 'score': 0.91}
"""

import dataclasses
import json
import os

import keras
import numpy as np

from keras_coordatt.preprocessing import Preprocessing
from keras_coordatt.preprocessing import preprocessing_of
from keras_coordatt.preprocessing import stretch_to_input
from keras_coordatt.tasks.ssdlite import anchors_of

TASKS = ("classification", "detection", "segmentation")
# The detections `predict` keeps by default: what a trained detector is sure
# enough of to show; evaluation keeps everything from 0.05 for AP.
SCORE_THRESHOLD = 0.3
BATCH = 16


@dataclasses.dataclass
class Predictor:
    """A trained model ready for `predict`: what runs it and what it needs.

    Attributes:
        task: one of `TASKS`.
        side: the model's square input side.
        preprocessing: the `Preprocessing` it expects.
        class_names: each class index's name (detection: the objects).
        model: the Keras model, or None for a ``.tflite`` file.
        tflite: the `TFLiteModel` of a ``.tflite`` file, or None.
        tile_size: a detector predicts large images on tiles of this many
            pixels (None: each image whole).
        activation: a detector's class activation, ``"softmax"`` or
            ``"sigmoid"`` (a focal-loss run).
        probabilities: a classifier's outputs are probabilities (else logits).
        source: what it was loaded from.
        notes: what was assumed for want of a file saying it.
    """

    task: str
    side: int
    preprocessing: Preprocessing
    class_names: list
    model: object = None
    tflite: object = None
    tile_size: int | None = None
    activation: str = "softmax"
    probabilities: bool = False
    source: str = ""
    notes: list = dataclasses.field(default_factory=list)

    def __call__(self, images, top_k=5, score_threshold=SCORE_THRESHOLD):
        """`predict` with this model: one result per image."""
        images = [images] if _is_one_image(images) else list(images)
        arrays = [_read(image) for image in images]  # every file checked before any work
        if self.task == "classification":
            results = self._classify(arrays, top_k)
        elif self.task == "detection":
            results = self._detect(arrays, score_threshold)
        else:
            results = self._segment(arrays)
        return [{"image": _name(image, index), "task": self.task, **result}
                for index, (image, result) in enumerate(zip(images, results))]

    def name(self, index):
        """Class ``index``'s name; ``class_<index>`` past the names (a detector's or
        segmenter's file without its labels.txt)."""
        index = int(index)
        return self.class_names[index] if index < len(self.class_names) else f"class_{index}"

    def classify(self, inputs):
        """Class probabilities ``(N, C)`` of preprocessed inputs ``(N, S, S, 3)``."""
        outputs = np.concatenate([self._run(inputs[start:start + BATCH])
                                  for start in range(0, len(inputs), BATCH)])
        return outputs if self.probabilities else _softmax(outputs)

    def _run(self, inputs):
        if self.tflite is not None:
            return self.tflite.run(inputs)[0].astype(np.float32)
        return keras.ops.convert_to_numpy(self.model(inputs, training=False)).astype(np.float32)

    def _classify(self, images, top_k):
        import tensorflow as tf

        inputs = np.stack([self.preprocessing.for_eval(tf.constant(image), self.side).numpy()
                           for image in images])
        results = []
        for row in self.classify(inputs):
            best = np.argsort(-row, kind="stable")[:top_k]
            results.append({"top": [{"class": int(c), "name": self.name(c),
                                     "score": float(row[c])} for c in best]})
        return results

    def _detect(self, images, score_threshold):
        from keras_coordatt.tasks.tiling import predict_detections

        predictor = None if self.tflite is None else self.tflite.detections
        found = predict_detections(
            self.model, [{"image": image} for image in images], self.preprocessing,
            self.tile_size, score_threshold=score_threshold, activation=self.activation,
            predictor=predictor, side=self.side)
        results = []
        for one in found:
            # A file keeps the threshold it was converted with; the rest go here.
            keep = np.flatnonzero(one["scores"] > score_threshold)
            results.append({"detections": [
                {"box": [round(float(v), 2) for v in one["boxes"][i]],
                 "class": int(one["labels"][i]), "name": self.name(one["labels"][i]),
                 "score": float(one["scores"][i])} for i in keep]})
        return results

    def _segment(self, images):
        import tensorflow as tf

        if self.tflite is None:
            from keras_coordatt.training.tasks import predict_masks

            masks = predict_masks(self.model, [{"image": image} for image in images],
                                  self.preprocessing)
        else:
            masks = []
            for image in images:
                x = stretch_to_input(image[None], self.side, self.preprocessing.pixel_range)
                mask = self.tflite.masks(np.asarray(x))[0]
                masks.append(tf.image.resize(mask[..., None], image.shape[:2],
                                             method="nearest")[..., 0].numpy().astype(np.uint8))
        results = []
        for mask in masks:
            counts = np.bincount(mask.ravel())
            results.append({"mask": mask, "shares": {
                self.name(c): round(float(n) / mask.size, 4) for c, n in enumerate(counts) if n}})
        return results


def predict(model, images, top_k=5, score_threshold=SCORE_THRESHOLD, tile_size=None):
    """Predictions of a trained model on images, one result per image (see the module).

    Args:
        model: a `keras.Model`, a ``.keras`` file, a training run's folder,
            a ``.tflite`` file, or a `Predictor` (`load_predictor`: load once,
            predict many times).
        images: image files or uint8 ``(H, W, 3)`` arrays (or one of either).
        top_k: classes per image (classification).
        score_threshold: the lowest detection score kept (detection).
        tile_size: predict large images on tiles of this many pixels
            (detection; default: the run's own, else whole images).

    Returns:
        A list of dicts, one per image.

    Example:

        results = keras_coordatt.predict("runs/forest", ["site.png"])
        for detection in results[0]["detections"]:
            print(detection["name"], detection["score"], detection["box"])
    """
    return load_predictor(model, tile_size)(images, top_k, score_threshold)


def load_predictor(model, tile_size=None):
    """The `Predictor` of a model, a ``.keras`` or ``.tflite`` file, or a run's folder.

    A bad path is a ValueError naming it.
    """
    if isinstance(model, Predictor):
        return model
    if isinstance(model, keras.Model):
        return _keras_predictor(model, None, tile_size, source=model.name)
    path = os.fspath(model)
    if os.path.isdir(path):
        model_file = os.path.join(path, "model.keras")
        if not os.path.isfile(model_file):
            raise ValueError(f"{path}: no model.keras; a training run writes it when it ends "
                             "(run the same command again to finish the run)")
        path = model_file
    elif not os.path.isfile(path):
        raise ValueError(f"no model file or training run folder {path!r}")
    if path.endswith(".tflite"):
        return _tflite_predictor(path, tile_size)
    if not path.endswith(".keras"):
        raise ValueError(f"{path}: not a model; pass a .keras or .tflite file or a training "
                         "run's folder")
    loaded = keras.saving.load_model(path, compile=False)
    return _keras_predictor(loaded, os.path.dirname(os.path.abspath(path)), tile_size, path)


def task_of(model):
    """What a Keras model does, from its outputs: one of `TASKS`."""
    output = model.output
    if isinstance(output, dict) and {"boxes", "classes"} <= set(output):
        if "count" in output:
            raise ValueError(f"'{model.name}' decodes its detections already (a detector()); "
                             "pass the SSDLite model it was built on")
        return "detection"
    if not isinstance(output, dict) and len(output.shape) in (2, 4):
        return "classification" if len(output.shape) == 2 else "segmentation"
    shapes = keras.tree.map_structure(lambda t: tuple(t.shape), output)
    raise ValueError(f"'{model.name}' has outputs {shapes}: neither a classifier's (B, C), a "
                     "segmenter's (B, H, W, C) nor an SSD detector's {'boxes', 'classes'}")


def _keras_predictor(model, folder, tile_size, source):
    from keras_coordatt.export.saved_model import image_size_of
    from keras_coordatt.export.saved_model import outputs_are_probabilities

    task, notes = task_of(model), []
    config = _run_config(folder)
    if task == "detection" and config is not None and anchors_of(model) is None:
        from keras_coordatt.training.networks import task_anchors

        # A model.keras saved before its boxes layer kept the anchors: the config has them.
        model.anchors = task_anchors(config)
    if task == "detection":
        classes = int(model.output["classes"].shape[-1]) - 1  # background first
    else:
        classes = int(keras.tree.flatten(model.output)[0].shape[-1])
    names = _names_from(os.path.join(folder, "metrics.json") if folder else None, classes,
                        notes)
    activation = "softmax"
    if config is not None:
        preprocessing = config.preprocessing
        activation = "sigmoid" if config.detection_loss == "focal" else "softmax"
        tile_size = tile_size or config.tile_size
    else:
        preprocessing = preprocessing_of(model)
        if task == "detection":
            notes.append("no run's config.json beside the model: softmax class scores assumed")
    return Predictor(task, image_size_of(model), preprocessing, names, model=model,
                     tile_size=tile_size, activation=activation,
                     probabilities=task == "classification" and outputs_are_probabilities(model),
                     source=os.fspath(source), notes=notes)


def _tflite_predictor(path, tile_size):
    from keras_coordatt.export.litert import TFLiteModel

    runner = TFLiteModel(path)
    details = runner.interpreter.get_output_details()
    if len(details) == 4:
        task, classes = "detection", None
    elif len(details) == 1 and len(details[0]["shape"]) in (2, 3):
        task = "classification" if len(details[0]["shape"]) == 2 else "segmentation"
        classes = int(details[0]["shape"][-1]) if task == "classification" else None
    else:
        raise ValueError(f"{path}: outputs {[tuple(d['shape']) for d in details]} are none of a "
                         "classifier's, segmenter's or detector's TFLite file of this package")
    folder, notes = os.path.dirname(os.path.abspath(path)), []
    names = _names_from(os.path.join(folder, "labels.txt"), classes, notes)
    spec_path = os.path.join(folder, "preprocessing.json")
    spec = {}
    if os.path.isfile(spec_path):
        with open(spec_path) as f:
            spec = json.load(f)
    else:
        notes.append(f"no preprocessing.json beside {path}: pixels mapped to [-1, 1] "
                     "(MobileNet's range)")
    crop = spec.get("resize", {}).get("crop_fraction")
    preprocessing = Preprocessing(**{"pixel_range": tuple(spec.get("pixel_range", (-1, 1))),
                                     **({"crop_fraction": crop} if crop else {})})
    side = int(runner.interpreter.get_input_details()[0]["shape"][1])
    return Predictor(task, side, preprocessing, names, tflite=runner, tile_size=tile_size,
                     probabilities=spec.get("outputs") == "probabilities", source=path,
                     notes=notes)


def _names_from(path, classes, notes):
    """Class names from a run's ``metrics.json`` or a ``labels.txt``; ``class_<i>`` else."""
    names = None
    if path and os.path.isfile(path):
        with open(path) as f:
            names = (json.load(f).get("class_names") if path.endswith(".json")
                     else [line.strip() for line in f if line.strip()])
    if names is None:
        notes.append("no class names beside the model: classes are named class_0, class_1, ...")
        names = [f"class_{i}" for i in range(classes or 0)]
    elif classes is not None and len(names) != classes:
        raise ValueError(f"{path} names {len(names)} classes, but the model has {classes}")
    return list(names)


def _run_config(folder):
    """The `TrainConfig` of the run folder ``folder``, or None when it holds none."""
    path = folder and os.path.join(folder, "config.json")
    if not path or not os.path.isfile(path):
        return None
    from keras_coordatt.training.config import load_config

    return load_config(path)


def evaluate(model, data=None, split=None, weights="last", data_dir=None):
    """Scores a trained model on a split of its data or of another source.

    Args:
        model: a training run's folder, of any task; or a classifier's
            ``.keras`` or ``.tflite`` file, with ``data``.
        data: the source to score on (``folder:PATH``, ``voc:PATH``,
            ``coco:PATH``, ``masks:PATH``, ``tfds:NAME``, ``elpv``, ...);
            default: the run's dataset.
        split: the split to score; default: the run's eval split, else the
            source's.
        weights: a run's ``"last"`` or ``"best"`` weights.
        data_dir: tensorflow-datasets' data folder (default: the run's).

    Returns:
        ``(metrics, path)``: accuracy and per-class accuracy (classification),
        COCO AP / VOC mAP / precision-recall (detection) or mIoU
        (segmentation); ``path`` the ``eval_<split>_<weights>.json`` written
        in a run's folder, None for a file.
    """
    path = os.fspath(model)
    config = _run_config(path) if os.path.isdir(path) else None
    if os.path.isdir(path) and config is None:
        raise ValueError(f"{path}: no config.json; evaluate takes a training run's folder or a "
                         "classifier's .keras or .tflite file")
    from keras_coordatt.training.tasks import eval_file
    from keras_coordatt.training.tasks import evaluate_run

    if config is not None and config.task != "classification":
        return evaluate_run(path, split, weights, data)
    if config is None and not data:
        raise ValueError(f"{path}: a model file is scored on --data (folder:PATH, tfds:NAME, "
                         "elpv); a run's folder on its own data")
    predictor = load_predictor(path)
    if predictor.task != "classification":
        raise ValueError(f"{path} is a {predictor.task} model: evaluate its training run's "
                         "folder, which knows its data and tiling")
    if config is not None:
        weights_path = os.path.join(path, f"{weights}.weights.h5")
        if not os.path.isfile(weights_path):
            raise ValueError(f"{weights_path}: no such weights file (weights: 'last' or 'best')")
        predictor.model.load_weights(weights_path)
        data, data_dir = data or config.dataset, data_dir or config.data_dir
        split = split or (config.eval_split if data == config.dataset else None)
    metrics = classification_scores(predictor, data, split, data_dir)
    if config is None:
        return {"model": path, **metrics}, None
    metrics = {"run": path, "weights": weights, **metrics}
    own = data == config.dataset
    written = os.path.join(path, eval_file(metrics["split"], weights, None if own else data))
    with open(written, "w") as f:
        json.dump(metrics, f, indent=2)
    return metrics, written


def classification_scores(predictor, data, split=None, data_dir=None):
    """A classifier's accuracy, and per class, on a split of a source (default: its eval split)."""
    from keras_coordatt.data import load_images
    from keras_coordatt.data import open_source

    source = open_source(data, predictor.side, data_dir, predictor.preprocessing.crop_fraction)
    split = split or source.default_eval_split
    images, labels, names = load_images(data, split, None, predictor.side, data_dir,
                                        predictor.preprocessing.crop_fraction)
    if list(names) != list(predictor.class_names):
        raise ValueError(f"{data} has the classes {names}, the model {list(predictor.class_names)}"
                         "; score it on data of its own classes")
    inputs = np.asarray(predictor.preprocessing.for_eval(images, predictor.side))
    correct = predictor.classify(inputs).argmax(-1) == labels
    return {"data": data, "split": split, "examples": int(len(labels)),
            "accuracy": float(correct.mean()),
            "class_accuracy": {name: float(correct[labels == c].mean())
                               for c, name in enumerate(names) if np.any(labels == c)}}


def write_predictions(results, images, output_dir):
    """Writes `predict`'s results into ``output_dir``; returns the files written.

    ``predictions.json`` holds every result (a mask as the name of its PNG);
    each detection image is drawn with its boxes (``<image>_detections.png``);
    each mask is ``<image>_mask.png``, a palette PNG of class indices.
    """
    images = [images] if _is_one_image(images) else list(images)
    os.makedirs(output_dir, exist_ok=True)
    written, stems, plain = [], set(), []
    for index, (result, image) in enumerate(zip(results, images)):
        stem = os.path.splitext(os.path.basename(result["image"]))[0]
        stem = stem if stem not in stems else f"{stem}_{index}"
        stems.add(stem)
        result = dict(result)
        if result["task"] == "detection":
            written.append(os.path.join(output_dir, f"{stem}_detections.png"))
            _draw_detections(_read(image), result["detections"], written[-1])
        elif result["task"] == "segmentation":
            written.append(os.path.join(output_dir, f"{stem}_mask.png"))
            _write_mask(result.pop("mask"), written[-1])
            result["mask_file"] = os.path.basename(written[-1])
        plain.append(result)
    written.append(os.path.join(output_dir, "predictions.json"))
    with open(written[-1], "w") as f:
        json.dump(plain, f, indent=2)
    return written


def _draw_detections(image, detections, path):
    from PIL import Image
    from PIL import ImageDraw

    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    width = max(1, round(max(image.shape[:2]) / 300))
    for detection in detections:
        x0, y0, x1, y1 = detection["box"]
        draw.rectangle((x0, y0, x1, y1), outline=(255, 40, 40), width=width)
        draw.text((x0 + 2, y0 + 1), f"{detection['name']} {detection['score']:.2f}",
                  fill=(255, 255, 0))
    picture.save(path)


def _write_mask(mask, path):
    from PIL import Image

    from keras_coordatt.data.segmentation.voc import voc_palette

    picture = Image.fromarray(mask.astype(np.uint8))
    picture.putpalette(voc_palette(256))  # the indices stay; the image becomes a palette one
    picture.save(path)


def _is_one_image(images):
    return isinstance(images, (str, os.PathLike)) or (
        isinstance(images, np.ndarray) and images.ndim == 3)


def _read(image):
    """An image file or array as uint8 ``(H, W, 3)``; a ValueError names a bad one."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"an image array must be uint8 (H, W, 3), got {image.dtype} "
                             f"{image.shape}")
        return image
    from keras_coordatt.data.core.images import read_image

    if not os.path.isfile(image):
        raise ValueError(f"no image file {os.fspath(image)!r}")
    return read_image(image)


def _name(image, index):
    return os.fspath(image) if isinstance(image, (str, os.PathLike)) else f"image_{index}"


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)

"""The trainer's detection and segmentation parts: network, data, compile and evaluation.

``keras-coordatt train --task detection`` trains SSDLite on the config's
backbone (`keras_coordatt.tasks.SSDLite`), ``--task segmentation`` DeepLabV3
(`keras_coordatt.tasks.DeepLabV3`), with the classifier's optimizer, schedule,
checkpoints, resume and strategies. At the end the eval split is scored with
the field's tools: COCO AP/AP50/AP75 (pycocotools), VOC mAP@0.5 and
precision/recall at IoU 0.4 (DeepForest's protocol) for detection, mIoU
(``keras.metrics.MeanIoU``, ignore label 255) for segmentation, on whole
images (tiled detection merges the tiles' boxes with NMS).
"""

import keras
import numpy as np

from keras_coordatt.data.core.images import image_of
from keras_coordatt.data.detection.pipeline import DetectionPipelineOptions
from keras_coordatt.data.segmentation.pipeline import SegmentationPipelineOptions
from keras_coordatt.data.segmentation.source import IGNORE_LABEL
from keras_coordatt.data.task_data import load_task_datasets
from keras_coordatt.preprocessing import stretch_to_input
from keras_coordatt.tasks.ssd_loss import SSDBoxLoss
from keras_coordatt.tasks.ssd_loss import SSDClassificationLoss
from keras_coordatt.tasks.evaluation import detection_scores
from keras_coordatt.tasks.tiling import predict_detections
from keras_coordatt.training.networks import task_anchors
from keras_coordatt.training.networks import task_model
from keras_coordatt.training.recipe import jit_compile
from keras_coordatt.training.recipe import make_optimizer



def task_pipeline_options(config):
    """The detection or segmentation pipeline options a config asks for."""
    if config.task == "detection":
        augment = None if config.detection_augment == "none" else config.detection_augment
        return DetectionPipelineOptions(
            image_size=config.image_size, batch_size=config.batch_size,
            anchors=task_anchors(config), preprocessing=config.preprocessing, augment=augment,
            iou_threshold=config.match_iou, seed=config.seed, deterministic=config.deterministic)
    return SegmentationPipelineOptions(
        image_size=config.image_size, batch_size=config.batch_size,
        preprocessing=config.preprocessing, aerial=config.detection_augment == "aerial",
        repeats=max(1, config.repeats), seed=config.seed)


def load_task_data(config, train=True):
    """The config's `TaskDatasets` (without its training examples when ``train`` is False)."""
    return load_task_datasets(
        config.task, config.dataset, task_pipeline_options(config),
        train_split=config.train_split if train else None, eval_split=config.eval_split, data_dir=config.data_dir,
        limit_train=config.limit_train, limit_eval=config.limit_eval,
        tile_size=config.tile_size, tile_overlap=config.tile_overlap, eval_spec=config.eval_dataset)


def compile_task(model, config, steps_per_epoch, num_classes, new_layers=()):
    """Compiles with the config's SGD and schedule and the task's losses (and mIoU)."""
    optimizer = make_optimizer(config, steps_per_epoch, new_layers)
    if config.task == "detection":
        loss = {"classes": SSDClassificationLoss(config.detection_loss), "boxes": SSDBoxLoss()}
        metrics = None
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                          ignore_class=IGNORE_LABEL)
        metrics = [keras.metrics.MeanIoU(num_classes, ignore_class=IGNORE_LABEL,
                                         sparse_y_pred=False, name="mean_iou")]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile(config))


def monitored(task, logs):
    """What "best" means per task, a number in [0, 1] that grows when the model gets better:
    held-out accuracy, held-out mIoU, or ``1 / (1 + held-out loss)`` for detection."""
    if task == "classification":
        return logs.get("val_accuracy", -1.0)
    if task == "segmentation":
        return logs.get("val_mean_iou", -1.0)
    return 1.0 / (1.0 + logs.get("val_loss", float("inf")))


def evaluate_detection(model, datasets, config):
    """COCO AP/AP50/AP75, VOC mAP@0.5 and precision/recall at IoU 0.4 on the eval images."""
    activation = "sigmoid" if config.detection_loss == "focal" else "softmax"
    detections = predict_detections(model, datasets.eval_examples, config.preprocessing,
                                     config.tile_size, activation=activation, load=image_of)
    scores = detection_scores(datasets.eval_examples, detections, datasets.class_names,
                              datasets.category_ids)
    return scores, detections


def predict_masks(model, examples, preprocessing, batch_size=8):
    """Each example's class mask at its own size (logits resized bilinearly, then argmax;
    NumPy in and out, so the model may be any backend's)."""
    side = model.input.shape[1]
    masks = []
    for start in range(0, len(examples), batch_size):
        chunk = [image_of(e) for e in examples[start:start + batch_size]]
        x = np.stack([np.asarray(stretch_to_input(image, side, preprocessing.pixel_range))
                      for image in chunk])
        logits = keras.ops.convert_to_numpy(model(x, training=False)).astype(np.float32)
        for image, row in zip(chunk, logits):
            full = keras.ops.image.resize(row, image.shape[:2], interpolation="bilinear")
            masks.append(np.argmax(keras.ops.convert_to_numpy(full), axis=-1).astype(np.uint8))
    return masks


def evaluate_segmentation(model, datasets, config):
    """mIoU (ignore label 255), per-class IoU and pixel accuracy on the eval images at full size."""
    from keras_coordatt.data.segmentation.source import mask_of
    from keras_coordatt.tasks.evaluation import mean_iou

    predicted = predict_masks(model, datasets.eval_examples, config.preprocessing)
    truth = [mask_of(e) for e in datasets.eval_examples]
    scores = mean_iou(truth, predicted, datasets.num_classes, ignore_class=IGNORE_LABEL,
                      class_names=datasets.class_names)
    return scores, predicted


def load_run(run_dir, weights="last", split=None, train=False, data=None):
    """A finished detection or segmentation run: ``(config, model with its weights, datasets)``.

    Args:
        run_dir: the run's folder (its ``config.json`` and weights).
        weights: ``"last"`` or ``"best"`` (``<weights>.weights.h5`` in the folder).
        split: the eval split to load (default: the run's, or ``data``'s).
        train: also read the training examples (int8 calibration needs them).
        data: another source of the run's classes to load instead of its own
            (``voc:PATH``, ``coco:PATH``, ``masks:PATH``, ...).
    """
    import dataclasses
    import json
    import os

    from keras_coordatt.training.config import TrainConfig

    config_path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(config_path):
        raise ValueError(f"{run_dir}: no config.json; this takes a training run's folder")
    with open(config_path) as f:
        config = TrainConfig(**json.load(f))
    if config.task == "classification":
        raise ValueError(f"{run_dir} is a classification run: export its model.keras, and its "
                         "metrics.json has its held-out accuracy")
    weights_path = os.path.join(run_dir, f"{weights}.weights.h5")
    if not os.path.isfile(weights_path):
        raise ValueError(f"{weights_path}: no such weights file (weights: 'last' or 'best', "
                         "written at the end of each epoch)")
    if data:
        config = dataclasses.replace(config, dataset=data, eval_dataset=None, eval_split=split)
    elif split:
        config = dataclasses.replace(config, eval_split=split)
    datasets = load_task_data(config, train)
    trained_on = _class_names(run_dir)
    if data and trained_on is not None and list(datasets.class_names) != trained_on:
        raise ValueError(f"{data} has the classes {list(datasets.class_names)}, the run "
                         f"{trained_on}; score it on data of its own classes")
    model = task_model(config, datasets.num_classes)
    model.load_weights(weights_path)
    return config, model, datasets


def evaluate_run(run_dir, split=None, weights="last", data=None):
    """Scores a finished detection or segmentation run on one split of its data (or of
    ``data``, another source of its classes); writes `eval_file` in its folder.

    Returns:
        ``(metrics, path)``.
    """
    import json
    import os

    config, model, datasets = load_run(run_dir, weights, split, data=data)
    evaluate = evaluate_detection if config.task == "detection" else evaluate_segmentation
    scores, _ = evaluate(model, datasets, config)
    metrics = {"run": run_dir, "data": config.dataset, "split": datasets.eval_split,
               "weights": weights, "images": datasets.eval_count, **scores}
    path = os.path.join(run_dir, eval_file(datasets.eval_split, weights, data))
    with open(path, "w") as f:
        json.dump(metrics, f, indent=2, default=lambda v: v.tolist())
    return metrics, path


def eval_file(split, weights, data=None):
    """The name of a run's scores: ``eval_<split>_<weights>.json`` on its own data, with the
    other source first on another (``eval_folder_data_test_<split>_<weights>.json``)."""
    import re

    if not data:
        return f"eval_{split}_{weights}.json"
    source = re.sub(r"[^\w.-]+", "_", data).strip("_")
    return f"eval_{source}_{split}_{weights}.json"


def _class_names(run_dir):
    """The class names a finished run's ``metrics.json`` records, or None."""
    import json
    import os

    path = os.path.join(run_dir, "metrics.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f).get("class_names")

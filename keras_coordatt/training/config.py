"""Training configuration: one dataclass, JSON files, command-line overrides.

``TrainConfig``'s defaults are the paper's ImageNet recipe (Hou et al. 2021,
Section 4.1: SGD with momentum 0.9, weight decay 4e-5, cosine schedule from
lr 0.05 at batch 256, 200 epochs, random-resized crop and flip, no label
smoothing, no mixup). A JSON config file holds any subset of the fields; the
paper's runs are files in the repository's ``training/configs/``. Every field
is also a ``--field value`` option.

An experiment run once per attention is one file, ``EXPERIMENT.json``, whose
``"attentions"`` maps each variant's name to its ``attention`` value
(``{"none": null, "se": "se", "ca": "ca"}``). Config ``EXPERIMENT_VARIANT``
(``coco_ssdlite320_mobilenet_v2_ca``) is that file's fields with the variant's
``attention`` and ``output_dir`` ``runs/EXPERIMENT_VARIANT``; so is the path
``DIR/EXPERIMENT_VARIANT.json`` beside ``DIR/EXPERIMENT.json``. The file sets
neither field itself, and the experiment's name alone is an error listing
its variants: a run always says which attention it trains, and into which
folder.
"""

import argparse
import dataclasses
import json
import os
import typing
from typing import Optional

from keras_coordatt.models.families import FAMILIES
from keras_coordatt.models.families import get_family
from keras_coordatt.preprocessing import RAW_PIXEL_RANGE
from keras_coordatt.preprocessing import imagenet_normalization

STRATEGIES = ("auto", "default", "mirrored", "multiworker")
# float64 is for numerical checks: a BatchNorm network trained from scratch
# amplifies float32 rounding (1e-6 on the input moves MobileNetV2's weights by
# 0.1-0.6 after a few steps), so only float64 runs can be compared exactly.
ATTENTION_OPTIMIZERS = ("sgd", "adam")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16", "float64")
VERBOSITIES = ("auto", "bar", "line", "quiet")
INPUT_NORMALIZATIONS = ("family", "imagenet")
TASKS = ("classification", "detection", "segmentation")
DETECTION_LOSSES = ("multibox", "focal")
DETECTION_AUGMENTATIONS = ("ssd", "aerial", "none")


def option(default, help):
    """A config field with its ``--help`` sentence."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass
class TrainConfig:
    """Everything one training run needs; defaults are the paper's recipe."""

    # model
    model: str = option("mobilenet_v2", f"network family: {', '.join(FAMILIES)}")
    attention: Optional[str] = option(
        "ca", "attention in every block: none, se, cbam, ca, ca_h, ca_w, ca_ln (CA with a "
        "per-image normalisation, the same in training and inference), eca, simam, ela "
        "(efficientnet_b0 also efficientnet_se, its own SE)")
    alpha: float = option(1.0, "width multiplier (MobileNetV2, MobileNeXt)")
    dropout_rate: float = option(0.1, "dropout before the classifier")
    # Keras convention; 0.9 is PyTorch's 0.1, what the paper trained with.
    # keras.applications' 0.999 needs thousands of steps before the moving
    # statistics are usable, so short runs would evaluate on stale ones.
    bn_momentum: float = option(0.9, "BatchNorm momentum, Keras convention (0.9 = PyTorch's 0.1)")
    image_size: int = option(224, "side of the square training and eval images")
    init_weights: Optional[str] = option(
        None, "start from these weights, copied by layer name: a .keras model, a "
        ".weights.h5 file, or keras.applications' legacy .h5")
    identity_init: bool = option(
        True, "with init_weights: attention layers the weights lack start as the identity, "
        "so training starts from the loaded network's accuracy")
    input_normalization: str = option(
        "family", "input pixels: family (the family's range, [-1, 1] for MobileNets) or imagenet "
        "(RGB / 255 minus ImageNet's mean, over its std: PyTorch's convention, what weights "
        "converted from torchvision or mbv2_ca.pth were trained with)")
    # task
    task: str = option("classification", f"what the network learns: {', '.join(TASKS)}")
    detection_loss: str = option(
        "multibox", "detection loss: multibox (cross-entropy, 3:1 hard negatives; the paper's VOC "
        "config) or focal (its COCO config)")
    anchor_scale: float = option(
        1.0, "detection: SSDLite320's anchor sizes times this (below 1 for small objects)")
    match_iou: float = option(0.5, "detection: the IoU an anchor needs to take a ground truth")
    detection_augment: str = option(
        "ssd", "detection augmentation: ssd (photometric, zoom-out, min-IoU crop, flip), aerial "
        "(photometric, flips and quarter turns, no rescaling) or none")
    tile_size: Optional[int] = option(
        None, "detection/segmentation: cut images into tiles of this side (large aerial images)")
    tile_overlap: float = option(0.5, "share of a tile neighbouring training tiles overlap by")
    repeats: int = option(1, "segmentation: each training image this many times per epoch")
    output_stride: int = option(16, "segmentation: the backbone's output stride, 16 or 8")
    # data
    dataset: str = option(
        "tfds:imagenet2012", "elpv, tfds:NAME (tensorflow-datasets) or folder:PATH (a folder per "
        "class); detection: voc:PATH, coco:PATH, tfds:voc/2007, tfds:coco/2017, deepforest; "
        "segmentation: voc:PATH, masks:PATH, cityscapes:PATH, tfds:oxford_iiit_pet, stardist")
    train_split: str = option("train", "split to train on (tfds slicing syntax works)")
    eval_split: Optional[str] = option(None, "split to evaluate on (default: the source's eval split)")
    eval_dataset: Optional[str] = option(
        None, "detection/segmentation: evaluate on this source instead of --dataset's (same "
        "classes; VOC07+12 trains on tfds:voc/2007+tfds:voc/2012, tests on tfds:voc/2007)")
    data_dir: Optional[str] = option(None, "tensorflow-datasets data directory (and manual downloads)")
    crop_scale_min: float = option(0.08, "smallest share of the image area a random crop covers")
    eval_crop_fraction: float = option(
        0.875, "share of the resized image the eval center crop keeps (1: the whole image, "
        "for aligned images such as ELPV's cells); the model keeps it for export")
    cache: bool = option(True, "keep decoded images in memory where they fit")
    limit_train: Optional[int] = option(None, "train on only the first N examples")
    limit_eval: Optional[int] = option(None, "evaluate on only the first N examples")
    # optimisation
    epochs: int = option(200, "epochs to train")
    batch_size: int = option(256, "global batch size (all replicas together)")
    learning_rate: float = option(0.05, "peak learning rate at reference_batch_size")
    reference_batch_size: int = option(256, "batch size learning_rate is given for (scaled linearly)")
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(4e-5, "decoupled weight decay")
    clip_global_norm: Optional[float] = option(
        None, "scale each step's gradients down to this global norm where they exceed it "
        "(default: no clipping, the paper's recipe)")
    warmup_epochs: float = option(0.0, "linear warm-up from 0 before the cosine decay, in epochs")
    new_layer_lr_multiplier: float = option(
        1.0, "with init_weights: the layers the weights lack (inserted attention, a new head) "
        "learn at this multiple of the learning rate")
    attention_lr_multiplier: Optional[float] = option(
        None, "with init_weights: the inserted attention layers' multiple of the learning rate, "
        "apart from the other new layers (default: new_layer_lr_multiplier)")
    attention_optimizer: str = option(
        "sgd", f"with init_weights: the inserted attention layers' update, one of "
        "{', '.join(ATTENTION_OPTIMIZERS)}: adam takes Adam's step (about the learning rate "
        "times its multiplier, whatever the gradient's size) where the rest takes SGD's")
    deadline_minutes: Optional[float] = option(
        None, "stop training after the epoch during which this many minutes of the run (this "
        "session) have passed, and evaluate and save what there is; the same command later "
        "continues it to epochs")
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy")
    mixup_alpha: float = option(0.0, "mixup Beta(alpha, alpha) parameter; 0 turns mixup off")
    # system
    strategy: str = option("auto", f"tf.distribute strategy: {', '.join(STRATEGIES)}")
    devices: Optional[str] = option(None, "comma-separated devices for mirrored, e.g. /gpu:0,/gpu:1")
    compilation_cache: Optional[str] = option(
        None, "JAX: a folder for compiled programs (JAX's persistent compilation cache); a "
        "later run of the same network, batch and image size loads them instead of compiling")
    sync_batchnorm: bool = option(False, "BatchNorm statistics over all replicas")
    precision: str = option("float32", f"dtype policy: {', '.join(PRECISIONS)}")
    jit: bool = option(False, "compile the whole train step with XLA (TensorFlow; JAX always compiles)")
    attention_monitor: bool = option(
        True, "record the attention layers' gates and gradients each epoch on a fixed batch of "
        "held-out images (attention.csv, attention.png, TensorBoard)")
    seed: int = option(0, "seed of initialisation, shuffling and augmentation")
    deterministic: bool = option(False, "repeatable runs: deterministic ops and data order")
    output_dir: str = option("runs/default", "run folder: checkpoints, weights, model, metrics, plots")
    resume: bool = option(True, "continue from the newest checkpoint in output_dir")
    overwrite: bool = option(
        False, "replace a run of another config in output_dir (its checkpoints are deleted)")
    checkpoint_every_steps: int = option(0, "also checkpoint every N steps inside an epoch (0: off)")
    keep_checkpoints: int = option(2, "checkpoints to keep")
    verbose: str = option("auto", f"progress output: {', '.join(VERBOSITIES)}")

    @property
    def scaled_learning_rate(self):
        """The peak learning rate, scaled linearly with the global batch size."""
        return self.learning_rate * self.batch_size / self.reference_batch_size

    @property
    def preprocessing(self):
        """The family's `Preprocessing` (or ImageNet's normalisation) with this config's eval crop."""
        if self.input_normalization == "imagenet":
            return imagenet_normalization(self.eval_crop_fraction)
        return dataclasses.replace(self.family.preprocessing, crop_fraction=self.eval_crop_fraction)

    @property
    def family(self):
        """The `ModelFamily` of ``model``."""
        return get_family(self.model)

    def validate(self):
        """Returns self; a ValueError listing every bad field and what would be valid."""
        checks = [
            (self.model in FAMILIES, f"model={self.model!r}: expected one of {', '.join(FAMILIES)}"),
            (self.strategy in STRATEGIES, f"strategy={self.strategy!r}: expected one of {STRATEGIES}"),
            (self.precision in PRECISIONS, f"precision={self.precision!r}: expected one of {PRECISIONS}"),
            (self.epochs > 0, f"epochs={self.epochs}: must be positive"),
            (self.batch_size > 0, f"batch_size={self.batch_size}: must be positive"),
            (self.deadline_minutes is None or self.deadline_minutes > 0,
             f"deadline_minutes={self.deadline_minutes}: must be positive"),
            (self.learning_rate > 0, f"learning_rate={self.learning_rate}: must be positive"),
            (self.clip_global_norm is None or self.clip_global_norm > 0,
             f"clip_global_norm={self.clip_global_norm}: must be positive (or left out for no "
             "clipping)"),
            (self.new_layer_lr_multiplier > 0,
             f"new_layer_lr_multiplier={self.new_layer_lr_multiplier}: must be positive"),
            (self.attention_lr_multiplier is None or self.attention_lr_multiplier > 0,
             f"attention_lr_multiplier={self.attention_lr_multiplier}: must be positive"),
            (self.attention_optimizer in ATTENTION_OPTIMIZERS,
             f"attention_optimizer={self.attention_optimizer!r}: expected one of "
             f"{ATTENTION_OPTIMIZERS}"),
            (0 < self.crop_scale_min <= 1, f"crop_scale_min={self.crop_scale_min}: must be in (0, 1]"),
            (0 < self.eval_crop_fraction <= 1,
             f"eval_crop_fraction={self.eval_crop_fraction}: must be in (0, 1]"),
            (0 <= self.label_smoothing < 1, f"label_smoothing={self.label_smoothing}: must be in [0, 1)"),
            (self.mixup_alpha >= 0, f"mixup_alpha={self.mixup_alpha}: must be >= 0"),
            (self.checkpoint_every_steps >= 0, "checkpoint_every_steps must be >= 0"),
            (self.verbose in VERBOSITIES, f"verbose={self.verbose!r}: expected one of {VERBOSITIES}"),
            (self.input_normalization in INPUT_NORMALIZATIONS,
             f"input_normalization={self.input_normalization!r}: expected one of "
             f"{INPUT_NORMALIZATIONS}"),
            (self.task in TASKS, f"task={self.task!r}: expected one of {', '.join(TASKS)}"),
            (self.detection_loss in DETECTION_LOSSES,
             f"detection_loss={self.detection_loss!r}: expected one of {DETECTION_LOSSES}"),
            (self.detection_augment in DETECTION_AUGMENTATIONS,
             f"detection_augment={self.detection_augment!r}: expected one of "
             f"{DETECTION_AUGMENTATIONS}"),
            (self.anchor_scale > 0, f"anchor_scale={self.anchor_scale}: must be positive"),
            (0 < self.match_iou < 1, f"match_iou={self.match_iou}: must be in (0, 1)"),
            (self.tile_size is None or self.tile_size > 0, f"tile_size={self.tile_size}: must be positive"),
            (0 <= self.tile_overlap < 1, f"tile_overlap={self.tile_overlap}: must be in [0, 1)"),
            (self.repeats >= 1, f"repeats={self.repeats}: must be at least 1"),
            (self.eval_dataset is None or self.task != "classification",
             f"eval_dataset={self.eval_dataset!r}: for detection and segmentation only"),
            (self.output_stride in (8, 16, 32),
             f"output_stride={self.output_stride}: expected 16 or 8 (32: no dilation)"),
        ]
        problems = [message for ok, message in checks if not ok]
        if self.input_normalization == "imagenet" and self.model in FAMILIES and (
                self.family.preprocessing.pixel_range == RAW_PIXEL_RANGE):
            problems.append(f"input_normalization='imagenet': {self.model} takes raw [0, 255] "
                            f"pixels and normalises inside the network")
        if self.model in FAMILIES:
            try:
                self.family.check_attention(self.attention)
            except ValueError as error:
                problems.append(str(error))
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))
        return self

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


def load_config(name_or_path, search_dirs=()):
    """A `TrainConfig` from a JSON file, or a config name looked up in ``search_dirs``.

    Args:
        name_or_path: a JSON file's path; a config name (``"elpv_mobilenet_v2_ca"``,
            an experiment's variant as the module docstring says, or the
            name of a plain ``NAME.json``) in one of ``search_dirs``; or a
            variant's path ``DIR/EXPERIMENT_VARIANT.json``.
        search_dirs: folders of named configs (the repository's
            ``training/configs/`` for the paper's runs).
    """
    if os.path.isfile(name_or_path):
        path, variant = name_or_path, None
    else:
        name, folders = name_or_path, search_dirs
        if name.endswith(".json"):
            folder, name = os.path.split(name[:-len(".json")])
            folders = [folder or os.curdir]
        found = _find_config(name, folders)
        if found is None:
            names = [config for folder in folders for config in config_names(folder)]
            known = f"; configs by name: {', '.join(names)}" if names else (
                "; the paper's configs are the files in the repository's training/configs/ "
                "(python -m training.train --config NAME looks there)")
            raise FileNotFoundError(f"no config file {name_or_path!r}{known}")
        path, variant = found
    return TrainConfig(**_config_fields(path, variant))


def config_names(folder):
    """The config names ``folder`` answers to: each plain file's, each experiment's variants'."""
    return sorted(name for path, attentions in _config_files([folder])
                  for name in _names(path, attentions))


def _find_config(name, folders):
    """(path, variant) of config ``name``, the first folder first; None where none has it.

    ``NAME.json`` itself comes with variant None. A name extending an
    experiment's by a variant its ``attentions`` lack is a ValueError.
    """
    for folder in folders:
        path = os.path.join(folder, f"{name}.json")
        if os.path.isfile(path):
            return path, None
    extended = [(path, attentions, name[len(_stem(path)) + 1:])
                for path, attentions in _config_files(folders)
                if attentions is not None and name.startswith(f"{_stem(path)}_")]
    for path, attentions, variant in extended:
        if variant in attentions:
            return path, variant
    if extended:
        # the longest experiment name the name extends is the one it meant
        path, attentions, variant = min(extended, key=lambda file: len(file[2]))
        raise ValueError(f"{path}: attentions has no variant {variant!r} (config {name!r}); "
                         f"expected one of {', '.join(attentions)}")
    return None


def _config_fields(path, variant):
    """Config file ``path``'s fields; an experiment's with ``variant``'s attention and folder."""
    values = _read_json(path)
    attentions = _attentions(path, values)
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known - {"attentions"})
    if unknown:
        raise ValueError(f"{path}: unknown config fields {unknown}")
    if attentions is None:
        return values
    if variant is None:
        raise ValueError(f"{path} runs once per attention: pass one of "
                         f"{', '.join(_names(path, attentions))}")
    per_variant = [field for field in ("attention", "output_dir") if field in values]
    if per_variant:
        raise ValueError(f"{path}: {', '.join(per_variant)} must not be set: each variant of "
                         "attentions sets them")
    fields = {field: value for field, value in values.items() if field != "attentions"}
    return dict(fields, attention=attentions[variant],
                output_dir=f"runs/{_stem(path)}_{variant}")


def _config_files(folders):
    """(path, attentions) of each JSON file in ``folders``; attentions None for a plain config."""
    paths = [os.path.join(folder, file_name) for folder in folders if os.path.isdir(folder)
             for file_name in sorted(os.listdir(folder)) if file_name.endswith(".json")]
    return [(path, _attentions(path, _read_json(path))) for path in paths]


def _names(path, attentions):
    """The config names a file answers to: its own, or EXPERIMENT_VARIANT for each variant."""
    if attentions is None:
        return [_stem(path)]
    return [f"{_stem(path)}_{variant}" for variant in attentions]


def _attentions(path, values):
    """An experiment file's variant name -> attention value; None for a plain config file."""
    attentions = values.get("attentions")
    valid = isinstance(attentions, dict) and attentions and all(
        value is None or isinstance(value, str) for value in attentions.values())
    if attentions is not None and not valid:
        raise ValueError(f'{path}: attentions must map variant names to attention names or '
                         f'null, e.g. {{"none": null, "ca": "ca"}}; got {attentions!r}')
    return attentions


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def _read_json(path):
    with open(path) as f:
        try:
            values = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a JSON object of config fields")
    return values


def _parse_bool(text):
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parser_for(field):
    """argparse type for a field; an Optional field also accepts 'none'."""
    kind, optional = field.type, False
    if typing.get_origin(kind) is typing.Union:
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        optional = True
    convert = _parse_bool if kind is bool else kind

    def parse(text):
        if optional and text.lower() == "none":
            return None
        return convert(text)

    parse.__name__ = kind.__name__
    return parse


def add_config_arguments(parser, search_dirs=()):
    """``--config`` and one ``--field`` option per `TrainConfig` field, defaulting to 'not given'."""
    names = [name for folder in search_dirs for name in config_names(folder)]
    parser.add_argument(
        "--config", default=None,
        help="a JSON config file" + (f", or one of: {', '.join(names)}" if names else ""))
    for field in dataclasses.fields(TrainConfig):
        parser.add_argument(
            f"--{field.name}", type=_parser_for(field), default=argparse.SUPPRESS,
            help=f"{field.metadata['help']} (default: {field.default!r})",
        )
    return parser


def config_from_args(args, search_dirs=()):
    """The config file (if any) with the command line's ``--field`` values on top."""
    config = load_config(args.config, search_dirs) if args.config else TrainConfig()
    overrides = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(TrainConfig)
        if hasattr(args, field.name)
    }
    return dataclasses.replace(config, **overrides).validate()

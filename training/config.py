"""Training configuration: one dataclass, JSON files for the paper's rows, CLI overrides.

A config file holds any subset of ``TrainConfig``'s fields; the rest keep the
paper's defaults (ImageNet recipe of Hou et al. 2021, Section 4.1: SGD with
momentum 0.9, weight decay 4e-5, cosine schedule from lr 0.05 at batch 256,
200 epochs, random-resized crop and flip, no label smoothing, no mixup).
Every field can be overridden on the command line as ``--field value``.
"""

import argparse
import dataclasses
import json
import os
import typing
from typing import Optional

from keras_coordatt.models.registry import BUILDERS

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "configs")
STRATEGIES = ("auto", "default", "mirrored", "multiworker")
# float64 is for numerical checks: a BatchNorm network trained from scratch
# amplifies float32 rounding (1e-6 on the input moves MobileNetV2's weights by
# 0.1-0.6 after a few steps), so only float64 runs can be compared exactly.
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16", "float64")
MODELS = tuple(BUILDERS)


@dataclasses.dataclass
class TrainConfig:
    """Everything one training run needs; defaults are the paper's recipe."""

    # model
    model: str = "mobilenet_v2"
    attention: Optional[str] = "ca"
    alpha: float = 1.0
    dropout_rate: float = 0.1
    # Keras convention; 0.9 is PyTorch's 0.1, what the paper trained with.
    # keras.applications' 0.999 needs thousands of steps before the moving
    # statistics are usable, so short runs would evaluate on stale ones.
    bn_momentum: float = 0.9
    image_size: int = 224
    init_weights: Optional[str] = None
    # data
    dataset: str = "tfds:imagenet2012"
    train_split: str = "train"
    eval_split: Optional[str] = None
    data_dir: Optional[str] = None
    crop_scale_min: float = 0.08
    cache: bool = True
    limit_train: Optional[int] = None
    limit_eval: Optional[int] = None
    # optimisation
    epochs: int = 200
    batch_size: int = 256
    learning_rate: float = 0.05
    reference_batch_size: int = 256
    momentum: float = 0.9
    weight_decay: float = 4e-5
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    # system
    strategy: str = "auto"
    devices: Optional[str] = None
    sync_batchnorm: bool = False
    precision: str = "float32"
    jit: bool = False
    seed: int = 0
    deterministic: bool = False
    output_dir: str = "runs/default"
    resume: bool = True
    checkpoint_every_steps: int = 0
    keep_checkpoints: int = 2
    verbose: str = "auto"

    @property
    def scaled_learning_rate(self):
        """The peak learning rate, scaled linearly with the global batch size."""
        return self.learning_rate * self.batch_size / self.reference_batch_size

    def validate(self):
        checks = [
            (self.model in MODELS, f"model={self.model!r}: expected one of {MODELS}"),
            (self.strategy in STRATEGIES, f"strategy={self.strategy!r}: expected one of {STRATEGIES}"),
            (self.precision in PRECISIONS, f"precision={self.precision!r}: expected one of {PRECISIONS}"),
            (self.epochs > 0, f"epochs={self.epochs}: must be positive"),
            (self.batch_size > 0, f"batch_size={self.batch_size}: must be positive"),
            (self.learning_rate > 0, f"learning_rate={self.learning_rate}: must be positive"),
            (0 < self.crop_scale_min <= 1, f"crop_scale_min={self.crop_scale_min}: must be in (0, 1]"),
            (0 <= self.label_smoothing < 1, f"label_smoothing={self.label_smoothing}: must be in [0, 1)"),
            (self.mixup_alpha >= 0, f"mixup_alpha={self.mixup_alpha}: must be >= 0"),
            (self.checkpoint_every_steps >= 0, "checkpoint_every_steps must be >= 0"),
            (self.verbose in ("auto", "bar", "line", "quiet"), f"verbose={self.verbose!r}: expected auto, bar, line or quiet"),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))
        return self

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


def config_names():
    """The shipped configs, by name (file name without .json)."""
    return sorted(f[:-5] for f in os.listdir(CONFIG_DIR) if f.endswith(".json"))


def load_config(name_or_path):
    """A TrainConfig from a shipped config name or a JSON file path."""
    path = name_or_path
    if not os.path.exists(path):
        path = os.path.join(CONFIG_DIR, f"{name_or_path}.json")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"no config file {name_or_path!r}; shipped configs: {', '.join(config_names())}"
        )
    with open(path) as f:
        values = json.load(f)
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path}: unknown config fields {unknown}")
    return TrainConfig(**values)


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


def add_config_arguments(parser):
    """One ``--field`` option per TrainConfig field, defaulting to 'not given'."""
    parser.add_argument("--config", default=None,
                        help=f"a JSON file or a shipped config: {', '.join(config_names())}")
    for field in dataclasses.fields(TrainConfig):
        parser.add_argument(
            f"--{field.name}", type=_parser_for(field), default=argparse.SUPPRESS,
            help=f"(default {field.default!r})",
        )
    return parser


def config_from_args(args):
    """The config file (if any) with the command line's ``--field`` values on top."""
    config = load_config(args.config) if args.config else TrainConfig()
    overrides = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(TrainConfig)
        if hasattr(args, field.name)
    }
    return dataclasses.replace(config, **overrides).validate()

"""Models by name: keras-hub's preset folders, saved here and loaded from a folder or a hub.

A preset is a folder in keras-hub's layout:

======================  ==========================================================
``config.json``         the backbone or classifier (``keras.saving`` form)
``model.weights.h5``    its weights
``task.json``           a detector or segmenter: the whole network (task presets)
``task.weights.h5``     that network's layers beyond the backbone, by layer name
``metadata.json``       versions, parameter count, date, preprocessing, class
                        names, metrics, source and licence
``README.md``           the model card, written from ``metadata.json``
======================  ==========================================================

so ``config.json`` + ``model.weights.h5`` load the backbone alone from a
classifier or a detector's preset (to fine-tune it on something else).
A handle is a local folder, ``hf://owner/name`` (Hugging Face, through
``huggingface_hub``) or ``kaggle://owner/model/keras/variant[/version]``
(Kaggle, through ``kagglehub``); both hub libraries are optional
(``pip install keras-coordatt[presets]``) and keep their own caches, so a preset
loaded once loads offline (``HF_HUB_OFFLINE=1``; a versioned Kaggle handle).

Example:

>>> import tempfile, numpy as np
>>> from keras_coordatt.models import MobileNetV2, from_preset, save_to_preset
>>> model = MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, classes=3, attention="ca")
>>> folder = save_to_preset(model, tempfile.mkdtemp(), class_names=["a", "b", "c"])
>>> loaded = from_preset(folder)
>>> image = np.random.default_rng(0).uniform(-1, 1, (1, 64, 64, 3)).astype("float32")
>>> float(np.abs(loaded.predict(image, verbose=0) - model.predict(image, verbose=0)).max()) < 1e-6
True
>>> loaded.class_names
['a', 'b', 'c']
"""

import dataclasses
import datetime
import json
import os

import keras

from keras_coordatt.models.backbone import Backbone
from keras_coordatt.models.classifier import ImageClassifier
from keras_coordatt.models.macs import count_trainable_params
from keras_coordatt.models.weights import copy_weights_by_name
from keras_coordatt.models.weights import legacy_h5_layers
from keras_coordatt.models.weights import save_layer_weights
from keras_coordatt.preprocessing import Preprocessing

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
TASK_CONFIG_FILE = "task.json"
TASK_WEIGHTS_FILE = "task.weights.h5"
METADATA_FILE = "metadata.json"
README_FILE = "README.md"
HF_PREFIX = "hf://"
KAGGLE_PREFIX = "kaggle://"
NOUNS = {"backbone": "A backbone", "classifier": "An image classifier",
         "detection": "A detector", "segmentation": "A segmenter"}
HUB_INSTALL = "pip install keras-coordatt[presets]"


def save_to_preset(model, preset_dir, backbone=None, class_names=None, metrics=None,
                   source=None, license=None, description=None):
    """Writes ``model`` as a preset folder (see the module's table) and returns the folder.

    Args:
        model: a `Backbone`, an `ImageClassifier`, or a detector or segmenter
            (`SSDLite`, `DeepLabV3`, or one loaded from a ``.keras`` file).
        preset_dir: the folder; created if missing. Files of an earlier
            preset there are replaced.
        backbone: a task model's backbone (its architecture; its weights are
            read from ``model`` by layer name). Default: the backbone the
            task model was built on (``model.backbone_config``), which a task
            model loaded from a ``.keras`` file no longer has.
        class_names: the classes, in output order (detection: without the
            background); default ``model.class_names`` if set.
        metrics: ``{name: value}`` measured for this model, shown in the
            model card (say on which data in ``description``).
        source: where the weights come from (a paper, a checkpoint, a run).
        license: the weights' licence, as a name or SPDX id.
        description: a paragraph for the model card.

    The model's `Preprocessing` goes into ``metadata.json`` and the card; a
    per-channel one (weights converted from PyTorch) also as
    ``input_normalization``, its mean and std.

    Raises:
        TypeError: ``model`` is not a Keras model.
        ValueError: a task model without a known backbone, or one whose
            layers do not include the backbone's.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"save_to_preset: expected a Keras model, got {type(model).__name__}")
    preset_dir = os.fspath(preset_dir)
    os.makedirs(preset_dir, exist_ok=True)
    for stale in (TASK_CONFIG_FILE, TASK_WEIGHTS_FILE):
        if os.path.exists(os.path.join(preset_dir, stale)):
            os.remove(os.path.join(preset_dir, stale))
    kind = "backbone" if isinstance(model, Backbone) else (
        "classifier" if isinstance(model, ImageClassifier) else "task")
    if kind == "task":
        base = _task_backbone(model, backbone)
        layer_weights = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
        copied, _ = copy_weights_by_name(layer_weights, base)
        missing = sorted({layer.name for layer in base.layers if layer.weights} - set(copied))
        if missing:
            raise ValueError(f"save_to_preset: the backbone's layers {missing[:5]} are not in "
                             f"'{model.name}' with the same shapes; pass its own backbone")
        base_names = {layer.name for layer in base.layers}
        _write_json(os.path.join(preset_dir, TASK_CONFIG_FILE), _serialized(model))
        save_layer_weights(os.path.join(preset_dir, TASK_WEIGHTS_FILE),
                           {name: weights for name, weights in layer_weights.items()
                            if name not in base_names})
    else:
        base = model
    _write_json(os.path.join(preset_dir, CONFIG_FILE), _serialized(base))
    base.save_weights(os.path.join(preset_dir, WEIGHTS_FILE))
    preprocessing = getattr(model, "preprocessing", None) or base.preprocessing
    names = class_names if class_names is not None else getattr(model, "class_names", None)
    metadata = {
        "keras_version": keras.version(),
        "keras_coordatt_version": _package_version(),
        "parameter_count": int(model.count_params()),
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        "tasks": [kind if kind != "task" else _task_kind(model)],
        "class": type(model).__name__ if kind != "task" else model.name,
        "trainable_parameter_count": count_trainable_params(model),
        "backbone": _architecture(base),
        "input_shape": [int(d) if d is not None else None for d in model.input.shape[1:]],
        "preprocessing": dataclasses.asdict(preprocessing),
        "input_normalization": dict(zip(("mean", "std"), preprocessing.mean_std()))
        if preprocessing.per_channel else None,
        "class_names": list(names) if names is not None else None,
        "metrics": dict(metrics or {}),
        "source": source,
        "license": license,
        "description": description,
    }
    _write_json(os.path.join(preset_dir, METADATA_FILE), metadata)
    with open(os.path.join(preset_dir, README_FILE), "w", encoding="utf-8") as f:
        f.write(model_card(metadata, os.path.basename(os.path.normpath(preset_dir))))
    return preset_dir


def from_preset(handle, load_weights=True):
    """The model a preset holds: its task model if it has one, else its backbone or classifier.

    Args:
        handle: a preset folder, ``hf://owner/name`` or
            ``kaggle://owner/model/keras/variant[/version]``.
        load_weights: False for the architecture with fresh weights.

    Returns:
        The model, with ``preprocessing``, ``class_names`` and
        ``preset_metadata`` (the preset's ``metadata.json``) set.

    Raises:
        FileNotFoundError / OSError: no such folder, not a preset, or a hub
            handle neither cached nor reachable (the message names the handle
            and the cache).
        ImportError: a hub handle without its library installed.
    """
    folder = preset_folder(handle)
    metadata = _read_json(folder, METADATA_FILE, handle, required=False) or {}
    base, base_config = _load_base(folder, handle, load_weights)
    model = base
    if os.path.exists(os.path.join(folder, TASK_CONFIG_FILE)):
        model = keras.saving.deserialize_keras_object(_read_json(folder, TASK_CONFIG_FILE, handle))
        model.backbone_config = base_config
        if load_weights:
            layers = {layer.name: layer.get_weights() for layer in base.layers}
            layers.update(legacy_h5_layers(_file(folder, TASK_WEIGHTS_FILE, handle)) or {})
            copied, _ = copy_weights_by_name(layers, model)
            missing = sorted({layer.name for layer in model.layers if layer.weights} - set(copied))
            if missing:
                raise ValueError(f"preset {handle!r}: no weights for the layers {missing[:5]} "
                                 f"in {WEIGHTS_FILE} or {TASK_WEIGHTS_FILE}")
    _attach(model, metadata)
    return model


def load_backbone_preset(cls, handle, load_weights=True):
    """``cls.from_preset``: the preset's backbone (or classifier), checked to be a ``cls``.

    A `Backbone` class asked for a classifier's preset gets the classifier's
    backbone; a task preset gives its backbone (``config.json``).
    """
    folder = preset_folder(handle)
    model, _ = _load_base(folder, handle, load_weights)
    if isinstance(model, ImageClassifier) and issubclass(cls, Backbone):
        model = model.backbone
    if not isinstance(model, cls):
        raise ValueError(f"preset {handle!r} holds a {type(model).__name__}, not a {cls.__name__}; "
                         f"load it with keras_coordatt.from_preset")
    _attach(model, _read_json(folder, METADATA_FILE, handle, required=False) or {})
    return model


def preset_folder(handle):
    """The local folder of a preset handle, downloaded (or found in the hub's cache) if remote."""
    if not isinstance(handle, (str, os.PathLike)):
        raise TypeError(f"a preset handle must be a folder path or a hf:// or kaggle:// handle, "
                        f"got {type(handle).__name__}")
    handle = os.fspath(handle)
    if handle.startswith(HF_PREFIX):
        folder = _hugging_face_folder(handle)
    elif handle.startswith(KAGGLE_PREFIX):
        folder = _kaggle_folder(handle)
    elif "://" in handle:
        raise ValueError(f"preset {handle!r}: unknown scheme; use a folder, {HF_PREFIX}owner/name "
                         f"or {KAGGLE_PREFIX}owner/model/keras/variant")
    elif os.path.isdir(handle):
        folder = handle
    else:
        raise FileNotFoundError(f"preset {handle!r}: no such folder (nor a {HF_PREFIX} or "
                                f"{KAGGLE_PREFIX} handle)")
    if not os.path.exists(os.path.join(folder, CONFIG_FILE)):
        raise FileNotFoundError(f"preset {handle!r}: {folder} has no {CONFIG_FILE}; "
                                f"not a preset folder")
    return folder


def upload_preset(uri, preset_dir):
    """Publishes a preset folder: ``hf://[owner/]name`` or ``kaggle://owner/model/keras/variant``.

    The folder is checked first (``config.json``, ``model.weights.h5``,
    ``metadata.json`` and the model card present and the model loading), so
    nothing half-made is published. Needs ``huggingface_hub`` or ``kagglehub``
    and their login (``huggingface-cli login``, ``kagglehub.login()``).

    Returns:
        What the hub's upload call returned.
    """
    preset_dir = os.fspath(preset_dir)
    for name in (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE, README_FILE):
        if not os.path.exists(os.path.join(preset_dir, name)):
            raise FileNotFoundError(f"upload_preset: {preset_dir} has no {name}; write it with "
                                    f"save_to_preset")
    from_preset(preset_dir)
    if uri.startswith(HF_PREFIX):
        hub = _import_hub("huggingface_hub", uri)
        repo = hub.create_repo(repo_id=uri[len(HF_PREFIX):], exist_ok=True)
        return hub.upload_folder(repo_id=getattr(repo, "repo_id", uri[len(HF_PREFIX):]),
                                 folder_path=preset_dir)
    if uri.startswith(KAGGLE_PREFIX):
        handle = _kaggle_handle(uri, versioned=False)
        hub = _import_hub("kagglehub", uri)
        return hub.model_upload(handle, preset_dir)
    raise ValueError(f"upload_preset: {uri!r} is neither {HF_PREFIX}[owner/]name nor "
                     f"{KAGGLE_PREFIX}owner/model/keras/variant")


def model_card(metadata, title):
    """The model card (README.md) of a preset, from its metadata."""
    backbone = metadata["backbone"]
    lines = [f"# {title}", "",
             f"{NOUNS.get(metadata['tasks'][0], 'A model')} of keras-coordatt on {backbone['class']}"
             + "".join(f", {key} {'none' if value is None else value}" for key, value in backbone.items() if key != "class")
             + f"; {metadata['trainable_parameter_count']:,} trainable parameters "
             f"({metadata['parameter_count']:,} with BatchNorm statistics); input "
             f"{'x'.join(str(d) for d in metadata['input_shape'])}.", ""]
    if metadata.get("description"):
        lines += [metadata["description"], ""]
    lines += ["## Use", "", "```python", "import keras_coordatt", "",
              f'model = keras_coordatt.from_preset("{title}")  # the folder, or hf:// / kaggle://',
              "```", "",
              _input_line(metadata), ""]
    if metadata.get("class_names"):
        names = metadata["class_names"]
        shown = ", ".join(map(str, names[:20])) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
        lines += [f"Classes: {shown}.", ""]
    lines += ["## Metrics", ""]
    if metadata.get("metrics"):
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {name} | {_shown(value)} |" for name, value in metadata["metrics"].items()]
    else:
        lines += ["None measured for this preset."]
    lines += ["", "## Source and licence", "",
              f"Weights: {metadata.get('source') or 'not stated'}.",
              f"Licence: {metadata.get('license') or 'not stated'}.", "",
              f"Saved {metadata['date_saved']} with Keras {metadata['keras_version']} and "
              f"keras-coordatt {metadata['keras_coordatt_version']}.", ""]
    return "\n".join(lines)


def _input_line(metadata):
    preprocessing = Preprocessing(**metadata["preprocessing"])
    pixels = ("" if preprocessing.per_channel else "RGB pixels ") + preprocessing.describe_pixels()
    return f"Input: {pixels} (eval center crop {preprocessing.crop_fraction})."


def _task_backbone(model, backbone):
    if backbone is None:
        config = getattr(model, "backbone_config", None)
        if config is None:
            raise ValueError(f"save_to_preset: '{model.name}' is neither a Backbone nor an "
                             f"ImageClassifier and does not know its backbone; pass backbone=")
        backbone = keras.saving.deserialize_keras_object(json.loads(config))
    if isinstance(backbone, ImageClassifier):
        backbone = backbone.backbone
    if not isinstance(backbone, Backbone):
        raise TypeError(f"save_to_preset: backbone must be a keras_coordatt Backbone, got "
                        f"{type(backbone).__name__}")
    return backbone


def _task_kind(model):
    outputs = model.output
    return "detection" if isinstance(outputs, dict) and "boxes" in outputs else "segmentation"


def _architecture(model):
    backbone = model.backbone if isinstance(model, ImageClassifier) else model
    config = backbone.get_config()
    return {"class": type(backbone).__name__,
            **{key: config[key] for key in ("alpha", "attention", "output_stride") if key in config}}


def _load_base(folder, handle, load_weights):
    """The model of ``config.json`` (weights loaded if asked) and that file's JSON text."""
    config = _read_json(folder, CONFIG_FILE, handle)
    text = json.dumps(config)
    try:
        model = keras.saving.deserialize_keras_object(config)
    except (TypeError, ValueError) as error:
        raise ValueError(f"preset {handle!r}: {CONFIG_FILE} does not build a model "
                         f"({type(error).__name__}: {str(error).splitlines()[0]})") from error
    if load_weights:
        model.load_weights(_file(folder, WEIGHTS_FILE, handle))
    return model, text


def _attach(model, metadata):
    model.preset_metadata = json.dumps(metadata)
    names = metadata.get("class_names")
    model.class_names = list(names) if names is not None else None
    preprocessing = metadata.get("preprocessing")
    if preprocessing is not None and not isinstance(model, (Backbone, ImageClassifier)):
        model.preprocessing = Preprocessing(**preprocessing)


def _hugging_face_folder(handle):
    repo = handle[len(HF_PREFIX):]
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ValueError(f"preset {handle!r}: a Hugging Face handle is {HF_PREFIX}owner/name")
    hub = _import_hub("huggingface_hub", handle)
    try:
        return hub.snapshot_download(repo_id=repo)
    except Exception as error:  # offline, unknown repo, no access: one line naming the cache
        from huggingface_hub import constants

        raise OSError(f"preset {handle!r}: not in the Hugging Face cache {constants.HF_HUB_CACHE} "
                      f"and not downloadable ({type(error).__name__})") from error


def _kaggle_folder(handle):
    kaggle = _kaggle_handle(handle, versioned=None)
    hub = _import_hub("kagglehub", handle)
    try:
        return hub.model_download(kaggle)
    except Exception as error:  # offline, unknown model, no access
        from kagglehub.config import get_cache_folder

        hint = "" if kaggle.count("/") == 4 else "; name a version (/N) to use a cached copy offline"
        raise OSError(f"preset {handle!r}: not in the Kaggle cache {get_cache_folder()} and not "
                      f"downloadable ({type(error).__name__}){hint}") from error


def _kaggle_handle(handle, versioned):
    kaggle = handle[len(KAGGLE_PREFIX):]
    parts = kaggle.split("/")
    counts = (4,) if versioned is False else (4, 5)
    if len(parts) not in counts or not all(parts) or parts[2] != "keras":
        form = "owner/model/keras/variant" + ("" if versioned is False else "[/version]")
        raise ValueError(f"preset {handle!r}: a Kaggle handle is {KAGGLE_PREFIX}{form}")
    return kaggle


def _import_hub(module, handle):
    try:
        return __import__(module)
    except ImportError as error:
        raise ImportError(f"preset {handle!r} needs {module}: pip install {module} "
                          f"(or {HUB_INSTALL})") from error


def _file(folder, name, handle):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"preset {handle!r}: {name} is missing from {folder}")
    return path


def _read_json(folder, name, handle, required=True):
    path = os.path.join(folder, name)
    if not required and not os.path.exists(path):
        return None
    with open(_file(folder, name, handle), encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"preset {handle!r}: {path} is not JSON ({error})") from error


def _serialized(model):
    config = keras.saving.serialize_keras_object(model)
    for key in ("compile_config", "build_config"):
        config.pop(key, None)
    return config


def _write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def _package_version():
    from importlib import metadata

    try:
        return metadata.version("keras-coordatt")
    except metadata.PackageNotFoundError:
        return "unknown"


def _shown(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)

"""Presets: each kind of model saved, loaded from a folder and from local hub caches, same outputs.

Nothing here reaches a network: the Hugging Face and Kaggle caches are
prepared in temporary folders in the layout each hub library reads offline.
"""

import json
import os
import shutil
import sys
import types

import numpy as np
import pytest

import keras_coordatt as kc
from keras_coordatt.models import ImageClassifier
from keras_coordatt.models import MobileNeXtBackbone
from keras_coordatt.models import MobileNetV2Backbone
from keras_coordatt.models.presets import CONFIG_FILE
from keras_coordatt.models.presets import README_FILE
from keras_coordatt.models.presets import TASK_WEIGHTS_FILE
from keras_coordatt.models.weights import legacy_h5_layers
from keras_coordatt.tasks import DeepLabV3
from keras_coordatt.tasks import SSDLite

SIDE = 64


@pytest.fixture
def images():
    return np.random.default_rng(1).uniform(-1, 1, (2, SIDE, SIDE, 3)).astype("float32")


def max_difference(a, b):
    if isinstance(a, dict):
        return max(max_difference(a[key], b[key]) for key in a)
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


def run(model, images):
    """The model's outputs in inference mode, eagerly (no tracing: quicker than predict here)."""
    import keras

    outputs = model(images, training=False)
    return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)


def perturbed(model):
    """Weights away from their initial values, so a load that did nothing is seen."""
    rng = np.random.default_rng(2)
    for weight in model.weights:
        weight.assign(weight.numpy() + rng.normal(0, 0.05, weight.shape).astype(weight.dtype))
    return model


@pytest.fixture(scope="module")
def classifier_preset(tmp_path_factory):
    model = perturbed(kc.MobileNetV2(input_shape=(SIDE, SIDE, 3), alpha=0.35, classes=3,
                                     attention="ca", classifier_activation=None))
    folder = kc.save_to_preset(model, tmp_path_factory.mktemp("presets") / "mbv2_ca",
                               class_names=["cat", "dog", "cow"], metrics={"accuracy": 0.875},
                               source="a test run", license="Apache-2.0")
    return model, folder


def test_classifier_round_trip_keeps_outputs_class_names_and_card(classifier_preset, images):
    model, folder = classifier_preset
    loaded = kc.from_preset(folder)
    assert isinstance(loaded, ImageClassifier) and loaded.backbone.get_config()["attention"] == "ca"
    assert max_difference(run(loaded, images), run(model, images)) < 1e-6
    assert loaded.class_names == ["cat", "dog", "cow"]
    metadata = json.loads(loaded.preset_metadata)
    assert metadata["parameter_count"] == model.count_params()
    assert metadata["tasks"] == ["classifier"] and metadata["metrics"] == {"accuracy": 0.875}
    card = open(os.path.join(folder, README_FILE), encoding="utf-8").read()
    assert "| accuracy | 0.875 |" in card and "Apache-2.0" in card and "cat, dog, cow" in card


def test_backbone_class_loads_the_classifiers_backbone(classifier_preset, images):
    model, folder = classifier_preset
    backbone = MobileNetV2Backbone.from_preset(folder)
    assert type(backbone) is MobileNetV2Backbone
    assert max_difference(run(backbone, images),
                          run(model.backbone, images)) < 1e-6
    assert isinstance(ImageClassifier.from_preset(folder), ImageClassifier)


def test_architecture_only_has_fresh_weights(classifier_preset, images):
    model, folder = classifier_preset
    fresh = kc.from_preset(folder, load_weights=False)
    assert max_difference(run(fresh, images), run(model, images)) > 1e-3


def test_backbone_preset_of_another_family_and_attention(tmp_path, images):
    backbone = perturbed(MobileNeXtBackbone(image_shape=(SIDE, SIDE, 3), alpha=0.5, attention="se"))
    folder = backbone.save_to_preset(tmp_path / "mnext_se")
    loaded = MobileNeXtBackbone.from_preset(folder)
    assert loaded.get_config()["attention"] == "se"
    assert max_difference(run(loaded, images), run(backbone, images)) < 1e-6
    with pytest.raises(ValueError, match="holds a MobileNeXtBackbone, not a MobileNetV2Backbone"):
        MobileNetV2Backbone.from_preset(folder)
    with pytest.raises(ValueError, match="not a ImageClassifier"):
        ImageClassifier.from_preset(folder)


@pytest.mark.parametrize("task", ["detection", "segmentation"])
def test_task_round_trip_splits_backbone_and_head(task, tmp_path, images):
    if task == "detection":
        backbone = MobileNetV2Backbone(image_shape=(SIDE, SIDE, 3), alpha=0.35, attention="ca")
        model = SSDLite(backbone, 2)
    else:
        backbone = MobileNetV2Backbone(image_shape=(SIDE, SIDE, 3), alpha=0.35, attention="ca",
                                       output_stride=16)
        model = DeepLabV3(backbone, 3)
    perturbed(model)
    folder = kc.save_to_preset(model, tmp_path / task, class_names=["a", "b", "c"][:2 if task == "detection" else 3])
    head = legacy_h5_layers(os.path.join(folder, TASK_WEIGHTS_FILE))
    backbone_names = {layer.name for layer in backbone.layers}
    assert head and not backbone_names & set(head)  # the backbone's weights are stored once
    loaded = kc.from_preset(folder)
    assert max_difference(run(loaded, images), run(model, images)) < 1e-5
    assert json.loads(loaded.preset_metadata)["tasks"] == [task]
    assert loaded.preprocessing.pixel_range == (-1.0, 1.0)
    alone = MobileNetV2Backbone.from_preset(folder)
    assert max_difference(run(alone, images), run(backbone, images)) < 1e-6
    again = kc.save_to_preset(loaded, tmp_path / f"{task}_again")  # a loaded task knows its backbone
    assert max_difference(run(kc.from_preset(again), images),
                          run(model, images)) < 1e-5


def test_task_model_without_its_backbone_is_an_error(tmp_path):
    import keras

    model = SSDLite(MobileNetV2Backbone(image_shape=(SIDE, SIDE, 3), alpha=0.35), 2)
    model.save(tmp_path / "det.keras")
    loaded = keras.saving.load_model(tmp_path / "det.keras", compile=False)
    with pytest.raises(ValueError, match="does not know its backbone; pass backbone="):
        kc.save_to_preset(loaded, tmp_path / "preset")
    other = MobileNetV2Backbone(image_shape=(SIDE, SIDE, 3), alpha=0.5)
    with pytest.raises(ValueError, match="not in .* with the same shapes"):
        kc.save_to_preset(loaded, tmp_path / "preset", backbone=other)
    folder = kc.save_to_preset(loaded, tmp_path / "preset",
                               backbone=MobileNetV2Backbone(image_shape=(SIDE, SIDE, 3), alpha=0.35))
    assert os.path.exists(os.path.join(folder, TASK_WEIGHTS_FILE))


def test_hugging_face_handle_loads_from_the_local_cache(classifier_preset, tmp_path, monkeypatch, images):
    constants = pytest.importorskip("huggingface_hub.constants")
    model, folder = classifier_preset
    cache = tmp_path / "hf"
    repo = cache / "models--someone--mbv2-ca"
    shutil.copytree(folder, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    loaded = kc.from_preset("hf://someone/mbv2-ca")
    assert max_difference(run(loaded, images), run(model, images)) < 1e-6
    with pytest.raises(OSError, match=r"'hf://someone/other': not in the Hugging Face cache .*hf"):
        kc.from_preset("hf://someone/other")


def test_kaggle_handle_loads_from_the_local_cache(classifier_preset, tmp_path, monkeypatch, images):
    pytest.importorskip("kagglehub")
    from kagglehub.cache import Cache
    from kagglehub.cache import get_cached_path
    from kagglehub.handle import parse_model_handle

    model, folder = classifier_preset
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kaggle"))
    handle = parse_model_handle("someone/mbv2-ca/keras/alpha035/2")
    shutil.copytree(folder, get_cached_path(handle))
    Cache().mark_as_complete(handle)
    loaded = kc.from_preset("kaggle://someone/mbv2-ca/keras/alpha035/2")
    assert max_difference(run(loaded, images), run(model, images)) < 1e-6
    with pytest.raises(OSError, match="not in the Kaggle cache .*kaggle"):
        kc.from_preset("kaggle://someone/mbv2-ca/keras/alpha035/3")


@pytest.mark.parametrize("handle, error, message", [
    ("no/such/folder", FileNotFoundError, "no such folder"),
    ("s3://bucket/model", ValueError, "unknown scheme"),
    ("hf://just-a-name", ValueError, "hf://owner/name"),
    ("kaggle://owner/model/variant", ValueError, "owner/model/keras/variant"),
])
def test_bad_handles_are_named(handle, error, message):
    with pytest.raises(error, match=message):
        kc.from_preset(handle)


def test_folder_that_is_not_a_preset(tmp_path, classifier_preset):
    with pytest.raises(FileNotFoundError, match=f"has no {CONFIG_FILE}"):
        kc.from_preset(tmp_path)
    _, folder = classifier_preset
    broken = shutil.copytree(folder, tmp_path / "broken")
    os.remove(broken / "model.weights.h5")
    with pytest.raises(FileNotFoundError, match="model.weights.h5 is missing"):
        kc.from_preset(broken)


def test_upload_checks_the_folder_then_calls_the_hub(classifier_preset, tmp_path, monkeypatch):
    calls = []
    hf = types.SimpleNamespace(
        create_repo=lambda repo_id, exist_ok: calls.append(("create", repo_id)) or
        types.SimpleNamespace(repo_id=repo_id),
        upload_folder=lambda repo_id, folder_path: calls.append(("upload", repo_id, folder_path)))
    kaggle = types.SimpleNamespace(model_upload=lambda handle, folder: calls.append(("kaggle", handle)))
    monkeypatch.setitem(sys.modules, "huggingface_hub", hf)
    monkeypatch.setitem(sys.modules, "kagglehub", kaggle)
    _, folder = classifier_preset
    kc.upload_preset("hf://someone/mbv2-ca", folder)
    kc.upload_preset("kaggle://someone/mbv2-ca/keras/alpha035", folder)
    assert calls == [("create", "someone/mbv2-ca"), ("upload", "someone/mbv2-ca", str(folder)),
                     ("kaggle", "someone/mbv2-ca/keras/alpha035")]
    incomplete = shutil.copytree(folder, tmp_path / "incomplete")
    os.remove(incomplete / README_FILE)
    with pytest.raises(FileNotFoundError, match="has no README.md"):
        kc.upload_preset("hf://someone/mbv2-ca", incomplete)
    with pytest.raises(ValueError, match="neither hf://"):
        kc.upload_preset("gs://bucket", folder)
    assert len(calls) == 3  # nothing published by the failed calls


def test_a_hub_handle_without_its_library_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ImportError, match=r"needs huggingface_hub: pip install huggingface_hub"):
        kc.from_preset("hf://someone/mbv2-ca")

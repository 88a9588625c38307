"""weights="imagenet": keras.applications' files from Keras' cache, by layer name; offline, fast and clear."""

import time

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

from keras_coordatt.models import EfficientNetB0
from keras_coordatt.models import MobileNeXt
from keras_coordatt.models import MobileNetV2
from keras_coordatt.models import imagenet

SHAPE = (96, 96, 3)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache, and download addresses that resolve nowhere."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(imagenet, "MOBILENET_V2_URL", "https://keras-coordatt-test.invalid/mnv2/")
    monkeypatch.setattr(imagenet, "EFFICIENTNET_URL", "https://keras-coordatt-test.invalid/en/")
    return tmp_path / "keras_home"


def cache_keras_applications_file(model, name):
    """``model``'s weights as keras.applications ships them (legacy .h5), where Keras caches it."""
    path = imagenet.cache_path(name)
    import os

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


def settled(model, rng):
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.gamma.shape[0]
            layer.moving_mean.assign(rng.uniform(-0.2, 0.2, size))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, size))
    return model


@pytest.mark.parametrize("attention", [None, "ca", "se"])
def test_mobilenet_v2_imagenet_file_loads_by_name_and_attention_starts_as_identity(
        keras_home, rng, attention):
    reference = settled(keras.applications.MobileNetV2(
        input_shape=SHAPE, alpha=0.35, weights=None, classifier_activation=None), rng)
    cache_keras_applications_file(
        reference, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5")
    model = MobileNetV2(input_shape=SHAPE, alpha=0.35, weights="imagenet", attention=attention,
                        classifier_activation=None)
    images = rng.uniform(-1, 1, (2,) + SHAPE).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(images, training=False)),
                               keras.ops.convert_to_numpy(reference(images, training=False)),
                               atol=1e-5, rtol=0)


def test_without_the_top_the_no_top_file_is_read(keras_home, rng):
    reference = settled(keras.applications.MobileNetV2(
        input_shape=(128, 128, 3), alpha=0.5, weights=None, include_top=False), rng)
    cache_keras_applications_file(
        reference, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_128_no_top.h5")
    model = MobileNetV2(input_shape=(128, 128, 3), alpha=0.5, weights="imagenet",
                        include_top=False, attention="ca")
    images = rng.uniform(-1, 1, (1, 128, 128, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(images, training=False)),
                               keras.ops.convert_to_numpy(reference(images, training=False)),
                               atol=1e-5, rtol=0)


def test_efficientnet_b0_imagenet_file_loads_by_name(keras_home, rng):
    # A Normalization layer made first takes the name "normalization", so
    # keras.applications' own gets a counted one ("normalization_1"), as it
    # may in the file: matched by kind.
    keras.layers.Normalization()
    reference = keras.applications.EfficientNetB0(input_shape=(64, 64, 3), weights=None,
                                                  include_top=False)
    assert [layer.name for layer in reference.layers
            if isinstance(layer, keras.layers.Normalization)] != ["normalization"]
    cache_keras_applications_file(reference, "efficientnetb0_notop.h5")
    model = EfficientNetB0(input_shape=(64, 64, 3), weights="imagenet", include_top=False)
    images = rng.uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(images, training=False)),
                               keras.ops.convert_to_numpy(reference(images, training=False)),
                               atol=1e-4, rtol=0)


def test_offline_fails_within_seconds_saying_where_the_file_goes(keras_home):
    start = time.perf_counter()
    with pytest.raises(ValueError) as error:
        MobileNetV2(input_shape=SHAPE, alpha=0.35, weights="imagenet")
    assert time.perf_counter() - start < 30
    message = str(error.value)
    name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5"
    assert "MobileNetV2: weights='imagenet' cannot reach keras-coordatt-test.invalid" in message
    assert f"https://keras-coordatt-test.invalid/mnv2/{name}" in message
    assert str(keras_home / "models" / name) in message


@pytest.mark.parametrize("build, match", [
    (lambda: MobileNetV2(input_shape=SHAPE, alpha=0.6, weights="imagenet"),
     "alpha in \\(0.35, 0.5, 0.75, 1.0, 1.3, 1.4\\), got alpha=0.6"),
    (lambda: MobileNetV2(input_shape=SHAPE, alpha=0.35, weights="imagenet", classes=10),
     "needs classes=1000.*got classes=10"),
    (lambda: MobileNetV2(input_shape=SHAPE, alpha=0.35, weights="imagenet", padding="pytorch"),
     "padding='keras'"),
    (lambda: MobileNeXt(input_shape=SHAPE, weights="imagenet"),
     "MobileNeXt: weights='imagenet': there are no ImageNet weights"),
])
def test_settings_without_an_imagenet_file_are_named(keras_home, build, match):
    with pytest.raises(ValueError, match=match):
        build()

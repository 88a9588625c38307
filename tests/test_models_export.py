"""Every family with Coordinate Attention saves as .keras, exports as a SavedModel
and converts to TFLite with builtin ops only."""

import keras
import numpy as np
import pytest
from keras import ops

from harness import run_saved_model_and_tflite_test
from keras_coordatt.models import EfficientNetB0
from keras_coordatt.models import MobileNetV2
from keras_coordatt.models import MobileNeXt

BUILDERS = [MobileNetV2, MobileNeXt, EfficientNetB0]
SHAPE = (64, 64, 3)


def small_model(builder):
    return builder(input_shape=SHAPE, alpha=0.35, attention="ca", classes=10)


@pytest.fixture
def images(rng):
    return rng.uniform(-1, 1, (2,) + SHAPE).astype("float32")


@pytest.mark.parametrize("builder", BUILDERS)
def test_keras_file_round_trip_needs_no_custom_objects(builder, images, tmp_path):
    model = small_model(builder)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded(images, training=False)),
        ops.convert_to_numpy(model(images, training=False)),
        atol=1e-6,
    )


@pytest.mark.slow
@pytest.mark.requires_tensorflow
@pytest.mark.parametrize("builder", BUILDERS)
def test_saved_model_and_builtin_ops_tflite_reproduce_keras(builder, images):
    run_saved_model_and_tflite_test(small_model(builder), images)

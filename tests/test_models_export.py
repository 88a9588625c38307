"""Every family with Coordinate Attention exports as a SavedModel and converts to TFLite
with builtin ops only.

(The .keras round trip of every family is in test_models_backbone.py; MobileNetV2's
exports, every format checked against Keras, run in the README's train-then-export flow,
tests/test_readme.py.)"""

import pytest

from harness import run_saved_model_and_tflite_test
from keras_coordatt.models import EfficientNetB0
from keras_coordatt.models import MobileNeXt

BUILDERS = [MobileNeXt, EfficientNetB0]
SHAPE = (64, 64, 3)


def small_model(builder):
    return builder(input_shape=SHAPE, alpha=0.35, attention="ca", classes=10)


@pytest.fixture
def images(rng):
    return rng.uniform(-1, 1, (2,) + SHAPE).astype("float32")


@pytest.mark.slow
@pytest.mark.requires_tensorflow
@pytest.mark.parametrize("builder", BUILDERS)
def test_saved_model_and_builtin_ops_tflite_reproduce_keras(builder, images):
    run_saved_model_and_tflite_test(small_model(builder), images)

"""The runnable examples in the public docstrings give what they show."""

import doctest
import importlib
import importlib.util

import keras
import pytest

MODULES = [
    "keras_coordatt.data.core.arrays",
    "keras_coordatt.layers.coord_attention",
    "keras_coordatt.layers.squeeze_excite",
    "keras_coordatt.layers.cbam",
    "keras_coordatt.layers.factory",
    "keras_coordatt.models.add_attention",
    "keras_coordatt.models.classifier",
    "keras_coordatt.models.common",
    "keras_coordatt.models.mobilenet_v2",
    "keras_coordatt.models.mobilenext",
    "keras_coordatt.models.efficientnet",
    "keras_coordatt.models.macs",
    "keras_coordatt.models.pyramid",
    "keras_coordatt.models.families",
    "keras_coordatt.models.presets",
    "keras_coordatt.preprocessing",
    "keras_coordatt.tasks.anchors",
    "keras_coordatt.tasks.postprocess",
]

if importlib.util.find_spec("keras_hub") is not None:  # optional; make test installs it
    MODULES.append("keras_coordatt.models.keras_hub")

if keras.backend.backend() != "tensorflow":
    # `make test` re-runs the layers on JAX and PyTorch; the model modules'
    # examples build whole ImageNet-size networks and run on TensorFlow.
    MODULES = [name for name in MODULES if name.startswith("keras_coordatt.layers.")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0

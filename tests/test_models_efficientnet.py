"""EfficientNet-B0: keras.applications' graph with its SE, or with another attention."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_coordatt.layers import CoordAttention
from keras_coordatt.layers import SqueezeExcite
from keras_coordatt.models import EfficientNetB0
from keras_coordatt.models import count_trainable_params

SMALL = (64, 64, 3)


def test_own_se_has_exactly_keras_applications_trainable_params():
    reference = keras.applications.EfficientNetB0(weights=None)
    assert count_trainable_params(EfficientNetB0()) == count_trainable_params(reference)
    assert count_trainable_params(EfficientNetB0(attention="efficientnet_se")) == (
        count_trainable_params(reference))


def test_keras_applications_weights_copied_by_name_give_the_same_outputs(rng):
    reference = keras.applications.EfficientNetB0(
        weights=None, input_shape=SMALL, classifier_activation=None
    )
    ours = EfficientNetB0(input_shape=SMALL, classifier_activation=None)
    for layer in reference.layers:
        if layer.weights:
            # keras.applications leaves its Normalization layer's name to a counter.
            name = "normalization" if isinstance(layer, keras.layers.Normalization) else layer.name
            ours.get_layer(name).set_weights(layer.get_weights())
    x = rng.uniform(0, 255, (2,) + SMALL).astype("float32")
    np.testing.assert_allclose(
        ops.convert_to_numpy(ours(x, training=False)),
        ops.convert_to_numpy(reference(x, training=False)),
        atol=1e-5,
    )


def test_ca_replaces_every_se_at_the_same_place():
    model = EfficientNetB0(input_shape=SMALL, include_top=False, attention="ca")
    assert not any("_se_" in l.name for l in model.layers)
    attentions = [l for l in model.layers if isinstance(l, CoordAttention)]
    assert len(attentions) == 16
    attention = model.get_layer("block2a_attention")
    assert attention.input is model.get_layer("block2a_activation").output
    assert model.get_layer("block2a_project_conv").input is attention.output


def test_ca_trainable_params():
    assert count_trainable_params(EfficientNetB0(attention="ca")) == 5_381_804


def test_none_removes_the_se():
    model = EfficientNetB0(attention=None)
    assert not any("_se_" in l.name or "attention" in l.name for l in model.layers)
    assert count_trainable_params(model) == 4_652_008


@pytest.mark.parametrize("attention", ["se", {"type": "se"}])
def test_se_is_the_papers_se_baseline_as_in_every_other_model(attention):
    model = EfficientNetB0(input_shape=SMALL, include_top=False, attention=attention)
    assert isinstance(model.get_layer("block3b_attention"), SqueezeExcite)
    assert not any("_se_" in layer.name for layer in model.layers)


def test_pyramid_levels_have_strides_4_to_32():
    model = EfficientNetB0(input_shape=SMALL, include_top=False, attention="ca")
    shapes = {level: tuple(t.shape[1:]) for level, t in model.pyramid_outputs.items()}
    assert shapes == {
        "P2": (16, 16, 24),
        "P3": (8, 8, 40),
        "P4": (4, 4, 112),
        "P5": (2, 2, 1280),
    }


@pytest.mark.parametrize(
    "attention, name",
    [("efficientnet_se", "efficientnetb0"), (None, "efficientnetb0_none"),
     ("ca", "efficientnetb0_ca"), ("se", "efficientnetb0_se")],
)
def test_default_name_marks_a_replaced_se(attention, name):
    assert EfficientNetB0(input_shape=SMALL, attention=attention).name == name

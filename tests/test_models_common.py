"""What every builder shares: keras.applications' arguments, clear errors, weight
files, channel rounding and the feature pyramid."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_coordatt.models import EfficientNetB0
from keras_coordatt.models import MobileNetV2
from keras_coordatt.models import MobileNeXt
from keras_coordatt.models import feature_pyramid
from keras_coordatt.models import make_divisible

BUILDERS = [MobileNetV2, MobileNeXt, EfficientNetB0]
SMALL = (32, 32, 3)


def small(builder, **kwargs):
    return builder(**{"input_shape": SMALL, "alpha": 0.35, **kwargs})


@pytest.mark.parametrize(
    "value, expected",
    [(32, 32), (24 * 0.75, 24), (32 * 0.35, 16), (16 * 0.35, 8), (1280 * 1.4, 1792), (12, 16)],
)
def test_make_divisible_rounds_to_8_never_10_percent_down(value, expected):
    assert make_divisible(value) == expected


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"attention": "bogus"}, "attention"),
        ({"alpha": 0}, "alpha"),
        ({"alpha": "wide"}, "alpha"),
        ({"padding": "same"}, "padding"),
        ({"pooling": "sum", "include_top": False}, "pooling"),
        ({"classes": 0}, "classes"),
        ({"weights": 3}, "weights"),
        ({"input_shape": (16, 16, 3)}, "input_shape"),
        ({"input_shape": (32, 32)}, "input_shape"),
        ({"dropout_rate": 1.0}, "dropout_rate"),
    ],
)
def test_bad_argument_raises_value_error_naming_it(builder, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        small(builder, **kwargs)


@pytest.mark.parametrize("builder", BUILDERS)
def test_missing_weights_file_is_named(builder, tmp_path):
    missing = str(tmp_path / "nothing.weights.h5")
    with pytest.raises(ValueError, match="nothing.weights.h5"):
        small(builder, weights=missing)


@pytest.mark.parametrize("builder", BUILDERS)
def test_weights_file_loads_into_the_same_architecture(builder, tmp_path, rng):
    path = str(tmp_path / "model.weights.h5")
    trained = small(builder, attention="ca", classes=5)
    trained.save_weights(path)
    loaded = small(builder, attention="ca", classes=5, weights=path)
    x = rng.normal(size=(1,) + SMALL).astype("float32")
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(trained(x)), atol=1e-6
    )


# Keras warns about the skipped layers on its way to the shape error.
@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_weights_file_of_another_classifier_is_refused_naming_the_file(tmp_path):
    path = str(tmp_path / "five.weights.h5")
    small(MobileNetV2, classes=5).save_weights(path)
    with pytest.raises(ValueError, match="five.weights.h5"):
        small(MobileNetV2, classes=7, weights=path)


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("pooling, rank", [(None, 4), ("avg", 2), ("max", 2)])
def test_pooling_without_top(builder, pooling, rank):
    model = small(builder, include_top=False, pooling=pooling)
    assert len(model.output.shape) == rank


@pytest.mark.parametrize("builder", BUILDERS)
def test_without_top_and_input_shape_any_size_goes(builder):
    model = builder(alpha=0.35, include_top=False)
    assert tuple(model.input.shape) == (None, None, None, 3)


@pytest.mark.parametrize("builder", BUILDERS)
def test_builds_on_an_input_tensor(builder):
    inputs = keras.Input((48, 48, 3))
    model = builder(input_tensor=inputs, alpha=0.35, include_top=False, pooling="avg")
    assert model.inputs[0] is inputs


def test_input_tensor_and_input_shape_must_agree():
    with pytest.raises(ValueError, match="input_shape"):
        MobileNetV2(input_tensor=keras.Input((48, 48, 3)), input_shape=(64, 64, 3))


@pytest.mark.parametrize("builder", BUILDERS)
def test_feature_pyramid_outputs_levels_p2_to_p5(builder, rng):
    pyramid = feature_pyramid(small(builder, include_top=False, attention="ca"))
    outputs = pyramid(rng.normal(size=(1,) + SMALL).astype("float32"))
    assert {level: tuple(t.shape[1:3]) for level, t in outputs.items()} == {
        "P2": (8, 8), "P3": (4, 4), "P4": (2, 2), "P5": (1, 1)
    }


def test_feature_pyramid_shares_the_backbone_weights():
    backbone = small(MobileNetV2, include_top=False)
    assert feature_pyramid(backbone).get_layer("Conv1") is backbone.get_layer("Conv1")


def test_feature_pyramid_of_a_model_without_levels_says_how_to_get_them():
    inputs = keras.Input(SMALL)
    plain = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    with pytest.raises(ValueError, match="pyramid_outputs"):
        feature_pyramid(plain)

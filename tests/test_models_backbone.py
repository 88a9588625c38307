"""Backbones and classifiers know what they are: config, pyramid, preprocessing, save/load."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_coordatt.layers import CoordAttention
from keras_coordatt.models import FAMILIES
from keras_coordatt.models import Backbone
from keras_coordatt.models import EfficientNetB0Backbone
from keras_coordatt.models import ImageClassifier
from keras_coordatt.models import MobileNetV2
from keras_coordatt.models import MobileNetV2Backbone
from keras_coordatt.models import MobileNeXtBackbone
from keras_coordatt.models import count_trainable_params
from keras_coordatt.models import feature_pyramid
from keras_coordatt.models import get_family
from keras_coordatt.models import rebuild
from keras_coordatt.preprocessing import Preprocessing
from keras_coordatt.preprocessing import preprocessing_of

SMALL = (32, 32, 3)
BACKBONES = {
    "mobilenet_v2": lambda **kw: MobileNetV2Backbone(alpha=0.35, **kw),
    "mobilenet_v2_os16": lambda **kw: MobileNetV2Backbone(alpha=0.35, output_stride=16, **kw),
    "mobilenext": lambda **kw: MobileNeXtBackbone(alpha=0.35, **kw),
    "efficientnet_b0": lambda **kw: EfficientNetB0Backbone(**kw),
}


def outputs(model, x):
    return keras.tree.map_structure(ops.convert_to_numpy, model(x, training=False))


def saved_and_loaded(model, tmp_path):
    path = str(tmp_path / "model.keras")
    model.save(path)
    return keras.saving.load_model(path)


@pytest.mark.parametrize("key", BACKBONES)
def test_backbone_config_is_its_arguments(key):
    backbone = BACKBONES[key](image_shape=SMALL, attention="ca")
    config = backbone.get_config()
    assert config["image_shape"] == SMALL and config["attention"] == "ca"
    assert set(config) == {"name", "trainable", "dtype", *type(backbone).config_fields}
    rebuilt = type(backbone).from_config(config)
    assert count_trainable_params(rebuilt) == count_trainable_params(backbone)
    assert [l.name for l in rebuilt.layers[1:]] == [l.name for l in backbone.layers[1:]]


@pytest.mark.parametrize("key", BACKBONES)
def test_backbone_survives_a_keras_file_with_its_pyramid_and_preprocessing(key, tmp_path, rng):
    backbone = BACKBONES[key](image_shape=SMALL, attention="ca")
    restored = saved_and_loaded(backbone, tmp_path)
    assert type(restored) is type(backbone)
    assert restored.preprocessing == backbone.preprocessing
    x = rng.uniform(0, 1, (2,) + SMALL).astype("float32")
    np.testing.assert_allclose(outputs(restored, x), outputs(backbone, x), atol=1e-6)
    pyramid, expected = outputs(feature_pyramid(restored), x), outputs(feature_pyramid(backbone), x)
    assert sorted(pyramid) == sorted(expected)
    for level in expected:
        np.testing.assert_allclose(pyramid[level], expected[level], atol=1e-6)


@pytest.mark.parametrize("builder", [family.builder for family in FAMILIES.values()])
def test_classifier_is_backbone_plus_head_and_survives_a_keras_file(builder, tmp_path, rng):
    model = builder(input_shape=SMALL, attention="ca", classes=3, classifier_activation=None)
    assert isinstance(model, ImageClassifier) and isinstance(model.backbone, Backbone)
    # The head continues the backbone's graph: one flat list of layers, shared.
    assert model.get_layer("predictions").input.shape[-1] == model.backbone.feature_channels
    shared = model.backbone.layers[-1]
    assert model.get_layer(shared.name) is shared
    restored = saved_and_loaded(model, tmp_path)
    assert type(restored) is ImageClassifier and restored.get_config()["classes"] == 3
    assert restored.pyramid_outputs.keys() == model.pyramid_outputs.keys()
    assert restored.preprocessing == model.preprocessing
    x = rng.uniform(0, 1, (2,) + SMALL).astype("float32")
    np.testing.assert_allclose(outputs(restored, x), outputs(model, x), atol=1e-5)


def test_pooled_features_without_top_are_a_classifier_without_predictions():
    model = MobileNetV2(input_shape=SMALL, alpha=0.35, include_top=False, pooling="max")
    assert isinstance(model, ImageClassifier) and model.classes is None
    assert model.layers[-1].name == "max_pool" and not model.outputs_probabilities


def test_attention_given_as_a_layer_class_is_saved_as_its_config(tmp_path, rng):
    backbone = MobileNetV2Backbone(image_shape=SMALL, alpha=0.35, attention=CoordAttention,
                                   attention_kwargs={"reduction": 8})
    attention = backbone.get_config()["attention"]
    assert attention["class_name"] == "CoordAttention" and "name" not in attention["config"]
    restored = saved_and_loaded(backbone, tmp_path)
    assert restored.get_layer("block_3_attention").reduction == 8
    x = rng.uniform(0, 1, (1,) + SMALL).astype("float32")
    np.testing.assert_allclose(outputs(restored, x), outputs(backbone, x), atol=1e-6)


def test_mixed_precision_backbone_reloads_in_mixed_precision(tmp_path):
    keras.config.set_dtype_policy("mixed_float16")
    backbone = MobileNetV2Backbone(image_shape=SMALL, alpha=0.35, attention="ca")
    keras.config.set_dtype_policy("float32")
    restored = saved_and_loaded(backbone, tmp_path)
    assert restored.get_layer("block_1_attention").dtype_policy.name == "mixed_float16"
    assert keras.config.dtype_policy().name == "float32"


def test_dtype_argument_builds_in_that_policy_and_leaves_the_process_policy():
    backbone = MobileNetV2Backbone(image_shape=SMALL, alpha=0.35, dtype="mixed_bfloat16")
    assert backbone.get_layer("Conv1").dtype_policy.name == "mixed_bfloat16"
    assert backbone.get_config()["dtype"] == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"


def test_rebuild_at_another_size_takes_the_same_weights(rng):
    model = MobileNetV2(input_shape=(None, None, 3), alpha=0.35, attention="ca", classes=3)
    fixed = rebuild(model, image_shape=(48, 48, 3))
    fixed.set_weights(model.get_weights())
    x = rng.uniform(-1, 1, (1, 48, 48, 3)).astype("float32")
    assert tuple(fixed.input.shape) == (None, 48, 48, 3)
    np.testing.assert_allclose(outputs(fixed, x), outputs(model, x), atol=1e-6)


def test_rebuild_refuses_a_model_that_is_not_ours():
    inputs = keras.Input(SMALL)
    plain = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs), name="plain")
    with pytest.raises(TypeError, match="'plain' is a Functional, not a keras_coordatt Backbone"):
        rebuild(plain, image_shape=(64, 64, 3))


def test_channels_first_input_shape_is_named_as_such():
    with pytest.raises(ValueError, match="looks channels-first.*\\(64, 64, 3\\)"):
        MobileNetV2(input_shape=(3, 64, 64))


def test_an_input_tensor_from_other_layers_keeps_them_in_front():
    inputs = keras.Input((40, 40, 3))
    scaled = keras.layers.Rescaling(1 / 127.5, offset=-1, name="scale")(inputs)
    model = MobileNetV2(input_tensor=scaled, alpha=0.35, classes=3)
    assert model.inputs[0] is inputs and model.get_layer("scale")
    assert model.output.shape == (None, 3)


# The family table.

@pytest.mark.parametrize("key, pixel_range", [("mobilenet_v2", (-1.0, 1.0)),
                                              ("mobilenext", (-1.0, 1.0)),
                                              ("efficientnet_b0", (0.0, 255.0))])
def test_each_family_says_its_preprocessing_and_its_models_carry_it(key, pixel_range):
    family = get_family(key)
    assert family.preprocessing == Preprocessing(pixel_range)
    kwargs = {"alpha": 0.35} if family.has_width else {}
    model = family.builder(input_shape=SMALL, classes=2, **kwargs)
    assert preprocessing_of(model) == family.preprocessing


def test_the_keras_applications_rule_decides_for_other_models():
    efficientnet = keras.applications.EfficientNetB0(weights=None, input_shape=SMALL)
    mobilenet = keras.applications.MobileNetV2(weights=None, input_shape=SMALL, alpha=0.35)
    assert preprocessing_of(efficientnet).pixel_range == (0.0, 255.0)
    assert preprocessing_of(mobilenet).pixel_range == (-1.0, 1.0)


def test_only_efficientnet_has_an_own_attention():
    assert {key: family.own_attention for key, family in FAMILIES.items()} == {
        "mobilenet_v2": None, "mobilenext": None, "efficientnet_b0": "efficientnet_se"}
    assert "efficientnet_se" in get_family("efficientnet_b0").attentions()
    with pytest.raises(ValueError, match="not known for mobilenet_v2; expected one of none, ca"):
        get_family("mobilenet_v2").check_attention("efficientnet_se")


def test_unknown_family_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet50'; expected one of mobilenet_v2, "
                                         "mobilenext, efficientnet_b0"):
        get_family("resnet50")

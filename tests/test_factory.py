"""get_attention: every way a builder's ``attention=`` argument can be given."""

import keras
import pytest

from keras_coordatt import CBAM
from keras_coordatt import CoordAttention
from keras_coordatt import SqueezeExcite
from keras_coordatt import attention_names
from keras_coordatt import get_attention


@pytest.mark.parametrize("spec", [None, "none", "None", ""])
def test_no_attention_gives_none(spec):
    assert get_attention(spec, name="ignored") is None


@pytest.mark.parametrize(
    "spec, cls, directions",
    [
        ("se", SqueezeExcite, None),
        ("cbam", CBAM, None),
        ("ca", CoordAttention, "hw"),
        ("ca_h", CoordAttention, "h"),
        ("ca_w", CoordAttention, "w"),
        ("CA", CoordAttention, "hw"),
        ("coord_attention", CoordAttention, "hw"),
        ("squeeze_excite", SqueezeExcite, None),
    ],
)
def test_names_give_the_named_layer(spec, cls, directions):
    layer = get_attention(spec, name="block_3_attention")
    assert type(layer) is cls and layer.name == "block_3_attention"
    if directions:
        assert layer.directions == directions


def test_every_listed_name_builds_a_layer():
    assert attention_names() == ["ca", "ca_h", "ca_ln", "ca_w", "cbam", "eca", "ela", "ela_t", "se", "simam"]
    for name in attention_names():
        assert isinstance(get_attention(name), keras.layers.Layer)


def test_keyword_arguments_override_the_defaults_a_name_implies():
    layer = get_attention("ca_h", reduction=16, directions="hw")
    assert (layer.reduction, layer.directions) == (16, "hw")


def test_each_call_returns_a_new_layer():
    assert get_attention("ca") is not get_attention("ca")


def test_a_type_dict_is_a_name_with_options():
    layer = get_attention({"type": "se", "reduction": 8}, name="x")
    assert type(layer) is SqueezeExcite and layer.reduction == 8 and layer.name == "x"


def test_a_keras_serialization_dict_round_trips():
    original = CoordAttention(reduction=16, activation="relu6")
    config = keras.saving.serialize_keras_object(original)
    layer = get_attention(config, name="copy")
    assert type(layer) is CoordAttention and layer.name == "copy"
    assert (layer.reduction, layer.activation) == (16, "relu6")


def test_a_layer_class_is_called_with_the_keyword_arguments():
    layer = get_attention(CBAM, kernel_size=3)
    assert type(layer) is CBAM and layer.kernel_size == 3


def test_a_callable_returning_a_layer_is_used():
    layer = get_attention(lambda **kw: keras.layers.Identity(**kw), name="noop")
    assert type(layer) is keras.layers.Identity and layer.name == "noop"


def test_unknown_name_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown attention 'gct'.*'ca', 'ca_h'"):
        get_attention("gct")


def test_a_dict_without_type_is_refused():
    with pytest.raises(ValueError, match="needs a 'type' key"):
        get_attention({"reduction": 8})


def test_a_layer_instance_is_refused_because_blocks_need_new_layers():
    with pytest.raises(TypeError, match="layer instance"):
        get_attention(CoordAttention())


def test_a_callable_returning_something_else_is_refused():
    with pytest.raises(TypeError, match="returned int"):
        get_attention(lambda **kw: 3)


def test_other_types_are_refused():
    with pytest.raises(TypeError, match="of type float"):
        get_attention(0.5)

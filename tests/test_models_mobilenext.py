"""MobileNeXt + attention: the official sandglass block, attention placement and the
parameter counts behind the paper's Table 3 (see keras_coordatt.models.mobilenext)."""

import keras
import numpy as np
import pytest

from keras_coordatt.layers import CoordAttention
from keras_coordatt.models import MobileNeXt
from keras_coordatt.models import count_trainable_params

SMALL = (64, 64, 3)


@pytest.mark.parametrize(
    "attention, position, params",
    [
        (None, "first", 3_535_416),  # the paper's 3.5M
        ("se", "first", 3_913_557),
        ("ca", "first", 3_971_626),  # the official README's placement
        ("ca", "last", 4_088_113),  # the paper's 4.09M
    ],
)
def test_trainable_params_at_width_1(attention, position, params):
    model = MobileNeXt(attention=attention, attention_position=position)
    assert count_trainable_params(model) == params


def test_first_position_follows_the_first_depthwise_relu():
    model = MobileNeXt(input_shape=SMALL, alpha=0.35, include_top=False, attention="ca")
    attention = model.get_layer("block_3_attention")
    assert attention.input is model.get_layer("block_3_dw1_relu").output
    assert model.get_layer("block_3_reduce").input is attention.output


def test_last_position_follows_the_second_depthwise_bn():
    model = MobileNeXt(
        input_shape=SMALL, alpha=0.35, include_top=False, attention="ca",
        attention_position="last",
    )
    attention = model.get_layer("block_3_attention")
    assert attention.input is model.get_layer("block_3_dw2_BN").output
    assert attention.output in model.get_layer("block_3_add").input


@pytest.mark.parametrize("position, blocks", [("first", 15), ("last", 18)])
def test_only_blocks_with_that_depthwise_conv_get_attention(position, blocks):
    model = MobileNeXt(
        input_shape=SMALL, include_top=False, attention="ca", attention_position=position
    )
    assert sum(isinstance(l, CoordAttention) for l in model.layers) == blocks


def test_width_changing_blocks_drop_depthwise_convs_as_the_official_code():
    model = MobileNeXt(input_shape=SMALL, include_top=False)
    names = {l.name for l in model.layers}
    # Block 2 (144 -> 192, stride 2) keeps only its strided dw2; block 8
    # (288 -> 384, stride 1) has neither; block 3 (192 -> 192) has both.
    assert {"block_2_dw1", "block_8_dw1", "block_8_dw2"}.isdisjoint(names)
    assert {"block_2_dw2", "block_3_dw1", "block_3_dw2"} <= names


def test_sandglass_reduces_to_a_sixth_of_the_output_at_least():
    model = MobileNeXt(input_shape=SMALL, include_top=False)
    # 192 // 6 = 32 channels; 96 // 6 = 16 < 144 / 6, raised to 32 (a multiple of 16).
    assert model.get_layer("block_3_reduce").filters == 32
    assert model.get_layer("block_1_reduce").filters == 32


def test_last_block_keeps_1280_channels_below_width_1():
    model = MobileNeXt(input_shape=SMALL, alpha=0.5, include_top=False)
    assert model.output.shape[-1] == 1280


def test_head_has_the_official_dropout():
    model = MobileNeXt(input_shape=SMALL, alpha=0.35)
    assert model.get_layer("top_dropout").rate == 0.2


def test_pytorch_padding_is_symmetric():
    model = MobileNeXt(input_shape=SMALL, alpha=0.35, include_top=False, padding="pytorch")
    pads = [l for l in model.layers if isinstance(l, keras.layers.ZeroPadding2D)]
    assert [l.name for l in pads] == [
        "Conv1_pad", "block_0_pad", "block_2_pad", "block_5_pad", "block_12_pad"
    ]
    assert all(l.padding == ((1, 1), (1, 1)) for l in pads)


def test_pyramid_levels_have_strides_4_to_32():
    model = MobileNeXt(input_shape=SMALL, include_top=False, attention="ca")
    shapes = {level: tuple(t.shape[1:]) for level, t in model.pyramid_outputs.items()}
    assert shapes == {
        "P2": (16, 16, 144),
        "P3": (8, 8, 192),
        "P4": (4, 4, 384),
        "P5": (2, 2, 1280),
    }


def test_forward_pass_gives_class_probabilities(rng):
    model = MobileNeXt(input_shape=(32, 32, 3), alpha=0.35, attention="ca", classes=7)
    probabilities = keras.ops.convert_to_numpy(
        model(rng.normal(size=(2, 32, 32, 3)).astype("float32"))
    )
    assert probabilities.shape == (2, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_unknown_attention_position_is_rejected():
    with pytest.raises(ValueError, match="attention_position"):
        MobileNeXt(input_shape=SMALL, attention="ca", attention_position="middle")

"""count_macs: hand-counted single layers and the paper's M-Adds."""

import keras
import pytest

from keras_coordatt.layers import CBAM
from keras_coordatt.layers import CoordAttention
from keras_coordatt.layers import EfficientChannelAttention
from keras_coordatt.layers import EfficientLocalAttention
from keras_coordatt.layers import SimAM
from keras_coordatt.layers import SqueezeExcite
from keras_coordatt.models import MobileNetV2
from keras_coordatt.models import count_macs
from keras_coordatt.models import count_trainable_params


def single_layer_macs(layer, input_shape):
    inputs = keras.Input(input_shape)
    return count_macs(keras.Model(inputs, layer(inputs)))


def test_conv2d_counts_kernel_times_input_channels_per_output_value():
    conv = keras.layers.Conv2D(8, 3, strides=2, padding="same")
    # 5 x 5 outputs x 8 filters x (3 x 3 x 4) weights each.
    assert single_layer_macs(conv, (10, 10, 4)) == 5 * 5 * 8 * 36


def test_grouped_conv2d_sees_only_its_group():
    conv = keras.layers.Conv2D(8, 1, groups=2)
    assert single_layer_macs(conv, (6, 6, 4)) == 6 * 6 * 8 * 2


def test_strided_depthwise_conv_counts_one_kernel_per_output_channel():
    depthwise = keras.layers.DepthwiseConv2D(3, strides=2, padding="valid")
    # (11 - 3) // 2 + 1 = 5 rows and columns, 6 channels, 9 weights each.
    assert single_layer_macs(depthwise, (11, 11, 6)) == 5 * 5 * 6 * 9


def test_dense_counts_inputs_times_units():
    assert single_layer_macs(keras.layers.Dense(10), (32,)) == 320


def test_coord_attention_counts_its_three_1x1_convs():
    # C = 16, mip = max(8, 16 // 32) = 8, H = 4, W = 6:
    # F1 on H + W positions (16 -> 8), F_h on H and F_w on W (8 -> 16).
    expected = (4 + 6) * 16 * 8 + 4 * 8 * 16 + 6 * 8 * 16
    assert single_layer_macs(CoordAttention(), (4, 6, 16)) == expected


def test_one_direction_coord_attention_counts_only_that_direction():
    expected = 4 * 16 * 8 + 4 * 8 * 16
    assert single_layer_macs(CoordAttention(directions="h"), (4, 6, 16)) == expected


def test_squeeze_excite_counts_its_two_1x1_convs_once():
    # C = 48, C // 24 = 2.
    assert single_layer_macs(SqueezeExcite(), (5, 5, 48)) == 48 * 2 * 2


def test_eca_counts_k_taps_per_channel_simam_nothing_ela_its_strips():
    # C = 48: k = |(log2 48 + 1) / 2|_odd = 3.
    assert single_layer_macs(EfficientChannelAttention(), (5, 5, 48)) == 48 * 3
    assert single_layer_macs(SimAM(), (5, 5, 48)) == 0
    # ELA-B: the 7-tap depthwise conv at the 4 rows and 6 columns of each of 48 channels.
    assert single_layer_macs(EfficientLocalAttention(), (4, 6, 48)) == (4 + 6) * 48 * 7


def test_the_successors_cost_less_than_ca_in_mobilenet_v2():
    plain = count_macs(MobileNetV2())
    extra = {name: count_macs(MobileNetV2(attention=name)) - plain
             for name in ("ca", "eca", "simam", "ela")}
    assert extra["simam"] == 0 < extra["eca"] < extra["ela"] < extra["ca"]
    params = {name: count_trainable_params(MobileNetV2(attention=name))
              for name in ("none", "eca", "ela")}
    # ECA: k parameters per block; ELA-B: 7 C + 2 C per block (C the expanded width).
    assert 16 * 3 <= params["eca"] - params["none"] <= 16 * 7
    expanded = [96, 144, 144, 192, 192, 192, 384, 384, 384, 384, 576, 576, 576, 960, 960, 960]
    assert params["ela"] - params["none"] == 9 * sum(expanded)


def test_cbam_counts_the_shared_mlp_twice_and_the_7x7_spatial_conv():
    expected = 2 * (48 * 2 * 2) + 5 * 5 * 7 * 7 * 2
    assert single_layer_macs(CBAM(), (5, 5, 48)) == expected


def test_elementwise_layers_count_nothing():
    inputs = keras.Input((4, 4, 3))
    outputs = keras.layers.Multiply()([inputs, keras.layers.ReLU()(inputs)])
    assert count_macs(keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(outputs))) == 0


def test_nested_models_are_counted_through():
    inner_inputs = keras.Input((8,))
    inner = keras.Model(inner_inputs, keras.layers.Dense(4)(inner_inputs))
    inputs = keras.Input((8,))
    outer = keras.Model(inputs, keras.layers.Dense(2)(inner(inputs)))
    assert count_macs(outer) == 8 * 4 + 4 * 2


def test_unknown_spatial_size_asks_for_a_fixed_input_shape():
    model = MobileNetV2(alpha=0.35, include_top=False)
    with pytest.raises(ValueError, match="input_shape"):
        count_macs(model)


def test_mobilenetv2_is_the_papers_300m():
    macs = count_macs(MobileNetV2())
    assert macs == 300_774_272
    assert 295e6 < macs < 305e6


def test_mobilenetv2_with_ca_is_near_the_papers_310m():
    macs = count_macs(MobileNetV2(attention="ca"))
    assert macs == 306_666_368
    assert 305e6 < macs < 315e6


def test_count_trainable_params_leaves_out_batchnorm_statistics():
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, keras.layers.BatchNormalization()(inputs))
    assert count_trainable_params(model) == 6

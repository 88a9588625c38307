"""MobileNetV2 + attention: the paper's counts, keras.applications parity, padding,
BatchNorm settings, output stride and the feature pyramid."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_coordatt.layers import CoordAttention
from keras_coordatt.models import MobileNetV2
from keras_coordatt.models import count_trainable_params

# Table 2 of the paper at width 1.0, 224x224, 1000 classes.
PAPER_PARAMS = {None: 3_504_872, "se": 3_888_208, "cbam": 3_889_792, "ca": 3_950_648}
SMALL = (64, 64, 3)


@pytest.mark.parametrize("attention", list(PAPER_PARAMS))
def test_trainable_params_match_the_paper(attention):
    model = MobileNetV2(attention=attention)
    assert count_trainable_params(model) == PAPER_PARAMS[attention]


def keras_applications_pair(alpha):
    reference = keras.applications.MobileNetV2(
        weights=None, alpha=alpha, input_shape=(96, 96, 3), classifier_activation=None
    )
    ours = MobileNetV2(alpha=alpha, input_shape=(96, 96, 3), classifier_activation=None)
    return reference, ours


@pytest.mark.parametrize("alpha", [1.0, 0.75, 0.5])
def test_layers_are_named_and_shaped_as_keras_applications(alpha):
    reference, ours = keras_applications_pair(alpha)
    # Only the input and keras.applications' unnamed pooling get counter names.
    auto_named = (keras.layers.InputLayer, keras.layers.GlobalAveragePooling2D)
    names = lambda model: {l.name for l in model.layers if not isinstance(l, auto_named)}
    assert names(ours) == names(reference)
    for layer in reference.layers:
        if layer.weights:
            assert [w.shape for w in ours.get_layer(layer.name).weights] == [
                w.shape for w in layer.weights
            ], layer.name


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_keras_applications_weights_copied_by_name_give_the_same_outputs(alpha, rng):
    reference, ours = keras_applications_pair(alpha)
    for layer in reference.layers:
        if layer.weights:
            ours.get_layer(layer.name).set_weights(layer.get_weights())
    x = rng.uniform(-1, 1, (2, 96, 96, 3)).astype("float32")
    np.testing.assert_allclose(
        ops.convert_to_numpy(ours(x, training=False)),
        ops.convert_to_numpy(reference(x, training=False)),
        atol=1e-5,
    )


# Keras 3 still writes keras.applications' legacy .h5 layout, with warnings.
@pytest.mark.filterwarnings("ignore")
def test_keras_applications_h5_weights_file_loads_through_weights(tmp_path, rng):
    reference = keras.applications.MobileNetV2(
        weights=None, alpha=0.35, input_shape=(96, 96, 3), classifier_activation=None
    )
    path = str(tmp_path / "mobilenet_v2_0.35_96.h5")
    reference.save(path)
    ours = MobileNetV2(
        alpha=0.35, input_shape=(96, 96, 3), classifier_activation=None, weights=path
    )
    x = rng.uniform(-1, 1, (2, 96, 96, 3)).astype("float32")
    np.testing.assert_allclose(
        ops.convert_to_numpy(ours(x, training=False)),
        ops.convert_to_numpy(reference(x, training=False)),
        atol=1e-5,
    )


@pytest.mark.parametrize("alpha, channels", [(1.0, 1280), (0.5, 1280), (1.4, 1792)])
def test_last_conv_keeps_1280_channels_up_to_width_1(alpha, channels):
    model = MobileNetV2(alpha=alpha, input_shape=SMALL, include_top=False)
    assert model.output.shape[-1] == channels


def test_attention_sits_between_depthwise_relu_and_projection():
    model = MobileNetV2(input_shape=SMALL, alpha=0.35, include_top=False, attention="ca")
    attention = model.get_layer("block_5_attention")
    assert isinstance(attention, CoordAttention)
    assert attention.input is model.get_layer("block_5_depthwise_relu").output
    assert model.get_layer("block_5_project").input is attention.output


def test_every_block_but_the_expansion_1_block_gets_attention():
    model = MobileNetV2(input_shape=SMALL, alpha=0.35, include_top=False, attention="se")
    names = {l.name for l in model.layers if l.name.endswith("_attention")}
    assert names == {f"block_{i}_attention" for i in range(1, 17)}


def test_attention_kwargs_reach_every_attention_layer():
    model = MobileNetV2(
        input_shape=SMALL, include_top=False, attention="ca",
        attention_kwargs={"reduction": 16},
    )
    attentions = [l for l in model.layers if isinstance(l, CoordAttention)]
    assert len(attentions) == 16 and all(l.reduction == 16 for l in attentions)


def test_pytorch_padding_pads_every_stride_2_conv_symmetrically():
    model = MobileNetV2(input_shape=SMALL, alpha=0.35, include_top=False, padding="pytorch")
    pads = [l for l in model.layers if isinstance(l, keras.layers.ZeroPadding2D)]
    assert [l.name for l in pads] == [
        "Conv1_pad", "block_1_pad", "block_3_pad", "block_6_pad", "block_13_pad"
    ]
    assert all(l.padding == ((1, 1), (1, 1)) for l in pads)


def test_keras_padding_pads_stride_2_depthwise_convs_at_the_bottom_right():
    model = MobileNetV2(input_shape=SMALL, alpha=0.35, include_top=False)
    assert model.get_layer("block_1_pad").padding == ((0, 1), (0, 1))


def test_pytorch_padding_stem_is_a_symmetrically_padded_convolution(rng):
    model = MobileNetV2(input_shape=SMALL, alpha=0.35, include_top=False, padding="pytorch")
    conv = model.get_layer("Conv1")
    stem = keras.Model(model.input, conv.output)
    x = rng.normal(size=(1,) + SMALL).astype("float32")
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    expected = ops.conv(padded, conv.kernel, strides=2, padding="valid")
    np.testing.assert_allclose(
        ops.convert_to_numpy(stem(x)), ops.convert_to_numpy(expected), atol=1e-5
    )


def test_both_paddings_have_the_same_weights():
    keras_padded = MobileNetV2(input_shape=SMALL, alpha=0.35, padding="keras")
    torch_padded = MobileNetV2(input_shape=SMALL, alpha=0.35, padding="pytorch")
    assert [(w.path, w.shape) for w in keras_padded.weights] == [
        (w.path, w.shape) for w in torch_padded.weights
    ]


def test_bn_settings_reach_every_network_batchnorm():
    model = MobileNetV2(
        input_shape=SMALL, alpha=0.35, include_top=False, bn_epsilon=1e-5, bn_momentum=0.9
    )
    norms = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(norms) == 52
    assert all(l.epsilon == 1e-5 and l.momentum == 0.9 for l in norms)


def test_dropout_rate_adds_dropout_before_predictions():
    model = MobileNetV2(input_shape=SMALL, alpha=0.35, dropout_rate=0.1)
    assert model.get_layer("predictions").input is model.get_layer("top_dropout").output
    assert model.get_layer("top_dropout").rate == 0.1


def test_default_has_no_dropout_like_keras_applications():
    model = MobileNetV2(input_shape=SMALL, alpha=0.35)
    assert not any(isinstance(l, keras.layers.Dropout) for l in model.layers)


@pytest.mark.parametrize("output_stride, size", [(32, 2), (16, 4), (8, 8)])
def test_output_stride_sets_the_final_feature_size(output_stride, size):
    model = MobileNetV2(
        input_shape=SMALL, alpha=0.35, include_top=False, output_stride=output_stride
    )
    assert tuple(model.output.shape[1:3]) == (size, size)


@pytest.mark.parametrize("output_stride", [16, 8])
def test_output_stride_keeps_the_parameter_count(output_stride):
    dilated = MobileNetV2(
        input_shape=SMALL, alpha=0.35, attention="ca", output_stride=output_stride
    )
    plain = MobileNetV2(input_shape=SMALL, alpha=0.35, attention="ca")
    assert count_trainable_params(dilated) == count_trainable_params(plain)


@pytest.mark.parametrize(
    "output_stride, rates",
    [(16, {"block_13": 1, "block_14": 2, "block_16": 2}),
     (8, {"block_6": 1, "block_7": 2, "block_13": 2, "block_14": 4, "block_16": 4})],
)
def test_output_stride_dilates_the_depthwise_convs_past_the_target(output_stride, rates):
    model = MobileNetV2(
        input_shape=SMALL, alpha=0.35, include_top=False, output_stride=output_stride
    )
    for block, rate in rates.items():
        depthwise = model.get_layer(f"{block}_depthwise")
        assert depthwise.strides == (1, 1)
        assert depthwise.dilation_rate == (rate, rate), block


@pytest.mark.parametrize(
    "output_stride, levels",
    [
        (32, {"P2": (16, 24), "P3": (8, 32), "P4": (4, 96), "P5": (2, 1280)}),
        (16, {"P2": (16, 24), "P3": (8, 32), "P4": (4, 1280)}),
        (8, {"P2": (16, 24), "P3": (8, 1280)}),
    ],
)
def test_pyramid_levels_are_keyed_by_true_stride(output_stride, levels):
    """Pk has stride 2**k; below output stride 32 the final map is the deepest level."""
    model = MobileNetV2(
        input_shape=SMALL, include_top=False, attention="ca", output_stride=output_stride
    )
    shapes = {level: tuple(t.shape[1:]) for level, t in model.pyramid_outputs.items()}
    assert shapes == {level: (size, size, channels) for level, (size, channels) in levels.items()}
    assert model.pyramid_outputs[max(levels)] is model.output


def test_unknown_output_stride_is_rejected():
    with pytest.raises(ValueError, match="output_stride"):
        MobileNetV2(input_shape=SMALL, output_stride=4)


def test_default_name_says_width_size_and_attention():
    model = MobileNetV2(input_shape=SMALL, alpha=0.5, attention="ca")
    assert model.name == "mobilenetv2_0.50_64_ca"

"""CA, SE, CBAM, ECA, SimAM and ELA against their papers, on every backend."""

import functools

import keras
import numpy as np
import pytest

import reference
from harness import randomize_weights
from harness import run_layer_test
from harness import run_saved_model_test
from harness import run_tflite_test
from harness import to_numpy
from keras_coordatt import CBAM
from keras_coordatt import CoordAttention
from keras_coordatt import EfficientChannelAttention
from keras_coordatt import EfficientLocalAttention
from keras_coordatt import SimAM
from keras_coordatt import SqueezeExcite

ALL_LAYERS = [CoordAttention, SqueezeExcite, CBAM, EfficientChannelAttention, SimAM,
              EfficientLocalAttention]
# The layers with the bottleneck of reduction and min_channels.
BOTTLENECK_LAYERS = [CoordAttention, SqueezeExcite, CBAM]

# Trainable parameter counts, worked out by hand:
#   CA:   F1 C*mip + mip, BN 2*mip, F_h and F_w mip*C + C each, mip = max(8, C // r)
#   SE:   C*s + s + s*C + C with s = C // r
#   CBAM: the SE count + k*k*2 + 1 for the spatial conv
#   ECA:  k (one conv shared by all channels); SimAM: none; ELA: k*C depthwise + 2*C GroupNorm
LAYER_CASES = {
    # 96 channels, r=32: mip=8, 3*96*8 + 3*8 + 2*96 (a MobileNetV2 block-2 width)
    "ca": (CoordAttention, {}, 96, 2520, reference.coord_attention),
    # 64 channels, r=8: mip=8, 3*64*8 + 24 + 128
    "ca_r8_relu6": (CoordAttention, {"reduction": 8, "activation": "relu6"}, 64, 1688, None),
    # one direction: F1 96*8+8, BN 16, one gate conv 8*96+96
    "ca_h": (
        CoordAttention, {"directions": "h"}, 96, 1656,
        functools.partial(reference.coord_attention, directions="h"),
    ),
    "ca_w": (
        CoordAttention, {"directions": "w"}, 96, 1656,
        functools.partial(reference.coord_attention, directions="w"),
    ),
    # per-image normalisation: the same count (GroupNorm's gamma and beta replace BatchNorm's)
    "ca_ln": (
        CoordAttention, {"normalization": "layer"}, 96, 2520,
        functools.partial(reference.coord_attention, normalization="layer"),
    ),
    # 576 channels: mip=18, 3*576*18 + 3*18 + 2*576 (MobileNetV2's widest stride-16 block)
    "ca_576": (CoordAttention, {}, 576, 32310, None),
    # 96 channels, r=24: s=4, 96*4 + 4 + 4*96 + 96
    "se": (
        SqueezeExcite, {}, 96, 868,
        lambda x, w, training: reference.squeeze_excite(x, w),
    ),
    # 32 channels, r=4, swish: s=8, 32*8 + 8 + 8*32 + 32
    "se_r4_swish": (SqueezeExcite, {"reduction": 4, "activation": "swish"}, 32, 552, None),
    # 96 channels: the SE count 868 + 7*7*2 + 1
    "cbam": (CBAM, {}, 96, 967, lambda x, w, training: reference.cbam(x, w)),
    # 48 channels, k=3: s=2, 48*2 + 2 + 2*48 + 48 + 3*3*2 + 1
    "cbam_k3": (CBAM, {"kernel_size": 3}, 48, 261, None),
    # 96 channels: k = |(log2 96 + 1) / 2|_odd = 3
    "eca": (EfficientChannelAttention, {}, 96, 3, lambda x, w, training: reference.eca(x, w)),
    # an explicit kernel
    "eca_k5": (EfficientChannelAttention, {"kernel_size": 5}, 64, 5,
               lambda x, w, training: reference.eca(x, w)),
    "simam": (SimAM, {}, 96, 0, lambda x, w, training: reference.simam(x)),
    "simam_lambda": (SimAM, {"e_lambda": 0.1}, 32, 0,
                     lambda x, w, training: reference.simam(x, 0.1)),
    # ELA-B: 7*96 + 2*96, 16 groups
    "ela": (EfficientLocalAttention, {}, 96, 864,
            lambda x, w, training: reference.ela(x, w, groups=16)),
    # ELA-T: 5*96 + 2*96, 32 groups
    "ela_t": (EfficientLocalAttention, {"variant": "t"}, 96, 672,
              lambda x, w, training: reference.ela(x, w, groups=32)),
    # 144 channels, 32 groups asked: 24 (the largest divisor below 32)
    "ela_t_144": (EfficientLocalAttention, {"variant": "t"}, 144, 5 * 144 + 2 * 144,
                  lambda x, w, training: reference.ela(x, w, groups=24)),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_layer_contract(case, tmp_path, rng):
    layer_cls, kwargs, channels, params, numpy_reference = LAYER_CASES[case]
    run_layer_test(
        layer_cls, kwargs, (2, 6, 5, channels), params,
        reference=numpy_reference, tmp_path=tmp_path, rng=rng,
    )


@pytest.mark.parametrize("layer_cls", ALL_LAYERS)
def test_channels_first_matches_channels_last(layer_cls, rng):
    x = rng.normal(size=(2, 7, 4, 32)).astype("float32")
    last = layer_cls()
    last(x)
    randomize_weights(last, rng)
    first = layer_cls(data_format="channels_first")
    first(x.transpose(0, 3, 1, 2))
    first.set_weights(last.get_weights())
    for training in (False, True):
        np.testing.assert_allclose(
            to_numpy(first(x.transpose(0, 3, 1, 2), training=training)),
            to_numpy(last(x, training=training)).transpose(0, 3, 1, 2),
            rtol=1e-5, atol=1e-5,
        )


def test_coord_attention_gates_vary_along_height_and_width(rng):
    # The point of the paper: unlike SE, the gate depends on the position.
    x = rng.normal(size=(1, 6, 5, 16)).astype("float32")
    layer = CoordAttention()
    layer(x)
    randomize_weights(layer, rng)
    gate = to_numpy(layer(np.ones_like(x) + x * 0.1)) / (1.0 + x * 0.1)
    assert gate[0, :, 0, 0].std() > 1e-3 and gate[0, 0, :, 0].std() > 1e-3


def test_coord_attention_updates_batchnorm_statistics_in_training(rng):
    x = rng.normal(size=(4, 6, 5, 32)).astype("float32")
    layer = CoordAttention(bn_momentum=0.9)
    layer(x)
    randomize_weights(layer, rng)
    before = to_numpy(layer.bn.moving_mean)
    descriptor = np.concatenate([x.mean(axis=2), x.mean(axis=1)], axis=1)[:, :, None]
    kernel, bias = to_numpy(layer.conv_reduce.kernel), to_numpy(layer.conv_reduce.bias)
    batch_mean = reference.conv1x1(descriptor, kernel, bias).mean(axis=(0, 1, 2))
    layer(x, training=True)
    np.testing.assert_allclose(
        to_numpy(layer.bn.moving_mean), 0.9 * before + 0.1 * batch_mean, rtol=1e-5, atol=1e-5
    )
    inference = to_numpy(layer(x, training=False))
    np.testing.assert_allclose(to_numpy(layer.bn.moving_mean), 0.9 * before + 0.1 * batch_mean,
                               rtol=1e-5, atol=1e-5)
    assert np.isfinite(inference).all()


def test_layer_normalized_coord_attention_gates_each_image_the_same_in_training_and_inference(
        rng):
    # BatchNorm's gates depend on the batch in training and on moving averages at inference;
    # normalization="layer" computes each image's gates from that image alone, in both modes.
    x = rng.normal(size=(4, 6, 5, 32)).astype("float32")
    x[2:] = 3.0 * x[2:] + 1.0  # images unlike the others, so a batch statistic would move
    batch, layer = CoordAttention(), CoordAttention(normalization="layer")
    for candidate in (batch, layer):
        candidate(x)
        randomize_weights(candidate, rng)
    alone = to_numpy(layer(x[:2], training=True))
    np.testing.assert_allclose(to_numpy(layer(x, training=True))[:2], alone, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(layer(x, training=False))[:2], alone, rtol=1e-5, atol=1e-6)
    assert not layer.non_trainable_weights  # nothing a batch could update
    # The paper's BatchNorm, for contrast: the other images and the mode both change the output.
    paper_alone = to_numpy(batch(x[:2], training=True))
    assert np.abs(to_numpy(batch(x, training=True))[:2] - paper_alone).max() > 1e-3
    assert np.abs(to_numpy(batch(x[:2], training=False)) - paper_alone).max() > 1e-3


@pytest.mark.parametrize("activation", ["relu", "relu6", "swish"])
def test_coord_attention_activation_changes_the_output(activation, rng):
    x = rng.normal(size=(2, 6, 5, 32)).astype("float32")
    default = CoordAttention()
    default(x)
    randomize_weights(default, rng)
    other = CoordAttention(activation=activation)
    other(x)
    other.set_weights(default.get_weights())
    assert np.abs(to_numpy(other(x)) - to_numpy(default(x))).max() > 1e-4


def test_layers_compose_in_a_sequential_cnn(rng):
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            CoordAttention(),
            SqueezeExcite(),
            CBAM(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(True))
    x = rng.normal(size=(8, 16, 16, 3)).astype("float32")
    history = model.fit(x, np.arange(8) % 2, epochs=2, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(x, verbose=0).shape == (8, 2)


# --- bad input --------------------------------------------------------------

@pytest.mark.parametrize("layer_cls", ALL_LAYERS)
def test_rank_other_than_four_is_refused(layer_cls):
    with pytest.raises(ValueError, match="4D input"):
        layer_cls()(np.zeros((2, 8, 16), "float32"))


@pytest.mark.parametrize("layer_cls", ALL_LAYERS)
def test_unknown_channel_dimension_is_refused(layer_cls):
    with pytest.raises(ValueError, match="known channel dimension"):
        layer_cls()(keras.Input((None, None, None)))


@pytest.mark.parametrize("layer_cls", ALL_LAYERS)
def test_a_different_channel_count_than_built_for_is_refused(layer_cls):
    layer = layer_cls()
    layer(np.zeros((1, 4, 4, 32), "float32"))
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 32"):
        layer(np.zeros((1, 4, 4, 16), "float32"))


@pytest.mark.parametrize("layer_cls", BOTTLENECK_LAYERS)
@pytest.mark.parametrize("argument", ["reduction", "min_channels"])
@pytest.mark.parametrize("value", [0, -4, 2.5])
def test_non_positive_or_non_integer_sizes_are_refused(layer_cls, argument, value):
    with pytest.raises(ValueError, match=f"{argument} must be a positive integer"):
        layer_cls(**{argument: value})


@pytest.mark.parametrize(
    "layer_cls, kwargs, message",
    [
        (CoordAttention, {"directions": "xy"}, "unknown directions='xy'"),
        (CoordAttention, {"activation": "gelu6"}, "unknown activation='gelu6'"),
        (CoordAttention, {"normalization": "group"}, "unknown normalization='group'"),
        (SqueezeExcite, {"gate_activation": "tanh"}, "unknown gate_activation='tanh'"),
        (CBAM, {"kernel_size": 4}, "kernel_size must be odd"),
        (CoordAttention, {"data_format": "NHWC"}, "unknown data_format='NHWC'"),
        (SqueezeExcite, {"data_format": "channels_middle"}, "unknown data_format"),
        (EfficientChannelAttention, {"kernel_size": 4}, "kernel_size must be a positive odd"),
        (EfficientLocalAttention, {"variant": "x"}, "unknown variant='x'"),
        (EfficientLocalAttention, {"groups": 0}, "groups must be a positive integer"),
        (SimAM, {"e_lambda": 0}, "e_lambda must be a positive number"),
        (SimAM, {"data_format": "NCHW"}, "unknown data_format='NCHW'"),
    ],
)
def test_unknown_options_are_refused(layer_cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        layer_cls(**kwargs)


# --- exports (TensorFlow backend) --------------------------------------------

def small_model(layer):
    inputs = keras.Input((None, None, 24))
    return keras.Model(inputs, layer(inputs))


@pytest.mark.requires_tensorflow
@pytest.mark.parametrize("layer_cls", ALL_LAYERS)
def test_saved_model_round_trip(layer_cls, tmp_path, rng):
    model = small_model(layer_cls())
    x = rng.normal(size=(2, 7, 6, 24)).astype("float32")
    randomize_weights(model.layers[-1], rng)
    run_saved_model_test(model, x, tmp_path)


@pytest.mark.requires_tensorflow
@pytest.mark.parametrize("layer_cls", ALL_LAYERS)
def test_tflite_builtin_ops_match_keras_and_int8_stays_close(layer_cls, rng):
    model = small_model(layer_cls())
    x = rng.uniform(-1, 1, size=(16, 7, 6, 24)).astype("float32")
    randomize_weights(model.layers[-1], rng)
    # int8 keeps about 1/255 of the output range per step; allow a few steps.
    output_range = np.ptp(to_numpy(model(x)))
    run_tflite_test(model, x, atol=1e-5, int8_max_error=0.05 * output_range)


@pytest.mark.requires_tensorflow
def test_simam_int8_runs_with_a_dead_channel(rng):
    """A channel that is constant (a ReLU that never fires) has variance 0. Written as
    d / (4 (v + lambda)), SimAM's int8 file failed in LiteRT (the DIV's divisor quantized to
    its zero point: "data[i] != zero_point"); written with RSQRT it runs and stays close."""
    from keras_coordatt import SimAM

    model = small_model(SimAM())
    x = rng.uniform(-1, 1, size=(16, 7, 6, 24)).astype("float32")
    x[..., 3] = 0.0  # dead
    x[..., 5] *= 1e-3  # nearly so
    output_range = np.ptp(to_numpy(model(x)))
    run_tflite_test(model, x, atol=1e-5, int8_max_error=0.05 * output_range)


@pytest.mark.parametrize("case", ["ca", "se", "cbam", "eca", "ela", "ela_t"])
def test_start_as_constant_multiplies_by_its_factor_on_every_backend(case):
    """Zeroed gates make the layer a constant scaling by the factor it returns (the
    identity start of inserted attention), on the backend under test."""
    layer_class, kwargs, channels, _, _ = LAYER_CASES[case]
    layer = layer_class(**kwargs)
    x = np.random.default_rng(0).normal(size=(2, 6, 5, channels)).astype("float32")
    layer(x)
    randomize_weights(layer, np.random.default_rng(1))
    factor = layer.start_as_constant()
    assert factor == {"ca": 0.25, "se": 0.5, "cbam": 0.25, "eca": 0.5, "ela": 0.25,
                      "ela_t": 0.25}[case]
    np.testing.assert_allclose(to_numpy(layer(x, training=False)), factor * x, rtol=1e-6,
                               atol=1e-6)


def test_simam_has_no_gates_to_start_and_says_so():
    layer = SimAM(name="block_2_attention")
    layer(np.ones((1, 4, 4, 8), "float32"))
    with pytest.raises(ValueError, match="SimAM 'block_2_attention' has no weights"):
        layer.start_as_constant()


def test_simam_gates_the_neurons_far_from_their_channel_mean_more(rng):
    x = np.zeros((1, 5, 5, 2), "float32")
    x[0, 2, 2, 0] = 3.0  # one outlier in channel 0
    gates = to_numpy(SimAM().gates(x)["energy"])
    assert gates[0, 2, 2, 0] > gates[0, 0, 0, 0] > 0.5
    np.testing.assert_allclose(gates[..., 1], 1 / (1 + np.exp(-0.5)), rtol=1e-6)  # flat channel


def test_ela_gates_vary_along_height_and_width_like_ca(rng):
    layer = EfficientLocalAttention()
    x = rng.normal(size=(1, 9, 7, 32)).astype("float32")
    layer(x)
    randomize_weights(layer, rng)
    gates = {key: to_numpy(value) for key, value in layer.gates(x).items()}
    assert gates["h"].shape == (1, 9, 1, 32) and gates["w"].shape == (1, 1, 7, 32)
    assert gates["h"].std(axis=1).mean() > 0.01 and gates["w"].std(axis=2).mean() > 0.01

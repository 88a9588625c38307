"""add_attention: the paper's placement in keras.applications networks, weights kept."""

import keras
import numpy as np
import pytest
from harness import to_numpy

from keras_coordatt import CoordAttention
from keras_coordatt import SqueezeExcite
from keras_coordatt.models import MobileNetV2
from keras_coordatt.models import add_attention
from keras_coordatt.models import feature_pyramid

# sigmoid(100) is exactly 1.0 in float32, so a gate with a zero kernel and
# this bias multiplies its input by one: the network with its gates opened
# computes exactly what it computed without them.
OPEN_GATE_BIAS = 100.0


def mobilenet_v2(**kwargs):
    options = dict(input_shape=(96, 96, 3), alpha=0.35, weights=None)
    return keras.applications.MobileNetV2(**{**options, **kwargs})


def randomize_batch_norms(model, rng):
    """Non-trivial BN parameters and statistics, so that copying them matters."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, channels))
            layer.beta.assign(rng.uniform(-0.2, 0.2, channels))
            layer.moving_mean.assign(rng.uniform(-0.2, 0.2, channels))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, channels))


def open_gate(conv):
    conv.kernel.assign(np.zeros(conv.kernel.shape))
    conv.bias.assign(np.full(conv.bias.shape, OPEN_GATE_BIAS))


def open_coord_attention_gates(model):
    for layer in model.layers:
        if isinstance(layer, CoordAttention):
            open_gate(layer.conv_h)
            open_gate(layer.conv_w)


def attention_layers(model):
    return [layer for layer in model.layers if isinstance(layer, CoordAttention)]


def trainable_count(model):
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


def test_mobilenet_v2_with_open_gates_computes_the_original(rng):
    base = mobilenet_v2(classifier_activation=None)
    randomize_batch_norms(base, rng)
    model = add_attention(base, "ca", identity_init=False)
    open_coord_attention_gates(model)
    images = rng.uniform(-1, 1, (2, 96, 96, 3)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(model(images, training=False)),
        to_numpy(base(images, training=False)),
        atol=1e-5,
        rtol=0,
    )


@pytest.mark.parametrize(
    "application", [keras.applications.EfficientNetB0, keras.applications.EfficientNetV2B0]
)
def test_efficientnet_with_open_gates_computes_the_original_with_open_se(
    application, rng
):
    # CA replaces SE, so the two networks compute the same function only when
    # both gates are identities: SE's sigmoid gate opened the same way.
    base = application(input_shape=(64, 64, 3), weights=None, classifier_activation=None)
    randomize_batch_norms(base, rng)
    model = add_attention(base, "ca", identity_init=False)
    for layer in base.layers:
        if layer.name.endswith("se_expand"):
            open_gate(layer)
    open_coord_attention_gates(model)
    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(model(images, training=False)),
        to_numpy(base(images, training=False)),
        atol=1e-5,
        rtol=0,
    )


def test_mobilenet_v2_attention_sits_between_depthwise_relu_and_projection():
    model = add_attention(mobilenet_v2(), "ca")
    for block in range(1, 17):
        attention = model.get_layer(f"block_{block}_attention")
        relu = model.get_layer(f"block_{block}_depthwise_relu")
        assert attention.input is relu.output
        assert model.get_layer(f"block_{block}_project").input is attention.output
    assert len(attention_layers(model)) == 16
    assert model.get_layer("expanded_conv_project").input is (
        model.get_layer("expanded_conv_depthwise_relu").output
    )


def test_efficientnet_se_is_replaced_by_attention_on_the_activated_depthwise_output():
    base = keras.applications.EfficientNetB0(input_shape=(64, 64, 3), weights=None)
    model = add_attention(base, "ca")
    blocks = [layer.name[: -len("se_excite")] for layer in base.layers
              if layer.name.endswith("se_excite")]
    assert len(blocks) == 16
    assert not [layer.name for layer in model.layers if "_se_" in layer.name]
    for block in blocks:
        attention = model.get_layer(f"{block}attention")
        assert attention.input is model.get_layer(f"{block}activation").output
        assert model.get_layer(f"{block}project_conv").input is attention.output


def test_trainable_parameters_grow_by_exactly_the_attention_parameters():
    base = keras.applications.MobileNetV2(weights=None)
    model = add_attention(base, "ca")
    added = sum(trainable_count(layer) for layer in attention_layers(model))
    assert trainable_count(base) == 3_504_872
    assert trainable_count(model) == trainable_count(base) + added
    # The paper's MobileNetV2 + CA count (Table 2): the same network.
    assert trainable_count(model) == 3_950_648


def test_weights_from_a_weights_file_are_carried_over(tmp_path, rng):
    source = mobilenet_v2()
    randomize_batch_norms(source, rng)
    path = str(tmp_path / "mobilenet_v2.weights.h5")
    source.save_weights(path)
    base = mobilenet_v2(weights=path)
    model = add_attention(base, "ca", identity_init=False)
    for layer in source.layers:
        if not layer.weights:
            continue
        copied = model.get_layer(layer.name).get_weights()
        assert len(copied) == len(layer.get_weights())
        for expected, actual in zip(layer.get_weights(), copied, strict=True):
            np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("attention, factor", [("ca", 0.25), ("se", 0.5), ("cbam", 0.25),
                                               ("ca_h", 0.5), ("eca", 0.5), ("ela", 0.25)])
def test_attention_starts_as_the_identity_of_the_trained_network(attention, factor, rng):
    base = mobilenet_v2(classifier_activation=None)
    randomize_batch_norms(base, rng)
    model = add_attention(base, attention)
    images = rng.uniform(-1, 1, (2, 96, 96, 3)).astype("float32")
    expected = to_numpy(base(images, training=False))
    # To rounding: the projection's BatchNorm statistics take up the gates' factor.
    np.testing.assert_allclose(to_numpy(model(images, training=False)), expected,
                               rtol=1e-5, atol=1e-5)
    # The projection's kernel keeps its size (so it learns as fast as without attention) ...
    np.testing.assert_array_equal(to_numpy(model.get_layer("block_5_project").kernel),
                                  to_numpy(base.get_layer("block_5_project").kernel))
    # ... and its BatchNorm expects the scaled output.
    before, after = base.get_layer("block_5_project_BN"), model.get_layer("block_5_project_BN")
    np.testing.assert_allclose(to_numpy(after.moving_mean), to_numpy(before.moving_mean) * factor,
                               rtol=1e-6)
    np.testing.assert_allclose(
        to_numpy(after.moving_variance) + after.epsilon,
        (to_numpy(before.moving_variance) + before.epsilon) * factor**2, rtol=1e-6)
    without = add_attention(base, attention, identity_init=False)
    assert np.abs(to_numpy(without(images, training=False)) - expected).max() > 1e-3


def test_simam_is_inserted_as_it_is_having_no_gates_to_open(rng):
    base = mobilenet_v2(classifier_activation=None)
    randomize_batch_norms(base, rng)
    model = add_attention(base, "simam")
    assert len([layer for layer in model.layers if type(layer).__name__ == "SimAM"]) == 16
    images = rng.uniform(-1, 1, (2, 96, 96, 3)).astype("float32")
    # Parameter-free: it changes the trained network's outputs from the start.
    assert np.abs(to_numpy(model(images, training=False))
                  - to_numpy(base(images, training=False))).max() > 1e-3


def test_the_projection_learns_as_fast_as_without_attention(rng):
    """The loss's gradient on a block's projection kernel is the plain network's, not factor x it.

    A kernel divided by the gates' 1/4 sat behind a BatchNorm 4x too large with a
    4x smaller gradient: 16x slower to change (../shared/notes/identity-start.md).
    """
    from keras_coordatt.models.attention_statistics import gradient_norms

    base = mobilenet_v2(classifier_activation=None, classes=3)
    randomize_batch_norms(base, rng)
    model = add_attention(base, "ca")
    images = rng.uniform(-1, 1, (8, 96, 96, 3)).astype("float32")
    labels = rng.integers(0, 3, 8)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("sgd", loss)
    base.compile("sgd", loss)
    reader = {name: norms[1] for name, norms in gradient_norms(model, images, labels).items()}
    import tensorflow as tf

    with tf.GradientTape() as tape:
        plain_loss = base.compute_loss(x=images, y=labels, y_pred=base(images, training=True))
    kernels = [base.get_layer(f"block_{i}_project").kernel for i in (3, 6, 10)]
    plain = [float(tf.norm(g)) for g in tape.gradient(plain_loss, kernels)]
    for i, norm in zip((3, 6, 10), plain):
        assert reader[f"block_{i}_attention"] == pytest.approx(norm, rel=0.05), i


@pytest.mark.parametrize("scale", [True, False])
def test_a_channel_too_quiet_for_the_factor_takes_it_in_its_gamma(rng, scale):
    from keras_coordatt.models import start_attention_as_identity

    inputs = keras.Input((8, 8, 16))
    x = CoordAttention(reduction=4, name="att")(inputs)
    x = keras.layers.Conv2D(4, 1, name="project")(x)
    model = keras.Model(inputs, keras.layers.BatchNormalization(scale=scale, name="bn")(x))
    norm = model.get_layer("bn")
    # Channel 0 is too quiet: 0.25^2 (v + eps) - eps < 0 for v < 15 eps.
    norm.moving_variance.assign(np.array([norm.epsilon, 1.0, 2.0, 0.5], "float32"))
    norm.moving_mean.assign(np.array([0.1, -0.2, 0.3, 0.0], "float32"))
    if scale:
        norm.gamma.assign(np.array([1.5, 0.5, 1.0, 2.0], "float32"))
    plain = keras.Model(inputs, keras.layers.BatchNormalization(scale=scale, name="bn")(
        keras.layers.Conv2D(4, 1, name="project")(inputs)))
    for name in ("project", "bn"):
        plain.get_layer(name).set_weights(model.get_layer(name).get_weights())
    kernel = to_numpy(model.get_layer("project").kernel)
    start_attention_as_identity(model)
    images = rng.uniform(-1, 1, (2, 8, 8, 16)).astype("float32")
    np.testing.assert_allclose(to_numpy(model(images)), to_numpy(plain(images)), rtol=1e-5,
                               atol=1e-5)
    after = to_numpy(model.get_layer("project").kernel)
    np.testing.assert_array_equal(after[..., 1:], kernel[..., 1:])
    if not scale:  # nothing else can take it: the quiet channel's kernel slice does
        np.testing.assert_array_equal(after[..., 0], kernel[..., 0] / 0.25)
        assert to_numpy(norm.moving_variance)[0] == pytest.approx(norm.epsilon)
        return
    # The kernel keeps its size, so its gradient is the plain network's (inference-mode
    # BatchNorm: exactly; a kernel 4x larger would get a 4x smaller gradient).
    np.testing.assert_array_equal(after, kernel)
    assert to_numpy(norm.moving_variance)[0] == pytest.approx(0.25**2 * norm.epsilon)
    assert to_numpy(norm.gamma)[0] == pytest.approx(1.5 * np.sqrt(0.0625 * 1e-3 + 1e-3)
                                                    / (0.25 * np.sqrt(2e-3)), rel=1e-5)
    np.testing.assert_array_equal(to_numpy(norm.gamma)[1:], [0.5, 1.0, 2.0])
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        grads = []
        for net in (model, plain):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(net(images, training=False) ** 2)
            grads.append(tape.gradient(loss, net.get_layer("project").kernel).numpy())
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def test_gates_started_as_the_identity_learn(rng):
    base = mobilenet_v2(classifier_activation=None, classes=3)
    model = add_attention(base, "ca")
    model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    images = rng.uniform(-1, 1, (16, 96, 96, 3)).astype("float32")
    labels = rng.integers(0, 3, 16)
    attention = model.get_layer("block_3_attention")
    probe = keras.Model(model.input, [attention.input, attention.output])
    before_in, before_out = (to_numpy(t) for t in probe(images[:2], training=False))
    np.testing.assert_allclose(before_out, before_in * 0.25, rtol=1e-6)
    reduce_before = to_numpy(attention.conv_reduce.kernel)
    model.fit(images, labels, batch_size=8, epochs=3, verbose=0)
    assert np.abs(to_numpy(attention.conv_h.kernel)).max() > 0
    # From the second step on, the gradient reaches the shared F1 too.
    assert np.abs(to_numpy(attention.conv_reduce.kernel) - reduce_before).max() > 0
    after_in, after_out = (to_numpy(t) for t in probe(images[:2], training=False))
    # The gate x_out / x_in now differs between positions and channels.
    ratio = after_out[after_in > 1e-3] / after_in[after_in > 1e-3]
    assert ratio.std() > 1e-4, ratio.std()


def test_a_foreign_attention_layer_cannot_start_as_the_identity():
    with pytest.raises(ValueError, match="'block_1_attention' \\(Identity\\) is not one of "
                                         "keras_coordatt's.*identity_init=False"):
        add_attention(mobilenet_v2(), keras.layers.Identity)
    model = add_attention(mobilenet_v2(), keras.layers.Identity, identity_init=False)
    assert isinstance(model.get_layer("block_1_attention"), keras.layers.Identity)


def test_result_shares_no_variables_with_the_original():
    base = mobilenet_v2()
    model = add_attention(base, "ca")
    original = {id(variable) for variable in base.weights}
    assert not [v.path for v in model.weights if id(v) in original]


def test_attention_spec_and_kwargs_reach_every_inserted_layer():
    model = add_attention(mobilenet_v2(), "se", attention_kwargs={"reduction": 8})
    inserted = [layer for layer in model.layers if layer.name.endswith("_attention")]
    assert len(inserted) == 16
    assert all(isinstance(layer, SqueezeExcite) for layer in inserted)
    assert {layer.reduction for layer in inserted} == {8}


def test_result_round_trips_through_a_keras_file(tmp_path, rng):
    model = add_attention(mobilenet_v2(), "ca")
    path = str(tmp_path / "attended.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    images = rng.uniform(-1, 1, (1, 96, 96, 3)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(restored(images, training=False)),
        to_numpy(model(images, training=False)),
        atol=1e-6,
        rtol=0,
    )


def test_keras_coordatt_backbone_keeps_its_pyramid_outputs():
    backbone = MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, include_top=False)
    model = add_attention(backbone, "ca")
    pyramid = feature_pyramid(model)
    assert model.get_layer("block_12_attention") in pyramid.layers
    assert {level: tuple(t.shape) for level, t in pyramid.output.items()} == {
        level: tuple(t.shape) for level, t in backbone.pyramid_outputs.items()
    }


def test_unsupported_model_is_rejected_naming_the_supported_families():
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Conv2D(8, 3, name="conv")(inputs)
    model = keras.Model(inputs, outputs, name="tiny")
    with pytest.raises(
        ValueError, match="'tiny' is not of a supported family.*MobileNetV2.*EfficientNet"
    ):
        add_attention(model, "ca")


def test_model_with_attention_is_rejected():
    model = add_attention(mobilenet_v2(), "ca")
    with pytest.raises(ValueError, match="already has attention layers \\(block_1_attention"):
        add_attention(model, "ca")


def test_attention_none_is_rejected():
    with pytest.raises(ValueError, match="attention=None adds nothing"):
        add_attention(mobilenet_v2(), None)


def test_identity_start_moves_the_factor_into_a_depthwise_consumer(rng):
    from keras_coordatt.models import start_attention_as_identity

    inputs = keras.Input((8, 8, 16))
    gated = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(
        CoordAttention(reduction=4, name="att")(inputs))
    model = keras.Model(inputs, gated)
    plain = keras.Model(inputs, keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(inputs))
    plain.get_layer("dw").set_weights(model.get_layer("dw").get_weights())
    assert start_attention_as_identity(model) == {"att": 0.25}
    images = rng.uniform(-1, 1, (2, 8, 8, 16)).astype("float32")
    np.testing.assert_array_equal(to_numpy(model(images)), to_numpy(plain(images)))


def test_identity_start_refuses_an_output_read_twice_and_changes_nothing():
    from keras_coordatt.models import start_attention_as_identity

    inputs = keras.Input((8, 8, 16))
    gated = SqueezeExcite(name="se")(inputs)
    model = keras.Model(inputs, [keras.layers.Conv2D(4, 1, name="a")(gated),
                                 keras.layers.Conv2D(4, 1, name="b")(gated)])
    before = [to_numpy(w) for w in model.weights]
    with pytest.raises(ValueError, match="output of 'se' goes to 'a' \\(Conv2D\\), 'b' \\(Conv2D\\)"):
        start_attention_as_identity(model)
    for weight, value in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(to_numpy(weight), value)

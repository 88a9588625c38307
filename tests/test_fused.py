"""CoordAttention's XLA-fused training path computes what the op-by-op path computes.

The fused path (`keras_coordatt.layers.fused`) runs only on the TensorFlow
backend and only while training; these tests compare it with the op-by-op
path on the same weights and inputs: outputs, every gradient and the
BatchNorm moving statistics, in both layouts and all three directions, with
a frozen BatchNorm, under mixed precision, inside MirroredStrategy, after a
.keras round trip; and check that exports carry no XLA-only function.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from harness import randomize_weights
from keras_coordatt import CoordAttention
from keras_coordatt.layers import fused
from keras_coordatt.layers import fused_attention
from keras_coordatt.layers import fused_attention_enabled

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.requires_tensorflow

TOLERANCE = 1e-5  # relative to the largest value compared


def randomize(layer, seed=0):
    randomize_weights(layer, np.random.default_rng(seed))


def as_float(tensor):
    """float32, or float64 where the policy is."""
    return np.asarray(tensor if tensor.dtype == tf.float64 else tf.cast(tensor, "float32"))


def training_step(layer, inputs, use_fused):
    """Output, d(loss)/d(inputs and trainable weights) and the moving statistics
    after one training call, starting from the layer's current weights."""
    start = [w.numpy() for w in layer.weights]
    with fused_attention(use_fused):

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                outputs = layer(inputs, training=True)
                loss = tf.reduce_sum(tf.cast(outputs, "float32") * tf.sin(tf.cast(outputs, "float32")))
            return outputs, tape.gradient(loss, [inputs] + layer.trainable_variables)

        outputs, gradients = step()
    moving = [w.numpy() for w in layer.non_trainable_weights]
    for weight, value in zip(layer.weights, start):
        weight.assign(value)
    return as_float(outputs), [as_float(g) for g in gradients], moving


def assert_same(expected, actual, tolerance=TOLERANCE, what=""):
    scale = max(np.abs(e).max() for e in expected)
    for index, (e, a) in enumerate(zip(expected, actual)):
        np.testing.assert_allclose(a, e, rtol=0, atol=tolerance * scale, err_msg=f"{what}[{index}]")


def compare(layer, inputs, tolerance=TOLERANCE):
    plain = training_step(layer, inputs, use_fused=False)
    fast = training_step(layer, inputs, use_fused=True)
    assert_same([plain[0]], [fast[0]], tolerance, "outputs")
    assert_same(plain[1], fast[1], tolerance, "gradients")
    assert_same(plain[2], fast[2], tolerance, "moving statistics")
    # The step moved the statistics: the comparison above is not vacuous.
    assert np.abs(plain[2][0]).max() > 0.01
    return plain, fast


@pytest.mark.parametrize("directions", ["hw", "h", "w"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_fused_training_call_matches_the_op_by_op_one(directions, data_format):
    layer = CoordAttention(reduction=8, directions=directions, data_format=data_format)
    shape = (3, 9, 7, 48) if data_format == "channels_last" else (3, 48, 9, 7)
    inputs = tf.random.normal(shape, seed=1)
    layer(inputs)
    randomize(layer)
    compare(layer, inputs)


def test_the_fused_path_is_really_taken_and_compiled(monkeypatch):
    """Guards the comparisons above against comparing the plain path with itself."""
    calls = []
    original = fused.coord_attention_training

    def counting(*args):
        calls.append(tf.executing_eagerly())
        return original(*args)

    monkeypatch.setattr(fused, "coord_attention_training", counting)
    layer = CoordAttention()
    inputs = tf.random.normal((2, 6, 6, 32))
    layer(inputs)
    with fused_attention(True):
        layer(inputs, training=True)
        layer(inputs, training=False)
    with fused_attention(False):
        layer(inputs, training=True)
    # Traced once, inside the tf.function, for the training call only.
    assert calls == [False]
    # A synchronized BatchNorm (the trainer's choice under a strategy) has to
    # all-reduce its statistics: that layer runs op by op.
    layer.bn.synchronized = True
    with fused_attention(True):
        tf.function(lambda t: layer(t, training=True))(inputs)
    assert calls == [False]


def test_float64_stays_float64_on_the_fused_path():
    keras.config.set_dtype_policy("float64")
    layer = CoordAttention(reduction=8)
    inputs = tf.random.normal((3, 8, 8, 48), dtype="float64", seed=5)
    layer(inputs)
    randomize(layer)
    _, fast = compare(layer, inputs, tolerance=1e-12)
    assert fast[0].dtype == fast[2][0].dtype == np.float64


def test_a_frozen_batchnorm_keeps_its_statistics_on_the_fused_path():
    layer = CoordAttention(reduction=8)
    inputs = tf.random.normal((3, 8, 8, 48), seed=2)
    layer(inputs)
    randomize(layer)
    layer.bn.trainable = False
    before = [w.numpy() for w in layer.bn.non_trainable_weights]
    plain = training_step(layer, inputs, use_fused=False)
    fast = training_step(layer, inputs, use_fused=True)
    assert_same([plain[0]], [fast[0]])
    assert_same(plain[1], fast[1])
    for kept, after in zip(before, fast[2]):
        np.testing.assert_array_equal(kept, after)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_stays_as_close_to_float32_as_the_op_by_op_path(policy):
    inputs = tf.random.normal((3, 10, 6, 48), seed=3)
    reference_layer = CoordAttention(reduction=8)
    reference_layer(inputs)
    randomize(reference_layer)
    exact = training_step(reference_layer, inputs, use_fused=False)
    keras.config.set_dtype_policy(policy)
    layer = CoordAttention(reduction=8)
    low = tf.cast(inputs, keras.config.dtype_policy().compute_dtype)
    layer(low)
    for weight, value in zip(layer.weights, reference_layer.weights):
        weight.assign(value.numpy())
    plain = training_step(layer, low, use_fused=False)
    fast = training_step(layer, low, use_fused=True)
    assert fast[0].dtype == plain[0].dtype
    # Both paths are within the policy's rounding of float32, and of each other.
    tolerance = 2e-2 if policy == "mixed_bfloat16" else 4e-3
    assert_same([exact[0]], [fast[0]], tolerance, "outputs")
    assert_same([plain[0]], [fast[0]], tolerance, "outputs")
    assert_same(exact[1], fast[1], 2 * tolerance, "gradients")
    assert_same(exact[2], fast[2], tolerance, "moving statistics")


def test_fused_and_plain_agree_after_a_keras_file_round_trip(tmp_path):
    inputs = keras.Input((12, 12, 32))
    model = keras.Model(inputs, CoordAttention(name="ca")(keras.layers.Conv2D(32, 3, padding="same")(inputs)))
    randomize(model.get_layer("ca"))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    layer = loaded.get_layer("ca")
    images = tf.random.normal((2, 12, 12, 32), seed=4)
    _, fast = compare(layer, images)
    original = training_step(model.get_layer("ca"), images, use_fused=True)
    assert_same([original[0]], [fast[0]])


def test_training_under_mirrored_strategy_gives_the_same_weights_fused_or_not(tmp_path):
    """Two logical CPUs: one fit step of a small CA model, fused and plain."""
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        from keras_coordatt import CoordAttention
        from keras_coordatt.layers import fused_attention

        images = np.random.default_rng(0).normal(size=(8, 16, 16, 3)).astype("float32")
        labels = np.arange(8) % 4
        results = []
        for use_fused in (False, True):
            keras.utils.set_random_seed(0)
            strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
            with strategy.scope():
                inputs = keras.Input((16, 16, 3))
                x = keras.layers.Conv2D(32, 3, padding="same")(inputs)
                x = CoordAttention(reduction=4, name="ca")(x)
                x = keras.layers.GlobalAveragePooling2D()(x)
                model = keras.Model(inputs, keras.layers.Dense(4)(x))
                model.compile(keras.optimizers.SGD(0.1),
                              keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            with fused_attention(use_fused):
                model.fit(images, labels, batch_size=8, epochs=2, verbose=0, shuffle=False)
            results.append([w.numpy() for w in model.weights])
        scale = max(float(np.abs(w).max()) for w in results[0])
        worst = max(float(np.abs(p - f).max()) for p, f in zip(*results)) / scale
        print("WORST", worst, "BN_MEAN", float(np.abs(results[0][
            [i for i, w in enumerate(model.weights) if "moving_mean" in w.path][0]]).max()))
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    line = [row for row in done.stdout.splitlines() if row.startswith("WORST")][-1]
    _, worst, _, bn_mean = line.split()
    assert float(bn_mean) > 0.01  # the moving statistics were updated, across replicas
    assert float(worst) < 1e-5


def test_exports_carry_no_xla_only_function(tmp_path):
    """A SavedModel traced with the fused path switched on serves the inference
    graph: no function in it asks for XLA compilation."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(16, 3, padding="same")(inputs)
    model = keras.Model(inputs, CoordAttention()(x))
    with fused_attention(True):
        model.export(str(tmp_path / "saved"), verbose=False)
    saved = (tmp_path / "saved" / "saved_model.pb").read_bytes()
    assert b"_XlaMustCompile" not in saved
    assert b"Sigmoid" in saved  # the attention's gates are in the served graph
    # ...while the training graph does ask for it (the check above can fail).
    with fused_attention(True):
        traced = tf.function(lambda t: model(t, training=True)).get_concrete_function(
            tf.TensorSpec((1, 16, 16, 3)))
    definitions = traced.graph.as_graph_def().library.function
    assert any("_XlaMustCompile" in f.attr for f in definitions)


def test_the_switch_is_read_from_the_environment():
    """1 / 0 force it; auto (the default) fuses where TensorFlow has a GPU; a typo is named."""
    script = ("import tensorflow as tf; from keras_coordatt.layers import fused_attention_enabled "
              "as e; print(e(), bool(tf.config.list_physical_devices('GPU')))")
    for value, expected in (("0", "False"), ("false", "False"), ("1", "True"), ("auto", None),
                            ("", None), ("yes please", "KERAS_COORDATT_FUSED='yes please'")):
        env = dict(os.environ, KERAS_COORDATT_FUSED=value)
        if value == "":
            del env["KERAS_COORDATT_FUSED"]
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=env, timeout=120)
        if expected and expected.startswith("KERAS"):
            assert done.returncode != 0 and expected in done.stderr, done.stderr[-2000:]
            continue
        enabled, has_gpu = done.stdout.strip().splitlines()[-1].split()
        assert enabled == (expected or has_gpu), (value, done.stderr[-2000:])


def test_none_puts_the_switch_back_to_automatic():
    from keras_coordatt.layers import set_fused_attention
    from keras_coordatt.layers.fused import _tensorflow_has_gpu

    previous = set_fused_attention(True)
    try:
        assert set_fused_attention(None) is True and fused_attention_enabled() == _tensorflow_has_gpu()
        with fused_attention(True):
            assert fused_attention_enabled()
        assert fused_attention_enabled() == _tensorflow_has_gpu()
    finally:
        set_fused_attention(previous)

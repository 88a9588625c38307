"""The one test harness every layer and model here goes through.

``run_layer_test`` checks an attention layer the same way whatever it is:
shapes, config round trip, parameter count, equality with a NumPy reference
in training and inference mode, gradients, functional and Sequential use with
unknown spatial sizes and batch 1, ``.keras`` round trip and mixed precision.
``run_saved_model_test`` and ``run_tflite_test`` check exports of any model.
"""

import os

import keras
import numpy as np
from keras import ops

MIXED_POLICIES = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


def to_numpy(tensor):
    return np.asarray(ops.convert_to_numpy(ops.cast(tensor, "float32")))


def layer_weights(layer):
    """{'conv_reduce/kernel': array, ...}: weights by path inside the layer."""
    prefix = layer.name + "/"
    return {
        w.path[len(prefix):] if w.path.startswith(prefix) else w.path: to_numpy(w).astype(
            np.float64
        )
        for w in layer.weights
    }


def randomize_weights(layer, rng):
    """Random values everywhere, variances positive, so every weight matters."""
    for weight in layer.weights:
        value = rng.normal(0.0, 0.5, size=tuple(weight.shape))
        if "variance" in weight.path:
            value = rng.uniform(0.5, 1.5, size=tuple(weight.shape))
        weight.assign(value.astype(weight.dtype))


def trainable_gradients(model, inputs):
    """Gradients of sum(y^2) for each trainable weight, on any backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = ops.sum(ops.square(model(inputs, training=True)))
        return [to_numpy(g) for g in tape.gradient(loss, model.trainable_variables)]
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss_fn(values):
            outputs, _ = model.stateless_call(values, non_trainable, inputs, training=True)
            return ops.sum(ops.square(outputs))

        return [np.asarray(g) for g in jax.grad(loss_fn)(trainable)]
    if backend == "torch":
        loss = ops.sum(ops.square(model(inputs, training=True)))
        loss.backward()
        return [to_numpy(v.value.grad) for v in model.trainable_variables]
    raise NotImplementedError(backend)


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_shape,
    expected_trainable_params,
    reference=None,
    tmp_path=None,
    rng=None,
):
    """Checks one attention layer configuration end to end.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments.
        input_shape: a channels-last test input shape, batch first.
        expected_trainable_params: the exact count for that input.
        reference: ``f(x, weights, training) -> y`` in NumPy, or None.
        tmp_path: a folder for the ``.keras`` round trip.
        rng: a NumPy Generator.
    """
    rng = rng or np.random.default_rng(0)
    x = rng.normal(size=input_shape).astype("float32")
    channels = input_shape[-1]

    layer = layer_cls(**init_kwargs)
    y = layer(x)
    assert tuple(y.shape) == tuple(x.shape), f"{layer_cls.__name__}: output {y.shape}"

    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    assert trainable == expected_trainable_params, (
        f"{layer_cls.__name__}{init_kwargs}: {trainable} trainable parameters, "
        f"expected {expected_trainable_params}"
    )

    config = layer.get_config()
    for key, value in init_kwargs.items():
        assert config[key] == value, f"get_config() lost {key}"
    assert layer_cls.from_config(config).get_config() == config

    randomize_weights(layer, rng)
    if reference is not None:
        weights = layer_weights(layer)
        for training in (False, True):
            expected = reference(x.astype(np.float64), weights, training)
            actual = to_numpy(layer(x, training=training))
            np.testing.assert_allclose(
                actual, expected, rtol=1e-5, atol=1e-5,
                err_msg=f"{layer_cls.__name__} differs from NumPy (training={training})",
            )

    inputs = keras.Input((None, None, channels))
    model = keras.Model(inputs, layer(inputs))
    # A layer without weights (SimAM) has nothing to differentiate.
    gradients = trainable_gradients(model, x) if model.trainable_variables else []
    for weight, gradient in zip(model.trainable_variables, gradients):
        assert gradient is not None and np.abs(gradient).sum() > 0, (
            f"no gradient reaches {weight.path}"
        )

    sequential = keras.Sequential(
        [keras.Input((None, None, channels)), layer_cls(**init_kwargs)]
    )
    for shape in [(1,) + tuple(input_shape[1:]), (2, 5, 3, channels), (1, 1, 7, channels)]:
        probe = rng.normal(size=shape).astype("float32")
        assert tuple(sequential(probe).shape) == shape

    if tmp_path is not None:
        path = os.path.join(str(tmp_path), f"{layer.name}.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        np.testing.assert_allclose(
            to_numpy(loaded(x)), to_numpy(model(x)), rtol=1e-6, atol=1e-6
        )
        assert [w.path for w in loaded.weights] == [w.path for w in model.weights]

    expected = to_numpy(layer(x))
    for policy, compute_dtype in MIXED_POLICIES.items():
        mixed = layer_cls(**init_kwargs, dtype=policy)
        mixed.build(x.shape)
        mixed.set_weights(layer.get_weights())
        output = mixed(x)
        assert keras.backend.standardize_dtype(output.dtype) == compute_dtype
        assert all(
            keras.backend.standardize_dtype(w.dtype) == "float32" for w in mixed.weights
        ), f"{policy}: weights must stay float32"
        tolerance = 2e-2 if compute_dtype == "float16" else 1e-1
        np.testing.assert_allclose(
            to_numpy(output), expected, rtol=tolerance, atol=tolerance,
            err_msg=f"{layer_cls.__name__} under {policy}",
        )
    return layer


def run_saved_model_test(model, inputs, tmp_path, atol=1e-5):
    """model.export() SavedModel reloads and reproduces the Keras outputs."""
    import tensorflow as tf

    path = os.path.join(str(tmp_path), "saved_model")
    model.export(path, format="tf_saved_model", verbose=False)
    reloaded = tf.saved_model.load(path)
    expected = to_numpy(model(inputs, training=False))
    np.testing.assert_allclose(
        np.asarray(reloaded.serve(tf.constant(inputs))), expected, atol=atol, rtol=atol
    )
    as_layer = keras.layers.TFSMLayer(path, call_endpoint="serve")
    np.testing.assert_allclose(to_numpy(as_layer(inputs)), expected, atol=atol, rtol=atol)


def assert_builtin_ops(flatbuffer):
    """The TFLite model uses builtin ops only: no Flex (TF) or custom kernels."""
    from keras_coordatt.export import tflite_op_names

    ops_used = set(tflite_op_names(flatbuffer))
    assert not any(op.startswith(("FlexDelegate", "Flex", "CUSTOM")) for op in ops_used), (
        f"non-builtin ops: {ops_used}"
    )


def run_saved_model_and_tflite_test(model, inputs, atol=1e-5):
    """One trace of a large model serves both checks: the SavedModel (reloaded,
    and as a TFSMLayer) and its float32 TFLite conversion (builtin ops only)
    reproduce the Keras outputs."""
    import tensorflow as tf

    from keras_coordatt.export import run_tflite
    from keras_coordatt.export.tflite import convert_saved_model
    from keras_coordatt.export.tflite import traced_saved_model

    expected = to_numpy(model(inputs, training=False))
    with traced_saved_model(model, (None,) + tuple(inputs.shape[1:])) as (path, shape):
        reloaded = tf.saved_model.load(path)
        np.testing.assert_allclose(
            np.asarray(reloaded.serve(tf.constant(inputs))), expected, atol=atol, rtol=atol
        )
        as_layer = keras.layers.TFSMLayer(path, call_endpoint="serve")
        np.testing.assert_allclose(to_numpy(as_layer(inputs)), expected, atol=atol, rtol=atol)
        flatbuffer = convert_saved_model(path, shape)
    assert_builtin_ops(flatbuffer)
    np.testing.assert_allclose(run_tflite(flatbuffer, inputs), expected, atol=atol, rtol=atol)


def run_tflite_test(model, inputs, atol=1e-5, int8_max_error=None):
    """TFLite float32 (builtin ops only) matches Keras to ``atol``; int8 runs.

    With ``int8_max_error`` the full-integer model, calibrated on ``inputs``,
    must stay within that of Keras (in the output's units).
    """
    from keras_coordatt.export import run_tflite
    from keras_coordatt.export import to_tflite

    shape = (1,) + tuple(inputs.shape[1:])
    expected = to_numpy(model(inputs, training=False))
    flatbuffer = to_tflite(model, input_shape=shape)
    assert_builtin_ops(flatbuffer)
    np.testing.assert_allclose(run_tflite(flatbuffer, inputs), expected, atol=atol, rtol=atol)
    if int8_max_error is None:
        return flatbuffer
    quantized = to_tflite(
        model, input_shape=shape, quantization="int8",
        representative_data=[example[None] for example in inputs],
    )
    # Builtin kernels: XNNPACK can abort the process on some int8 CBAM graphs.
    error = np.abs(run_tflite(quantized, inputs, xnnpack=False) - expected).max()
    assert error <= int8_max_error, f"int8 TFLite differs from Keras by {error}"
    return flatbuffer

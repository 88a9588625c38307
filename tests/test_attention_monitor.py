"""The attention's gates and gradients, as `gate_statistics`, `gradient_norms` and the monitor see them.

Runs on every backend (make test runs it on TensorFlow, JAX and PyTorch).
"""

import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_coordatt import CBAM
from keras_coordatt import CoordAttention
from keras_coordatt import SqueezeExcite
from keras_coordatt.models.attention_statistics import gate_statistics
from keras_coordatt.models.attention_statistics import gradient_norms
from keras_coordatt.training.attention_monitor import AttentionMonitor
from keras_coordatt.training.attention_monitor import read_records
from keras_coordatt.training.attention_monitor import write_records

LAYERS = {"ca": CoordAttention, "se": SqueezeExcite, "cbam": CBAM}


def bars(count, size=32, seed=0):
    """Images of one bright bar, horizontal (label 1) or vertical (label 0), at a random place."""
    rng = np.random.default_rng(seed)
    images = rng.random((count, size, size, 3), dtype="float32") * 0.2
    labels = rng.integers(0, 2, count)
    for image, label, place in zip(images, labels, rng.integers(4, size - 4, count)):
        if label:
            image[place - 2:place + 2] += 1.0
        else:
            image[:, place - 2:place + 2] += 1.0
    return images, labels


def bar_classifier():
    """conv -> CA -> conv -> SE -> conv -> CBAM -> conv -> classifier, each attention read by a conv."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    for name, layer in (("ca", CoordAttention(reduction=4, name="ca")),
                        ("se", SqueezeExcite(name="se")), ("cbam", CBAM(reduction=4, name="cbam"))):
        x = keras.layers.Conv2D(16, 1, name=f"{name}_project")(layer(x))
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_the_gates_are_what_the_layer_multiplies_its_input_by(kind):
    layer = LAYERS[kind](reduction=4)
    x = np.random.default_rng(1).normal(size=(2, 8, 6, 16)).astype("float32")
    expected = ops.convert_to_numpy(layer(x))
    product = x
    gates = layer.gates(ops.convert_to_tensor(x))
    for gate in gates.values():
        product = product * ops.convert_to_numpy(gate)
    np.testing.assert_allclose(product, expected, rtol=1e-5, atol=1e-6)
    assert len(gates) == len(layer.gate_midpoints())


def test_statistics_of_constant_gates_sit_at_the_start_and_saturation_is_counted():
    model = bar_classifier()
    images, _ = bars(4)
    for layer in ("ca", "se", "cbam"):
        model.get_layer(layer).start_as_constant()
    rows = gate_statistics(model, images)
    assert [row["layer"] for row in rows] == ["ca", "se", "cbam"]
    for row in rows:
        assert row["mean"] == pytest.approx(0.5)
        assert (row["from_start"], row["std"], row["saturated"]) == (0.0, 0.0, 0.0)
    # A large bias pushes every CA gate to sigmoid(10) > 0.98: all saturated, 0.5 from the start.
    for conv in model.get_layer("ca").gate_convs():
        conv.bias.assign(np.full(conv.bias.shape, 10.0, "float32"))
    ca = gate_statistics(model, images)[0]
    assert ca["saturated"] == 1.0 and ca["from_start"] == pytest.approx(0.5, abs=1e-4)


def test_ca_gates_vary_along_positions_and_se_gates_do_not():
    model = bar_classifier()
    rows = {row["layer"]: row for row in gate_statistics(model, bars(4)[0])}
    assert rows["se"]["position_std"] == 0.0
    assert rows["ca"]["position_std"] > 0.0 and rows["cbam"]["position_std"] > 0.0


def test_the_mode_gap_is_what_batch_statistics_change_and_zero_without_them():
    model = bar_classifier()
    images, _ = bars(8)
    ca = model.get_layer("ca")
    for conv in ca.gate_convs():  # gates that respond to the descriptor
        conv.kernel.assign(np.random.default_rng(3).normal(size=conv.kernel.shape) * 2.0)
    # Moving statistics unlike the batch's, as after a run whose features drifted.
    ca.bn.moving_mean.assign(np.full(ca.bn.moving_mean.shape, 3.0, "float32"))
    before = [ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    rows = {row["layer"]: row for row in gate_statistics(model, images)}
    assert rows["ca"]["mode_gap"] > 0.05
    assert rows["se"]["mode_gap"] == 0.0 and rows["cbam"]["mode_gap"] == 0.0
    for value, variable in zip(before, model.non_trainable_variables):  # put back
        np.testing.assert_array_equal(ops.convert_to_numpy(variable), value)
    # The same layer normalising each image on its own has no gap, whatever its weights.
    inputs = keras.Input((32, 32, 3))
    layer = CoordAttention(reduction=4, normalization="layer", name="ca_ln")
    per_image = keras.Model(inputs, layer(keras.layers.Conv2D(16, 3)(inputs)))
    for conv in layer.gate_convs():
        conv.kernel.assign(np.random.default_rng(3).normal(size=conv.kernel.shape) * 2.0)
    row = gate_statistics(per_image, images)[0]
    assert row["from_start"] > 0.05 and row["mode_gap"] == pytest.approx(0.0, abs=1e-6)


def test_the_reader_gradient_falls_as_its_kernel_grows_behind_batchnorm():
    """A conv followed by BatchNorm is invariant to its kernel's scale: x4 the kernel, /4 its gradient.

    The mechanism by which the identity start (kernel / 0.25) slowed the blocks it touched.
    """
    inputs = keras.Input((16, 16, 8))
    x = CoordAttention(reduction=2, name="ca")(inputs)
    x = keras.layers.Conv2D(8, 1, use_bias=False, name="project")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 16, 16, 8)).astype("float32"), np.arange(8) % 3
    attention, reader = gradient_norms(model, x, y)["ca"]
    kernel = model.get_layer("project").kernel
    kernel.assign(kernel * 4.0)
    attention_after, reader_after = gradient_norms(model, x, y)["ca"]
    assert reader > 0 and attention > 0
    # Exact but for BatchNorm's epsilon.
    assert reader / reader_after == pytest.approx(4.0, rel=0.02)
    assert attention_after == pytest.approx(attention, rel=0.02)


def test_gradient_norms_put_back_the_batchnorm_statistics():
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.BatchNormalization()(CoordAttention(reduction=2)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [ops.convert_to_numpy(v).copy() for v in model.non_trainable_variables]
    gradient_norms(model, np.ones((4, 8, 8, 4), "float32") * 3, np.zeros(4))
    for old, variable in zip(before, model.non_trainable_variables):
        np.testing.assert_array_equal(old, ops.convert_to_numpy(variable))


def test_gradient_norms_need_a_compiled_model():
    model = bar_classifier()
    uncompiled = keras.Model(model.inputs, model.outputs)
    with pytest.raises(ValueError, match="not compiled"):
        gradient_norms(uncompiled, *bars(2))


def train_with_monitor(folder, frozen=False):
    keras.utils.set_random_seed(0)
    model = bar_classifier()
    if frozen:  # everything but the classifier on top: nothing below it can change
        for layer in model.layers[:-1]:
            layer.trainable = False
        model.compile(keras.optimizers.Adam(3e-3),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images, labels = bars(256)
    monitor = AttentionMonitor((images[:8], labels[:8]), str(folder),
                               tensorboard_dir=str(folder / "tensorboard"))
    model.fit(images, labels, epochs=4, batch_size=32, callbacks=[monitor], verbose=0)
    return read_records(str(folder / "attention.csv"))


def by_layer(records, epoch):
    return {row["layer"]: row for row in records if row["epoch"] == epoch}


def test_the_monitor_sees_the_gates_move_in_a_run_that_trains_them(tmp_path):
    records = train_with_monitor(tmp_path)
    assert sorted({row["epoch"] for row in records}) == [0, 1, 2, 3, 4]
    start, end = by_layer(records, 0), by_layer(records, 4)
    for layer in ("ca", "se", "cbam"):
        assert end[layer]["from_start"] > start[layer]["from_start"] + 0.005, (layer, end, start)
        assert end[layer]["grad_norm"] > 0 and end[layer]["reader_grad_norm"] > 0
    assert (tmp_path / "attention.png").stat().st_size > 10_000
    if keras.backend.backend() == "tensorflow":
        assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_the_monitor_reports_frozen_gates_as_unmoved(tmp_path):
    records = train_with_monitor(tmp_path, frozen=True)
    start, end = by_layer(records, 0), by_layer(records, 4)
    for layer in ("ca", "se", "cbam"):
        assert end[layer]["from_start"] == pytest.approx(start[layer]["from_start"], abs=1e-6)
        assert end[layer]["grad_norm"] == 0.0


def test_a_resumed_run_replaces_the_records_of_the_epochs_it_redoes(tmp_path):
    path = str(tmp_path / "attention.csv")
    row = {"layer": "ca", "type": "CoordAttention", "mean": 0.5, "std": 0.0, "position_std": 0.0,
           "channel_std": 0.0, "from_start": 0.0, "saturated": 0.0, "grad_norm": 1.0,
           "reader_grad_norm": 2.0, "grad_ratio": 0.5, "seconds": 0.1}
    for epoch in (0, 1, 2, 3):
        write_records(path, epoch, [{**row, "epoch": epoch}])
    write_records(path, 2, [{**row, "epoch": 2, "mean": 0.7}])
    records = read_records(path)
    assert [(r["epoch"], r["mean"]) for r in records] == [(0, 0.5), (1, 0.5), (2, 0.7)]
    assert os.path.getsize(path) > 0

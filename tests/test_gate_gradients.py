"""`python -m training.gate_gradients`: signal and noise of the gates' gradients."""

import numpy as np
import pytest

from training import gate_gradients


def test_the_noise_scale_recovers_a_known_signal_and_noise():
    rng = np.random.default_rng(0)
    size, count, batch = 50, 4000, 64
    signal = np.full(size, 1 / np.sqrt(size))  # |G|^2 = 1
    sigma = 0.5  # per-element noise of one batch's gradient: tr(cov) = 50 * 0.25 = 12.5
    grads = signal + sigma * rng.normal(size=(count, size))
    stats = gate_gradients.noise_statistics(grads, batch)
    assert stats["signal"] == pytest.approx(1.0, rel=0.1)
    assert stats["noise"] == pytest.approx(12.5, rel=0.05)
    assert stats["noise_scale"] == pytest.approx(64 * 12.5, rel=0.1)
    assert stats["signal_share"] == pytest.approx(1 / 13.5, rel=0.1)
    # Batches that all agree: no noise, all signal.
    same = gate_gradients.noise_statistics(np.tile(signal, (8, 1)), batch)
    assert same["noise"] == pytest.approx(0.0, abs=1e-12)
    assert same["signal_share"] == pytest.approx(1.0)
    # Pure noise: signal share near 0, and no noise scale where the signal is not above it.
    noise = gate_gradients.noise_statistics(rng.normal(size=(16, size)), batch)
    assert abs(noise["signal_share"]) < 0.1
    rows = gate_gradients.noise_table({("block_1", "gates"): rng.normal(size=(2, 3)) * [[1, 1, 1],
                                                                                    [-1, -1, -1]]},
                                      batch)
    assert rows[0]["noise_scale"] is None
    assert "signal not above noise" in gate_gradients.table(rows)


@pytest.mark.requires_tensorflow
def test_each_ca_layer_has_its_gates_and_reader_and_gradients_per_batch():
    import tensorflow as tf

    from keras_coordatt.training import TrainConfig
    from keras_coordatt.training.trainer import classifier_for_config

    config = TrainConfig(model="mobilenet_v2", alpha=0.35, attention="ca", image_size=32,
                         dropout_rate=0.0)
    model = classifier_for_config(config, num_classes=4)
    groups = gate_gradients.variable_groups(model)
    blocks = {block for block, group in groups if group == "gates"}
    assert len(blocks) == 16 and ("head", "head") in groups
    assert all((block, "reader") in groups for block in blocks)
    assert groups[("block_3", "reader")][0].path == "block_3_project/kernel"
    images = tf.random.uniform((4, 32, 32, 3), -1, 1, seed=1)
    data = tf.data.Dataset.from_tensor_slices((images, tf.constant([0, 1, 2, 3]))).batch(2)
    grads = gate_gradients.batch_gradients(model, data, groups, 2)
    size = sum(int(np.prod(v.shape)) for v in groups[("block_3", "gates")])
    assert grads[("block_3", "gates")].shape == (2, size)
    assert np.abs(grads[("head", "head")]).sum() > 0
    with pytest.raises(ValueError, match="gives 2 batches, fewer than --batches 3"):
        gate_gradients.batch_gradients(model, data, groups, 3)

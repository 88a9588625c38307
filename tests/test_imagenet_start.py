"""`python -m training.imagenet_start` and the architecture a weights file records."""

import pytest

pytest.importorskip("skimage")


def test_the_photos_are_torchvision_crops():
    from training.imagenet_start import photos

    images = photos()
    assert images.shape == (19, 224, 224, 3)
    # Normalised by ImageNet's mean and std: centred near 0, beyond [0, 1].
    assert -1 < images.mean() < 1 and images.min() < -1 and images.max() > 1


def test_only_a_keras_file_records_padding_and_epsilon(tmp_path):
    import keras

    from keras_coordatt.models.families import build_model
    from keras_coordatt.models.weights import saved_architecture

    model = build_model("mobilenet_v2", alpha=0.35, input_shape=(32, 32, 3), classes=3,
                        padding="pytorch", bn_epsilon=1e-5)
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    assert saved_architecture(tmp_path / "m.keras") == {"padding": "pytorch", "bn_epsilon": 1e-5}
    assert saved_architecture(tmp_path / "m.weights.h5") == {}
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    plain.save(tmp_path / "plain.keras")
    assert saved_architecture(tmp_path / "plain.keras") == {}

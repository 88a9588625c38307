"""Grad-CAM, Coordinate Attention's gates, and ``keras-coordatt explain``."""

import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_coordatt.cli import main
from keras_coordatt.layers import CoordAttention
from keras_coordatt.models import MobileNetV2
from keras_coordatt.visualize import coord_attention_gates
from keras_coordatt.visualize import grad_cam


def square_detector():
    """Class 0's score is the mean of a ReLU feature map that lights up on bright pixels.

    Grad-CAM of class 0 must then cover the bright square and nothing else;
    class 1's weight is negative, so nothing speaks for it.
    """
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.Conv2D(4, 1, activation="relu", name="features",
                                   kernel_initializer="ones", bias_initializer=keras.initializers.Constant(-1.0))(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(2, name="scores", kernel_initializer=keras.initializers.Constant(
        np.array([[1.0, -1.0]] * 4)), bias_initializer="zeros")(pooled)
    return keras.Model(inputs, outputs)


def square_image():
    image = np.zeros((1, 32, 32, 3), "float32")
    image[0, 4:12, 18:28] = 1.0  # rows 4-11, columns 18-27
    return image


def test_grad_cam_covers_what_the_class_score_counts():
    maps, classes = grad_cam(square_detector(), square_image())
    assert maps.shape == (1, 32, 32) and classes.tolist() == [0]
    inside, outside = maps[0, 5:11, 19:27], np.delete(maps[0], np.s_[2:14], axis=0)
    assert inside.min() > 0.9 and maps.max() == pytest.approx(1.0)
    assert outside.max() < 0.05
    assert maps[0, 5:11, :14].max() < 0.05  # the same rows, left of the square


def test_grad_cam_of_a_class_nothing_speaks_for_is_zero_not_nan():
    maps, classes = grad_cam(square_detector(), square_image(), class_index=1)
    assert classes.tolist() == [1]
    assert np.isfinite(maps).all() and maps.max() == 0.0


def test_grad_cam_refuses_a_layer_without_feature_maps():
    with pytest.raises(ValueError, match="'scores' has output shape \\(None, 2\\); Grad-CAM needs "
                                         "a 4D"):
        grad_cam(square_detector(), square_image(), layer="scores")


@pytest.fixture(scope="module")
def ca_model():
    keras.utils.set_random_seed(0)
    model = MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, attention="ca", classes=3,
                        classifier_activation=None)
    for layer in model.layers:  # non-trivial gates: the default bias-free init is near 0.5
        if isinstance(layer, CoordAttention):
            for conv in (layer.conv_h, layer.conv_w):
                conv.kernel.assign(np.random.default_rng(1).normal(0, 1, conv.kernel.shape))
                conv.bias.assign(np.random.default_rng(2).normal(0, 1, conv.bias.shape))
    return model


def test_gates_are_what_the_layer_multiplies_its_input_by():
    inputs = keras.Input((8, 6, 16))
    layer = CoordAttention(reduction=4, name="ca")
    model = keras.Model(inputs, layer(inputs))
    rng = np.random.default_rng(2)
    for conv in (layer.conv_h, layer.conv_w):
        conv.kernel.assign(rng.normal(0, 1, conv.kernel.shape))
    images = rng.uniform(0.5, 1.5, (2, 8, 6, 16)).astype("float32")
    gates = coord_attention_gates(model, images)
    after = keras.ops.convert_to_numpy(model(images, training=False))
    assert gates["g_h"].shape == (2, 8) and gates["g_w"].shape == (2, 6)
    assert gates["product"].shape == (2, 8, 6) and gates["layer"] == "ca"
    np.testing.assert_allclose(gates["product"], (after / images).mean(-1), rtol=1e-5)
    assert gates["product"].std() > 1e-3  # the map varies over positions
    for key in ("g_h", "g_w"):
        assert 0 < gates[key].min() and gates[key].max() < 1


def test_default_gate_layer_is_the_last_at_a_sixteenth_of_the_input(ca_model):
    images = np.zeros((1, 64, 64, 3), "float32")
    assert coord_attention_gates(ca_model, images)["layer"] == "block_12_attention"
    with pytest.raises(ValueError, match="'Conv1' is a Conv2D, not a CoordAttention"):
        coord_attention_gates(ca_model, images, "Conv1")


def test_explain_command_writes_one_png_per_image(ca_model, tmp_path, capsys):
    model_path = str(tmp_path / "model.keras")
    ca_model.save(model_path)
    rng = np.random.default_rng(3)
    images = []
    for name, shape in (("cell.png", (80, 70, 3)), ("grey.jpg", (50, 90))):
        path = str(tmp_path / name)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
        images.append(path)
    out = tmp_path / "explained"
    assert main(["explain", model_path, *images, "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    for stem in ("cell", "grey"):
        png = out / f"{stem}_explained.png"
        assert f"-> {png}" in printed
        with Image.open(png) as picture:
            assert picture.size[0] > picture.size[1] > 200  # three panels side by side
    # The gate statistics of every attention layer, as gate_statistics gives them.
    lines = printed.split("The attention's gates on these 2 images")[1].strip().splitlines()[3:]
    from keras_coordatt.models.attention_statistics import gate_statistics
    from keras_coordatt.visualize import model_inputs

    expected = gate_statistics(ca_model, model_inputs(ca_model, images)[0])
    assert [line.split()[0] for line in lines] == [row["layer"] for row in expected]
    assert [float(line.split()[6]) for line in lines] == pytest.approx(
        [row["from_start"] for row in expected], abs=1e-3)
    assert max(float(line.split()[6]) for line in lines) > 0.05  # ca_model's gates are not flat
    assert [float(line.split()[8]) for line in lines] == pytest.approx(
        [row["mode_gap"] for row in expected], abs=1e-4)


def test_explain_names_the_runs_classes_and_takes_a_class_by_name(ca_model, tmp_path, capsys):
    import json

    ca_model.save(tmp_path / "model.keras")
    (tmp_path / "metrics.json").write_text(json.dumps({"class_names": ["shirt", "trouser",
                                                                       "coat"]}))
    image = str(tmp_path / "cell.png")
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(image)
    for chosen in ("trouser", "1"):
        assert main(["explain", str(tmp_path / "model.keras"), image, "--output",
                     str(tmp_path / "out"), "--class", chosen]) == 0
        assert capsys.readouterr().out.startswith(f"{image}: trouser (class 1, model output ")
    assert main(["explain", str(tmp_path / "model.keras"), image, "--output",
                 str(tmp_path / "out"), "--class", "hat"]) == 2
    assert "--class 'hat': neither a class index (0 to 2) nor a class name (shirt, trouser, " \
           "coat)" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_grad_cam_runs_on_jax_and_torch_as_on_tensorflow(backend):
    """It failed on JAX with 'Attempt to convert a value (None)': TensorFlow's tape saw no
    JAX computation. Each backend takes the gradient its own way."""
    import json
    import subprocess
    import sys

    pytest.importorskip(backend)
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import numpy as np; "
            "from test_visualize import square_detector, square_image; "
            "from keras_coordatt.visualize import grad_cam; "
            "maps, classes = grad_cam(square_detector(), square_image()); "
            "print(json.dumps([classes.tolist(), float(maps[0, 5:11, 19:27].min()), "
            "float(np.delete(maps[0], np.s_[2:14], axis=0).max())]))")
    result = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__)],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "KERAS_BACKEND": backend,
                                 "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr
    classes, inside, outside = json.loads(result.stdout.splitlines()[-1])
    assert classes == [0] and inside > 0.9 and outside < 0.05  # as test_grad_cam_covers_...


def test_grad_cam_names_a_layer_it_cannot_reach_the_output_through_on_jax(ca_model, monkeypatch):
    from keras_coordatt import visualize

    monkeypatch.setattr(visualize.keras.backend, "backend", lambda: "jax")
    with pytest.raises(ValueError, match="grad_cam on jax: the model's output is reached around "
                                         "'block_12_project_BN' too"):
        grad_cam(ca_model, np.zeros((1, 64, 64, 3), "float32"), layer="block_12_project_BN")


def test_the_figure_keeps_a_flat_gate_product_flat_and_shows_both_scales():
    from keras_coordatt.visualize import explain_figure

    image = np.full((32, 32, 3), 128, np.uint8)
    cam = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    product = 0.25 + 1e-3 * np.linspace(-1, 1, 16).reshape(4, 4)  # flat, to rounding
    gates = {"g_h": np.full(4, 0.5), "g_w": np.full(4, 0.5), "product": product, "layer": "ca"}
    figure = explain_figure(image, cam, gates)
    drawn = np.asarray(figure.axes[2].images[0].get_array(), "float32")
    assert np.ptp(drawn, axis=(0, 1)).max() <= 2  # it was stretched over the whole colour map
    bars = [inset.get_xlabel() for axis in figure.axes for inset in axis.child_axes
            if inset.get_xlabel()]
    assert bars == ["share of the image's peak", "g_h x g_w"]
    assert "from 0.249 to 0.251" in figure.axes[2].get_title()


@pytest.mark.parametrize("arguments, message", [
    (["missing.png"], "no image file '.*missing.png'"),
    (["notes.png"], "'.*notes.png' is not an image TensorFlow can read"),
    (["cell.png", "--layer", "bogus"], "no layer 'bogus'; layers with 4D outputs end with .*out_relu"),
    (["cell.png", "--class", "trouser"], "--class 'trouser': neither a class index \\(0 to 2\\) nor "
                                         "a class name: the run saved none"),
])
def test_explain_errors_name_the_problem(ca_model, tmp_path, capsys, arguments, message):
    model_path = str(tmp_path / "model.keras")
    ca_model.save(model_path)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "cell.png")
    (tmp_path / "notes.png").write_text("not an image")
    arguments = [str(tmp_path / a) if a.endswith(".png") else a for a in arguments]
    assert main(["explain", model_path, *arguments, "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("keras-coordatt explain: ") and len(error.strip().splitlines()) == 1
    import re

    assert re.search(message, error), error
    assert not os.path.exists(tmp_path / "out" / "cell_explained.png")

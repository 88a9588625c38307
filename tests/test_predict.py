"""Predictions and scores of trained models: keras_coordatt.predict, keras-coordatt predict and
evaluate, from a model.keras, a run's folder or an exported .tflite file, for every task."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import keras_coordatt
from keras_coordatt.cli import main
from keras_coordatt.training.config import TrainConfig
from runs import tiny
from test_postprocess import small_ssd

pytestmark = pytest.mark.requires_tensorflow

SIDE = 160
OBJECTS = ["tree", "car", "house"]


def write_image(path, shape, seed=0):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)).save(path)
    return str(path)


def one_line_error(capsys, *argv):
    """Runs the command; its stderr, asserting status 2 and one line."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# --- classification: a trained run, its model.keras and its TFLite file --------

@pytest.fixture(scope="module")
def sky_and_sea(tmp_path_factory):
    """Two classes with names of their own: bright top rows (sky) or bright bottom rows (sea)."""
    root = tmp_path_factory.mktemp("sky_and_sea")
    rng = np.random.default_rng(0)
    for split, count in (("train", 16), ("val", 6)):
        for label, name in enumerate(("sea", "sky")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                image = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
                image[slice(0, 10) if name == "sky" else slice(22, 32)] = 230
                Image.fromarray(image).save(folder / f"{index}.png")
    return root


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory, sky_and_sea):
    from keras_coordatt.training import train

    config = tiny(tmp_path_factory.mktemp("classifier"), sky_and_sea, epochs=1)
    train(config)
    return config.output_dir


def test_a_classification_run_predicts_class_names_and_probabilities(classifier_run,
                                                                     sky_and_sea):
    image = str(sky_and_sea / "val" / "sky" / "0.png")
    results = keras_coordatt.predict(classifier_run, [image, image], top_k=2)
    assert [r["image"] for r in results] == [image, image]
    top = results[0]["top"]
    assert [entry["name"] for entry in top] == [["sea", "sky"][entry["class"]] for entry in top]
    assert {entry["name"] for entry in top} == {"sea", "sky"}
    assert sum(entry["score"] for entry in top) == pytest.approx(1.0, abs=1e-5)
    assert top[0]["score"] >= top[1]["score"]
    (from_file,) = keras_coordatt.predict(os.path.join(classifier_run, "model.keras"), image)
    assert from_file["top"][0] == pytest.approx(top[0])


def test_the_predict_command_prints_each_images_classes(classifier_run, sky_and_sea, capsys,
                                                        tmp_path):
    images = [str(sky_and_sea / "val" / name / "1.png") for name in ("sky", "sea")]
    assert main(["predict", classifier_run, *images, "--top_k", "1", "--output",
                 str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    for image, line in zip(images, lines):
        assert line.startswith(f"{image}: ") and line.split()[1] in ("sea", "sky"), line
    saved = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert [r["image"] for r in saved] == images and len(saved[0]["top"]) == 1


def test_an_exported_tflite_classifier_predicts_what_keras_does(classifier_run, sky_and_sea,
                                                               tmp_path):
    from keras_coordatt.export import export_model

    model = keras.saving.load_model(os.path.join(classifier_run, "model.keras"), compile=False)
    export_model(model, str(tmp_path), formats=("tflite_float32",), labels=["sea", "sky"],
                 name="m", log=None)
    image = str(sky_and_sea / "val" / "sea" / "2.png")
    (keras_result,) = keras_coordatt.predict(classifier_run, image)
    (file_result,) = keras_coordatt.predict(tmp_path / "m_float32.tflite", image)
    assert [e["name"] for e in file_result["top"]] == [e["name"] for e in keras_result["top"]]
    np.testing.assert_allclose([e["score"] for e in file_result["top"]],
                               [e["score"] for e in keras_result["top"]], atol=1e-4)


def test_evaluate_scores_a_classification_run_on_its_split_and_on_another_folder(
        classifier_run, sky_and_sea, capsys):
    assert main(["evaluate", classifier_run]) == 0
    own = json.loads(open(os.path.join(classifier_run, "eval_val_last.json")).read())
    assert (own["split"], own["examples"]) == ("val", 12) and 0.0 <= own["accuracy"] <= 1.0
    assert set(own["class_accuracy"]) == {"sea", "sky"}
    metrics = json.loads(open(os.path.join(classifier_run, "metrics.json")).read())
    assert own["accuracy"] == pytest.approx(metrics["eval_accuracy"], abs=1e-6)
    assert f"wrote {os.path.join(classifier_run, 'eval_val_last.json')}" in capsys.readouterr().out
    assert main(["evaluate", classifier_run, "--data", f"folder:{sky_and_sea}", "--split",
                 "train", "--weights", "best"]) == 0
    other = [name for name in os.listdir(classifier_run) if name.endswith("_train_best.json")]
    assert len(other) == 1 and json.loads(open(os.path.join(classifier_run, other[0])).read())[
        "examples"] == 32


def test_evaluate_scores_a_model_file_on_a_folder(classifier_run, sky_and_sea, capsys):
    assert main(["evaluate", os.path.join(classifier_run, "model.keras"), "--data",
                 f"folder:{sky_and_sea}", "--split", "val"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["examples"] == 12 and printed["split"] == "val"


@pytest.mark.parametrize("arguments, message", [
    (["RUN", "nowhere.png"], "no image file 'nowhere.png'"),
    (["missing_run", "IMAGE"], "no model file or training run folder 'missing_run'"),
    (["IMAGE", "IMAGE"], "not a model; pass a .keras or .tflite file or a training run's folder"),
])
def test_predict_names_a_bad_argument_in_one_line(classifier_run, sky_and_sea, capsys,
                                                  arguments, message):
    image = str(sky_and_sea / "val" / "sky" / "0.png")
    swap = {"RUN": classifier_run, "IMAGE": image}
    err = one_line_error(capsys, "predict", *[swap.get(a, a) for a in arguments])
    assert err.startswith("keras-coordatt predict: ") and message in err, err


def test_evaluate_names_a_model_file_without_data(classifier_run, capsys):
    err = one_line_error(capsys, "evaluate", os.path.join(classifier_run, "model.keras"))
    assert "a model file is scored on --data" in err


# --- detection: a trained detector's model.keras, its run and its TFLite file ---

def compiled_like_a_run(model):
    """Compiled as the trainer compiles a detector: its SGD and the two SSD losses."""
    from keras_coordatt.optimizers import LayerwiseSGD
    from keras_coordatt.tasks import SSDBoxLoss
    from keras_coordatt.tasks import SSDClassificationLoss

    model.compile(optimizer=LayerwiseSGD(learning_rate=0.01),
                  loss={"classes": SSDClassificationLoss("focal"), "boxes": SSDBoxLoss()})
    return model


@pytest.fixture(scope="module")
def detector_run(tmp_path_factory):
    """A detection run's folder as the trainer leaves it: model.keras, config.json, metrics.json."""
    folder = tmp_path_factory.mktemp("detector_run")
    model = compiled_like_a_run(small_ssd(len(OBJECTS), SIDE, attention="ca"))
    model.save(folder / "model.keras")
    config = TrainConfig(task="detection", model="mobilenet_v2", alpha=0.35, attention="ca",
                         image_size=SIDE, detection_loss="focal", output_dir=str(folder))
    (folder / "config.json").write_text(config.to_json())
    (folder / "metrics.json").write_text(json.dumps({"class_names": OBJECTS}))
    return folder, model


def test_a_detectors_model_keras_loads_after_importing_the_package(detector_run):
    """Compiled with the SSD losses and the trainer's optimizer; importing keras_coordatt
    is all a new process needs (it said: Could not locate class 'SSDClassificationLoss')."""
    folder, _ = detector_run
    code = ("import keras, keras_coordatt, sys; "
            "model = keras.saving.load_model(sys.argv[1]); "
            "print(type(model.loss['classes']).__name__, model.loss['classes'].kind)")
    result = subprocess.run([sys.executable, "-c", code, str(folder / "model.keras")],
                            capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["SSDClassificationLoss", "focal"]


def test_a_loaded_detector_keeps_its_anchors_and_decodes_as_before(detector_run):
    from keras_coordatt.tasks import anchors_of
    from keras_coordatt.tasks import detector

    folder, model = detector_run
    loaded = keras.saving.load_model(folder / "model.keras", compile=False)
    assert not hasattr(loaded, "anchors") and anchors_of(loaded) == model.anchors
    images = np.random.default_rng(1).uniform(-1, 1, (2, SIDE, SIDE, 3)).astype("float32")
    settings = dict(score_threshold=0.05, max_detections=20, activation="sigmoid")
    expected = detector(model, **settings)(images)
    got = detector(loaded, **settings)(images)
    assert int(np.sum(expected["count"])) > 0
    for key in ("boxes", "classes", "scores", "count"):
        np.testing.assert_allclose(np.asarray(got[key]), np.asarray(expected[key]), atol=1e-5)


def test_a_detection_run_predicts_named_boxes_in_the_images_pixels(detector_run, tmp_path):
    from keras_coordatt.preprocessing import Preprocessing
    from keras_coordatt.tasks import predict_detections

    folder, model = detector_run
    image = write_image(tmp_path / "site.png", (200, 300, 3))
    (result,) = keras_coordatt.predict(folder, [image], score_threshold=0.1)
    expected = predict_detections(model, [{"image": np.asarray(Image.open(image))}],
                                  Preprocessing(), activation="sigmoid", score_threshold=0.1)[0]
    detections = result["detections"]
    assert result["task"] == "detection" and len(detections) == len(expected["boxes"]) > 0
    for detection, box, label, score in zip(detections, expected["boxes"], expected["labels"],
                                            expected["scores"]):
        assert detection["name"] == OBJECTS[label] and detection["class"] == label
        np.testing.assert_allclose(detection["box"], box, atol=0.01)
        assert detection["score"] == pytest.approx(float(score)) and detection["score"] > 0.1
    assert max(max(d["box"]) for d in detections) > 1.5  # pixels, not 0..1


def test_a_run_saved_before_its_boxes_layer_kept_the_anchors_takes_them_from_its_config(
        detector_run, tmp_path):
    from keras_coordatt.tasks import anchors_of

    folder, model = detector_run
    old = keras.models.clone_model(model, clone_function=lambda layer: (
        keras.layers.Concatenate(axis=1, name="boxes") if layer.name == "boxes"
        else layer.__class__.from_config(layer.get_config())))
    old.set_weights(model.get_weights())
    old_run = tmp_path / "old_run"
    old_run.mkdir()
    old.save(old_run / "model.keras")
    for name in ("config.json", "metrics.json"):
        (old_run / name).write_text((folder / name).read_text())
    assert anchors_of(keras.saving.load_model(old_run / "model.keras", compile=False)) is None
    image = write_image(tmp_path / "site.png", (200, 300, 3))
    assert keras_coordatt.predict(old_run, image) == keras_coordatt.predict(folder, image)


def test_the_predict_command_writes_boxes_as_json_and_drawn(detector_run, tmp_path, capsys):
    folder, _ = detector_run
    image = write_image(tmp_path / "site.png", (200, 300, 3))
    assert main(["predict", str(folder), image, "--score_threshold", "0.1", "--output",
                 str(tmp_path / "out")]) == 0
    printed = json.loads(capsys.readouterr().out.split("\nwrote ")[0])
    assert printed[0]["image"] == image and printed[0]["detections"]
    saved = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert saved[0]["detections"] == printed[0]["detections"]
    with Image.open(tmp_path / "out" / "site_detections.png") as drawn:
        assert drawn.size == (300, 200)
        assert not np.array_equal(np.asarray(drawn.convert("RGB")), np.asarray(Image.open(image)))


def test_an_exported_detector_file_predicts_the_boxes_keras_does(detector_run, tmp_path,
                                                                monkeypatch):
    from keras_coordatt.export import export_task_model
    from keras_coordatt.export import task_bundle
    from keras_coordatt.export.checks import match_detections

    monkeypatch.setattr(task_bundle, "TASK_QUANTIZATIONS", (None,))  # float32 only: faster
    folder, model = detector_run
    image = write_image(tmp_path / "site.png", (200, 300, 3))
    examples = [{"image": np.asarray(Image.open(image))}]
    export_task_model(model, "detection", str(tmp_path / "exported"), OBJECTS, examples, examples,
                      log=lambda line: None, activation="sigmoid", score_threshold=0.05)
    (expected,) = keras_coordatt.predict(folder, image, score_threshold=0.1)
    (got,) = keras_coordatt.predict(tmp_path / "exported" / "detection_float32.tflite", image,
                                    score_threshold=0.1)
    (keras_boxes, keras_names), (file_boxes, file_names) = (
        [[d[key] for d in result["detections"]] for key in ("box", "name")]
        for result in (expected, got))
    pairs = match_detections(np.array(keras_boxes), keras_names, np.array(file_boxes),
                             file_names, 0.9)
    assert len(pairs) >= 0.9 * max(len(keras_boxes), len(file_boxes)) > 0


# --- segmentation: masks at the image's size, as palette PNGs -----------------

@pytest.fixture(scope="module")
def segmenter_file(tmp_path_factory):
    from keras_coordatt.models import MobileNetV2
    from keras_coordatt.tasks import DeepLabV3

    keras.utils.set_random_seed(0)
    backbone = MobileNetV2(input_shape=(96, 96, 3), include_top=False, alpha=0.35,
                           attention="ca", output_stride=16)
    model = DeepLabV3(backbone, num_classes=3)
    folder = tmp_path_factory.mktemp("segmenter")
    model.save(folder / "model.keras")
    (folder / "metrics.json").write_text(json.dumps({"class_names": ["background", "cell",
                                                                     "edge"]}))
    return folder / "model.keras", model


def test_a_segmenter_predicts_a_mask_at_the_images_size_written_as_a_palette_png(
        segmenter_file, tmp_path, capsys):
    from keras_coordatt.preprocessing import preprocessing_of
    from keras_coordatt.training.tasks import predict_masks

    path, model = segmenter_file
    image = write_image(tmp_path / "nuclei.png", (70, 130, 3))
    assert main(["predict", str(path), image, "--output", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    (expected,) = predict_masks(model, [{"image": np.asarray(Image.open(image))}],
                                preprocessing_of(model))
    with Image.open(tmp_path / "out" / "nuclei_mask.png") as written:
        assert written.mode == "P" and written.getpalette()[3:6] == [128, 0, 0]  # VOC's colours
        np.testing.assert_array_equal(np.asarray(written), expected)
    shares = {name: np.mean(expected == c) for c, name in enumerate(["background", "cell", "edge"])}
    assert printed.startswith(f"{image}: ") and all(
        f"{name} {share:.1%}" in printed for name, share in shares.items() if share)
    saved = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert saved[0]["mask_file"] == "nuclei_mask.png" and "mask" not in saved[0]


def test_predict_refuses_a_model_of_no_task(tmp_path, capsys):
    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, keras.layers.Reshape((8, 8, 3, 1))(inputs)).save(tmp_path / "odd.keras")
    image = write_image(tmp_path / "a.png", (8, 8, 3))
    err = one_line_error(capsys, "predict", str(tmp_path / "odd.keras"), image)
    assert "neither a classifier's (B, C), a segmenter's (B, H, W, C) nor an SSD" in err

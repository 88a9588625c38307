"""The trainer: configs, artefacts, resume after SIGKILL, interruption, NaN, distribution."""

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from training.config import TrainConfig
from training.config import config_names
from training.config import load_config

pytestmark = pytest.mark.requires_tensorflow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """4 classes x (24 train + 8 val) PNGs of 32x32; the class sets the stripe."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split, count in (("train", 24), ("val", 8)):
        for label in range(4):
            folder = root / split / f"class_{label}"
            folder.mkdir(parents=True)
            for index in range(count):
                image = rng.integers(0, 80, size=(32, 32, 3), dtype=np.uint8)
                image[label * 8 : label * 8 + 6] = 230
                Image.fromarray(image).save(folder / f"{index}.png")
    return root


def tiny(tmp_path, image_folder, **overrides):
    values = dict(
        model="mobilenet_v2", alpha=0.35, attention="ca", image_size=32, dropout_rate=0.0,
        dataset=f"folder:{image_folder}", train_split="train", eval_split="val",
        epochs=2, batch_size=16, learning_rate=0.2, reference_batch_size=256,
        crop_scale_min=0.5, output_dir=str(tmp_path / "run"), deterministic=True,
        verbose="quiet", seed=1,
    )
    values.update(overrides)
    return TrainConfig(**values)


def run_cli(config, extra_env=None, wait=True):
    args = [sys.executable, "-m", "training.train"]
    for field in dataclasses.fields(config):
        args += [f"--{field.name}", str(getattr(config, field.name))]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(extra_env or {})}
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    if wait:
        output, _ = process.communicate(timeout=300)
        return process.returncode, output
    return process


def weights_of(path):
    import h5py

    values = []
    with h5py.File(path) as f:
        f.visititems(lambda name, item: values.append(np.asarray(item))
                     if isinstance(item, h5py.Dataset) else None)
    return values


# --- configuration -----------------------------------------------------------

def test_every_shipped_config_loads_and_validates():
    assert len(config_names()) >= 20
    for name in config_names():
        load_config(name).validate()


def test_paper_recipe_is_the_default():
    config = TrainConfig()
    assert (config.learning_rate, config.batch_size, config.momentum, config.weight_decay,
            config.epochs, config.label_smoothing, config.mixup_alpha) == (
        0.05, 256, 0.9, 4e-5, 200, 0.0, 0.0)


def test_learning_rate_scales_linearly_with_batch():
    assert TrainConfig(batch_size=64).scaled_learning_rate == pytest.approx(0.0125)
    assert TrainConfig(batch_size=1024).scaled_learning_rate == pytest.approx(0.2)


def test_command_line_overrides_the_config_file():
    import argparse

    from training.config import add_config_arguments
    from training.config import config_from_args

    parser = add_config_arguments(argparse.ArgumentParser())
    config = config_from_args(parser.parse_args(
        ["--config", "imagenet_mobilenet_v2_10_ca", "--epochs", "3", "--attention", "none",
         "--jit", "true", "--batch_size", "32"]))
    assert (config.epochs, config.attention, config.jit, config.batch_size) == (3, None, True, 32)
    assert config.dataset == "tfds:imagenet2012"


def test_unknown_config_field_is_named(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"epochs": 3, "learning_rat": 0.1}))
    with pytest.raises(ValueError, match="learning_rat"):
        load_config(str(path))


@pytest.mark.parametrize("field, value", [("strategy", "tpu"), ("precision", "float8"),
                                          ("epochs", 0), ("model", "resnet50")])
def test_bad_config_values_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value}).validate()


# --- a run and what it leaves ------------------------------------------------

@pytest.mark.slow
def test_a_run_leaves_checkpoints_weights_model_metrics_and_plots(tmp_path, image_folder):
    import keras

    from training.train import train

    metrics = train(tiny(tmp_path, image_folder))
    run = tmp_path / "run"
    for name in ("best.weights.h5", "last.weights.h5", "model.keras", "metrics.json",
                 "history.csv", "training_curves.png", "config.json"):
        assert (run / name).exists(), name
    assert (run / "tensorboard").is_dir() and (run / "checkpoints" / "checkpoint").exists()
    assert metrics["global_steps"] == 2 * (96 // 16)
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[0].startswith("epoch,")
    model = keras.saving.load_model(run / "model.keras")
    assert model.output_shape == (None, 4)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_ends_with_the_same_weights(tmp_path, image_folder):
    reference = tiny(tmp_path / "reference", image_folder, epochs=3)
    code, output = run_cli(reference)
    assert code == 0, output

    killed = tiny(tmp_path / "killed", image_folder, epochs=3, checkpoint_every_steps=2)
    process = run_cli(killed, wait=False)
    index = tmp_path / "killed" / "run" / "checkpoints" / "checkpoint"
    deadline = time.time() + 240
    # Wait for the step-8 checkpoint: epoch 2 of 3, step 2 of 6.
    while time.time() < deadline and process.poll() is None:
        if index.exists() and "ckpt-8" in index.read_text():
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "run" / "metrics.json").exists(), "killed too late"

    code, output = run_cli(killed)
    assert code == 0, output
    assert "Resumed from" in output
    resumed = json.loads((tmp_path / "killed" / "run" / "metrics.json").read_text())
    uninterrupted = json.loads((tmp_path / "reference" / "run" / "metrics.json").read_text())
    assert resumed["global_steps"] == uninterrupted["global_steps"] == 18
    for a, b in zip(weights_of(tmp_path / "killed" / "run" / "last.weights.h5"),
                    weights_of(tmp_path / "reference" / "run" / "last.weights.h5")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_sigint_saves_a_checkpoint_and_the_next_run_finishes(tmp_path, image_folder):
    config = tiny(tmp_path, image_folder, epochs=40)
    process = run_cli(config, wait=False)
    index = tmp_path / "run" / "checkpoints" / "checkpoint"
    deadline = time.time() + 240
    while time.time() < deadline and not index.exists():
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert "saving a checkpoint" in output
    steps_saved = max(int(name.split("-")[1].split(".")[0])
                      for name in os.listdir(index.parent) if name.startswith("ckpt-"))
    assert steps_saved > 0
    code, output = run_cli(dataclasses.replace(config, epochs=2))
    assert code == 0, output
    assert "Resumed from" in output


def test_nan_loss_stops_with_the_step_and_batch(tmp_path, image_folder):
    from training.train import TrainingDiverged
    from training.train import train

    with pytest.raises(TrainingDiverged, match=r"global step \d+ \(epoch 1, batch \d+ of 6\)"):
        train(tiny(tmp_path, image_folder, learning_rate=1e12, epochs=1))


# --- distribution ------------------------------------------------------------

@pytest.mark.slow
def test_mirrored_over_two_cpu_devices_matches_one_device(tmp_path, image_folder):
    # float64: in float32 the summation order of two replicas alone moves the
    # weights of this chaotic little network by up to 0.8 (see PRECISIONS).
    single = tiny(tmp_path / "single", image_folder, epochs=1, sync_batchnorm=True,
                  precision="float64")
    mirrored = dataclasses.replace(single, output_dir=str(tmp_path / "mirrored" / "run"),
                                   strategy="mirrored", devices="/cpu:0,/cpu:1")
    for config in (single, mirrored):
        code, output = run_cli(config)
        assert code == 0, output
    for a, b in zip(weights_of(tmp_path / "single" / "run" / "last.weights.h5"),
                    weights_of(tmp_path / "mirrored" / "run" / "last.weights.h5")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_reach_the_weights_of_one_process(tmp_path, image_folder):
    single = tiny(tmp_path / "single", image_folder, epochs=1, sync_batchnorm=True,
                  precision="float64")
    code, output = run_cli(single)
    assert code == 0, output

    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    multi = dataclasses.replace(single, output_dir=str(tmp_path / "multi" / "run"),
                                strategy="multiworker")
    processes = [
        run_cli(multi, wait=False, extra_env={"TF_CONFIG": json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})})
        for index in range(2)
    ]
    for process in processes:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output
    for a, b in zip(weights_of(tmp_path / "single" / "run" / "last.weights.h5"),
                    weights_of(tmp_path / "multi" / "run" / "last.weights.h5")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

"""Bad input and faults: one clear line and status 2, nothing written is lost, interrupts resume.

Every test here failed on the code before the reliability issue; the README's
"Reliability" table lists what each tries and what it gets.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_coordatt.cli import main
from keras_coordatt.training.distribute import check_devices
from runs import run_cli
from runs import tiny
from runs import weights_of

pytestmark = pytest.mark.requires_tensorflow


def one_line_error(capsys, *argv):
    """Runs the command; returns its stderr, asserting status 2, one line, no traceback."""
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def command_line(config):
    """``keras-coordatt train`` arguments for every field of ``config``."""
    argv = ["train"]
    for field in dataclasses.fields(config):
        argv += [f"--{field.name}", str(getattr(config, field.name))]
    return argv


# --- one line, status 2 ------------------------------------------------------

def test_a_bad_config_value_is_one_line_naming_it(capsys):
    err = one_line_error(capsys, "train", "--model", "resnet50", "--attention", "coordatt")
    assert err.startswith("keras-coordatt train: invalid training config: model='resnet50'")


def test_debug_shows_the_traceback_instead():
    with pytest.raises(ValueError, match="model='resnet50'"):
        main(["train", "--model", "resnet50", "--debug"])


def test_a_missing_data_folder_fails_before_training_and_leaves_no_run_folder(
        capsys, tmp_path, image_folder):
    config = tiny(tmp_path, image_folder, dataset=f"folder:{tmp_path / 'nowhere'}")
    started = time.perf_counter()
    err = one_line_error(capsys, *command_line(config))
    assert "image folder" in err and "nowhere" in err and "does not exist" in err
    assert time.perf_counter() - started < 30
    assert not os.path.exists(config.output_dir)


def test_a_corrupt_image_fails_before_the_first_step_naming_the_file(
        capsys, tmp_path, image_folder):
    import shutil

    folder = tmp_path / "images"
    shutil.copytree(image_folder, folder)
    broken = folder / "val" / "class_2" / "3.png"
    broken.write_bytes(broken.read_bytes()[:60])
    config = tiny(tmp_path, folder)
    err = one_line_error(capsys, *command_line(config))
    assert f"cannot decode image file {broken}" in err
    assert not os.path.exists(config.output_dir)


@pytest.mark.parametrize("devices, strategy, message", [
    ("/gpu:0,/gpu:1", "mirrored", "there is no /gpu:0 on this machine; it has no GPU"),
    ("/cpu:5", "mirrored", "numbered from 0; for 1 CPU replicas write /cpu:0"),
    ("banana", "mirrored", "'banana' is not a device; write /cpu:N or /gpu:N"),
    ("banana", "auto", "used only with strategy=mirrored"),
    ("/cpu:0,/CPU:0", "mirrored", "names a device twice"),
])
def test_devices_are_checked_against_the_machine(devices, strategy, message):
    with pytest.raises(ValueError, match=message):
        check_devices(strategy, devices)
    assert check_devices("mirrored", "/cpu:0, /cpu:1") == ["/cpu:0", "/cpu:1"]


@pytest.mark.slow
def test_missing_gpus_exit_in_seconds_instead_of_hanging(tmp_path, image_folder):
    """It used to wait for the GPUs forever, deaf to SIGINT and SIGTERM."""
    config = tiny(tmp_path, image_folder, strategy="mirrored", devices="/gpu:0,/gpu:1")
    argv = [sys.executable, "-m", "keras_coordatt.cli", *command_line(config)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 2, result.stderr
    assert "there is no /gpu:0 on this machine" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_what_a_backend_cannot_do_is_one_line(tmp_path, image_folder):
    """The trainer runs on PyTorch, on one device: asking for two is a line, not a traceback."""
    config = dataclasses.replace(tiny(tmp_path, image_folder), strategy="mirrored",
                                 devices="/cpu:0,/cpu:1")
    result = subprocess.run(
        [sys.executable, "-m", "keras_coordatt.cli", *command_line(config)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 2, result.stderr
    assert "strategy=mirrored: the torch backend trains on one device here" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("content, message", [
    (b"", "is empty (0 bytes)"),
    (b"these are not weights\n", "is not a readable PyTorch checkpoint"),
    ("truncated", "is not a readable PyTorch checkpoint"),
])
def test_convert_names_a_file_that_is_no_checkpoint(capsys, tmp_path, content, message):
    torch = pytest.importorskip("torch")
    path = tmp_path / "weights.pth"
    if content == "truncated":
        torch.save({"features.0.0.weight": torch.zeros(32, 3, 3, 3)}, path)
        content = path.read_bytes()[: len(path.read_bytes()) // 2]
    path.write_bytes(content)
    err = one_line_error(capsys, "convert", str(path), str(tmp_path / "out.keras"))
    assert str(path) in err and message in err


def test_export_weights_of_another_width_name_the_options_to_fix(capsys, tmp_path):
    from keras_coordatt.models import MobileNetV2

    weights = tmp_path / "half.weights.h5"
    MobileNetV2(input_shape=(32, 32, 3), alpha=0.5, attention="ca", classes=4,
                classifier_activation=None).save_weights(weights)
    err = one_line_error(capsys, "export", "mobilenet_v2", "--weights", str(weights),
                         "--classes", "4", "--input_size", "32", "--output", str(tmp_path / "x"))
    assert "do not fit mobilenet_v2 with --alpha 1.0 --attention ca --classes 4" in err


def test_the_table_says_it_builds_every_model_first(capsys):
    assert main(["table", "--families", "mobilenet_v2", "--widths", "0.5", "--attentions",
                 "none", "ca", "--input_size", "32"]) == 0
    assert "building 2 models to count them" in capsys.readouterr().err


# TensorFlow's start-up notices: which ones it prints depends on the CPU (the oneDNN one
# only where oneDNN's custom operations are on by default: on an Intel Xeon, not on an AMD
# EPYC); the CPU-feature one comes on both.
START_UP_NOTICES = ("oneDNN custom operations are on", "cpu_feature_guard")


@pytest.mark.parametrize("level", ["2", "0"])
def test_tensorflow_start_up_notices_come_once_and_obey_the_log_level(level):
    result = subprocess.run([sys.executable, "-c", "import keras_coordatt"],
                            capture_output=True, text=True, check=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": level})
    counts = [result.stderr.count(notice) for notice in START_UP_NOTICES]
    if level == "2":
        assert counts == [0, 0], result.stderr
    else:
        assert max(counts) == 1, result.stderr  # shown, and once each
    assert "absl::InitializeLog" not in result.stderr


# --- nothing written is lost -------------------------------------------------

def test_a_run_folder_of_another_config_is_refused_and_kept(capsys, tmp_path, image_folder):
    from keras_coordatt.training import train

    original = tiny(tmp_path, image_folder, attention="ca")
    os.makedirs(original.output_dir)
    saved = os.path.join(original.output_dir, "config.json")
    with open(saved, "w") as f:
        f.write(original.to_json())
    os.makedirs(os.path.join(original.output_dir, "checkpoints"))
    other = dataclasses.replace(original, attention="se", alpha=0.5)
    err = one_line_error(capsys, *command_line(other))
    assert "holds a run of another config (alpha: 0.35 there, 0.5 now; attention: 'ca' " \
           "there, 'se' now)" in err and "--overwrite true" in err
    assert json.loads(open(saved).read())["attention"] == "ca"
    with pytest.raises(ValueError, match="resume is off"):
        train(dataclasses.replace(original, resume=False))


def test_overwrite_deletes_the_old_runs_files_and_only_those(tmp_path, image_folder):
    from keras_coordatt.training import run_folder

    old = tiny(tmp_path, image_folder, attention="ca")
    folder = tmp_path / "run"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.json").write_text(old.to_json())
    (folder / "model.keras").write_text("old model")
    (folder / "notes.txt").write_text("the user's own file")
    assert run_folder.claim(dataclasses.replace(old, attention="se", overwrite=True)) is False
    assert sorted(os.listdir(folder)) == ["notes.txt"]


# --- interrupts anywhere resume correctly ------------------------------------

class SignalAt(keras.callbacks.Callback):
    """Sends this process SIGINT once, at a named moment of training."""

    def __init__(self, moment, batch=2):
        super().__init__()
        self.moment, self.batch, self.sent = moment, batch, False

    def _send(self):
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)

    def on_train_batch_begin(self, batch, logs=None):
        if self.moment == "training step" and batch == self.batch:
            self._send()

    def on_test_batch_end(self, batch, logs=None):
        if self.moment == "validation":
            self._send()


class Validations(keras.callbacks.Callback):
    """Counts the validation passes of a fit."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def on_test_begin(self, logs=None):
        self.count += 1


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory, image_folder):
    """A run of two epochs of 4 steps, never stopped: what every stopped run must reach."""
    from keras_coordatt.training import train
    from keras_coordatt.training.history import read_history

    config = tiny(tmp_path_factory.mktemp("unbroken"), image_folder, limit_train=64)
    metrics = train(config)
    return (metrics, weights_of(os.path.join(config.output_dir, "last.weights.h5")),
            read_history(os.path.join(config.output_dir, "history.csv")))


@pytest.fixture(scope="module")
def unbroken_command(tmp_path_factory, image_folder):
    """The same unbroken run as the train command, in a fresh process of its own.

    The killed command is compared with this one, not with the in-process run:
    in CI's long-lived pytest worker the in-process run's epoch 2 differed
    (loss 1.5069 against 1.3237; epoch 1 equal), while every fresh process,
    killed and resumed or not, gave 1.3237 (this file alone passes either way).
    """
    from keras_coordatt.training.history import read_history

    config = tiny(tmp_path_factory.mktemp("unbroken_command"), image_folder, limit_train=64,
                  checkpoint_every_steps=2)
    code, output = run_cli(config)
    assert code == 0, output
    with open(os.path.join(config.output_dir, "metrics.json")) as f:
        metrics = json.load(f)
    return (metrics, weights_of(os.path.join(config.output_dir, "last.weights.h5")),
            read_history(os.path.join(config.output_dir, "history.csv")))


def assert_ends_like(unbroken, config, metrics):
    """The same steps, weights and history: each epoch's row covers the whole epoch."""
    from keras_coordatt.training.history import read_history

    reference_metrics, reference_weights, reference_history = unbroken
    assert metrics["global_steps"] == reference_metrics["global_steps"] == 8
    history = read_history(os.path.join(config.output_dir, "history.csv"))
    assert [row["epoch"] for row in history] == ["1", "2"]
    # Losses at rel 1e-4: float32 sums in another order, in another process under load, differed
    # by 1.6e-5 in a fresh-clone run; a row that covered only part of the epoch is off by %.
    # Accuracies within one example of 64: that rounding can flip a near-tied prediction (seen
    # once: 16/64 against 17/64, the loss equal to 8 digits).
    for row, reference in zip(history, reference_history):
        for key in ("loss", "val_loss"):
            assert float(row[key]) == pytest.approx(float(reference[key]), rel=1e-4), (row, key)
        for key in ("accuracy", "val_accuracy"):
            assert float(row[key]) == pytest.approx(float(reference[key]), abs=1 / 64), (row, key)
    for got, expected in zip(weights_of(os.path.join(config.output_dir, "last.weights.h5")),
                             reference_weights):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_interrupts_at_each_phase_then_the_same_command_ends_like_an_unbroken_run(
        tmp_path, image_folder, unbroken, monkeypatch, capsys):
    """SIGINT in a training step, in validation, in a checkpoint write; resumed each time."""
    from keras_coordatt.training import checkpoints
    from keras_coordatt.training import train

    config = tiny(tmp_path, image_folder, limit_train=64)
    real_save = checkpoints.RunCheckpoint.save

    def save_with_an_interrupt(self, *args):
        os.kill(os.getpid(), signal.SIGINT)  # arrives while the checkpoint is written
        return real_save(self, *args)

    # Two epochs of 4 steps: (epoch, step) of the checkpoint where each interrupted run stops,
    # and where it says it stopped: epochs from 1, the steps done in the epoch.
    resumed = None
    for moment, position, (epoch, step) in (("training step", (0, 3), (1, 3)),
                                            ("validation", (1, 0), (1, 4)),
                                            ("checkpoint write", (2, 0), (2, 4))):
        validations = Validations()
        callbacks = [SignalAt(moment)] if moment != "checkpoint write" else []
        if moment == "checkpoint write":
            monkeypatch.setattr(checkpoints.RunCheckpoint, "save", save_with_an_interrupt)
        result = train(config, callbacks=[*callbacks, validations])
        monkeypatch.undo()
        assert (result["interrupted"], result["epoch"], result["step"]) == (True, epoch, step)
        where = f"after step {step} of 4 in epoch {epoch} of 2"
        out = capsys.readouterr().out
        assert "stopping with a checkpoint" in out and f"Stopped {where};" in out, out
        assert resumed is None or f"Resumed from {resumed}" in out, out
        latest = open(os.path.join(config.output_dir, "checkpoints", "checkpoint")).readline()
        assert latest.strip().endswith(f'ckpt-{position[0] * 4 + position[1]}"'), (moment, latest)
        # A part epoch, stopped in a training step, is not validated.
        assert validations.count == (0 if moment == "training step" else 1), moment
        resumed = f"{config.output_dir}/checkpoints/ckpt-{position[0] * 4 + position[1]}: {where}"
    assert_ends_like(unbroken, config, train(config))
    assert f"Resumed from {resumed}" in capsys.readouterr().out


@pytest.mark.slow
def test_a_run_killed_while_ending_its_last_epoch_ends_like_an_unbroken_run(
        tmp_path, image_folder, unbroken, monkeypatch):
    from keras_coordatt.training import train
    from keras_coordatt.training import trainer

    config = tiny(tmp_path, image_folder, limit_train=64, checkpoint_every_steps=2)
    real_append = trainer.append_history

    class Killed(Exception):
        pass

    def killed_writing_the_second_row(path, row):
        if row["epoch"] == 2:
            raise Killed  # as a SIGKILL would, between the epoch's files
        return real_append(path, row)

    monkeypatch.setattr(trainer, "append_history", killed_writing_the_second_row)
    with pytest.raises(Killed):
        train(config)
    monkeypatch.undo()
    # The epoch's checkpoint is written last, so the run resumes from step 6 and
    # writes epoch 2's row (it had resumed after the end, without the row).
    assert_ends_like(unbroken, config, train(config))


def test_a_resumed_run_writes_rows_under_the_header_its_history_already_has(tmp_path):
    """A run begun by a version that logged other columns, resumed by this one."""
    from keras_coordatt.training.history import append_history
    from keras_coordatt.training.history import read_history

    path = str(tmp_path / "history.csv")
    append_history(path, {"epoch": 1, "loss": 0.5, "seconds": 3.0})
    append_history(path, {"epoch": 2, "loss": 0.25, "images_per_second": 40.0, "seconds": 2.0})
    assert read_history(path) == [{"epoch": "1", "loss": "0.5", "seconds": "3.0"},
                                  {"epoch": "2", "loss": "0.25", "seconds": "2.0"}]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_the_same_command_ends_like_an_unbroken_run(
        tmp_path, image_folder, unbroken_command):
    config = tiny(tmp_path, image_folder, limit_train=64, checkpoint_every_steps=2)
    process = run_cli(config, wait=False)
    index = tmp_path / "run" / "checkpoints" / "checkpoint"
    deadline = time.time() + 240
    # Wait for the step-6 checkpoint: epoch 2 of 2, step 2 of 4.
    while time.time() < deadline and process.poll() is None:
        if index.exists() and "ckpt-6" in index.read_text():
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "run" / "metrics.json").exists(), "killed too late"
    code, output = run_cli(config)
    assert code == 0 and "Resumed from" in output, output
    assert_ends_like(unbroken_command, config,
                     json.loads((tmp_path / "run" / "metrics.json").read_text()))


@pytest.mark.slow
def test_an_interrupted_export_keeps_its_files_and_the_same_call_completes(tmp_path):
    from keras_coordatt import CoordAttention
    from keras_coordatt.export import bundle

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu6")(inputs)
    x = CoordAttention()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
    formats = ("tflite_float32", "tflite_int8")
    real_convert = bundle.convert_saved_model

    def interrupted_int8(path, input_shape, quantization=None, representative_data=None):
        if quantization == "int8":
            raise KeyboardInterrupt
        return real_convert(path, input_shape, quantization, representative_data)

    bundle.convert_saved_model = interrupted_int8
    try:
        with pytest.raises(KeyboardInterrupt):
            bundle.export_model(model, str(tmp_path), formats=formats, name="m", log=None)
    finally:
        bundle.convert_saved_model = real_convert
    report = json.loads((tmp_path / "export_report.json").read_text())
    assert report["exports"]["tflite_float32"]["ok"] and (tmp_path / "m_float32.tflite").exists()
    report = bundle.export_model(model, str(tmp_path), formats=formats, name="m", log=None)
    assert all(entry["ok"] for entry in report["exports"].values())

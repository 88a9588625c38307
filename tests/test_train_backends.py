"""The trainer on JAX and PyTorch: a run, its files, a stop and a resume, several JAX devices.

These run in ``make test-jax`` and ``make test-torch`` (the TensorFlow suite has
the trainer's own tests: test_train, test_reliability). ``make test-jax`` gives
JAX two CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=2``).
"""

import os
import signal

import keras
import numpy as np
import pytest

from runs import tiny
from runs import weights_of

BACKEND = keras.backend.backend()

pytestmark = pytest.mark.skipif(
    BACKEND == "tensorflow", reason="the TensorFlow trainer has test_train and test_reliability")


class StopAtStep(keras.callbacks.Callback):
    """Sends this process SIGINT as one training step begins, as Ctrl-C would.

    The trainer finishes the step under way, checkpoints and stops: SIGINT at
    batch 0 stops the run after its first step.
    """

    def __init__(self, batch):
        super().__init__()
        self.batch, self.sent = batch, False

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.batch and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """On JAX, a compilation cache the runs of this file share: the stopped and the resumed
    run load the unbroken run's programs instead of compiling them again."""
    if BACKEND != "jax":
        return {}
    return {"compilation_cache": str(tmp_path_factory.mktemp("jax_cache"))}


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory, image_folder, compiled):
    """Two epochs of 2 steps, never stopped."""
    from keras_coordatt.training import train

    config = tiny(tmp_path_factory.mktemp("unbroken"), image_folder, limit_train=32, **compiled)
    return config, train(config)


def test_a_run_leaves_the_run_folder_and_the_model_loads(unbroken):
    from keras_coordatt.training.attention_monitor import read_records

    config, metrics = unbroken
    run = config.output_dir
    for name in ("model.keras", "metrics.json", "history.csv", "best.weights.h5",
                 "last.weights.h5", "attention.csv", "training_curves.png", "preset"):
        assert os.path.exists(os.path.join(run, name)), name
    assert metrics["global_steps"] == 4 and metrics["optimizer_updates"] == 4
    # Each epoch's rate of its steps after the first (the one that compiles): 16 images / step.
    from keras_coordatt.training.history import read_history

    rates = [float(row["images_per_second"]) for row in read_history(os.path.join(run, "history.csv"))]
    assert len(rates) == 2 and min(rates) > 0
    assert metrics["train_step_images_per_second"] == pytest.approx(np.median(rates), abs=0.1)
    # The monitor's records: the start and both epochs, every attention layer each time.
    epochs = sorted({int(row["epoch"]) for row in read_records(os.path.join(run, "attention.csv"))})
    assert epochs == [0, 1, 2]
    model = keras.saving.load_model(os.path.join(run, "model.keras"))
    assert model.output.shape[-1] == 4
    if config.compilation_cache:  # JAX kept the run's compiled programs there
        assert any(name.endswith("-cache") for name in os.listdir(config.compilation_cache))


def test_a_stopped_run_resumes_to_the_weights_of_the_unbroken_one(
        tmp_path, image_folder, unbroken, compiled, capsys):
    from keras_coordatt.training import train
    from keras_coordatt.training.history import read_history

    reference, _ = unbroken
    config = tiny(tmp_path, image_folder, limit_train=32, **compiled)
    stopped = train(config, callbacks=[StopAtStep(0)])
    assert (stopped["interrupted"], stopped["epoch"], stopped["step"]) == (True, 1, 1)
    index = open(os.path.join(config.output_dir, "checkpoints", "checkpoint")).readline()
    assert index.strip() == 'model_checkpoint_path: "ckpt-1"'
    capsys.readouterr()
    metrics = train(config)
    assert "Resumed from" in capsys.readouterr().out
    assert metrics["global_steps"] == 4 and metrics["optimizer_updates"] == 4
    history = read_history(os.path.join(config.output_dir, "history.csv"))
    expected = read_history(os.path.join(reference.output_dir, "history.csv"))
    assert [row["epoch"] for row in history] == ["1", "2"]
    for row, other in zip(history, expected):
        for key in ("loss", "val_loss", "accuracy"):
            assert float(row[key]) == pytest.approx(float(other[key]), rel=1e-5), (row, key)
    for got, want in zip(weights_of(os.path.join(config.output_dir, "last.weights.h5")),
                         weights_of(os.path.join(reference.output_dir, "last.weights.h5"))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_checkpoint_of_another_network_is_named_not_loaded(tmp_path, image_folder, unbroken):
    import shutil

    from keras_coordatt.training import train

    reference, _ = unbroken
    config = tiny(tmp_path, image_folder, limit_train=32, attention="se")
    os.makedirs(config.output_dir)
    shutil.copytree(os.path.join(reference.output_dir, "checkpoints"),
                    os.path.join(config.output_dir, "checkpoints"))
    with pytest.raises(ValueError, match=r"ckpt-4\.npz holds \d+ model variables"):
        train(config)


def test_one_checkpoint_restores_into_a_network_for_looking_at(tmp_path, unbroken):
    """restore_model (what training.mode_gap uses): the run's last checkpoint into a network
    whose weights were wiped gives the last weights back; no checkpoint, or a TensorFlow one
    on this backend, is named in the error."""
    from keras_coordatt.training.checkpoints import restore_model

    config, _ = unbroken
    run = config.output_dir
    reference = keras.saving.load_model(os.path.join(run, "model.keras"), compile=False)
    reference.load_weights(os.path.join(run, "last.weights.h5"))
    model = keras.saving.load_model(os.path.join(run, "model.keras"), compile=False)
    for variable in model.variables:
        variable.assign(keras.ops.zeros(variable.shape, variable.dtype))
    prefix = os.path.join(run, "checkpoints", "ckpt-4")
    assert restore_model(model, prefix) == prefix + ".npz"
    for got, want in zip(model.variables, reference.variables):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got),
                                   keras.ops.convert_to_numpy(want), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match=r"ckpt-9: no checkpoint there"):
        restore_model(model, os.path.join(run, "checkpoints", "ckpt-9"))
    (tmp_path / "ckpt-1.index").write_bytes(b"")
    with pytest.raises(ValueError, match=f"TensorFlow checkpoint .* the {BACKEND} backend"):
        restore_model(model, tmp_path / "ckpt-1")


@pytest.mark.skipif(BACKEND == "jax", reason="on JAX the same runs train without TensorFlow "
                    "(test_dense_tasks_train_where_tensorflow_is_not_installed); the two loaders "
                    "give the same batches (test_task_pipelines)")
@pytest.mark.parametrize("task", ["detection", "segmentation"])
def test_detection_and_segmentation_train_and_score(tmp_path, task):
    """The dense tasks' input pipelines make their targets in NumPy (anchor matching included),
    so an SSDLite or DeepLabV3 run trains, scores and saves on this backend too."""
    from keras_coordatt.training import TrainConfig
    from keras_coordatt.training import train
    from runs import write_masks
    from runs import write_voc

    if task == "detection":
        write_voc(tmp_path / "data" / "train", 8)
        write_voc(tmp_path / "data" / "val", 3, seed=1)
        dataset = f"voc:{tmp_path / 'data'}"
    else:
        write_masks(tmp_path / "data", "train", 8)
        write_masks(tmp_path / "data", "val", 3, seed=1)
        dataset = f"masks:{tmp_path / 'data'}"
    config = TrainConfig(task=task, dataset=dataset, model="mobilenet_v2", alpha=0.35,
                         attention="ca", image_size=128, batch_size=4, epochs=1,
                         learning_rate=0.02, reference_batch_size=4, seed=1,
                         attention_monitor=False, output_dir=str(tmp_path / "run"),
                         verbose="quiet")
    metrics = train(config)
    assert metrics["global_steps"] == 2 and np.isfinite(metrics["eval_loss"])
    score = "AP50" if task == "detection" else "mIoU"
    assert 0.0 <= metrics[score] <= 1.0
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    x = np.zeros((1, 128, 128, 3), "float32")
    outputs = keras.tree.flatten(model(x, training=False))
    assert all(np.isfinite(keras.ops.convert_to_numpy(o)).all() for o in outputs)


NO_TENSORFLOW_RUN = """
import sys

import keras
import numpy as np

from keras_coordatt.data.core.batches import ExampleBatches
from keras_coordatt.training import TrainConfig
from keras_coordatt.training import train
from keras_coordatt.training.tasks import load_task_data
from runs import write_masks
from runs import write_voc

root, task = sys.argv[1], sys.argv[2]
if task == "detection":
    write_voc(f"{root}/data/train", 8)
    write_voc(f"{root}/data/val", 3, seed=1)
    dataset = f"voc:{root}/data"
else:
    write_masks(f"{root}/data", "train", 8)
    write_masks(f"{root}/data", "val", 3, seed=1)
    dataset = f"masks:{root}/data"
config = TrainConfig(task=task, dataset=dataset, model="mobilenet_v2", alpha=0.35,
                     attention="ca", image_size=128, batch_size=4, epochs=1,
                     learning_rate=0.02, reference_batch_size=4, seed=1,
                     output_dir=f"{root}/run", verbose="quiet")
assert isinstance(load_task_data(config).train_for_epoch(0), ExampleBatches)
metrics = train(config)
model = keras.saving.load_model(f"{root}/run/model.keras")
outputs = keras.tree.flatten(model(np.zeros((1, 128, 128, 3), "float32"), training=False))
print("RESULT", metrics["global_steps"], metrics["AP50" if task == "detection" else "mIoU"],
      all(np.isfinite(keras.ops.convert_to_numpy(o)).all() for o in outputs),
      "tensorflow" in sys.modules and sys.modules["tensorflow"] is not None)
"""


@pytest.mark.skipif(BACKEND != "jax", reason="one backend is enough: the GPU machines' JAX")
@pytest.mark.parametrize("task", ["detection", "segmentation"])
def test_dense_tasks_train_where_tensorflow_is_not_installed(tmp_path, task):
    """The GPU machines have JAX and no TensorFlow: there the dense tasks' batches come from a
    keras.utils.PyDataset, and a run trains, scores, saves and writes its folder (no
    TensorBoard logs; one line says why). TensorFlow is hidden by a stand-in package."""
    import subprocess
    import sys

    tests = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, KERAS_BACKEND=BACKEND, PYTHONPATH=os.pathsep.join(
        [os.path.join(tests, "no_tensorflow"), tests, os.path.dirname(tests)]))
    done = subprocess.run([sys.executable, "-c", NO_TENSORFLOW_RUN, str(tmp_path), task],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    steps, score, finite, tensorflow_loaded = done.stdout.split("RESULT ")[1].split()
    assert steps == "2" and 0.0 <= float(score) <= 1.0 and finite == "True"
    assert tensorflow_loaded == "False"
    assert "No TensorBoard logs: they need TensorFlow" in done.stdout
    for name in ("history.csv", "attention.csv", "metrics.json", "last.weights.h5"):
        assert (tmp_path / "run" / name).exists(), name


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution's DataParallel is JAX's")
def test_data_parallel_over_two_jax_devices_matches_one_device(tmp_path, image_folder):
    import jax

    from keras_coordatt.training import train

    if len(jax.devices("cpu")) < 2:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=2 (make test-jax)")
    # One step, float64: later steps of this tiny network amplify float rounding (see
    # test_train's PRECISIONS note), which would hide whether the batch was split right.
    common = dict(limit_train=16, epochs=1, precision="float64", attention_monitor=False)
    one = tiny(tmp_path / "one", image_folder, **common)
    two = tiny(tmp_path / "two", image_folder, strategy="mirrored", devices="/cpu:0,/cpu:1",
               **common)
    train(one)
    train(two)
    for a, b in zip(weights_of(os.path.join(one.output_dir, "last.weights.h5")),
                    weights_of(os.path.join(two.output_dir, "last.weights.h5"))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(BACKEND != "torch", reason="PyTorch's one-device limit")
def test_several_devices_on_pytorch_are_refused_in_one_line(tmp_path, image_folder):
    from keras_coordatt.training import train

    config = tiny(tmp_path, image_folder, strategy="mirrored", devices="/cpu:0,/cpu:1")
    with pytest.raises(ValueError, match="the torch backend trains on one device here"):
        train(config)
    assert not os.path.exists(config.output_dir)

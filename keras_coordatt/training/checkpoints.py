"""Where a run is, on disk: model, optimizer and position (`tf.train` checkpoints on
TensorFlow, NumPy files of the Keras variables on JAX and PyTorch)."""

import os

import numpy as np


class _Position:
    """What both kinds of checkpoint say of the run's position, the same way."""

    @property
    def position(self):
        """``(epoch, step_in_epoch)``: where training continues."""
        return int(self.epoch), int(self.step_in_epoch)

    @property
    def epoch_part(self):
        """``(metric state, seconds)`` of the steps the epoch at `position` has run."""
        return np.asarray(self.epoch_metrics, np.float64), float(self.epoch_seconds)

    def improved(self, accuracy):
        """Records ``accuracy`` if it beats the best so far; returns whether it did."""
        if accuracy > float(self.best_accuracy):
            self._record_best(accuracy)
            return True
        return False

    def __str__(self):
        return os.fspath(self.directory)


class RunCheckpoint(_Position):
    """The model, its optimizer and the run's position (epoch, step in it, best accuracy).

    Written with a ``tf.train.CheckpointManager`` into ``directory``; the
    position lives in plain variables outside any strategy, which every
    worker holds the same value of. A checkpoint inside an epoch also holds
    what the epoch's part so far adds to its history row: the training
    metrics' state (`keras_coordatt.training.callbacks.metric_state`) and
    its seconds, so the resumed epoch's row covers the whole epoch.
    """

    def __init__(self, model, directory, keep):
        import tensorflow as tf

        self.directory = directory
        self.epoch = tf.Variable(0, dtype=tf.int64)
        self.step_in_epoch = tf.Variable(0, dtype=tf.int64)
        self.best_accuracy = tf.Variable(-1.0, dtype=tf.float64)
        # Its length is the model's metric state's, known only once the metrics are built.
        self.epoch_metrics = tf.Variable(np.zeros(0), dtype=tf.float64,
                                         shape=tf.TensorShape([None]))
        self.epoch_seconds = tf.Variable(0.0, dtype=tf.float64)
        self._checkpoint = tf.train.Checkpoint(
            model=model,
            optimizer=model.optimizer,
            epoch=self.epoch,
            step_in_epoch=self.step_in_epoch,
            best_accuracy=self.best_accuracy,
            epoch_metrics=self.epoch_metrics,
            epoch_seconds=self.epoch_seconds,
        )
        self._manager = tf.train.CheckpointManager(self._checkpoint, directory, max_to_keep=keep)

    def restore_latest(self):
        """Restores the newest checkpoint; returns its path, or None if there is none."""
        latest = self._manager.latest_checkpoint
        if latest:
            self._checkpoint.restore(latest).assert_existing_objects_matched()
        return latest

    def save(self, epoch, step_in_epoch, global_step, metric_state=(), seconds=0.0):
        """Writes a checkpoint for a run that continues at ``(epoch, step_in_epoch)``.

        ``metric_state`` and ``seconds`` are those of the epoch's first
        ``step_in_epoch`` steps (nothing at an epoch's end).
        """
        self.epoch.assign(epoch)
        self.step_in_epoch.assign(step_in_epoch)
        self.epoch_metrics.assign(np.asarray(metric_state, np.float64).reshape(-1))
        self.epoch_seconds.assign(seconds)
        return self._manager.save(checkpoint_number=global_step)

    def _record_best(self, accuracy):
        self.best_accuracy.assign(accuracy)


INDEX_FILE = "checkpoint"


class KerasRunCheckpoint(_Position):
    """`RunCheckpoint` for the JAX and PyTorch backends, in Keras variables and NumPy files.

    Each checkpoint is one ``ckpt-N.npz`` (N the global step): every model
    variable (weights, BatchNorm statistics, the dropout layers' seed states),
    every optimizer variable, and the position as JSON. It is written under
    a temporary name and renamed, so a kill while writing leaves the previous
    checkpoints whole; the ``checkpoint`` index file beside them names the
    newest, in the words ``tf.train`` uses, and the oldest beyond ``keep`` go.
    """

    def __init__(self, model, directory, keep):
        self.model = model
        self.directory = directory
        self.keep = keep
        self.epoch, self.step_in_epoch, self.best_accuracy = 0, 0, -1.0
        self.epoch_metrics, self.epoch_seconds = np.zeros(0), 0.0

    def _variables(self):
        optimizer = self.model.optimizer
        return {"model": list(self.model.variables),
                "optimizer": list(optimizer.variables) if optimizer is not None else []}

    def _index(self):
        """The checkpoint names, oldest first, from the index file (none if there is none)."""
        path = os.path.join(self.directory, INDEX_FILE)
        if not os.path.exists(path):
            return []
        with open(path) as f:
            names = [line.split('"')[1] for line in f if line.startswith("all_model_checkpoint_paths")]
        return [name for name in names if os.path.exists(os.path.join(self.directory, name + ".npz"))]

    def _write_index(self, names):
        lines = [f'model_checkpoint_path: "{names[-1]}"\n']
        lines += [f'all_model_checkpoint_paths: "{name}"\n' for name in names]
        temporary = os.path.join(self.directory, INDEX_FILE + ".tmp")
        with open(temporary, "w") as f:
            f.writelines(lines)
        os.replace(temporary, os.path.join(self.directory, INDEX_FILE))

    def restore_latest(self):
        """Restores the newest checkpoint; returns its path, or None if there is none."""
        import json

        names = self._index()
        if not names:
            return None
        latest = os.path.join(self.directory, names[-1])
        with np.load(latest + ".npz") as stored:
            for group, variables in self._variables().items():
                _assign_stored(stored, group, variables, latest + ".npz", f"this run's {group}",
                               "another network or optimizer; train into another "
                               "--output_dir or pass --resume false")
            position = json.loads(str(stored["position"]))
        self.epoch, self.step_in_epoch = position["epoch"], position["step_in_epoch"]
        self.best_accuracy = position["best_accuracy"]
        self.epoch_metrics = np.asarray(position["epoch_metrics"], np.float64)
        self.epoch_seconds = position["epoch_seconds"]
        return latest

    def save(self, epoch, step_in_epoch, global_step, metric_state=(), seconds=0.0):
        """Writes a checkpoint for a run that continues at ``(epoch, step_in_epoch)``."""
        import json

        import keras

        self.epoch, self.step_in_epoch = int(epoch), int(step_in_epoch)
        self.epoch_metrics = np.asarray(metric_state, np.float64).reshape(-1)
        self.epoch_seconds = float(seconds)
        arrays = {}
        for group, variables in self._variables().items():
            arrays[f"{group}_count"] = np.asarray(len(variables))
            for i, variable in enumerate(variables):
                arrays[f"{group}_{i}"] = keras.ops.convert_to_numpy(variable.value)
        arrays["position"] = np.asarray(json.dumps({
            "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
            "best_accuracy": float(self.best_accuracy),
            "epoch_metrics": self.epoch_metrics.tolist(), "epoch_seconds": self.epoch_seconds}))
        os.makedirs(self.directory, exist_ok=True)
        name = f"ckpt-{global_step}"
        path = os.path.join(self.directory, name)
        with open(path + ".npz.tmp", "wb") as f:
            np.savez(f, **arrays)
        os.replace(path + ".npz.tmp", path + ".npz")
        names = [old for old in self._index() if old != name] + [name]
        self._write_index(names[-self.keep:] if self.keep else names)
        for old in names[:-self.keep] if self.keep else []:
            os.remove(os.path.join(self.directory, old + ".npz"))
        return path

    def _record_best(self, accuracy):
        self.best_accuracy = float(accuracy)


def restore_model(model, prefix):
    """The model's weights from one checkpoint of a run, either kind; the optimizer and the
    position are left out.

    ``prefix`` is a checkpoint's path without its ending
    (``RUN/checkpoints/ckpt-N``): ``ckpt-N.npz`` (written on JAX or PyTorch,
    read on any backend) or ``ckpt-N.index`` with its data files (written on
    TensorFlow, read there). ``model`` must be the run's network, as
    `keras_coordatt.training.networks.task_model` builds it from the run's
    config. Raises ValueError naming the checkpoint when there is none, when
    it holds another network, or when it needs TensorFlow and the backend is
    another.
    """
    import keras

    prefix = os.fspath(prefix)
    if prefix.endswith(".npz") or prefix.endswith(".index"):
        prefix = prefix.rsplit(".", 1)[0]
    if os.path.exists(prefix + ".npz"):
        with np.load(prefix + ".npz") as stored:
            _assign_stored(stored, "model", list(model.variables), prefix + ".npz",
                           "this network", "another network")
        return prefix + ".npz"
    if os.path.exists(prefix + ".index"):
        backend = keras.backend.backend()
        if backend != "tensorflow":
            raise ValueError(f"{prefix} is a TensorFlow checkpoint (tf.train), which the "
                             f"{backend} backend cannot read: run with KERAS_BACKEND=tensorflow")
        import tensorflow as tf

        status = tf.train.Checkpoint(model=model).restore(prefix)
        status.expect_partial().assert_existing_objects_matched()
        return prefix
    raise ValueError(f"{prefix}: no checkpoint there (neither {os.path.basename(prefix)}.npz, "
                     f"written on JAX or PyTorch, nor {os.path.basename(prefix)}.index, written "
                     "on TensorFlow)")


def _assign_stored(stored, group, variables, path, holder, writer):
    """``group``'s values in a `KerasRunCheckpoint` file (``stored``, opened from ``path``)
    into ``variables``, after checking their count and shapes against ``holder``'s (a
    mismatch: "it was written by ``writer``")."""
    import keras

    count = int(stored[f"{group}_count"])
    if count != len(variables):
        raise ValueError(f"{path} holds {count} {group} variables and {holder} has "
                         f"{len(variables)}: it was written by {writer}")
    for i, variable in enumerate(variables):
        value = stored[f"{group}_{i}"]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"{path}: {group} variable {variable.path} has shape "
                             f"{tuple(value.shape)} there and {tuple(variable.shape)} in "
                             f"{holder}")
        variable.assign(keras.ops.cast(value, variable.dtype))


def run_checkpoint(model, directory, keep):
    """The run's checkpoints: ``tf.train`` ones on TensorFlow (every strategy), else Keras'."""
    import keras

    if keras.backend.backend() == "tensorflow":
        return RunCheckpoint(model, directory, keep)
    return KerasRunCheckpoint(model, directory, keep)

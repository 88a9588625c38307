"""Where a run is, on disk: model, optimizer and position in ``tf.train`` checkpoints."""

import os

import numpy as np


class RunCheckpoint:
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

    @property
    def position(self):
        """``(epoch, step_in_epoch)``: where training continues."""
        return int(self.epoch), int(self.step_in_epoch)

    @property
    def epoch_part(self):
        """``(metric state, seconds)`` of the steps the epoch at `position` has run."""
        return self.epoch_metrics.numpy(), float(self.epoch_seconds)

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

    def improved(self, accuracy):
        """Records ``accuracy`` if it beats the best so far; returns whether it did."""
        if accuracy > float(self.best_accuracy):
            self.best_accuracy.assign(accuracy)
            return True
        return False

    def __str__(self):
        return os.fspath(self.directory)

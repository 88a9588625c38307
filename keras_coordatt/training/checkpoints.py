"""Where a run is, on disk: model, optimizer and position in ``tf.train`` checkpoints."""

import os


class RunCheckpoint:
    """The model, its optimizer and the run's position (epoch, step in it, best accuracy).

    Written with a ``tf.train.CheckpointManager`` into ``directory``; the
    position lives in plain variables outside any strategy, which every
    worker holds the same value of.
    """

    def __init__(self, model, directory, keep):
        import tensorflow as tf

        self.directory = directory
        self.epoch = tf.Variable(0, dtype=tf.int64)
        self.step_in_epoch = tf.Variable(0, dtype=tf.int64)
        self.best_accuracy = tf.Variable(-1.0, dtype=tf.float64)
        self._checkpoint = tf.train.Checkpoint(
            model=model,
            optimizer=model.optimizer,
            epoch=self.epoch,
            step_in_epoch=self.step_in_epoch,
            best_accuracy=self.best_accuracy,
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

    def save(self, epoch, step_in_epoch, global_step):
        """Writes a checkpoint for a run that continues at ``(epoch, step_in_epoch)``."""
        self.epoch.assign(epoch)
        self.step_in_epoch.assign(step_in_epoch)
        return self._manager.save(checkpoint_number=global_step)

    def improved(self, accuracy):
        """Records ``accuracy`` if it beats the best so far; returns whether it did."""
        if accuracy > float(self.best_accuracy):
            self.best_accuracy.assign(accuracy)
            return True
        return False

    def __str__(self):
        return os.fspath(self.directory)

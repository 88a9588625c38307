"""What the trainer watches during an epoch: the loss, step checkpoints, stop requests."""

import math
import signal

import keras

from keras_coordatt.errors import CheckFailed


class TrainingDiverged(CheckFailed):
    """The loss became NaN or infinite."""


class StopRequests:
    """SIGINT and SIGTERM set a flag instead of killing the run, while in a ``with`` block."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        self._previous = {sig: signal.signal(sig, self._request) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc_info):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False

    def _request(self, signum, frame):
        self.requested = True
        print(f"\nSignal {signum}: stopping with a checkpoint after this training step (or at "
              "the end of the epoch, if it is evaluating); the same command continues.",
              flush=True)


class StepWatch(keras.callbacks.Callback):
    """Checks the loss, writes step checkpoints, honours stop requests.

    Steps are counted here, not read from ``optimizer.iterations``: under
    mixed_float16 the loss-scale optimizer skips the updates whose scaled
    gradients overflow, and those steps still happened.

    A stop asked for during a training step ends the epoch there, with a
    checkpoint at that step (``stopped_at``); one asked for on the last step
    or during validation is left to the end of the epoch, which writes the
    epoch's own checkpoint.
    """

    def __init__(self, checkpoint, stops, epoch, start_step, steps_per_epoch, every_steps):
        super().__init__()
        self.checkpoint = checkpoint
        self.stops = stops
        self.epoch = epoch
        self.start_step = start_step
        self.steps_per_epoch = steps_per_epoch
        self.every_steps = every_steps
        self.stopped_at = None

    def on_train_batch_end(self, batch, logs=None):
        step_in_epoch = self.start_step + batch + 1
        global_step = self.epoch * self.steps_per_epoch + step_in_epoch
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"the loss became {loss} at global step {global_step} (epoch {self.epoch + 1}, "
                f"batch {step_in_epoch} of {self.steps_per_epoch}); the checkpoints in "
                f"{self.checkpoint} from before it are kept. Lower the learning rate or "
                "check the data."
            )
        mid_epoch = step_in_epoch < self.steps_per_epoch
        every = self.every_steps
        periodic = every and step_in_epoch % every == 0 and mid_epoch
        stop = self.stops.requested and mid_epoch
        if stop or periodic:
            self.checkpoint.save(self.epoch, step_in_epoch, global_step)
        if stop:
            self.stopped_at = step_in_epoch
            self.model.stop_training = True


class EpochProgress(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, told the run's epoch count: fit() is called once per epoch."""

    def __init__(self, epochs):
        super().__init__()
        self.run_epochs = epochs

    def set_params(self, params):
        super().set_params({**params, "epochs": self.run_epochs})

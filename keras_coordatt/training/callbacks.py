"""What the trainer watches during an epoch: the loss, step checkpoints, stop requests."""

import math
import signal
import time

import keras
import numpy as np

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


class StoppedMidEpoch(Exception):
    """`StepWatch` ends ``fit`` with it at a stop request inside an epoch.

    Left to itself, ``fit`` would validate the part epoch and end it (its
    progress line, the callbacks' epoch records) as if it were whole; the
    epoch is not over, so nothing of its end runs, and the step checkpoint
    written before this is raised is where the same command continues.
    """

    def __init__(self, step_in_epoch):
        super().__init__(f"stopped after step {step_in_epoch} of the epoch")
        self.step_in_epoch = step_in_epoch


def metric_state(model):
    """The model's metric variables (``model.metrics_variables``) as one float64 array."""
    return np.concatenate([np.asarray(keras.ops.convert_to_numpy(variable), np.float64).ravel()
                           for variable in model.metrics_variables] or [np.zeros(0)])


def add_metric_state(model, state):
    """Adds a `metric_state` of the same model into its metric variables.

    Every metric the trainer compiles keeps sums (a mean's total and count,
    MeanIoU's confusion matrix), so the state of an epoch's first steps
    added to that of the steps after them is the state of the whole epoch.
    """
    variables = model.metrics_variables
    ends = np.cumsum([int(np.prod(variable.shape)) for variable in variables])
    for variable, part in zip(variables, np.split(np.asarray(state), ends[:-1])):
        variable.assign_add(part.reshape(variable.shape).astype(variable.dtype))


class StepWatch(keras.callbacks.Callback):
    """Checks the loss, writes step checkpoints, honours stop requests.

    Steps are counted here, not read from ``optimizer.iterations``: under
    mixed_float16 the loss-scale optimizer skips the updates whose scaled
    gradients overflow, and those steps still happened.

    A stop asked for during a training step ends the epoch there: a
    checkpoint at that step, then `StoppedMidEpoch`. One
    asked for on the last step or during validation is left to the end of
    the epoch, which writes the epoch's own checkpoint.

    A step checkpoint carries the epoch so far (`metric_state` and seconds,
    ``part``, `RunCheckpoint.epoch_part`: nothing at an epoch's start); an
    epoch resumed from one adds them back after its first step, so its
    logged metrics and `seconds` are the whole epoch's.
    """

    def __init__(self, checkpoint, stops, epoch, start_step, steps_per_epoch, every_steps, part):
        super().__init__()
        self.checkpoint = checkpoint
        self.stops = stops
        self.epoch = epoch
        self.start_step = start_step
        self.steps_per_epoch = steps_per_epoch
        self.every_steps = every_steps
        self.part_state, part_seconds = part
        self.started = time.perf_counter() - part_seconds
        self.steady = [None, None, 0]  # start, end, steps of the steps after this call's first

    @property
    def seconds(self):
        """The epoch's training and validation time, its part before a resume included."""
        return time.perf_counter() - self.started

    @property
    def steady_step_seconds(self):
        """Seconds per training step, over this session's steps of the epoch after its first.

        The first step of every ``fit`` call pays for tracing or compiling the
        step and filling the input pipeline; validation is not counted. None
        when the epoch ran fewer than two steps here.
        """
        start, end, steps = self.steady
        return (end - start) / steps if steps else None

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 1:
            self.steady[0] = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0 and len(self.part_state):
            # After the first step: Keras builds the metrics in it, and resets them before it.
            add_metric_state(self.model, self.part_state)
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
        if batch >= 1:  # after float(loss): the step's result has reached the host
            self.steady[1:] = time.perf_counter(), batch
        mid_epoch = step_in_epoch < self.steps_per_epoch
        every = self.every_steps
        periodic = every and step_in_epoch % every == 0 and mid_epoch
        stop = self.stops.requested and mid_epoch
        if stop or periodic:
            self.checkpoint.save(self.epoch, step_in_epoch, global_step,
                                 metric_state(self.model), self.seconds)
        if stop:
            raise StoppedMidEpoch(step_in_epoch)


class EpochProgress(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, told the run's epoch count: fit() is called once per epoch."""

    def __init__(self, epochs):
        super().__init__()
        self.run_epochs = epochs

    def set_params(self, params):
        super().set_params({**params, "epochs": self.run_epochs})

"""One network trained by the library's trainer, an epoch per request, for the throughput benchmarks.

Runs as its own process (``TrainerProcess`` starts it), so each network has
its own TensorFlow (or JAX) runtime, as a user's run does, and the networks
take turns without sharing one. It reads a JSON setup line: the
``TrainConfig`` fields, plus ``fused`` (CA's fused training path: true, false
or null for the library's automatic choice).
It then runs ``keras_coordatt.training.train`` with one epoch per round:
before each epoch it waits for a ``go`` line, and when the epoch is done
(its weights, checkpoint and history row written) it answers with that
epoch's ``images_per_second`` from ``history.csv``: the trainer's own
measure of its training steps after the epoch's first, so the benchmark
times exactly the step a user's run takes, input pipeline included.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class TrainerProcess:
    """The client side: starts this file for one row and asks it for one epoch at a time."""

    def __init__(self, config_fields, fused=None, backend=None):
        import subprocess

        env = {**os.environ, **({"KERAS_BACKEND": backend} if backend else {})}
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__)], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.send({"config": config_fields, "fused": fused})
        self.trainable_params = None

    def send(self, message):
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def receive(self):
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("a trainer worker stopped; see its error above")
            if line.startswith("{"):  # anything else is the trainer's own output
                return json.loads(line)

    def ready(self):
        """Waits until the network is built (the workers build theirs side by side)."""
        self.trainable_params = self.receive()["trainable_params"]

    def params(self):
        return self.trainable_params

    def images_per_second(self):
        self.send({"go": True})
        return self.receive()["images_per_second"]

    def close(self):
        """Waits for the run to end (its last epoch was the last round)."""
        self.process.stdin.close()
        self.process.wait()


def main():
    import keras

    from keras_coordatt.layers import fused_attention
    from keras_coordatt.models import count_trainable_params
    from keras_coordatt.training import TrainConfig
    from keras_coordatt.training import train
    from keras_coordatt.training.history import read_history

    setup = json.loads(sys.stdin.readline())
    config = TrainConfig(**setup["config"])
    history = os.path.join(config.output_dir, "history.csv")

    def answer(message):
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    def last_rate():
        return float(read_history(history)[-1]["images_per_second"])

    class Turns(keras.callbacks.Callback):
        """Before each epoch: report the one before, then wait for this one's turn."""

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 0:
                answer({"trainable_params": count_trainable_params(self.model)})
            else:
                answer({"images_per_second": last_rate()})
            if not json.loads(sys.stdin.readline()).get("go"):
                raise SystemExit(0)

    with fused_attention(setup.get("fused")):  # read when fit() traces the step
        train(config, callbacks=[Turns()])
    answer({"images_per_second": last_rate()})


if __name__ == "__main__":
    main()

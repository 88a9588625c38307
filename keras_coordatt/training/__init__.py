"""The trainer: the paper's recipe on one or many devices, with checkpoints and resume.

``train(TrainConfig(...))`` runs (or resumes) one run and returns its
metrics; ``keras-coordatt train`` is the same from the command line. It runs
on every Keras backend: ``tf.distribute`` strategies and ``tf.train``
checkpoints on TensorFlow, ``keras.distribution.DataParallel`` on JAX, one
device on PyTorch (checkpoints of the Keras variables on both). The
classifier's data pipeline is ``tf.data`` (TensorFlow needed); detection and
segmentation also train where TensorFlow is not installed (their batches
then come from a ``keras.utils.PyDataset``).
"""

import importlib

# Loaded on first use, so that ``keras_coordatt.training.config`` and
# ``.recipe`` import without TensorFlow.
_HOME = {
    "TrainingDiverged": "callbacks",
    "TrainConfig": "config",
    "add_config_arguments": "config",
    "config_from_args": "config",
    "load_config": "config",
    "model_for_config": "trainer",
    "train": "trainer",
    "train_from_args": "trainer",
}


def __getattr__(name):
    if name not in _HOME:
        raise AttributeError(f"module 'keras_coordatt.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"keras_coordatt.training.{_HOME[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "TrainConfig",
    "TrainingDiverged",
    "add_config_arguments",
    "config_from_args",
    "load_config",
    "model_for_config",
    "train",
    "train_from_args",
]

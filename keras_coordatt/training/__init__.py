"""The trainer: the paper's recipe on one or many devices, with checkpoints and resume.

``train(TrainConfig(...))`` runs (or resumes) one run and returns its
metrics; ``keras-coordatt train`` is the same from the command line. Needs
the TensorFlow backend (``tf.distribute``, ``tf.train`` checkpoints, ``tf.data``).
"""

from keras_coordatt.training.callbacks import TrainingDiverged
from keras_coordatt.training.config import TrainConfig
from keras_coordatt.training.config import add_config_arguments
from keras_coordatt.training.config import config_from_args
from keras_coordatt.training.config import load_config
from keras_coordatt.training.trainer import model_for_config
from keras_coordatt.training.trainer import train
from keras_coordatt.training.trainer import train_from_args

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

"""Export: serving and TF Hub-format SavedModels, TFLite (LiteRT), each checked against Keras.

Needs the TensorFlow backend (``pip install 'keras-coordatt[cpu]'``).
`export_model` writes every format and checks each; the functions it uses
are here for one format at a time.
"""

from keras_coordatt.export.bundle import DEFAULT_FORMATS
from keras_coordatt.export.bundle import FORMATS
from keras_coordatt.export.bundle import ExportCheckError
from keras_coordatt.export.bundle import export_model
from keras_coordatt.export.litert import run_tflite
from keras_coordatt.export.litert import tflite_op_names
from keras_coordatt.export.litert import to_tflite
from keras_coordatt.export.saved_model import export_hub
from keras_coordatt.export.saved_model import export_serving

__all__ = [
    "DEFAULT_FORMATS",
    "FORMATS",
    "ExportCheckError",
    "export_hub",
    "export_model",
    "export_serving",
    "run_tflite",
    "tflite_op_names",
    "to_tflite",
]

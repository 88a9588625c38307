"""Export: TFLite (LiteRT) conversion and running converted models."""

from keras_coordatt.export.litert import run_tflite
from keras_coordatt.export.litert import tflite_op_names
from keras_coordatt.export.litert import to_tflite

__all__ = ["run_tflite", "tflite_op_names", "to_tflite"]

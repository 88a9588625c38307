"""Export: serving and TF Hub-format SavedModels, TFLite (LiteRT), each checked against Keras.

Needs the TensorFlow backend (``pip install 'keras-coordatt[cpu]'``).
`export_model` writes every format of a classifier and checks each;
`export_task_model` those of a detector or segmenter. By job:
`saved_model` (serving and TF Hub SavedModels), `tflite` (conversion, the
flatbuffer edits), `litert` (`TFLiteModel`, the one runner of ``.tflite``
files), `checks` (files beside Keras), `bundle` and `task_bundle` (every
format, checked), `loading` (what a classifier export starts from).
"""

from keras_coordatt.export.bundle import DEFAULT_FORMATS
from keras_coordatt.export.bundle import FORMATS
from keras_coordatt.export.bundle import export_model
from keras_coordatt.export.checks import ExportCheckError
from keras_coordatt.export.checks import check_detector_tflite
from keras_coordatt.export.checks import check_segmenter_tflite
from keras_coordatt.export.litert import TFLiteModel
from keras_coordatt.export.litert import run_detector_tflite
from keras_coordatt.export.litert import run_segmenter_tflite
from keras_coordatt.export.litert import run_tflite
from keras_coordatt.export.litert import tflite_op_names
from keras_coordatt.export.saved_model import export_detector_serving
from keras_coordatt.export.saved_model import export_hub
from keras_coordatt.export.saved_model import export_segmenter_serving
from keras_coordatt.export.saved_model import export_serving
from keras_coordatt.export.task_bundle import export_task_model
from keras_coordatt.export.tflite import detector_tflite
from keras_coordatt.export.tflite import segmenter_tflite
from keras_coordatt.export.tflite import to_tflite

__all__ = [
    "DEFAULT_FORMATS",
    "FORMATS",
    "ExportCheckError",
    "TFLiteModel",
    "export_hub",
    "export_model",
    "export_serving",
    "export_task_model",
    "run_tflite",
    "tflite_op_names",
    "to_tflite",
]
__all__ += ["check_detector_tflite", "check_segmenter_tflite", "detector_tflite",
            "export_detector_serving", "export_segmenter_serving", "run_detector_tflite",
            "run_segmenter_tflite", "segmenter_tflite"]

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
from keras_coordatt.export.tasks import check_detector_tflite
from keras_coordatt.export.tasks import check_segmenter_tflite
from keras_coordatt.export.tasks import detector_tflite
from keras_coordatt.export.tasks import export_detector_serving
from keras_coordatt.export.tasks import export_segmenter_serving
from keras_coordatt.export.tasks import segmenter_tflite

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
__all__ += ["check_detector_tflite", "check_segmenter_tflite", "detector_tflite",
            "export_detector_serving", "export_segmenter_serving", "segmenter_tflite"]

"""Coordinate Attention (Hou, Zhou, Feng, CVPR 2021) for Keras 3."""

from keras_coordatt.startup import quiet_tensorflow_startup

with quiet_tensorflow_startup():
    import keras  # noqa: F401 (loads the backend once, its start-up notices filtered)

from keras_coordatt.layers import CBAM
from keras_coordatt.layers import CoordAttention
from keras_coordatt.layers import EfficientChannelAttention
from keras_coordatt.layers import EfficientLocalAttention
from keras_coordatt.layers import SimAM
from keras_coordatt.layers import SqueezeExcite
from keras_coordatt.layers import attention_names
from keras_coordatt.layers import get_attention
from keras_coordatt import models
from keras_coordatt.models import EfficientNetB0
from keras_coordatt.models import ImageClassifier
from keras_coordatt.models import MobileNeXt
from keras_coordatt.models import MobileNeXtBackbone
from keras_coordatt.models import MobileNetV2
from keras_coordatt.models import MobileNetV2Backbone
from keras_coordatt.models import EfficientNetB0Backbone
from keras_coordatt.models import add_attention
from keras_coordatt.models import convert
from keras_coordatt.models import count_macs
from keras_coordatt.models import count_trainable_params
from keras_coordatt.models import feature_pyramid
from keras_coordatt.models import from_preset
from keras_coordatt.models import save_to_preset
from keras_coordatt.models import upload_preset
from keras_coordatt.models import start_attention_as_identity
from keras_coordatt import tasks  # noqa: F401 (registers the task heads and SSD losses for files)
from keras_coordatt.optimizers import LayerwiseSGD
from keras_coordatt.prediction import predict

__version__ = "0.1.0"

__all__ = [
    "CBAM",
    "CoordAttention",
    "EfficientChannelAttention",
    "EfficientLocalAttention",
    "EfficientNetB0",
    "EfficientNetB0Backbone",
    "ImageClassifier",
    "LayerwiseSGD",
    "MobileNeXt",
    "MobileNeXtBackbone",
    "MobileNetV2",
    "MobileNetV2Backbone",
    "SimAM",
    "SqueezeExcite",
    "add_attention",
    "attention_names",
    "convert",
    "count_macs",
    "count_trainable_params",
    "feature_pyramid",
    "from_preset",
    "get_attention",
    "models",
    "predict",
    "save_to_preset",
    "start_attention_as_identity",
    "upload_preset",
]

"""Model builders (keras.applications style) with a pluggable attention block."""

from keras_coordatt.models.add_attention import add_attention
from keras_coordatt.models.common import make_divisible
from keras_coordatt.models.convert import convert
from keras_coordatt.models.efficientnet import EfficientNetB0
from keras_coordatt.models.macs import count_macs
from keras_coordatt.models.macs import count_trainable_params
from keras_coordatt.models.mobilenet_v2 import MobileNetV2
from keras_coordatt.models.mobilenext import MobileNeXt
from keras_coordatt.models.pyramid import feature_pyramid
from keras_coordatt.models.registry import BUILDERS
from keras_coordatt.models.registry import build_model

__all__ = [
    "BUILDERS",
    "EfficientNetB0",
    "MobileNeXt",
    "MobileNetV2",
    "add_attention",
    "build_model",
    "convert",
    "count_macs",
    "count_trainable_params",
    "feature_pyramid",
    "make_divisible",
]

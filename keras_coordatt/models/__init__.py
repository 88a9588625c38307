"""Backbones, classifiers and keras.applications-style builders with a pluggable attention block."""

from keras_coordatt.models.add_attention import add_attention
from keras_coordatt.models.backbone import Backbone
from keras_coordatt.models.classifier import ImageClassifier
from keras_coordatt.models.classifier import rebuild
from keras_coordatt.models.common import make_divisible
from keras_coordatt.models.efficientnet import EfficientNetB0
from keras_coordatt.models.efficientnet import EfficientNetB0Backbone
from keras_coordatt.models.families import FAMILIES
from keras_coordatt.models.families import ModelFamily
from keras_coordatt.models.families import build_model
from keras_coordatt.models.families import get_family
from keras_coordatt.models.identity import start_attention_as_identity
from keras_coordatt.models.keras_hub import as_keras_hub_backbone
from keras_coordatt.models.macs import count_macs
from keras_coordatt.models.macs import count_trainable_params
from keras_coordatt.models.mobilenet_v2 import MobileNetV2
from keras_coordatt.models.mobilenet_v2 import MobileNetV2Backbone
from keras_coordatt.models.mobilenext import MobileNeXt
from keras_coordatt.models.mobilenext import MobileNeXtBackbone
from keras_coordatt.models.presets import from_preset
from keras_coordatt.models.presets import save_to_preset
from keras_coordatt.models.presets import upload_preset
from keras_coordatt.models.pyramid import feature_pyramid
from keras_coordatt.models.pytorch import convert
from keras_coordatt.models.weights import load_weights_by_name

__all__ = [
    "FAMILIES",
    "Backbone",
    "EfficientNetB0",
    "EfficientNetB0Backbone",
    "ImageClassifier",
    "MobileNeXt",
    "MobileNeXtBackbone",
    "MobileNetV2",
    "MobileNetV2Backbone",
    "ModelFamily",
    "add_attention",
    "as_keras_hub_backbone",
    "build_model",
    "convert",
    "count_macs",
    "count_trainable_params",
    "feature_pyramid",
    "from_preset",
    "get_family",
    "load_weights_by_name",
    "make_divisible",
    "rebuild",
    "save_to_preset",
    "start_attention_as_identity",
    "upload_preset",
]

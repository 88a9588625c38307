"""Coordinate Attention (Hou, Zhou, Feng, CVPR 2021) for Keras 3."""

from keras_coordatt.layers import CBAM
from keras_coordatt.layers import CoordAttention
from keras_coordatt.layers import SqueezeExcite
from keras_coordatt.layers import attention_names
from keras_coordatt.layers import get_attention

__version__ = "0.1.0"

__all__ = [
    "CBAM",
    "CoordAttention",
    "SqueezeExcite",
    "attention_names",
    "get_attention",
]

"""Attention layers: Coordinate Attention and its baselines, and their factory."""

from keras_coordatt.layers.cbam import CBAM
from keras_coordatt.layers.coord_attention import CoordAttention
from keras_coordatt.layers.factory import attention_names
from keras_coordatt.layers.factory import get_attention
from keras_coordatt.layers.fused import fused_attention
from keras_coordatt.layers.fused import fused_attention_enabled
from keras_coordatt.layers.fused import set_fused_attention
from keras_coordatt.layers.squeeze_excite import SqueezeExcite

__all__ = [
    "CBAM",
    "CoordAttention",
    "SqueezeExcite",
    "attention_names",
    "fused_attention",
    "fused_attention_enabled",
    "get_attention",
    "set_fused_attention",
]

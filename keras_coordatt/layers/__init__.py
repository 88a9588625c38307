"""Attention layers: Coordinate Attention, its baselines and successors, and their factory."""

from keras_coordatt.layers.cbam import CBAM
from keras_coordatt.layers.coord_attention import CoordAttention
from keras_coordatt.layers.factory import attention_names
from keras_coordatt.layers.factory import get_attention
from keras_coordatt.layers.fused import fused_attention
from keras_coordatt.layers.fused import fused_attention_enabled
from keras_coordatt.layers.fused import set_fused_attention
from keras_coordatt.layers.squeeze_excite import SqueezeExcite
from keras_coordatt.layers.successors import EfficientChannelAttention
from keras_coordatt.layers.successors import EfficientLocalAttention
from keras_coordatt.layers.successors import SimAM

__all__ = [
    "CBAM",
    "CoordAttention",
    "EfficientChannelAttention",
    "EfficientLocalAttention",
    "SimAM",
    "SqueezeExcite",
    "attention_names",
    "fused_attention",
    "fused_attention_enabled",
    "get_attention",
    "set_fused_attention",
]

"""Task heads on the backbones: detection (SSDLite320) and segmentation (DeepLabV3).

So far the SSD anchor machinery the detection head stands on
(`keras_coordatt.tasks.anchors`); the heads themselves are still to come.
"""

from keras_coordatt.tasks.anchors import SSDAnchors
from keras_coordatt.tasks.anchors import decode_boxes
from keras_coordatt.tasks.anchors import encode_boxes
from keras_coordatt.tasks.anchors import match_anchors

__all__ = ["SSDAnchors", "decode_boxes", "encode_boxes", "match_anchors"]

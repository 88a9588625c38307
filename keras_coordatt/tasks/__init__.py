"""Task heads on the backbones: detection (SSDLite320) and segmentation (DeepLabV3).

So far the SSD anchor machinery (`keras_coordatt.tasks.anchors`) and the
SSDLite320 network (`keras_coordatt.tasks.ssdlite`); its losses, training,
evaluation and export, and DeepLabV3, are still to come.
"""

from keras_coordatt.tasks.anchors import SSDAnchors
from keras_coordatt.tasks.anchors import decode_boxes
from keras_coordatt.tasks.anchors import encode_boxes
from keras_coordatt.tasks.anchors import match_anchors
from keras_coordatt.tasks.ssdlite import SSDLite

__all__ = ["SSDAnchors", "SSDLite", "decode_boxes", "encode_boxes", "match_anchors"]

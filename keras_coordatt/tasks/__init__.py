"""Task heads on the backbones: detection (SSDLite320) and segmentation (DeepLabV3).

So far: the SSD anchor machinery (`anchors`), the SSDLite320 network
(`ssdlite`) and its losses (`ssd_loss`), and the DeepLabV3 network
(`deeplab`). Detection and segmentation data, training, evaluation and
export are still to come.
"""

from keras_coordatt.tasks.anchors import SSDAnchors
from keras_coordatt.tasks.anchors import decode_boxes
from keras_coordatt.tasks.anchors import encode_boxes
from keras_coordatt.tasks.anchors import match_anchors
from keras_coordatt.tasks.deeplab import DeepLabV3
from keras_coordatt.tasks.evaluation import coco_metrics
from keras_coordatt.tasks.evaluation import mean_iou
from keras_coordatt.tasks.evaluation import plot_precision_recall
from keras_coordatt.tasks.evaluation import precision_recall
from keras_coordatt.tasks.evaluation import voc_map
from keras_coordatt.tasks.postprocess import SSDPostprocess
from keras_coordatt.tasks.postprocess import detector
from keras_coordatt.tasks.ssdlite import SSDLite

__all__ = ["DeepLabV3", "SSDAnchors", "SSDLite", "decode_boxes", "encode_boxes", "match_anchors"]
__all__ += ["SSDPostprocess", "detector"]
__all__ += ["coco_metrics", "mean_iou", "plot_precision_recall", "precision_recall", "voc_map"]

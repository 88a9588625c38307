"""Task heads on the backbones: detection (SSDLite320) and segmentation (DeepLabV3).

The SSD anchor machinery (`anchors`), the SSDLite320 network (`ssdlite`),
its losses (`ssd_loss`) and inference layer (`postprocess`), the DeepLabV3
network (`deeplab`), tiled prediction on large images (`tiling`) and the
field's scores (`evaluation`). All of it is `keras.ops` and NumPy, so it
runs on every Keras backend. Data, training and export sit above, in
`keras_coordatt.data`, `keras_coordatt.training` and `keras_coordatt.export`.
"""

from keras_coordatt.tasks.anchors import SSDAnchors
from keras_coordatt.tasks.anchors import decode_boxes
from keras_coordatt.tasks.anchors import encode_boxes
from keras_coordatt.tasks.anchors import match_anchors
from keras_coordatt.tasks.deeplab import DeepLabV3
from keras_coordatt.tasks.evaluation import coco_metrics
from keras_coordatt.tasks.evaluation import detection_scores
from keras_coordatt.tasks.evaluation import mean_iou
from keras_coordatt.tasks.evaluation import plot_precision_recall
from keras_coordatt.tasks.evaluation import precision_recall
from keras_coordatt.tasks.evaluation import voc_map
from keras_coordatt.tasks.postprocess import SSDPostprocess
from keras_coordatt.tasks.postprocess import detector
from keras_coordatt.tasks.ssd_loss import SSDBoxLoss
from keras_coordatt.tasks.ssd_loss import SSDClassificationLoss
from keras_coordatt.tasks.ssdlite import SSDLite
from keras_coordatt.tasks.ssdlite import anchors_of
from keras_coordatt.tasks.tiling import class_nms
from keras_coordatt.tasks.tiling import predict_detections
from keras_coordatt.tasks.tiling import tile_examples
from keras_coordatt.tasks.tiling import tile_windows

__all__ = ["DeepLabV3", "SSDAnchors", "SSDLite", "decode_boxes", "encode_boxes", "match_anchors"]
__all__ += ["SSDBoxLoss", "SSDClassificationLoss", "SSDPostprocess", "anchors_of", "detector"]
__all__ += ["coco_metrics", "mean_iou", "plot_precision_recall", "precision_recall", "voc_map"]
__all__ += ["class_nms", "detection_scores", "predict_detections", "tile_examples", "tile_windows"]

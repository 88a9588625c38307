"""Detection data: images with boxes and class labels, and SSD training batches.

Sources (`source`: `DetectionSource`, `DetectionSplit`) are opened by name
(`factory.open_detection_source`): Pascal VOC XML (`voc`), COCO JSON
(`coco`), tensorflow-datasets (`tfds`), and the built-in DeepForest tree
crowns (`deepforest`); `pipeline` tiles, augments and matches them to the
anchors.
"""

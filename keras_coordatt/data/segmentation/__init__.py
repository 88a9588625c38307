"""Segmentation data: images with masks of class indices, and DeepLab training batches.

Sources (`source`: `SegmentationSource`, `SegmentationSplit`, the mask
decoder and the ignore label) are opened by name
(`factory.open_segmentation_source`): a Pascal VOC devkit (`voc`), folders of
images and masks (`mask_folder`), Cityscapes (`cityscapes`),
tensorflow-datasets (`tfds`), and the built-in StarDist nuclei (`stardist`);
`pipeline` augments them into batches.
"""

"""The paper's parameter counts of its detection (Table 6) and segmentation (Table 7) networks.

SSDLite320 on MobileNetV2 1.0 (COCO: 80 classes + background), and DeepLabV3
at output stride 16 on VOC (21 classes) both ways the paper can be read: a
separable ASPP on the final 1280-channel map, as its text describes it, and a
regular 3x3 ASPP on the 320-channel block 16 projection, as its counts match.

Example:

    for line in task_table_lines("detection", ["none", "ca"]):
        print(line)
"""

import functools

import keras

from keras_coordatt.models.mobilenet_v2 import MobileNetV2
from keras_coordatt.tasks.deeplab import DeepLabV3
from keras_coordatt.tasks.ssdlite import SSDLite

PUBLISHED_TASKS = {
    "detection": {"none": 4.3e6, "se": 4.7e6, "cbam": 4.7e6, "ca": 4.8e6},
    "segmentation": {"none": 4.5e6, "se": 4.9e6, "cbam": 4.9e6, "ca": 5.0e6},
}


def task_table_rows(task, attentions):
    """``(attention, network, build)`` per row; ``build()`` makes the network.

    Args:
        task: ``"detection"`` or ``"segmentation"`` (two rows per attention).
        attentions: attention names, e.g. ``["none", "ca"]``.
    """
    rows = []
    for attention in attentions:
        if task == "detection":
            rows.append((attention, "SSDLite320", functools.partial(_ssdlite320, attention)))
            continue
        rows.append((attention, "separable ASPP on 1280 ch",
                     functools.partial(_deeplab_os16, attention, separable=True)))
        rows.append((attention, "regular ASPP on 320 ch",
                     functools.partial(_deeplab_os16, attention, separable=False)))
    return rows


def task_table_lines(task, attentions):
    """The markdown table of `task_table_rows`, line by line, each network built as its row comes.

    Yields:
        The caption, the header and one ``| Attention | Network | Params |
        Paper | Difference |`` row per network (all weights, BatchNorm
        statistics included, as the paper counts them).
    """
    published = PUBLISHED_TASKS[task]
    yield (f"Parameters (all weights, BatchNorm statistics included) of the paper's {task} "
           "network on MobileNetV2 1.0; the paper's figures beside ours.\n")
    yield "| Attention | Network | Params | Paper | Difference |"
    yield "|---|---|---:|---:|---:|"
    for attention, network, build in task_table_rows(task, attentions):
        params = build().count_params()
        paper = published.get(attention)
        difference = f"{(params - paper) / paper:+.1%}" if paper else ""
        yield (f"| {attention} | {network} | {params:,} | "
               f"{f'{paper / 1e6:.1f}M' if paper else ''} | {difference} |")
        keras.utils.clear_session()


def _ssdlite320(attention):
    backbone = MobileNetV2(input_shape=(320, 320, 3), include_top=False, attention=attention)
    return SSDLite(backbone, 80)


def _deeplab_os16(attention, separable):
    backbone = MobileNetV2(input_shape=(512, 512, 3), include_top=False, attention=attention,
                           output_stride=16)
    feature = None if separable else "block_16_project_BN"
    return DeepLabV3(backbone, 21, separable=separable, feature=feature)

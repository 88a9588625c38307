"""Detection and segmentation pipelines: tiling, anchor targets, batches through both loaders
(``tf.data`` and the PyDataset for machines without TensorFlow). The augmentations
themselves: test_augment.py."""

import numpy as np
import pytest
import tensorflow as tf

from keras_coordatt.data.core.batches import ExampleBatches
from keras_coordatt.data.core.batches import first_batch
from keras_coordatt.data.detection.pipeline import DetectionPipelineOptions
from keras_coordatt.data.detection.pipeline import detection_batches
from keras_coordatt.data.detection.pipeline import make_targets
from keras_coordatt.data.detection.pipeline import tile_examples
from keras_coordatt.data.segmentation.pipeline import SegmentationPipelineOptions
from keras_coordatt.data.segmentation.pipeline import segmentation_batches
from keras_coordatt.tasks.anchors import anchor_coverage
from keras_coordatt.tasks.anchors import decode_boxes
from keras_coordatt.tasks.ssdlite import ssdlite_anchors
from keras_coordatt.tasks.tiling import tile_windows


@pytest.mark.parametrize("width, height, tile, overlap", [
    (2299, 2472, 320, 0.5), (1249, 1035, 320, 0.0), (400, 400, 320, 0.0), (100, 90, 320, 0.0),
    (641, 320, 320, 0.25)])
def test_tile_windows_cover_the_image_and_overlap_at_least_as_asked(width, height, tile, overlap):
    windows = tile_windows(width, height, tile, overlap)
    covered = np.zeros((height, width), bool)
    for x0, y0 in windows:
        assert 0 <= x0 and 0 <= y0
        assert x0 + tile <= max(width, tile) and y0 + tile <= max(height, tile)
        covered[y0:y0 + tile, x0:x0 + tile] = True
    assert covered.all()
    xs = sorted({x for x, _ in windows})
    steps = np.diff(xs)
    if len(steps):
        assert steps.max() <= tile * (1 - overlap) + 1


def test_tiles_keep_boxes_mostly_inside_clipped_and_drop_the_rest():
    image = np.arange(100 * 60 * 3, dtype=np.uint32).reshape(60, 100, 3).astype(np.uint8)
    boxes = np.array([[10, 10, 20, 20],    # inside the first tile only
                      [45, 0, 59, 10],     # 5/14 in the first tile, 9/14 in the second
                      [80, 40, 100, 60]], np.float32)
    tiles = tile_examples([{"image": image, "boxes": boxes, "labels": [0, 1, 2], "id": "a"}], 50)
    assert [t["origin"][1:] for t in tiles] == [(0, 0), (50, 0), (0, 10), (50, 10)]
    first, second = tiles[0], tiles[1]
    np.testing.assert_array_equal(first["image"], image[:50, :50])
    np.testing.assert_array_equal(first["labels"], [0])
    np.testing.assert_array_equal(second["labels"], [1, 2])
    np.testing.assert_allclose(second["boxes"], [[0, 0, 9, 10], [30, 40, 50, 50]])


def _options(side=160, augment="ssd", **kwargs):
    return DetectionPipelineOptions(side, 4, ssdlite_anchors(side), augment=augment, **kwargs)


def test_targets_mark_the_matching_anchor_and_code_its_box():
    options = _options(augment=None)
    anchors = options.anchors.boxes()
    index = 123
    cx, cy, w, h = anchors[index] * 160
    box = np.array([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]], np.float32)
    image, classes, box_targets = make_targets(np.zeros((160, 160, 3), np.float32), box,
                                               np.array([2], np.int32), anchors, options)
    assert classes[index] == 3  # label 2 -> class 3 (0 is background)
    np.testing.assert_allclose(box_targets[index, :4], 0, atol=1e-4)
    np.testing.assert_array_equal(box_targets[:, 4], classes)
    decoded = decode_boxes(box_targets[None, classes > 0, :4], anchors[classes > 0])
    np.testing.assert_allclose(np.asarray(decoded)[0], np.repeat(box / 160, (classes > 0).sum(), 0),
                               atol=1e-4)
    _, empty, _ = make_targets(np.zeros((160, 160, 3), np.float32), np.zeros((0, 4), np.float32),
                               np.zeros((0,), np.int32), anchors, options)
    assert int(empty.max()) == 0
    assert float(image.min()) == -1.0  # the MobileNet pixel range


def test_targets_of_a_resized_image_code_its_boxes_relative_to_its_size():
    options = _options(augment=None)
    anchors = options.anchors.boxes()
    # the same object on a 320 x 240 image and on the 160 x 160 input it is stretched to
    box = np.array([[64, 48, 192, 144]], np.float32)
    image, classes, box_targets = make_targets(np.full((240, 320, 3), 255, np.float32), box,
                                               np.array([0], np.int32), anchors, options)
    assert image.shape == (160, 160, 3) and np.allclose(image, 1.0)
    square = np.array([[32, 32, 96, 96]], np.float32)
    _, same_classes, same_targets = make_targets(np.zeros((160, 160, 3), np.float32), square,
                                                 np.array([0], np.int32), anchors, options)
    np.testing.assert_array_equal(classes, same_classes)
    np.testing.assert_allclose(box_targets, same_targets, atol=1e-5)


def _examples(count=6, side=96):
    rng = np.random.default_rng(0)
    examples = []
    for number in range(count):
        image = rng.integers(0, 255, (side, side + 10, 3), dtype=np.uint8)
        x, y = rng.integers(0, side // 2, 2)
        examples.append({"image": image, "boxes": np.array([[x, y, x + 40, y + 30]], np.float32),
                         "labels": np.array([number % 2], np.int32), "id": str(number)})
    return examples


def _arrays(batches):
    """Every batch of a tf.data pipeline or an ExampleBatches, as NumPy."""
    items = batches if not isinstance(batches, ExampleBatches) else (
        batches[i] for i in range(len(batches)))
    return [tf.nest.map_structure(np.asarray, batch) for batch in items]


def test_training_batches_repeat_per_seed_and_epoch_and_eval_batches_keep_every_example():
    options = _options(augment="ssd", seed=3)
    one = [b[0].numpy() for b in detection_batches(_examples(), options, True, epoch=1)]
    again = [b[0].numpy() for b in detection_batches(_examples(), options, True, epoch=1)]
    other = [b[0].numpy() for b in detection_batches(_examples(), options, True, epoch=2)]
    assert len(one) == 1 and one[0].shape == (4, 160, 160, 3)  # 6 examples, batch 4, last dropped
    np.testing.assert_array_equal(one[0], again[0])
    assert not np.array_equal(one[0], other[0])
    evaluated = list(detection_batches(_examples(), options, False))
    assert [b[0].shape[0] for b in evaluated] == [4, 2]
    # lengths known before reading (Keras then takes no extra, empty, step)
    assert int(detection_batches(_examples(), options, False).cardinality()) == 2
    assert int(detection_batches(_examples(), options, True).cardinality()) == 1
    assert all(b[1]["classes"].shape == (b[0].shape[0], options.anchors.boxes().shape[0])
               for b in evaluated)


@pytest.mark.parametrize("augment", ["ssd", "aerial", None])
def test_both_loaders_give_the_same_detection_batches(augment):
    made = {}
    for loader in ("tf.data", "python"):
        options = _options(augment=augment, seed=3, loader=loader)
        made[loader] = (_arrays(detection_batches(_examples(9), options, True, epoch=1)),
                        _arrays(detection_batches(_examples(9), options, False)))
    assert isinstance(detection_batches(_examples(), _options(loader="python"), True),
                      ExampleBatches)
    for (train_a, eval_a), (train_b, eval_b) in [(made["tf.data"], made["python"])]:
        assert len(train_a) == len(train_b) == 2 and len(eval_a) == len(eval_b) == 3
        for a, b in zip(train_a + eval_a, train_b + eval_b):
            np.testing.assert_array_equal(a[0], b[0])
            for key in ("classes", "boxes"):
                np.testing.assert_array_equal(a[1][key], b[1][key])


def test_python_batches_skip_as_tf_data_does_and_refuse_indexes_past_the_end():
    options = _options(augment="aerial", seed=1, loader="python")
    batches = detection_batches(_examples(13), options, True, epoch=4)
    assert len(batches) == 3
    rest = batches.skip(2)
    assert len(rest) == 1
    np.testing.assert_array_equal(rest[0][0], batches[2][0])
    with pytest.raises(IndexError):
        batches[3]
    np.testing.assert_array_equal(first_batch(batches)[0], batches[0][0])
    tf_batches = detection_batches(_examples(13), _options(augment="aerial", seed=1), True, 4)
    np.testing.assert_array_equal(first_batch(tf_batches.skip(2))[0], rest[0][0])


def test_keras_reports_each_validation_loss_at_its_value():
    from keras_coordatt.tasks.ssd_loss import SSDBoxLoss
    from keras_coordatt.tasks.ssd_loss import SSDClassificationLoss
    from test_postprocess import small_ssd

    model = small_ssd(2, 160, attention=None)
    losses = {"classes": SSDClassificationLoss(), "boxes": SSDBoxLoss()}
    model.compile(optimizer="sgd", loss=losses)
    options = _options(augment=None)
    assert model.anchors.boxes().shape == options.anchors.boxes().shape
    batches = detection_batches(_examples(3), options, False)  # one batch of 3
    reported = model.evaluate(batches, verbose=0, return_dict=True)
    (images, targets), = list(batches)
    outputs = model(images, training=False)
    expected = {name: float(loss(targets[name], outputs[name])) for name, loss in losses.items()}
    assert reported["loss"] == pytest.approx(sum(expected.values()), rel=1e-4)
    # with a generator of unknown length these were half their value (an empty extra step)
    assert reported["classes_loss"] == pytest.approx(expected["classes"], rel=1e-4)
    assert reported["boxes_loss"] == pytest.approx(expected["boxes"], rel=1e-4)


def test_pipeline_options_refuse_anchors_of_another_size_and_unknown_augmentations():
    with pytest.raises(ValueError, match="anchors are for 320-pixel images"):
        DetectionPipelineOptions(160, 4, ssdlite_anchors(320))
    with pytest.raises(ValueError, match="augment must be one of"):
        _options(augment="mosaic")
    with pytest.raises(ValueError, match="no detection examples"):
        detection_batches([], _options(), True)
    with pytest.raises(ValueError, match="loader must be one of"):
        _options(loader="torch")


def test_smaller_anchors_cover_small_objects_better():
    side = 320
    centres = np.stack(np.meshgrid(np.arange(20, 300, 23), np.arange(20, 300, 23)), -1).reshape(-1, 2)
    boxes = np.concatenate([centres - 12, centres + 12], axis=1) / side  # 24-pixel objects
    reference = anchor_coverage(boxes, ssdlite_anchors(side).boxes())
    smaller = anchor_coverage(boxes, ssdlite_anchors(side, 0.6).boxes())
    assert 0 <= reference < smaller <= 1
    with pytest.raises(ValueError, match="no boxes"):
        anchor_coverage(np.zeros((0, 4)), ssdlite_anchors(side).boxes())


@pytest.mark.parametrize("aerial", [False, True])
@pytest.mark.parametrize("loader", ["tf.data", "python"])
def test_segmentation_augmentation_keeps_image_and_mask_aligned(aerial, loader):
    rng = np.random.default_rng(1)
    mask = np.zeros((96, 80), np.uint8)
    for _ in range(6):
        y, x = rng.integers(0, 70, 2)
        mask[y:y + 20, x:x + 14] = 1
    mask[:4] = 255  # ignored rows stay ignored
    image = np.repeat((mask == 1)[..., None] * 255, 3, axis=-1).astype(np.uint8)
    options = SegmentationPipelineOptions(64, 2, aerial=aerial, repeats=3, seed=5, loader=loader)
    batches = _arrays(segmentation_batches([{"image": image, "mask": mask}], options, True))
    assert len(batches) == 1  # 1 example x 3 repeats, batch 2, last dropped
    images, masks = batches[0]
    assert images.shape == (2, 64, 64, 3) and masks.shape == (2, 64, 64)
    assert set(np.unique(masks)) <= {0, 1, 255}
    bright = images[..., 0] > 0  # MobileNet range: -1 black, +1 white
    labelled = masks != 255
    agreement = (bright == (masks == 1))[labelled].mean()
    assert agreement > 0.95
    evaluated = _arrays(segmentation_batches([{"image": image, "mask": mask}], options, False))
    nearest = tf.image.resize(mask[..., None], (64, 64), method="nearest").numpy()[..., 0]
    np.testing.assert_array_equal(evaluated[0][1][0], nearest)


def test_both_loaders_give_the_same_segmentation_batches():
    rng = np.random.default_rng(2)
    examples = [{"image": rng.integers(0, 256, (50 + 7 * n, 70, 3), dtype=np.uint8),
                 "mask": rng.integers(0, 4, (50 + 7 * n, 70), dtype=np.uint8)} for n in range(5)]
    made = {}
    for loader in ("tf.data", "python"):
        options = SegmentationPipelineOptions(48, 2, repeats=2, seed=7, loader=loader)
        made[loader] = (_arrays(segmentation_batches(examples, options, True, epoch=3))
                        + _arrays(segmentation_batches(examples, options, False)))
    assert len(made["python"]) == 5 + 3  # 10 / 2 training batches, 5 eval in 3
    for a, b in zip(made["tf.data"], made["python"]):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])

"""training.deepforest_gpu's NumPy parts: the 8 symmetries, the colour distortion, the
batches and their targets (the GPU runs themselves need a GPU machine)."""

import numpy as np
import pytest

from keras_coordatt.tasks import SSDAnchors
from keras_coordatt.tasks import decode_boxes
from training.deepforest_gpu import AugmentedTiles
from training.deepforest_gpu import dihedral_variant
from training.deepforest_gpu import main
from training.deepforest_gpu import photometric
from training.deepforest_gpu import symmetric_variants

ANCHORS = SSDAnchors(image_size=32, feature_sizes=(4, 2), steps=(8, 16), min_sizes=(8, 16),
                     max_sizes=(16, 24), aspect_ratios=((), ()))


def white_boxes(side, boxes):
    image = np.zeros((side, side, 3), np.uint8)
    for x1, y1, x2, y2 in np.asarray(boxes, int):
        image[y1:y2, x1:x2] = 255
    return image


def test_each_symmetry_moves_the_boxes_with_the_pixels_and_all_eight_differ():
    boxes = np.array([[2, 3, 12, 7], [20, 10, 26, 30]], np.float32)
    image = white_boxes(32, boxes)
    seen = set()
    for k in range(8):
        moved, moved_boxes = dihedral_variant(image, boxes, k)
        np.testing.assert_array_equal(moved, white_boxes(32, moved_boxes))
        seen.add(moved.tobytes())
    assert len(seen) == 8
    assert dihedral_variant(image, np.zeros((0, 4)), 5)[1].shape == (0, 4)


def test_the_colour_distortion_keeps_the_range_grey_stays_grey_and_the_seed_repeats_it():
    images = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3)).astype(np.uint8)
    first = photometric(images, np.random.default_rng(1))
    assert first.dtype == np.float32 and 0 <= first.min() and first.max() <= 255
    np.testing.assert_array_equal(first, photometric(images, np.random.default_rng(1)))
    assert not np.allclose(first, images)
    grey = np.full((8, 4, 4, 3), 90, np.uint8)
    out = photometric(grey, np.random.default_rng(2))
    np.testing.assert_allclose(out, out[..., :1].repeat(3, -1), atol=1e-3)


def tiles():
    boxes = [np.array([[2, 2, 10, 10]], np.float32), np.array([[16, 8, 30, 22]], np.float32),
             np.zeros((0, 4), np.float32)]
    return [{"image": white_boxes(32, b), "boxes": b, "labels": np.zeros(len(b), np.int32)}
            for b in boxes]


def test_variant_targets_decode_to_the_moved_boxes():
    images, classes, boxes = symmetric_variants(tiles(), ANCHORS.boxes(), 0.5)
    assert images.shape == (24, 32, 32, 3) and classes.shape == (24, len(ANCHORS.boxes()))
    assert not classes[16:].any()  # the tile without crowns: background everywhere
    for row in range(16):
        tile, k = divmod(row, 8)
        _, moved = dihedral_variant(tiles()[tile]["image"], tiles()[tile]["boxes"], k)
        positive = classes[row] > 0
        assert positive.any() and (boxes[row][positive, 4] == 1).all()
        decoded = np.asarray(decode_boxes(boxes[row][positive, :4], ANCHORS.boxes()[positive]))
        np.testing.assert_allclose(decoded * 32, np.repeat(moved, positive.sum(), 0), atol=1e-3)


def test_batches_pair_each_image_with_its_variant_targets_and_repeat_per_seed_and_epoch():
    images, classes, boxes = symmetric_variants(tiles(), ANCHORS.boxes(), 0.5)
    batches = AugmentedTiles(images, classes, boxes, 2, seed=3, pixel_range=(-1.0, 1.0))
    assert len(batches) == 1  # 3 tiles, batches of 2, the partial one dropped
    x, y = batches[0]
    assert x.shape == (2, 32, 32, 3) and x.min() >= -1 and x.max() <= 1
    for image, target in zip(x, y["classes"]):
        row = next(r for r in range(len(images)) if (classes[r] == target).all()
                   and np.array_equal(images[r] > 127, image > 0))
        assert row is not None
    again = AugmentedTiles(images, classes, boxes, 2, seed=3, pixel_range=(-1.0, 1.0))
    np.testing.assert_array_equal(again[0][0], x)
    batches.on_epoch_end()
    assert not np.array_equal(batches[0][0], x)
    with pytest.raises(ValueError, match="3 tiles are fewer than one batch of 4"):
        AugmentedTiles(images, classes, boxes, 4, seed=0, pixel_range=(-1.0, 1.0))


def test_training_without_prepared_data_says_how_to_prepare_it(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nothing"), "--output", str(tmp_path)]) != 0
    assert "training.deepforest_gpu prepare --data" in capsys.readouterr().err

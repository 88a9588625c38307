"""The NumPy augmentations (data.core.arrays, data.detection.augment, data.segmentation.augment):
TensorFlow's image ops reproduced, boxes and masks moved with the pixels, draws from the rng."""

import itertools

import numpy as np
import pytest

from keras_coordatt.data.core.arrays import adjust_brightness
from keras_coordatt.data.core.arrays import adjust_contrast
from keras_coordatt.data.core.arrays import adjust_hue
from keras_coordatt.data.core.arrays import adjust_saturation
from keras_coordatt.data.core.arrays import hsv_to_rgb
from keras_coordatt.data.core.arrays import network_input
from keras_coordatt.data.core.arrays import resize_bilinear
from keras_coordatt.data.core.arrays import resize_nearest
from keras_coordatt.data.core.arrays import rgb_to_hsv
from keras_coordatt.data.detection.augment import CROP_TRIALS
from keras_coordatt.data.detection.augment import MEAN_PIXEL
from keras_coordatt.data.detection.augment import MIN_IOU_CHOICES
from keras_coordatt.data.detection.augment import _crop_window
from keras_coordatt.data.detection.augment import augment_example
from keras_coordatt.data.detection.augment import dihedral
from keras_coordatt.data.detection.augment import flip
from keras_coordatt.data.detection.augment import min_iou_crop
from keras_coordatt.data.detection.augment import photometric_distortion
from keras_coordatt.data.detection.augment import zoom_out
from keras_coordatt.data.segmentation.augment import IGNORE_LABEL
from keras_coordatt.data.segmentation.augment import augment_pair
from keras_coordatt.data.segmentation.augment import resize_pair
from keras_coordatt.tasks.boxes import box_iou


def _colours(seed=0, shape=(40, 56, 3)):
    """Random colours in [0, 1] with greys, black, white and ties between channels."""
    x = np.random.default_rng(seed).random(shape).astype(np.float32)
    x[0, :8] = 0.5
    x[1, :8] = 0.0
    x[2, :8] = 1.0
    x[3, :8] = [0.3, 0.3, 0.7]
    x[4, :8] = [0.7, 0.3, 0.7]
    x[5, :8] = [0.2, 0.7, 0.7]
    return x


def _beyond_range(x):
    """Values a little outside [0, 1], as brightness and contrast leave them for the next step."""
    contrasted = (x - x.mean(axis=(0, 1))) * 1.5 + x.mean(axis=(0, 1))
    return [x + 0.12, x - 0.12, contrasted + 0.1, contrasted - 0.1]


ADJUSTMENTS = [("brightness", adjust_brightness, "adjust_brightness", (-0.12, 0.05)),
               ("contrast", adjust_contrast, "adjust_contrast", (0.5, 1.0, 1.4)),
               ("saturation", adjust_saturation, "adjust_saturation", (0.0, 0.5, 1.5, 3.0)),
               ("hue", adjust_hue, "adjust_hue", (-0.05, 0.0, 0.03, 0.05, 0.5, -0.9))]


@pytest.mark.parametrize("name, ours, theirs, amounts", ADJUSTMENTS,
                         ids=[a[0] for a in ADJUSTMENTS])
def test_colour_adjustments_give_what_tf_image_gives_in_and_beyond_0_1(name, ours, theirs, amounts):
    tf = pytest.importorskip("tensorflow")
    for x in [_colours(0), _colours(1)] + _beyond_range(_colours(2)):
        for amount in amounts:
            expected = getattr(tf.image, theirs)(x, amount).numpy()
            got = ours(x, amount)
            assert got.dtype == np.float32 and got.shape == x.shape
            # measured: 0 for all but contrast (1.2e-7: TF sums the mean in float32)
            np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=f"{name} {amount}")


def test_hsv_conversions_agree_with_tensorflows_and_invert_each_other():
    tf = pytest.importorskip("tensorflow")
    x = _colours(3)
    hsv = rgb_to_hsv(x)
    assert hsv[..., 0].min() >= 0 and hsv[..., 0].max() < 1
    np.testing.assert_allclose(hsv, tf.image.rgb_to_hsv(x).numpy(), atol=1e-6)
    np.testing.assert_allclose(hsv_to_rgb(hsv), tf.image.hsv_to_rgb(hsv).numpy(), atol=1e-6)
    np.testing.assert_allclose(hsv_to_rgb(hsv), x, atol=1e-6)
    np.testing.assert_array_equal(rgb_to_hsv(np.zeros((2, 3), np.float32)), 0)  # no 0/0


def test_saturation_and_hue_leave_greys_grey():
    grey = np.repeat(np.linspace(-0.1, 1.1, 24, dtype=np.float32)[:, None, None], 3, axis=-1)
    for changed in (adjust_saturation(grey, 1.5), adjust_saturation(grey, 0.3),
                    adjust_hue(grey, 0.05), adjust_hue(grey, -0.4)):
        np.testing.assert_array_equal(changed[..., 0], changed[..., 1])
        np.testing.assert_array_equal(changed[..., 1], changed[..., 2])
    np.testing.assert_array_equal(adjust_hue(grey, 0.3), grey)


@pytest.mark.parametrize("size, out", [
    ((7, 5), (13, 11)), ((13, 11), (7, 5)), ((50, 37), (16, 16)), ((16, 16), (50, 37)),
    ((3, 300), (299, 4)), ((21, 9), (21, 9)), ((375, 500), (320, 320)), ((1, 1), (5, 3))])
def test_nearest_resize_picks_the_pixels_tensorflow_picks(size, out):
    tf = pytest.importorskip("tensorflow")
    mask = np.random.default_rng(sum(size)).integers(0, 256, size, dtype=np.uint8)
    expected = tf.image.resize(mask[..., None], out, method="nearest").numpy()
    np.testing.assert_array_equal(resize_nearest(mask[..., None], *out), expected)
    got = resize_nearest(mask, *out)
    assert got.dtype == np.uint8 and got.shape == out
    np.testing.assert_array_equal(got, expected[..., 0])


def _smooth(height, width):
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    waves = np.sin(xs / 23)[..., None] * np.cos(ys / 17)[..., None] * np.float32([1, 0.5, -1])
    return (127.5 + 127.5 * waves).astype(np.float32)


@pytest.mark.parametrize("size, out", [((375, 500), (320, 320)), ((150, 200), (320, 320)),
                                       ((97, 61), (13, 200))])
def test_bilinear_resize_is_within_a_hundredth_of_tensorflows_antialiased_resize(size, out):
    tf = pytest.importorskip("tensorflow")
    noise = np.random.default_rng(0).uniform(0, 255, size + (3,)).astype(np.float32)
    for image in (noise, _smooth(*size)):
        got = resize_bilinear(image, *out)
        assert got.dtype == np.float32 and got.shape == out + (3,)
        expected = tf.image.resize(image, out, antialias=True).numpy()
        # Measured on 0..255 images (TF 2.21, Pillow 13): shrinking 6e-5, growing 200x150
        # -> 320x320 3.7e-3 on noise, 1.4e-4 smooth; the bound leaves room for other versions.
        np.testing.assert_allclose(got, expected, atol=1e-2)


def test_bilinear_resize_to_the_same_size_is_a_copy_and_shrinking_averages():
    image = np.random.default_rng(0).uniform(0, 255, (32, 24, 3)).astype(np.float32)
    same = resize_bilinear(image, 32, 24)
    np.testing.assert_array_equal(same, image)
    assert same is not image and not np.shares_memory(same, image)
    stripes = np.zeros((64, 64, 1), np.float32)
    stripes[:, ::2] = 255.0  # one-pixel stripes: sampling without the filter keeps 0 or 255
    np.testing.assert_allclose(resize_bilinear(stripes, 16, 16)[2:-2, 2:-2], 127.5, atol=0.01)


@pytest.mark.parametrize("pixel_range", [(-1.0, 1.0), (0.0, 255.0),
                                         ((-2.1, -2.0, -1.8), (2.2, 2.4, 2.6))])
def test_the_network_input_is_what_tensorflow_stretches_and_maps(pixel_range):
    tf = pytest.importorskip("tensorflow")
    from keras_coordatt.preprocessing import stretch_to_input

    image = np.random.default_rng(0).uniform(-20, 275, (75, 100, 3)).astype(np.float32)
    got = network_input(image, 64, pixel_range)
    assert got.dtype == np.float32 and got.shape == (64, 64, 3)
    expected = np.asarray(stretch_to_input(tf.constant(image), 64, pixel_range))
    # the bilinear bound above (1e-2 of 255), in the range's units (a span up to 4.8 here)
    np.testing.assert_allclose(got, expected, atol=1e-2 * 4.8 / 255 + 1e-6)


def _scene(height=90, width=120, boxes=((30, 20, 70, 50),)):
    """A black image with the boxes painted: channel 0 white, channel 1 the box's number + 1."""
    image = np.zeros((height, width, 3), np.float32)
    for number, (x1, y1, x2, y2) in enumerate(boxes):
        image[y1:y2, x1:x2, 0] = 255.0
        image[y1:y2, x1:x2, 1] = number + 1
    return image, np.array(boxes, np.float32).reshape(-1, 4)


def _bright_box(image, channel=0, value=None):
    region = image[..., channel] > 127 if value is None else image[..., channel] == value
    ys, xs = np.nonzero(region)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_geometric_augmentations_move_the_boxes_with_the_pixels(seed):
    image, boxes = _scene()
    for transform in (lambda i, b, r: flip(i, b, r, horizontal=True),
                      lambda i, b, r: flip(i, b, r, horizontal=False),
                      dihedral,
                      lambda i, b, r: zoom_out(i, b, r, probability=1.0)):
        moved_image, moved_boxes = transform(image, boxes, np.random.default_rng([seed, 7]))
        np.testing.assert_allclose(moved_boxes[0], _bright_box(moved_image), atol=1)


def test_zoom_out_fills_the_canvas_with_the_mean_pixel_and_keeps_the_image():
    image, boxes = _scene()
    canvas, moved = zoom_out(image, boxes, np.random.default_rng(3), max_ratio=3.0, probability=1.0)
    assert 90 <= canvas.shape[0] < 270 and 120 <= canvas.shape[1] < 360
    assert canvas.shape[0] / 90 == pytest.approx(canvas.shape[1] / 120, abs=0.02)  # one ratio
    left, top = (moved[0, :2] - boxes[0, :2]).astype(int)
    np.testing.assert_array_equal(canvas[top:top + 90, left:left + 120], image)
    outside = np.ones(canvas.shape[:2], bool)
    outside[top:top + 90, left:left + 120] = False
    np.testing.assert_array_equal(canvas[outside], np.broadcast_to(MEAN_PIXEL, (outside.sum(), 3)))
    unchanged, same = zoom_out(image, boxes, np.random.default_rng(3), probability=0.0)
    np.testing.assert_array_equal(unchanged, image)
    np.testing.assert_array_equal(same, boxes)


def _dihedral_group(image):
    turns = [np.rot90(image, k) for k in range(4)]
    return turns + [t[:, ::-1] for t in turns]


def test_dihedral_reaches_all_8_symmetries_and_nothing_else():
    image, boxes = _scene(height=20, width=30, boxes=((2, 3, 9, 7),))
    image[0, 0, 2] = 255.0  # no symmetry of the scene maps it to itself
    group = [g.tobytes() for g in _dihedral_group(image)]
    assert len(set(group)) == 8
    seen = set()
    for seed in range(64):
        moved, moved_boxes = dihedral(image, boxes, np.random.default_rng(seed))
        assert np.ascontiguousarray(moved).tobytes() in group
        np.testing.assert_allclose(moved_boxes[0], _bright_box(moved), atol=1)
        seen.add(np.ascontiguousarray(moved).tobytes())
    assert len(seen) == 8


# Four objects, apart, so each crop keeps some and cuts others.
OBJECTS = ((10, 10, 50, 40), (70, 15, 110, 60), (20, 55, 60, 85), (80, 70, 115, 88))


@pytest.mark.parametrize("seed", range(12))
def test_the_min_iou_crop_keeps_the_boxes_whose_centre_is_inside_clipped_to_it(seed):
    image, boxes = _scene(boxes=OBJECTS)
    labels = np.array([3, 1, 4, 1], np.int32)
    window, keep, minimum, found = _crop_window(90, 120, boxes, np.random.default_rng([seed, 2]))
    cropped, kept, kept_labels = min_iou_crop(image, boxes, labels,
                                              np.random.default_rng([seed, 2]))
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    inside = np.all((centres > window[:2]) & (centres < window[2:]), axis=1)
    np.testing.assert_array_equal(keep, inside if found else np.ones(4, bool))
    np.testing.assert_array_equal(kept_labels, labels[keep])
    left, top = int(window[0]), int(window[1])
    assert cropped.shape[:2] == (max(int(window[3]), top + 1) - top,
                                 max(int(window[2]), left + 1) - left)
    np.testing.assert_array_equal(cropped, image[top:top + cropped.shape[0],
                                                 left:left + cropped.shape[1]])
    assert kept.dtype == np.float32 and kept.shape == (keep.sum(), 4)
    assert (kept >= 0).all() and (kept[:, [0, 2]] <= cropped.shape[1]).all()
    assert (kept[:, [1, 3]] <= cropped.shape[0]).all()
    for number, box in zip(np.flatnonzero(keep), kept):  # each kept box where its pixels are
        np.testing.assert_allclose(box, _bright_box(cropped, 1, number + 1), atol=1)


def test_the_min_iou_crop_meets_its_drawn_minimum_or_keeps_the_image():
    _, boxes = _scene(boxes=OBJECTS[:2])
    minimums, crops = set(), 0
    for seed in range(120):
        window, keep, minimum, found = _crop_window(90, 120, boxes, np.random.default_rng(seed))
        minimums.add(minimum)
        if not found:
            np.testing.assert_array_equal(window, [0, 0, 120, 90])
            assert keep.all()
            continue
        crops += 1
        assert minimum != 0.0  # the draw that says keep never crops
        assert box_iou(window[None], boxes.astype(np.float64)).min() >= minimum
        width, height = window[2] - window[0], window[3] - window[1]
        assert 0.5 <= height / width <= 2 and width >= 0.3 * 120 - 1e-9 and height >= 0.3 * 90
        assert 0 <= window[0] and window[2] <= 120 and 0 <= window[1] and window[3] <= 90
        assert keep.any()
    assert minimums == {0.0, -1.0, *MIN_IOU_CHOICES} and 20 < crops < 110
    assert CROP_TRIALS == 32


def test_an_image_without_boxes_is_never_cropped():
    image, _ = _scene()
    for seed in range(10):
        cropped, kept, labels = min_iou_crop(image, np.zeros((0, 4), np.float32),
                                             np.zeros(0, np.int32), np.random.default_rng(seed))
        np.testing.assert_array_equal(cropped, image)
        assert kept.shape == (0, 4) and labels.shape == (0,)


def test_the_photometric_distortion_changes_colours_within_0_255_and_greys_stay_grey():
    image = np.random.default_rng(1).uniform(0, 255, (32, 32, 3)).astype(np.float32)
    changed = [photometric_distortion(image, np.random.default_rng(s)) for s in range(8)]
    assert all(c.dtype == np.float32 and 0 <= c.min() and c.max() <= 255 for c in changed)
    assert any(np.abs(c - image).max() > 5 for c in changed)
    grey = np.repeat(np.random.default_rng(2).uniform(0, 255, (16, 16, 1)), 3, -1)
    for seed in range(8):
        distorted = photometric_distortion(grey, np.random.default_rng(seed))
        np.testing.assert_allclose(distorted[..., 0], distorted[..., 1], atol=1e-3)
        np.testing.assert_allclose(distorted[..., 1], distorted[..., 2], atol=1e-3)


def test_the_photometric_steps_come_in_ssds_order_each_half_the_time_in_its_range():
    image = np.random.default_rng(4).uniform(0, 255, (12, 10, 3)).astype(np.float32)
    steps = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
    low, high = (-32 / 255, 0.5, 0.5, -0.05), (32 / 255, 1.5, 1.5, 0.05)
    applied = []
    for seed in range(32):
        draws = np.random.default_rng(seed)  # what the distortion draws: 4 chances, 4 amounts
        chances, amounts = draws.random(4) < 0.5, draws.uniform(low, high)
        x = image / np.float32(255)
        for step, chance, amount in zip(steps, chances, amounts):
            x = step(x, amount) if chance else x
        expected = np.clip(x, 0, 1) * np.float32(255)
        np.testing.assert_array_equal(photometric_distortion(image, np.random.default_rng(seed)),
                                      expected)
        applied.append(chances)
    assert 0 < np.mean(applied, axis=0).min() and np.mean(applied, axis=0).max() < 1


@pytest.mark.parametrize("kind", ["ssd", "aerial"])
def test_an_augmented_example_is_a_function_of_the_generators_seed(kind):
    image, boxes = _scene(boxes=OBJECTS)
    image += np.random.default_rng(0).uniform(0, 50, image.shape).astype(np.float32)
    labels = np.arange(4, dtype=np.int32)
    runs = [augment_example(image, boxes, labels, np.random.default_rng([9, n]), kind)
            for n in (0, 0, 1, 2, 3)]
    for got, again in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(got, again)
    assert not all(np.array_equal(runs[0][0], other[0]) for other in runs[2:])
    for out_image, out_boxes, out_labels in runs:
        assert out_image.dtype == np.float32 and out_image.ndim == 3 and out_image.shape[2] == 3
        assert out_boxes.dtype == np.float32 and out_labels.dtype == np.int32
        assert out_boxes.shape == (len(out_labels), 4)
        if kind == "aerial":  # no rescale and no crop: the same objects, sides maybe swapped
            np.testing.assert_array_equal(out_labels, labels)
            assert sorted(out_image.shape[:2]) == [90, 120]
            sides = np.sort(out_boxes[:, 2:] - out_boxes[:, :2], axis=1)
            np.testing.assert_allclose(sides, np.sort(boxes[:, 2:] - boxes[:, :2], axis=1))
    with pytest.raises(ValueError, match="kind must be one of"):
        augment_example(image, boxes, labels, np.random.default_rng(0), "mosaic")


def _class_scene(height=72, width=88, seed=0):
    """Blocks of classes 0..3 with an ignored strip; the red channel says the class (x 60)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    for y, x in itertools.product(range(0, height, 24), range(0, width, 22)):
        mask[y:y + 24, x:x + 22] = rng.integers(0, 4)
    mask[:3] = IGNORE_LABEL
    image = np.zeros((height, width, 3), np.float32)
    image[..., 0] = np.where(mask == IGNORE_LABEL, 0, mask * 60.0)
    image[..., 1] = 100.0
    return image, mask


@pytest.mark.parametrize("aerial", [False, True])
def test_pair_augmentation_keeps_image_and_mask_aligned(aerial):
    image, mask = _class_scene()
    for seed in range(6):
        out_image, out_mask = augment_pair(image, mask, np.random.default_rng(seed), 48,
                                           aerial=aerial)
        assert out_image.shape == (48, 48, 3) and out_image.dtype == np.float32
        assert out_mask.shape == (48, 48) and out_mask.dtype == np.uint8
        assert set(np.unique(out_mask)) <= {0, 1, 2, 3, IGNORE_LABEL}
        labelled = out_mask != IGNORE_LABEL
        said = np.rint(out_image[..., 0] / 60.0)
        assert (said == out_mask)[labelled].mean() > 0.9  # edges blur in the bilinear resize


def test_pair_augmentation_pads_with_zeros_and_the_ignore_label():
    image = np.full((30, 20, 3), 200.0, np.float32)
    mask = np.ones((30, 20), np.uint8)
    for seed in range(4):
        out_image, out_mask = augment_pair(image, mask, np.random.default_rng(seed), 64,
                                           scale_range=(1.5, 1.5))  # 45 x 30 on 64 x 64
        padding = out_mask == IGNORE_LABEL
        assert padding.sum() == 64 * 64 - 45 * 30
        np.testing.assert_array_equal(out_image[padding], 0.0)
        np.testing.assert_allclose(out_image[~padding], 200.0, atol=1e-3)
        assert set(np.unique(out_mask[~padding])) == {1}


def test_pair_augmentation_without_rescale_crops_the_image_or_its_mirror():
    image, mask = _class_scene(seed=1)
    out_image, out_mask = augment_pair(image, mask[..., None], np.random.default_rng(5), 60,
                                       scale_range=(1.0, 1.0))
    again = augment_pair(image, mask, np.random.default_rng(5), 60, scale_range=(1.0, 1.0))
    np.testing.assert_array_equal(out_image, again[0])
    np.testing.assert_array_equal(out_mask, again[1])
    windows = [(image[t:t + 60, l:l + 60], mask[t:t + 60, l:l + 60])
               for t in range(13) for l in range(29)]
    assert any(np.array_equal(out_image, w[:, ::-1]) and np.array_equal(out_mask, m[:, ::-1])
               or np.array_equal(out_image, w) and np.array_equal(out_mask, m) for w, m in windows)


def test_the_eval_resize_gives_the_side_with_nearest_labels():
    image, mask = _class_scene()
    out_image, out_mask = resize_pair(image, mask, 40)
    assert out_image.shape == (40, 40, 3) and out_image.dtype == np.float32
    np.testing.assert_array_equal(out_mask, resize_nearest(mask, 40, 40))
    np.testing.assert_array_equal(out_image, resize_bilinear(image, 40, 40))

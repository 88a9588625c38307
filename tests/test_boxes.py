"""The library's one IoU (keras_coordatt.tasks.boxes), the same in NumPy, keras.ops and tf."""

import doctest

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_coordatt.tasks import boxes as boxes_module
from keras_coordatt.tasks.boxes import box_intersection
from keras_coordatt.tasks.boxes import box_iou

# A 2x2 square, the same square shifted right by one (overlap 2 of union 6), one far away.
SQUARE = [0.0, 0.0, 2.0, 2.0]
SHIFTED = [1.0, 0.0, 3.0, 2.0]
FAR = [10.0, 10.0, 12.0, 13.0]


def in_numpy(a, b):
    return box_iou(np.asarray(a, np.float32), np.asarray(b, np.float32))


def in_keras_ops(a, b):
    return ops.convert_to_numpy(box_iou(ops.convert_to_tensor(a, "float32"),
                                        ops.convert_to_tensor(b, "float32"), ops))


def in_tf_graph(a, b):
    return tf.function(lambda x, y: box_iou(x, y, tf))(tf.constant(a, tf.float32),
                                                       tf.constant(b, tf.float32)).numpy()


KINDS = [in_numpy, in_keras_ops, in_tf_graph]


@pytest.mark.parametrize("iou", KINDS)
def test_a_known_overlap_is_its_intersection_over_its_union(iou):
    np.testing.assert_allclose(iou([SQUARE], [SHIFTED]), [[2 / 6]], rtol=1e-6)


@pytest.mark.parametrize("iou", KINDS)
def test_disjoint_boxes_have_iou_zero_and_identical_ones_one(iou):
    np.testing.assert_allclose(iou([SQUARE, FAR], [FAR, SQUARE]), [[0, 1], [1, 0]], atol=1e-7)


@pytest.mark.parametrize("iou", KINDS)
def test_boxes_without_area_have_iou_zero_not_nan(iou):
    point = [1.0, 1.0, 1.0, 1.0]
    np.testing.assert_array_equal(iou([point], [point, SQUARE]), [[0, 0]])


def test_the_result_pairs_every_box_of_a_with_every_box_of_b_batched_too():
    a = np.array([[SQUARE, FAR, SHIFTED]], np.float32)  # (1, 3, 4)
    b = np.array([SHIFTED, SQUARE], np.float32)  # (2, 4)
    assert box_iou(a, b).shape == (1, 3, 2)
    np.testing.assert_allclose(box_iou(a, b)[0, :, 1], [1, 0, 2 / 6], rtol=1e-6)
    np.testing.assert_array_equal(box_intersection(a, b)[0, :, 0], [2, 0, 4])


def test_the_docstring_example_gives_what_it_shows():
    result = doctest.testmod(boxes_module)
    assert (result.attempted, result.failed) == (1, 0)

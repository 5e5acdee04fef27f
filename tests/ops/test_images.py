"""`ops.images.paste` against numpy slice assignment."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ssd.ops.images import paste


@pytest.mark.parametrize(
    "top, left, height, width",
    [(1, 2, 2, 3), (0, 0, 2, 2), (3, 4, 2, 2), (0, 0, 5, 6), (2, 3, 0, 2)],
    ids=["inside", "top-left corner", "bottom-right corner", "whole image", "empty block"],
)
def test_paste_writes_the_block_and_keeps_every_other_pixel(top, left, height, width):
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (5, 6, 3)).astype(np.float32)
    block = rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
    want = image.copy()
    want[top:top + height, left:left + width] = block
    got = paste(tf.constant(image), tf.constant(block), tf.constant(top), tf.constant(left))
    np.testing.assert_array_equal(got.numpy(), want)


def test_paste_works_inside_a_graph_with_unknown_block_size():
    @tf.function(input_signature=[tf.TensorSpec([None, None, 1], tf.float32)])
    def into_zeros(block):
        return paste(tf.zeros([4, 4, 1]), block, tf.constant(1), tf.constant(1))

    got = into_zeros(tf.ones([2, 3, 1])).numpy()[..., 0]
    np.testing.assert_array_equal(got, [[0, 0, 0, 0], [0, 1, 1, 1], [0, 1, 1, 1], [0, 0, 0, 0]])

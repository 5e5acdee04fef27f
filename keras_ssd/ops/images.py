"""Image ops shared by the data code and export: the one resize to the network input
(training, evaluation, export) and pasting a block into an image."""

import tensorflow as tf


def resize_to_input(images, image_size):
    """Resizes images to the square network input.

    Bilinear with half-pixel centres and no antialiasing, the same in the
    training and evaluation pipelines and inside every exported model, so an
    exported model sees exactly what evaluation saw. Normalised boxes are the
    same before and after.

    Args:
        images: uint8 or float `[H, W, 3]` or `[B, H, W, 3]` RGB in 0..255.
        image_size: side S of the network input in pixels.

    Returns:
        float32 `[S, S, 3]` or `[B, S, S, 3]` RGB in 0..255.
    """
    return tf.image.resize(tf.cast(images, tf.float32), [image_size, image_size], method="bilinear")


def paste(image, block, top, left):
    """`image` (`[H, W, C]`) with `block` (`[h, w, C]`, same dtype) written over it.

    The block's top-left pixel lands at row `top`, column `left` (int32
    scalars); the block must fit inside the image. Built from two
    concatenations, copies of whole row runs, which on CPU are several times
    cheaper than a broadcasting select over the whole image.
    """
    bottom, right = top + tf.shape(block)[0], left + tf.shape(block)[1]
    rows = tf.concat([image[top:bottom, :left], block, image[top:bottom, right:]], axis=1)
    return tf.concat([image[:top], rows, image[bottom:]], axis=0)

"""The one resize from an image to the network input, used by training, evaluation and export."""

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

"""Image inputs of exported models: resizing and decoding inside the graph.

Exported models take raw RGB images of any size and resize them to the
network's square input themselves, with `keras_ssd.ops.images.resize_to_input`,
the resize of the training and evaluation pipelines, so an exported model
scores exactly what evaluation scored. Normalised `[ymin, xmin, ymax, xmax]` boxes are the same
in the original and the resized image, so no box rescaling is needed.
"""

import tensorflow as tf

from keras_ssd.ops.images import resize_to_input


def resize_images(images, image_size):
    """Resizes a batch of RGB images to the square network input.

    Args:
        images: uint8 or float `[B, H, W, 3]` RGB in 0..255, any H, W > 0.
        image_size: side S of the network input in pixels.

    Returns:
        float32 `[B, S, S, 3]` RGB in 0..255 (bilinear, no antialiasing).

    Raises:
        tf.errors.InvalidArgumentError: not rank 4, not 3 channels, or a zero
            height or width (the message gives the bad value).
    """
    images = tf.convert_to_tensor(images)
    shape = tf.shape(images)
    # Slices, not indices, so the check itself is safe at any rank.
    valid = (
        tf.equal(tf.rank(images), 4)
        & tf.reduce_all(tf.equal(shape[-1:], 3))
        & tf.reduce_all(shape[1:3] > 0)
    )
    check = tf.debugging.Assert(
        valid,
        ["images must be a batch [B, H, W, 3] of RGB images with H, W > 0; got shape", shape],
        summarize=5,
    )
    with tf.control_dependencies([check]):
        return resize_to_input(images, image_size)


def decode_images(image_bytes, image_size):
    """Decodes encoded images and resizes each to the network input.

    Args:
        image_bytes: string `[B]`, each a JPEG, PNG, GIF (first frame) or BMP
            file's bytes; grey and RGBA images are converted to RGB.
        image_size: side S of the network input in pixels.

    Returns:
        float32 `[B, S, S, 3]` RGB in 0..255.

    Raises:
        tf.errors.InvalidArgumentError: bytes that are not an image in one of
            those formats (TensorFlow's message names the formats).
    """

    def decode_one(data):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        image = tf.ensure_shape(image, [None, None, 3])
        return resize_images(image[None], image_size)[0]

    return tf.map_fn(
        decode_one,
        image_bytes,
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
    )

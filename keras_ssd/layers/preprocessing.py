"""Image preprocessing inside the model, so exported models take raw RGB images."""

import keras
import numpy as np
import tensorflow as tf

# Caffe/Keras VGG16 ImageNet means, in BGR order.
VGG_BGR_MEAN = (103.939, 116.779, 123.68)

# 1x1 convolution kernel [1, 1, in, out] that maps RGB to BGR: out[c] = in[2 - c].
_RGB_TO_BGR = np.eye(3, dtype=np.float32)[::-1].reshape(1, 1, 3, 3).copy()


@keras.saving.register_keras_serializable(package="keras_ssd")
class VGGPreprocessing(keras.layers.Layer):
    """RGB 0..255 -> BGR minus the ImageNet mean, as Keras' VGG16 weights expect.

    Input: uint8 or float `[B, H, W, 3]` RGB in 0..255. Output: float `[B, H, W, 3]`.

    Args:
        mean: per-channel mean in BGR order.
    """

    def __init__(self, mean=VGG_BGR_MEAN, **kwargs):
        super().__init__(**kwargs)
        self.mean = tuple(float(m) for m in mean)

    def call(self, inputs):
        # One 1x1 convolution with a permutation kernel and the negated mean as
        # bias: each output is 1 * x + 0 * y + 0 * z - mean, exactly the channel
        # swap and subtraction, and one fused op (oneDNN, XNNPack, ONNX Runtime).
        # A gather on the channel axis ran 4-5x as long (TensorFlow gathers
        # element by element), and a flip (REVERSE_V2) came out ~47 quantisation
        # steps (RMS) off the float result in int8 TFLite models, costing ~6
        # VOC07 mAP points.
        images = tf.cast(inputs, self.compute_dtype)
        bgr = tf.nn.conv2d(images, tf.constant(_RGB_TO_BGR, self.compute_dtype), strides=1, padding="VALID")
        return tf.nn.bias_add(bgr, tf.constant([-m for m in self.mean], self.compute_dtype))

    def get_config(self):
        config = super().get_config()
        config.update(mean=list(self.mean))
        return config

"""A 2-D convolution whose dilated form runs as one convolution op."""

import keras
import tensorflow as tf

from keras_ssd import cpu


@keras.saving.register_keras_serializable(package="keras_ssd")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` that runs a dilated convolution as one `Conv2D` op.

    Keras computes a convolution with `dilation_rate > 1` through
    `tf.nn.convolution`, which wraps an undilated convolution in
    SpaceToBatchND / BatchToSpaceND: the convolution then sees a batch of
    dilation^2 times as many small, padded maps. TensorFlow's oneDNN and Eigen
    kernels, XLA, TFLite and ONNX all compute the dilated convolution
    directly; for SSD300's fc6 (3x3, dilation 6, 19x19x512 -> 1024) at batch 8
    the forward and backward pass took 113 ms that way against 446 ms through
    the detour in bf16 with oneDNN (148 against 428 ms in float32).

    TensorFlow's CPU kernels without oneDNN have no gradient for a dilated
    `Conv2D`, so with oneDNN off (`keras_ssd.cpu.onednn_enabled()`) the layer
    keeps Keras' path; undilated, grouped and channels-first convolutions are
    Keras' own call too. The weights, config and outputs are `keras.layers.Conv2D`'s
    (within float rounding), and the class keeps its name, so `.keras` files
    saved with Keras' layer load into this one and back.

    Input/output: float `[B, H, W, C]` -> `[B, H', W', filters]` (channels last).
    """

    def call(self, inputs):
        direct = max(self.dilation_rate) > 1 and self.groups == 1 and self.data_format == "channels_last"
        if not (direct and cpu.onednn_enabled()):
            return super().call(inputs)
        outputs = tf.nn.conv2d(
            inputs,
            tf.convert_to_tensor(self.kernel),
            strides=self.strides,
            padding=self.padding.upper(),
            dilations=self.dilation_rate,
        )
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, tf.convert_to_tensor(self.bias))
        return outputs if self.activation is None else self.activation(outputs)

"""A 2-D convolution whose dilated form runs as one convolution op, with a faster bf16 filter gradient."""

import functools

import keras
import tensorflow as tf

from keras_ssd import cpu
from keras_ssd.ops.filter_gradient import conv2d_tap_gradient

# Smallest Cin * Cout whose filter gradient `tap_filter_gradient` computes: below
# it TensorFlow's oneDNN kernel was faster (see `Conv2D`).
TAP_GRADIENT_MIN_WEIGHTS = 2**17


@functools.cache
def _tap_gradient_machine():
    """True on a CPU-only machine with AVX512_BF16, no AMX and oneDNN on: where the tap gradient was measured faster."""
    return (
        "avx512_bf16" in cpu.kernel_flags()
        and not cpu.has_amx()
        and cpu.onednn_enabled()
        and not tf.config.list_logical_devices("GPU")
    )


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

    In training, a bf16 stride-1 "same" convolution with an odd square kernel
    and at least `TAP_GRADIENT_MIN_WEIGHTS` input x output channels computes
    its filter gradient as one matrix product per kernel tap
    (`keras_ssd.ops.filter_gradient`) on CPUs with AVX512_BF16, no AMX and
    oneDNN on. There TensorFlow's oneDNN kernel for bf16 filter gradients ran
    1.7-2.7x as long as the forward convolution for SSD300's deep layers, and
    the tap products took 9-29% less (`benchmarks/filter_gradient.py`, batch
    8: block4_conv3 93 against 71 ms, fc6 53 against 42 ms). For the wide,
    shallow layers (block1-3) the oneDNN kernel stays faster and is kept.
    Outputs are unchanged; the filter gradient differs by bf16 rounding.

    Input/output: float `[B, H, W, C]` -> `[B, H', W', filters]` (channels last).
    """

    def call(self, inputs, training=None):
        if training and self._tap_gradient(inputs):
            outputs = conv2d_tap_gradient(inputs, tf.convert_to_tensor(self.kernel), self.dilation_rate[0])
        elif max(self.dilation_rate) > 1 and self._channels_last_ungrouped() and cpu.onednn_enabled():
            outputs = tf.nn.conv2d(
                inputs,
                tf.convert_to_tensor(self.kernel),
                strides=self.strides,
                padding=self.padding.upper(),
                dilations=self.dilation_rate,
            )
        else:
            return super().call(inputs)
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, tf.convert_to_tensor(self.bias))
        return outputs if self.activation is None else self.activation(outputs)

    def _channels_last_ungrouped(self):
        return self.groups == 1 and self.data_format == "channels_last"

    def _tap_gradient_shape(self):
        """Whether `conv2d_tap_gradient` computes this convolution: stride 1, "same" (or 1x1), odd square kernel."""
        size, dilation = self.kernel_size, self.dilation_rate
        return (
            self._channels_last_ungrouped()
            and tuple(self.strides) == (1, 1)
            and (self.padding == "same" or tuple(size) == (1, 1))
            and size[0] == size[1] and size[0] % 2 == 1
            and dilation[0] == dilation[1]
        )

    def _tap_gradient(self, inputs):
        """Whether this call's filter gradient is `tap_filter_gradient` (see the class docstring)."""
        return (
            inputs.dtype == tf.bfloat16
            and self._tap_gradient_shape()
            and None not in inputs.shape[1:]
            and inputs.shape[-1] * self.filters >= TAP_GRADIENT_MIN_WEIGHTS
            and _tap_gradient_machine()
        )

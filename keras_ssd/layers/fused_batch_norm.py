"""Batch normalisation that trains with TensorFlow's fused kernel."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_ssd")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose training step runs one fused kernel.

    Keras' layer computes the batch moments and the normalisation with about
    ten element-wise ops and reductions, forward and backward; on a CPU they
    took ~20% of `ssd_tiny`'s training step. In training on a single replica,
    with 4-D NHWC input, `axis=-1`, no mask and no renorm, this layer calls
    `tf.nn.fused_batch_norm` (FusedBatchNormV3 and its fused gradient)
    instead. Everything else is Keras' layer: the weights, the config, the
    moving-average update (`moving = momentum * moving + (1 - momentum) *
    batch`, with the batch's biased variance, as Keras), inference (so the
    exported graphs are unchanged), and training on several replicas
    (`synchronized=True` statistics of the global batch).

    Input/output: float `[B, H, W, C]`.
    """

    def _fused(self, inputs, training, mask):
        if not (training and self.trainable) or mask is not None or self.renorm:
            return False
        if len(inputs.shape) != 4 or self.axis not in (-1, 3):
            return False
        return tf.distribute.get_strategy().num_replicas_in_sync == 1

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        # The kernel takes bf16 input with float32 statistics as it is (the same
        # outputs, gradients and moments as on a float32 copy, without the casts).
        x = inputs if inputs.dtype in (tf.float32, tf.bfloat16) else tf.cast(inputs, tf.float32)
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels])
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True
        )
        # The kernel returns the unbiased variance n / (n - 1) * biased; Keras
        # averages the biased one.
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
        variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)

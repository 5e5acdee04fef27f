"""L2 normalisation with a learnable per-channel scale (ParseNet; SSD section 3.1)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_ssd")
class L2Normalization(keras.layers.Layer):
    """Normalises each location's channel vector to unit L2 norm, then scales it.

    SSD applies it to conv4_3, whose activations are much larger than deeper
    layers'; the scale starts at 20 and is learned per channel.

    Args:
        scale_init: initial value of every channel's scale.
        epsilon: added to the squared norm to keep the division finite.

    Input/output: float `[B, H, W, C]`.
    """

    def __init__(self, scale_init=20.0, epsilon=1e-10, **kwargs):
        super().__init__(**kwargs)
        self.scale_init = scale_init
        self.epsilon = epsilon

    def build(self, input_shape):
        self.scale = self.add_weight(
            name="scale",
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.scale_init),
        )

    def call(self, inputs):
        squared = ops.sum(ops.square(inputs), axis=-1, keepdims=True)
        return inputs * ops.rsqrt(squared + self.epsilon) * ops.cast(self.scale, inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(scale_init=self.scale_init, epsilon=self.epsilon)
        return config

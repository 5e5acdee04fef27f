"""Image preprocessing inside the model, so exported models take raw RGB images."""

import keras
from keras import ops

# Caffe/Keras VGG16 ImageNet means, in BGR order.
VGG_BGR_MEAN = (103.939, 116.779, 123.68)


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
        # A gather, not a flip: in int8 TFLite models the flip (REVERSE_V2)
        # came out ~47 quantisation steps (RMS) off the float result (per
        # tf.lite.experimental.QuantizationDebugger) and cost ~6 VOC07 mAP
        # points; the GATHER that `take` becomes is exact.
        bgr = ops.take(ops.cast(inputs, self.compute_dtype), [2, 1, 0], axis=-1)
        return bgr - ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(mean=list(self.mean))
        return config

"""Custom Keras layers of keras_ssd."""

from keras_ssd.layers.conv2d import Conv2D
from keras_ssd.layers.default_boxes import DefaultBoxes, default_boxes
from keras_ssd.layers.detection_decoder import DetectionDecoder
from keras_ssd.layers.fused_batch_norm import FusedBatchNormalization
from keras_ssd.layers.l2_normalization import L2Normalization
from keras_ssd.layers.preprocessing import VGGPreprocessing

__all__ = [
    "Conv2D",
    "DefaultBoxes",
    "DetectionDecoder",
    "FusedBatchNormalization",
    "L2Normalization",
    "VGGPreprocessing",
    "default_boxes",
]

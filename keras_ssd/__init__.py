"""keras_ssd: the Single Shot MultiBox Detector (Liu et al. 2016) for Keras 3."""

__version__ = "0.1.0"  # before the imports: keras_ssd.export writes it into .tflite metadata

from keras_ssd import convert, data, evaluation, export, optimizers, recipes
from keras_ssd.config import SSDConfig
from keras_ssd.detector import build_detector
from keras_ssd.encoder import TargetEncoder
from keras_ssd.layers import DefaultBoxes, DetectionDecoder, L2Normalization, default_boxes
from keras_ssd.losses import SSDLoss
from keras_ssd.model import SSD, build_ssd
from keras_ssd.transfer import with_num_classes

__all__ = [
    "DefaultBoxes",
    "DetectionDecoder",
    "L2Normalization",
    "SSD",
    "SSDConfig",
    "SSDLoss",
    "TargetEncoder",
    "build_detector",
    "build_ssd",
    "convert",
    "data",
    "default_boxes",
    "evaluation",
    "export",
    "optimizers",
    "recipes",
    "with_num_classes",
]

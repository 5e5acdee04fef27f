"""keras_ssd: the Single Shot MultiBox Detector (Liu et al. 2016) for Keras 3."""

from keras_ssd import convert, data, evaluation, export, optimizers, precision, recipes
from keras_ssd.config import SSDConfig
from keras_ssd.default_box_fit import fit_default_boxes, training_boxes
from keras_ssd.detector import build_detector
from keras_ssd.encoder import TargetEncoder
from keras_ssd.layers import DefaultBoxes, DetectionDecoder, L2Normalization, default_boxes
from keras_ssd.losses import SSDLoss
from keras_ssd.model import SSD, build_ssd
from keras_ssd.transfer import with_num_classes
from keras_ssd.version import __version__ as __version__

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
    "fit_default_boxes",
    "optimizers",
    "precision",
    "recipes",
    "training_boxes",
    "with_num_classes",
]

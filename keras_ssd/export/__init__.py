"""Export and inference: SavedModel for TF Serving, TFLite (float and int8, with metadata), loaders.

Boxes in every output are float32, normalised `[ymin, xmin, ymax, xmax]`;
classes are 0-based object classes.
"""

from keras_ssd.export.images import decode_images, resize_images
from keras_ssd.export.inference import KerasDetector, SavedModelDetector, load_detector
from keras_ssd.export.saved_model import OUTPUT_KEYS, SIGNATURES, export_saved_model
from keras_ssd.export.tflite import QUANTIZATIONS, calibration_images, convert_to_tflite, export_tflite
from keras_ssd.export.tflite_detector import TFLiteDetector
from keras_ssd.export.tflite_metadata import read_detection_metadata

__all__ = [
    "KerasDetector",
    "OUTPUT_KEYS",
    "QUANTIZATIONS",
    "SIGNATURES",
    "SavedModelDetector",
    "TFLiteDetector",
    "calibration_images",
    "convert_to_tflite",
    "decode_images",
    "export_saved_model",
    "export_tflite",
    "load_detector",
    "read_detection_metadata",
    "resize_images",
]

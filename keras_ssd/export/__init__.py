"""Export and inference: SavedModel for TF Serving, TFLite (float and int8, with metadata), ONNX, loaders.

Boxes in every output are float32, normalised `[ymin, xmin, ymax, xmax]`;
classes are 0-based object classes.
"""

from keras_ssd.export.images import decode_images, resize_images
from keras_ssd.export.inference import KerasDetector, SavedModelDetector, load_detector
from keras_ssd.export.onnx import convert_to_onnx, export_onnx
from keras_ssd.export.onnx_detector import OnnxDetector
from keras_ssd.export.saved_model import OUTPUT_KEYS, SIGNATURES, export_saved_model
from keras_ssd.export.tflite import QUANTIZATIONS, calibration_images, convert_to_tflite, export_tflite
from keras_ssd.export.tflite_detector import TFLiteDetector
from keras_ssd.export.tflite_metadata import read_detection_metadata

__all__ = [
    "KerasDetector",
    "OUTPUT_KEYS",
    "OnnxDetector",
    "QUANTIZATIONS",
    "SIGNATURES",
    "SavedModelDetector",
    "TFLiteDetector",
    "calibration_images",
    "convert_to_onnx",
    "convert_to_tflite",
    "decode_images",
    "export_onnx",
    "export_saved_model",
    "export_tflite",
    "load_detector",
    "read_detection_metadata",
    "resize_images",
]

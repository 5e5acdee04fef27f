"""int8 ONNX: the network of an exported `.onnx` detector quantised for ONNX Runtime (QDQ).

ONNX Runtime's static quantisation (`onnxruntime.quantization.quantize_static`)
in QDQ form: weights int8 per output channel, activations uint8 with ranges
calibrated on representative images (min/max), which ONNX Runtime's CPU
provider fuses into its int8 convolution kernels (VNNI / AMX-int8 where the CPU
has them). The input's preprocessing and the post-processing (the decoder's
decode, softmax, top-k and the NMS of `onnx_nms`) stay float32, as in the int8
`.tflite`: quantised scores and boxes would fall on a coarse grid. Inputs and
outputs are those of the float32 file.
"""

import os
import tempfile

import numpy as np

from keras_ssd.export.onnx import INPUT_NAME, require

# Nodes left in float32, by a part of their name: the input's preprocessing layer
# and the detection decoder (its NMS replacement nodes carry the decoder's name too).
FLOAT_SCOPES = ("/preprocessing", "/detection_decoder")


def float_nodes(proto):
    """Names of the nodes of `proto` that stay float32 (`FLOAT_SCOPES`)."""
    return [node.name for node in proto.graph.node if any(scope in node.name for scope in FLOAT_SCOPES)]


def quantize_onnx(proto, calibration):
    """The int8 (QDQ) form of the float32 ONNX detector `proto`.

    Args:
        proto: an `onnx.ModelProto` from `keras_ssd.export.convert_to_onnx`.
        calibration: uint8 `[N, S, S, 3]` representative images at the network
            input size (`keras_ssd.export.calibration_images`), fed one at a time.

    Returns:
        An `onnx.ModelProto` with the same inputs, outputs and metadata.

    Raises:
        ImportError: onnxruntime is not installed.
        ValueError: no calibration images, or images of the wrong shape or dtype.
    """
    onnx, quantization = require("onnx"), require("onnxruntime.quantization")
    calibration = np.asarray(calibration)
    if calibration.dtype != np.uint8 or calibration.ndim != 4 or len(calibration) == 0:
        raise ValueError(
            "calibration must be uint8 [N, S, S, 3] images (N >= 1, e.g. export.calibration_images), got "
            f"{calibration.dtype} {calibration.shape}"
        )
    excluded = float_nodes(proto)
    if not excluded:
        raise ValueError("the ONNX graph has no decoder nodes to keep in float32: not a keras_ssd export")

    class Images(quantization.CalibrationDataReader):
        def __init__(self):
            self.images = iter(calibration)

        def get_next(self):
            image = next(self.images, None)
            return None if image is None else {INPUT_NAME: image[None]}

    with tempfile.TemporaryDirectory() as tmp:
        source, target = os.path.join(tmp, "float32.onnx"), os.path.join(tmp, "int8.onnx")
        with open(source, "wb") as f:
            f.write(proto.SerializeToString())
        quantization.quantize_static(
            source, target, Images(),
            quant_format=quantization.QuantFormat.QDQ,
            activation_type=quantization.QuantType.QUInt8,
            weight_type=quantization.QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=excluded,
        )
        return onnx.load(target)

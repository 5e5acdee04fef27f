"""`OnnxDetector`: an exported `.onnx` SSD run in ONNX Runtime like `keras_ssd.build_detector`'s model."""

import os

from keras_ssd.detections import as_detections
from keras_ssd.export import labels
from keras_ssd.export.onnx import CLASS_NAMES_KEY, INPUT_NAME, require
from keras_ssd.export.saved_model import OUTPUT_KEYS
from keras_ssd.export.tflite_detector import at_input_size, check_images


class OnnxDetector:
    """Runs a `.onnx` file from `keras_ssd.export.export_onnx` in ONNX Runtime (CPU execution provider).

    Args:
        path: the `.onnx` file; class names are read from its metadata, or
            from `<stem>.labels.txt` beside it for a file without them.
        num_threads: intra-op threads; None: all of the machine's cores.

    Attributes:
        image_size: side S of the model's input.
        class_names: list of names, or None when neither holds any.
        session: the `onnxruntime.InferenceSession`.

    Raises:
        ImportError: onnxruntime is not installed.
        ValueError: `path` is missing, not an ONNX model (truncated or another
            kind of file), or has no uint8 `images` input `[B, S, S, 3]` and
            the four detection outputs; the message names the file.
    """

    def __init__(self, path, num_threads=None):
        ort = require("onnxruntime")
        path = str(path)
        if not os.path.isfile(path):
            raise ValueError(f"ONNX model {path!r} does not exist")
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or os.cpu_count()
        state = ort.capi.onnxruntime_pybind11_state  # where onnxruntime's exception types live
        errors = (state.InvalidProtobuf, state.InvalidGraph, state.InvalidArgument, state.Fail,
                  state.NoSuchFile, state.NotImplemented, state.RuntimeException)
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except errors as error:
            raise ValueError(
                f"{path!r} is not an ONNX model ONNX Runtime can load (truncated, or not a .onnx file: "
                f"{error})"
            ) from None
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        spec = inputs.get(INPUT_NAME)
        shape = spec.shape if spec is not None else []
        if (spec is None or spec.type != "tensor(uint8)" or len(shape) != 4 or not isinstance(shape[1], int)
                or set(OUTPUT_KEYS) - outputs):
            raise ValueError(
                f"{path!r} is not an SSD detector exported by keras_ssd (inputs "
                f"{[(i.name, i.type, i.shape) for i in inputs.values()]}, outputs {sorted(outputs)})"
            )
        self.image_size = shape[1]
        names = self.session.get_modelmeta().custom_metadata_map.get(CLASS_NAMES_KEY)
        self.class_names = labels.parse_labels(names) if names else labels.read_labels(
            labels.labels_path_beside(path)
        )

    def __call__(self, images):
        """Detects objects in a batch of images, in one run.

        Args:
            images: uint8 `[B, H, W, 3]` RGB; resized to S x S (bilinear, then
                rounded to uint8) when H or W differs from S.

        Returns:
            dict of numpy arrays, `keras_ssd.detections.as_detections` of the
            graph's four outputs: `detection_boxes` float32 `[B, K, 4]`
            normalised yxyx, `detection_scores` float32 `[B, K]`,
            `detection_classes` int32 `[B, K]` (0-based), `num_detections`
            int32 `[B]`; rows past `num_detections` are zero.

        Raises:
            ValueError: images of the wrong rank, channel count or dtype.
        """
        images = at_input_size(check_images(images), self.image_size)
        values = self.session.run(list(OUTPUT_KEYS), {INPUT_NAME: images})
        return as_detections(dict(zip(OUTPUT_KEYS, values)))

"""`load_detector`: one callable for a `.keras` file, an exported SavedModel, a `.tflite` or a `.onnx` file.

Every detector returned here takes uint8 `[B, H, W, 3]` RGB images of any size
(resized inside, as the exported SavedModel does) and returns numpy arrays:
`detection_boxes` float32 `[B, K, 4]` normalised `[ymin, xmin, ymax, xmax]`,
`detection_scores` float32 `[B, K]`, `detection_classes` int32 `[B, K]`
(0-based), `num_detections` int32 `[B]`, rows past `num_detections` zero: each
ends in `keras_ssd.detections.as_detections`, whatever its runtime returned.
`class_names` holds the names stored with the model (None if there are none).
"""

import os

from keras_ssd.detections import as_detections
from keras_ssd.export import labels, versioning
from keras_ssd.export.onnx_detector import OnnxDetector
from keras_ssd.export.tflite_detector import TFLiteDetector, check_images


class KerasDetector:
    """A `.keras` SSD model wrapped by `keras_ssd.build_detector`, run as a graph.

    The detector runs in a `tf.function`, traced once per input shape (batch
    size): a call costs the network and its post-processing, not Python's op-by-op
    dispatch (SSD300 at batch 1 in bf16 on an AMD EPYC Zen 5: 83 ms a call, 154 ms
    eagerly).

    Args:
        path: a `.keras` file saved from an `SSD` model.
        precision: the network's precision: "auto" (`mixed_bfloat16` on CPUs
            with AVX512_BF16 or AMX, `keras_ssd.precision`) or a policy name;
            `self.precision` holds the `Choice` taken.
        **postprocess: `build_detector` overrides.
    """

    def __init__(self, path, precision="auto", **postprocess):
        import tensorflow as tf

        from keras_ssd.detector import build_detector
        from keras_ssd.model import load_ssd
        from keras_ssd.precision import resolve_precision, with_precision

        self.precision = resolve_precision(precision)
        model = with_precision(load_ssd(path), self.precision.value)
        self.detector = detector = build_detector(model, **postprocess)
        self._detect = tf.function(lambda images: detector(images, training=False))
        self.image_size = model.ssd_config.image_size
        self.class_names = labels.model_class_names(model)

    def __call__(self, images):
        from keras_ssd.export.images import resize_images

        images = resize_images(check_images(images), self.image_size)
        return as_detections(self._detect(images))


class SavedModelDetector:
    """The `serving_default` signature of a SavedModel from `export_saved_model`.

    Args:
        path: a version directory (`<base>/<name>/<version>`) or the model
            directory `<base>/<name>`, whose highest version is loaded.
    """

    def __init__(self, path):
        import tensorflow as tf

        versions = versioning.existing_versions(path)
        if not os.path.exists(os.path.join(path, "saved_model.pb")) and versions:
            path = os.path.join(path, str(versions[-1]))
        self.path = path
        self.model = tf.saved_model.load(path)
        self.signature = self.model.signatures["serving_default"]
        self.class_names = labels.read_labels(os.path.join(path, labels.SAVED_MODEL_LABELS))

    def __call__(self, images):
        return as_detections(self.signature(images=check_images(images)))


def load_detector(path, precision="auto", **postprocess):
    """Loads a detector from a `.keras`, `.tflite`, `.onnx` or SavedModel path.

    Args:
        path: a `.keras`, `.tflite` or `.onnx` file, or a SavedModel directory
            (a version directory or the `<base>/<name>` directory above it).
        precision: for `.keras` files, the network's precision ("auto":
            this machine's fastest, `keras_ssd.precision`); exported models
            run in the precision they were exported in.
        **postprocess: `build_detector` overrides, for `.keras` files only
            (exported models keep the settings they were exported with).

    Returns:
        `KerasDetector`, `TFLiteDetector`, `OnnxDetector` or `SavedModelDetector`.

    Raises:
        ValueError: a path of none of these kinds, or overrides or a precision for an exported model.
        FileNotFoundError: the path does not exist.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No model at {path!r}")
    if precision != "auto" and not path.endswith(".keras"):
        raise ValueError(
            f"precision={precision!r} applies to .keras models only; {path!r} runs in the precision it was "
            "exported in"
        )
    if postprocess and not path.endswith(".keras"):
        raise ValueError(
            f"post-processing overrides {sorted(postprocess)} apply to .keras models only; "
            f"{path!r} keeps the settings it was exported with"
        )
    if path.endswith(".keras"):
        return KerasDetector(path, precision, **postprocess)
    if path.endswith(".tflite"):
        return TFLiteDetector(path)
    if path.endswith(".onnx"):
        return OnnxDetector(path)
    if os.path.isdir(path) and (
        os.path.exists(os.path.join(path, "saved_model.pb")) or versioning.existing_versions(path)
    ):
        return SavedModelDetector(path)
    raise ValueError(
        f"{path!r} is not a .keras, .tflite or .onnx file or a SavedModel directory "
        "(a folder with saved_model.pb, or one with numbered version folders)"
    )

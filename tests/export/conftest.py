"""Session fixtures for the export tests: a trained `ssd_tiny`, its exports, images.

Parity needs scores that mean something (a random network scores every box
alike and ties decide the order), and the int8 mAP check needs a network that
has learned something, so `trained_model` is the shipped demo model
(`saved_models/ssd_tiny.keras`, the default main job's result); training one
here took four minutes of the suite.
"""

import io
import os

import keras
import numpy as np
import pytest
from PIL import Image

import keras_ssd
from keras_ssd import data, export

DEMO_MODEL = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "saved_models", "ssd_tiny.keras"
)
# Shapes at the network's input size (no resize), one object of 25-60% of the side on
# every image: the demo model scores most of these objects above 0.3.
SHAPES = dict(image_size=160, object_size=(0.25, 0.6), max_objects=1, empty_share=0.0, plain_share=0.0)


def shapes_examples(split, count, **options):
    """numpy example dicts of the shapes dataset (`SHAPES` unless overridden)."""
    return list(data.load("shapes", split, num_examples=count, **{**SHAPES, **options}).as_numpy_iterator())


@pytest.fixture(scope="session")
def trained_model():
    """The shipped demo model: `ssd_tiny`, 3 classes, trained on shapes."""
    return keras.models.load_model(DEMO_MODEL)


@pytest.fixture(scope="session")
def keras_detector(trained_model):
    return keras_ssd.build_detector(trained_model)


@pytest.fixture(scope="session")
def images():
    """uint8 `[8, 160, 160, 3]` validation images at the network's input size."""
    return np.stack([e["image"] for e in shapes_examples("validation", 8)])


@pytest.fixture(scope="session")
def saved_model_dir(trained_model, tmp_path_factory):
    """The trained model exported to `<tmp>/serving/ssd_tiny/1`."""
    return export.export_saved_model(trained_model, tmp_path_factory.mktemp("export") / "serving")


@pytest.fixture(scope="session")
def tflite_files(trained_model, tmp_path_factory):
    """`{quantize: path}` for "none", "dynamic" and "float16" (int8 has its own test)."""
    folder = tmp_path_factory.mktemp("tflite")
    return {
        q: export.export_tflite(trained_model, str(folder / f"ssd_tiny_{q}.tflite"), quantize=q)
        for q in ("none", "dynamic", "float16")
    }


@pytest.fixture(scope="session")
def int8_file(trained_model, tmp_path_factory):
    """The trained model as an int8 `.tflite`, calibrated on 100 training images."""
    calibration = export.calibration_images(
        data.load("shapes", "train", num_examples=100, seed=1, **SHAPES), SHAPES["image_size"], 100
    )
    path = str(tmp_path_factory.mktemp("int8") / "ssd_tiny_int8.tflite")
    return export.export_tflite(trained_model, path, quantize="int8", calibration=calibration, verbose=False)


def encode(image, fmt="PNG"):
    """Bytes of uint8 `[H, W, 3]` `image` encoded as PNG or JPEG."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt)
    return buffer.getvalue()


def assert_same_detections(expected, actual, tol, score_tol=None, min_score=0.3):
    """Both detectors find the same confident objects.

    Every detection of either output scoring above `min_score + score_tol`
    must have one in the other output with the same class, every box
    coordinate within `tol` (normalised yxyx) and a score within `score_tol`.
    The margin keeps a score that sits at `min_score` from failing on
    rounding alone.

    Args:
        expected, actual: detector output dicts (boxes `[B, K, 4]`, scores and
            classes `[B, K]`, num_detections `[B]`).
        tol: tolerance on box coordinates.
        score_tol: tolerance on scores (default `tol`).
        min_score: the score above which detections are compared.

    Returns:
        The number of confident detections compared (in `expected`).
    """

    def confident(out, b, threshold):
        n = int(np.asarray(out["num_detections"])[b])
        scores = np.asarray(out["detection_scores"])[b, :n]
        keep = scores > threshold
        return (
            np.asarray(out["detection_boxes"])[b, :n][keep],
            np.asarray(out["detection_classes"])[b, :n][keep].astype(int),
            scores[keep],
        )

    score_tol = tol if score_tol is None else score_tol
    compared = 0
    batch = len(np.asarray(expected["num_detections"]))
    assert len(np.asarray(actual["num_detections"])) == batch
    for b in range(batch):
        for first, second, name in ((expected, actual, "expected"), (actual, expected, "actual")):
            boxes, classes, scores = confident(first, b, min_score + score_tol)
            other_boxes, other_classes, other_scores = confident(second, b, min_score - score_tol)
            for box, cls, score in zip(boxes, classes, scores):
                same = other_classes == cls
                error = np.abs(other_boxes[same] - box).max(axis=1) if same.any() else []
                assert len(error) and error.min() <= tol, (
                    f"image {b}: {name} detection class {cls} score {score:.4f} box {box} has no "
                    f"match within {tol} (closest {np.min(error) if len(error) else None}); "
                    f"other side: classes {other_classes}, boxes {other_boxes}"
                )
                match = np.flatnonzero(same)[np.argmin(error)]
                assert abs(other_scores[match] - score) <= score_tol, (
                    f"image {b}: class {cls} score {score:.5f} vs {other_scores[match]:.5f}"
                )
            compared += len(scores) if name == "expected" else 0
    return compared

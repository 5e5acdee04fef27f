"""The shipped demo model (saved_models/): its mAP, and its float32 / int8 TFLite and ONNX exports.

The int8 model's VOC07 mAP on the shapes validation split should
stay within 2 points of float32; this checks it on the model the default main
job trained (saved_models/ssd_tiny.keras), with the calibration the export CLI
uses (100 images of the training split), against the shipped `.tflite` files too,
and the shipped `.onnx` file's mAP (ONNX Runtime) against the Keras model's.
"""

import json
import os

import keras
import numpy as np
import pytest

import keras_ssd
from keras_ssd import data, export
from keras_ssd.evaluation import VOCEvaluator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "saved_models")


@pytest.fixture(scope="module")
def demo_model():
    return keras.models.load_model(os.path.join(DEMO, "ssd_tiny.keras"))


@pytest.fixture(scope="module")
def validation():
    return list(data.load("shapes", "validation").as_numpy_iterator())


def _voc07_map(detector, examples):
    """VOC07 mAP of `detector` (uint8 `[1, H, W, 3]` -> output dict), one image at a time."""
    evaluator = VOCEvaluator(3, metric="voc07")
    for e in examples:
        truth = {key: e[key][None] for key in ("boxes", "labels", "difficult")}
        evaluator.update(detector(e["image"][None]), truth)
    return evaluator.result()["mAP"]


def _keras_detector(model):
    detector = keras_ssd.build_detector(model)
    size = model.ssd_config.image_size
    return lambda images: detector(export.images.resize_images(images, size))


@pytest.mark.numerics
@pytest.mark.slow
def test_demo_model_map_and_its_exports(demo_model, validation, tmp_path, capsys):
    with open(os.path.join(DEMO, "ssd_tiny.json")) as f:
        recorded = json.load(f)
    keras_map = _voc07_map(_keras_detector(demo_model), validation)
    # The model is the file the main job wrote; its mAP is what training recorded
    # (0.8052; equal here, with a margin for another CPU's float rounding).
    assert keras_map == pytest.approx(recorded["mAP"], abs=0.005)

    calibration = export.calibration_images(data.load("shapes", "train"), demo_model.ssd_config.image_size)
    int8_path = export.export_tflite(
        demo_model, str(tmp_path / "int8.tflite"), quantize="int8", calibration=calibration, verbose=False
    )
    onnx_int8_path = export.export_onnx(
        demo_model, str(tmp_path / "int8.onnx"), quantize="int8", calibration=calibration, verbose=False
    )
    maps = {
        "float32 (shipped)": _voc07_map(export.TFLiteDetector(os.path.join(DEMO, "ssd_tiny.tflite")), validation),
        "int8 (shipped)": _voc07_map(export.TFLiteDetector(os.path.join(DEMO, "ssd_tiny_int8.tflite")), validation),
        "int8 (exported now)": _voc07_map(export.TFLiteDetector(int8_path), validation),
        "onnx (shipped)": _voc07_map(export.OnnxDetector(os.path.join(DEMO, "ssd_tiny.onnx")), validation),
        "onnx int8 (exported now)": _voc07_map(export.OnnxDetector(onnx_int8_path), validation),
    }
    with capsys.disabled():
        print(f"\ndemo model VOC07 mAP: keras {keras_map:.4f}, " + ", ".join(f"{k} {v:.4f}" for k, v in maps.items()))
    assert abs(maps["float32 (shipped)"] - keras_map) < 0.005
    assert abs(maps["onnx (shipped)"] - keras_map) < 0.005
    assert maps["float32 (shipped)"] - maps["int8 (shipped)"] <= 0.02
    assert maps["float32 (shipped)"] - maps["int8 (exported now)"] <= 0.02
    assert maps["onnx (shipped)"] - maps["onnx int8 (exported now)"] <= 0.02
    assert np.isfinite(list(maps.values())).all()


def test_shipped_report_is_the_demo_models_and_opens_offline():
    folder = os.path.join(DEMO, "report")
    with open(os.path.join(DEMO, "ssd_tiny.json")) as f:
        recorded = json.load(f)
    with open(os.path.join(folder, "ssd_tiny.voc07.json")) as f:
        evaluated = json.load(f)
    assert evaluated["mAP"] == pytest.approx(recorded["mAP"], abs=1e-9)
    with open(os.path.join(folder, "report.html"), encoding="utf-8") as f:
        page = f.read()
    for name, ap in recorded["per_class_ap"].items():
        assert f"<td>{name}</td><td>{ap:.4f}</td>" in page
    assert "http://" not in page and "https://" not in page
    pictures = sorted(name for name in os.listdir(folder) if name.endswith(".png"))
    assert pictures == ["confusion_matrix.png", "confusion_matrix_normalized.png", "coverage.png",
                        "f1_curves.png", "pr_curves.png", "predictions.png"]
    assert page.count('src="data:image/png;base64,') == len(pictures)

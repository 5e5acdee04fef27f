"""`python -m training.predict` and `python -m training.export` on a small model."""

import json
import os

import numpy as np
import pytest
from PIL import Image

import keras_ssd
from keras_ssd import export
from training import export as export_cli
from training import predict


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    cfg = keras_ssd.SSDConfig.from_preset("ssd_tiny", num_classes=3)
    path = str(tmp_path_factory.mktemp("model") / "tiny.keras")
    keras_ssd.build_ssd(cfg, class_names=["circle", "square", "triangle"]).save(path)
    return path


@pytest.fixture
def image_files(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for name, size in (("a.jpg", (120, 200)), ("b.png", (160, 160))):
        path = str(tmp_path / name)
        Image.fromarray(rng.integers(0, 256, size + (3,)).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def test_predict_writes_json_in_pixels_and_drawn_pngs(model_file, image_files, tmp_path):
    out = tmp_path / "out"
    assert predict.main(["--model", model_file, *image_files, "--output", str(out), "--min-score", "0"]) == 0
    with open(out / "detections.json") as f:
        results = json.load(f)
    assert [r["image"] for r in results] == image_files
    first = results[0]
    assert (first["height"], first["width"]) == (120, 200)
    assert first["detections"], "min-score 0 keeps every detection"
    # Pixel boxes are the detector's normalised boxes times the image size.
    image = np.asarray(Image.open(image_files[0]).convert("RGB"))
    raw = export.load_detector(model_file)(image[None])
    ymin, xmin, ymax, xmax = raw["detection_boxes"][0, 0]
    box = first["detections"][0]["box"]
    assert box == pytest.approx({"xmin": xmin * 200, "ymin": ymin * 120, "xmax": xmax * 200, "ymax": ymax * 120}, abs=0.06)
    assert first["detections"][0]["class_name"] == ["circle", "square", "triangle"][raw["detection_classes"][0, 0]]
    drawn = np.asarray(Image.open(out / "a.png").convert("RGB"))
    assert drawn.shape == image.shape and (drawn != image).any()


def test_predict_on_exported_tflite_and_bad_files(model_file, image_files, tmp_path, capsys):
    tflite = str(tmp_path / "tiny.tflite")
    assert export_cli.main(["--model", model_file, "--format", "tflite", "--output", str(tmp_path), "--name", "tiny"]) == 0
    assert os.path.exists(tflite) and os.path.exists(str(tmp_path / "tiny.labels.txt"))
    broken = str(tmp_path / "broken.jpg")
    with open(broken, "wb") as f:
        f.write(b"not a jpeg")
    out = tmp_path / "out"
    code = predict.main(["--model", tflite, image_files[0], broken, "--output", str(out), "--min-score", "0.99"])
    assert code == 1
    assert f"cannot read image {broken!r}" in capsys.readouterr().err
    with open(out / "detections.json") as f:
        (result,) = json.load(f)
    assert all(d["score"] >= 0.99 for d in result["detections"])


def test_export_cli_versions_and_refusals(model_file, tmp_path, capsys):
    base = str(tmp_path / "serving")
    assert export_cli.main(["--model", model_file, "--output", base]) == 0
    assert export_cli.main(["--model", model_file, "--output", base]) == 0
    assert sorted(os.listdir(os.path.join(base, "ssd_tiny"))) == ["1", "2"]
    assert export_cli.main(["--model", model_file, "--output", base, "--version", "2"]) == 2
    assert "ssd_tiny/2 already exists" in capsys.readouterr().err.replace(os.sep, "/")
    assert export_cli.main(["--model", model_file, "--format", "tflite", "--quantize", "int8", "--output", base]) == 2
    assert "--quantize int8 needs --calibration-dataset" in capsys.readouterr().err
    assert export_cli.main(["--model", model_file, "--quantize", "float16", "--output", base]) == 2
    assert "applies to --format tflite (any) and onnx (none, int8)" in capsys.readouterr().err
    assert export_cli.main(["--model", str(tmp_path / "missing.keras"), "--output", base]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_export_cli_phone_options_reach_the_tflite(model_file, tmp_path):
    args = ["--model", model_file, "--format", "tflite", "--output", str(tmp_path), "--name", "phone",
            "--nms", "fast", "--score-threshold", "0.2", "--max-detections", "7"]
    assert export_cli.main(args) == 0
    path = str(tmp_path / "phone.tflite")
    description = export.read_detection_metadata(path)["description"]
    assert "fast (class-agnostic) NMS" in description and "score threshold 0.2" in description
    assert export.TFLiteDetector(path)(np.zeros([1, 160, 160, 3], np.uint8))["detection_boxes"].shape == (1, 7, 4)

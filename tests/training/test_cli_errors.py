"""Every `python -m training.*` entry point, run as a user runs it: user mistakes are one
stderr line and a non-zero exit, no traceback, no output folder left behind; every image
kind gives the detections of its plain 8-bit upright version."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import keras_ssd
from training import cli, evaluate, export

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "saved_models", "ssd_tiny.keras")


def _run(module, *args):
    result = subprocess.run(
        [sys.executable, "-m", f"training.{module}", *map(str, args)],
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result


def _error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def _detections(path):
    with open(path) as f:
        return {os.path.basename(r["image"]): r["detections"] for r in json.load(f)}


def _same_detections(got, want):
    assert [d["class_name"] for d in got] == [d["class_name"] for d in want]
    for a, b in zip(got, want):
        assert abs(a["score"] - b["score"]) <= 0.01
        assert a["box"] == pytest.approx(b["box"], abs=1.0)


@pytest.fixture(scope="module")
def image_kinds(tmp_path_factory):
    """A shapes image in several encodings, and three images with nothing to see."""
    folder = tmp_path_factory.mktemp("kinds")
    ex = next(keras_ssd.data.load("shapes", "validation", num_examples=1, image_size=160, empty_share=0.0).as_numpy_iterator())
    gray = np.asarray(Image.fromarray(ex["image"]).convert("L"))
    Image.fromarray(gray).save(folder / "gray8.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(folder / "gray16.png")
    # A phone photo: pixels stored a quarter turn anticlockwise, EXIF 6 turns them back.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(ex["image"], 1)).save(folder / "phone.jpg", quality=95, exif=exif)
    with Image.open(folder / "phone.jpg") as stored:
        Image.fromarray(np.rot90(np.asarray(stored), -1)).save(folder / "upright.png")
    Image.fromarray(np.full((160, 160, 3), 200, np.uint8)).save(folder / "blank.png")
    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(folder / "dot.png")
    ramp = np.linspace(0, 255, 160).astype(np.uint8)
    Image.fromarray(np.tile(ramp[None, :, None], (160, 1, 3))).save(folder / "gradient.png")
    return folder


def test_predict_reads_16_bit_and_exif_rotated_images_and_warns_on_empty_ones(image_kinds, tmp_path):
    names = ["gray8.png", "gray16.png", "phone.jpg", "upright.png", "blank.png", "dot.png", "gradient.png"]
    result = _run("predict", "--model", DEMO, *(image_kinds / n for n in names), "--output", tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    got = _detections(tmp_path / "out" / "detections.json")
    assert got["gray8.png"], "the demo model finds the shapes"
    _same_detections(got["gray16.png"], got["gray8.png"])
    _same_detections(got["phone.jpg"], got["upright.png"])
    with Image.open(tmp_path / "out" / "phone.png") as drawn:
        assert drawn.size == (160, 160)  # drawn on the upright image
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    for name in ("blank.png", "dot.png", "gradient.png"):
        assert any(name in w and "almost no edges or texture" in w for w in warnings), result.stderr
    assert any("dot.png: it is 1x1 px, far smaller than the model's 160x160 input" in w for w in warnings)
    assert not any(n in w for w in warnings for n in names[:4])


def test_predict_with_no_readable_image_writes_nothing(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    out = tmp_path / "runs" / "out"
    result = _run("predict", "--model", DEMO, broken, text, "--output", out)
    assert result.returncode != 0
    errors = _error_lines(result)
    assert errors[-1] == "error: none of the 2 image(s) could be read (see above); nothing was written"
    assert any(f"cannot read image '{broken}'" in e for e in errors)
    assert any(f"cannot read image '{text}': not an image file" in e for e in errors)
    assert "wrote" not in result.stdout
    assert not (tmp_path / "runs").exists()
    # A folder the user already had stays, and gets no detections.json.
    out.mkdir(parents=True)
    assert _run("predict", "--model", DEMO, text, "--output", out).returncode != 0
    assert out.is_dir() and os.listdir(out) == []


def test_evaluate_missing_model_is_one_line(tmp_path):
    result = _run("evaluate", "--model", "nonexistent.keras")
    assert result.returncode == 2
    assert _error_lines(result) == ["error: Model 'nonexistent.keras' does not exist"]


def test_model_that_is_not_a_flatbuffer_names_the_file(tmp_path):
    fake = tmp_path / "model.tflite"
    fake.write_text("this is not a flatbuffer")
    result = _run("predict", "--model", fake, tmp_path / "any.png", "--output", tmp_path / "out")
    assert result.returncode == 2
    (error,) = _error_lines(result)
    assert str(fake) in error
    assert not (tmp_path / "out").exists()


def test_train_on_a_folder_that_is_not_a_dataset(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run("train", "--dataset", empty, "--output", tmp_path / "run")
    assert result.returncode == 2
    assert _error_lines(result) == [f"error: Directory {empty} is not in VOC layout: it has no Annotations/ folder"]
    assert not (tmp_path / "run").exists()


def _malformed_voc(root, count=6):
    """A VOC dir with `count` images whose annotation XMLs are all cut short."""
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    for k in range(count):
        Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(os.path.join(root, "JPEGImages", f"{k}.jpg"))
        with open(os.path.join(root, "Annotations", f"{k}.xml"), "w") as f:
            f.write("<annotation><object>")
    for split in ("train", "val"):
        with open(os.path.join(root, "ImageSets", "Main", f"{split}.txt"), "w") as f:
            f.write("\n".join(str(k) for k in range(count)))


def test_train_on_a_dataset_whose_every_annotation_is_malformed(tmp_path):
    root = tmp_path / "voc"
    _malformed_voc(str(root))
    result = _run("train", "--dataset", root, "--num-classes", "2", "--output", tmp_path / "runs" / "a")
    assert result.returncode == 2
    assert _error_lines(result) == [
        f"error: VOC directory {root}: kept 0 of 6 examples: every annotation was skipped, see the warnings above"
    ]
    assert result.stderr.count("Skipping example") == 6  # one warning per file
    assert "batch" not in result.stderr
    assert not (tmp_path / "runs").exists()
    # An output folder the user already had is never removed.
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "notes.txt").write_text("keep me")
    assert _run("train", "--dataset", root, "--num-classes", "2", "--output", existing).returncode == 2
    assert sorted(os.listdir(existing)) == ["notes.txt"]


def test_output_folder_removes_only_what_it_made(tmp_path):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), cli.output_folder(str(tmp_path / "a" / "b" / "c")):
        raise Boom
    assert os.listdir(tmp_path) == []
    (tmp_path / "a").mkdir()
    with pytest.raises(Boom), cli.output_folder(str(tmp_path / "a" / "b")):
        raise Boom
    assert os.listdir(tmp_path / "a") == []
    with pytest.raises(Boom), cli.output_folder(str(tmp_path / "a" / "b"), keep=lambda: True):
        raise Boom
    assert os.listdir(tmp_path / "a") == ["b"]


def test_user_errors_are_one_line_and_internal_errors_keep_their_traceback(capsys, monkeypatch):
    @cli.entry_point
    def mistaken(argv):
        raise FileNotFoundError(f"no such file: {argv[0]!r}\nsecond line")

    assert mistaken(["x.yaml"]) == 2
    assert capsys.readouterr().err == "error: no such file: 'x.yaml' second line\n"

    @cli.entry_point
    def broken(argv):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        broken([])
    monkeypatch.setenv("KERAS_SSD_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError):
        mistaken(["x.yaml"])


def test_saved_model_precision_without_a_saved_model_is_one_error_line(tmp_path):
    result = _run("export", "--model", DEMO, "--format", "tflite", "--saved-model-precision", "mixed_bfloat16",
                  "--output", tmp_path / "out")
    assert result.returncode == 2
    assert _error_lines(result) == [
        "error: --saved-model-precision mixed_bfloat16 applies only with --format saved_model; this export does "
        "not use it"
    ]
    assert not (tmp_path / "out").exists()


TFLITE = os.path.join(ROOT, "saved_models", "ssd_tiny.tflite")


@pytest.mark.parametrize("main, argv, error", [
    (export.main, ["--format", "saved_model", "--nms", "fast"], "--nms fast applies only with --format tflite"),
    (export.main, ["--format", "saved_model", "--overwrite"], "--overwrite applies only with --format tflite or onnx"),
    (export.main, ["--format", "tflite", "--version", "3"], "--version 3 applies only with --format saved_model"),
    (export.main, ["--format", "tflite", "--calibration-examples", "5"],
     "--calibration-examples 5 applies only with --quantize int8"),
    (export.main, ["--format", "onnx", "--quantize", "int8", "dynamic", "--calibration-dataset", "shapes"],
     "--quantize dynamic applies to --format tflite (any) and onnx (none, int8), not to onnx"),
    (evaluate.main, ["--model", TFLITE, "--batch-size", "4"], "--batch-size 4 applies to .keras models"),
    (evaluate.main, ["--model", DEMO, "--preset", "ssd_tiny", "--report"],
     "--preset ssd_tiny applies to the --report of an exported model"),
    (evaluate.main, ["--model", TFLITE, "--preset", "ssd_tiny"],
     "--preset ssd_tiny applies to the --report of an exported model"),
], ids=["nms", "overwrite", "version", "calibration", "onnx-dynamic", "batch-size", "preset-keras", "preset-no-report"])
def test_an_option_the_command_would_not_use_is_one_error_line(main, argv, error, tmp_path, capsys):
    if main is export.main:
        argv = ["--model", DEMO, *argv, "--output", str(tmp_path / "out")]
    elif argv[-1] == "--report":
        argv = [*argv, str(tmp_path / "report")]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {error}"), line
    assert os.listdir(tmp_path) == []

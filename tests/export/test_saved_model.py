"""SavedModel export: TF Serving layout, both signatures against Keras, bad input."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import keras_ssd
from conftest import assert_same_detections, encode
from keras_ssd import export


def test_layout_is_versioned_and_never_overwrites(trained_model, saved_model_dir, tmp_path):
    assert os.path.basename(saved_model_dir) == "1"
    assert os.path.basename(os.path.dirname(saved_model_dir)) == "ssd_tiny"
    for entry in ("saved_model.pb", "variables", os.path.join("assets.extra", "labels.txt")):
        assert os.path.exists(os.path.join(saved_model_dir, entry)), entry
    with open(os.path.join(saved_model_dir, "assets.extra", "labels.txt")) as f:
        assert f.read().split() == ["circle", "square", "triangle"]

    base = tmp_path / "serving"
    first = export.export_saved_model(trained_model, base, name="shapes")
    marker = os.path.join(first, "saved_model.pb")
    before = os.path.getmtime(marker)
    second = export.export_saved_model(trained_model, base, name="shapes")
    assert [os.path.basename(p) for p in (first, second)] == ["1", "2"]
    with pytest.raises(FileExistsError, match=r"shapes[/\\]1 already exists"):
        export.export_saved_model(trained_model, base, name="shapes", version=1)
    assert os.path.getmtime(marker) == before
    # Only the two versions: no temporary folder left behind by the failed export.
    assert sorted(os.listdir(base / "shapes")) == ["1", "2"]
    assert os.path.basename(export.export_saved_model(trained_model, base, name="shapes", version=7)) == "7"
    with pytest.raises(ValueError, match="version must be a positive int, got 0"):
        export.export_saved_model(trained_model, base, name="shapes", version=0)


def test_saved_model_cli_lists_both_signatures(saved_model_dir):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [cli, "show", "--dir", saved_model_dir, "--all"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for expected in (
        "signature_def['serving_default']",
        "signature_def['serve_image_bytes']",
        "inputs['images'] tensor_info:\n        dtype: DT_UINT8\n        shape: (-1, -1, -1, 3)",
        "inputs['image_bytes'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)",
        "outputs['detection_boxes'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 200, 4)",
        "outputs['detection_classes'] tensor_info:\n        dtype: DT_INT32",
        "outputs['detection_scores'] tensor_info:\n        dtype: DT_FLOAT",
        "outputs['num_detections'] tensor_info:\n        dtype: DT_INT32\n        shape: (-1)",
    ):
        assert expected in text, f"{expected!r} not in saved_model_cli output:\n{text}"


@pytest.fixture(scope="module")
def loaded(saved_model_dir):
    return tf.saved_model.load(saved_model_dir)


@pytest.mark.numerics
def test_serving_default_matches_keras(loaded, keras_detector, images):
    expected = keras_detector(images.astype(np.float32))
    actual = loaded.signatures["serving_default"](images=tf.constant(images))
    assert set(actual) == set(export.OUTPUT_KEYS)
    assert actual["detection_classes"].dtype == tf.int32
    assert assert_same_detections(expected, actual, tol=1e-3) >= len(images) // 2


@pytest.mark.numerics
def test_serving_default_resizes_any_size(loaded, keras_detector):
    from conftest import shapes_examples

    raw = np.stack([e["image"] for e in shapes_examples("validation", 3, image_size=(230, 230))])
    expected = keras_detector(export.resize_images(raw, 160))
    actual = loaded.signatures["serving_default"](images=tf.constant(raw))
    assert assert_same_detections(expected, actual, tol=1e-3) >= 1


@pytest.mark.numerics
def test_image_bytes_matches_keras_for_png_and_jpeg_of_mixed_sizes(loaded, keras_detector, images):
    from conftest import shapes_examples

    big = shapes_examples("validation", 1, image_size=(200, 260))[0]["image"]
    files = [encode(images[0], "PNG"), encode(images[1], "PNG"), encode(big, "JPEG")]
    decoded = [tf.io.decode_image(f, channels=3) for f in files]
    expected = keras_detector(tf.stack([export.resize_images(d[None], 160)[0] for d in decoded]))
    actual = loaded.signatures["serve_image_bytes"](image_bytes=tf.constant(files))
    assert assert_same_detections(expected, actual, tol=1e-3) >= 2


@pytest.mark.parametrize(
    "signature, value, message",
    [
        ("serving_default", np.zeros([160, 160, 3], np.uint8), "must be 4-dimensional"),
        ("serving_default", np.zeros([1, 160, 160, 4], np.uint8), r"\[B, H, W, 3\].*got shape.*1 160 160 4"),
        ("serving_default", np.zeros([1, 0, 160, 3], np.uint8), r"H, W > 0; got shape.*1 0 160 3"),
        ("serving_default", np.zeros([1, 160, 160, 3], np.float32), "expected to be a uint8 tensor"),
        ("serve_image_bytes", np.array([b"not an image"]), "Unknown image file format"),
        ("serve_image_bytes", np.array([encode(np.zeros([8, 8, 3], np.uint8))[:40]]), "PNG|png|Invalid"),
    ],
    ids=["rank3", "4channels", "empty", "float32", "garbage-bytes", "truncated-png"],
)
def test_bad_input_is_a_clear_error_not_a_crash(loaded, images, signature, value, message):
    function = loaded.signatures[signature]
    key = "images" if signature == "serving_default" else "image_bytes"
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        function(**{key: tf.constant(value)})
    # The process and the model are still fine.
    out = loaded.signatures["serving_default"](images=tf.constant(images[:1]))
    assert int(out["num_detections"][0]) >= 1


def test_load_detector_reads_version_dirs_and_names(saved_model_dir, keras_detector, images):
    detector = export.load_detector(os.path.dirname(saved_model_dir))  # <base>/<name>: newest version
    assert detector.class_names == ["circle", "square", "triangle"]
    assert_same_detections(keras_detector(images.astype(np.float32)), detector(images), tol=1e-3)
    with pytest.raises(ValueError, match="dtype float64"):
        detector(images.astype(np.float64))


def test_export_rejects_bad_arguments(trained_model, tmp_path):
    with pytest.raises(ValueError, match="nms_iou"):
        export.export_saved_model(trained_model, tmp_path, nms_iou=0.5)
    with pytest.raises(ValueError, match="non-numeric directory name, got '3'"):
        export.export_saved_model(trained_model, tmp_path, name="3")
    with pytest.raises(ValueError, match="needs an SSD model"):
        export.export_saved_model(keras_ssd.build_detector(trained_model), tmp_path)
    assert not os.path.exists(tmp_path / "ssd_tiny")

"""Exported `.tflite` files in the runtimes apps use: MediaPipe Tasks and LiteRT at any thread count.

Each runtime runs in its own subprocess (`runtime_runner.py`), so an abort
fails one test and not the suite. The files are loaded unmodified.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

import keras_ssd
from conftest import assert_same_detections, shapes_examples
from keras_ssd import export
from keras_ssd.export.tflite_detector import at_input_size

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(os.path.dirname(os.path.dirname(HERE)), "saved_models")
SHIPPED = {name: os.path.join(DEMO, name) for name in ("ssd_tiny.tflite", "ssd_tiny_int8.tflite")}
MIN_SCORE = 0.05  # compared detections; MediaPipe drops the rest by its score_threshold option


def run_runtime(runtime, model, images, tmp_path, *args):
    """`runtime_runner.py` in a subprocess: its detections per image (fails the test on a crash)."""
    path = tmp_path / f"images_{runtime}.npy"
    np.save(path, images)
    done = subprocess.run(
        [sys.executable, os.path.join(HERE, "runtime_runner.py"), runtime, str(model), str(path), *args],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, f"{runtime} exited {done.returncode} on {model}:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_mediapipe_matches(mediapipe, expected, class_names, size):
    """Every detection of one side (score >= MIN_SCORE + 1e-3) is on the other side.

    Same class name, score within 1e-3, box within 1 px in MediaPipe's own
    form: integer pixels `[origin_y, origin_x, height, width]`, each truncated.
    `expected` is `TFLiteDetector` output (normalised yxyx boxes).
    """
    compared = 0
    for b, found in enumerate(mediapipe):
        n = expected["num_detections"][b]
        ours = [
            (class_names[c], float(s), np.concatenate([box[:2], box[2:] - box[:2]]) * size)
            for box, c, s in zip(expected["detection_boxes"][b, :n], expected["detection_classes"][b, :n],
                                 expected["detection_scores"][b, :n])
        ]
        theirs = [(d["class"], d["score"], np.asarray(d["box"], float)) for d in found]
        for first, second, side in ((ours, theirs, "TFLiteDetector"), (theirs, ours, "MediaPipe")):
            for name, score, box in first:
                if score < MIN_SCORE + 1e-3:
                    continue
                match = [
                    (abs(s - score), np.abs(bx - box).max())
                    for nm, s, bx in second
                    if nm == name and abs(s - score) <= 1e-3 and np.abs(bx - box).max() <= 1.0
                ]
                assert match, (
                    f"image {b}: {side} detection {name} {score:.4f} at {np.round(box, 2)} has no match "
                    f"within 1e-3 / 1 px on the other side: {[(nm, round(s, 4), np.round(bx, 1)) for nm, s, bx in second]}"
                )
                compared += side == "TFLiteDetector"
    return compared


@pytest.fixture(scope="module")
def test_images(images):
    """The 8 validation images plus 2 noise images, uint8 at the 160 px input."""
    noise = np.random.default_rng(1).integers(0, 256, (2, 160, 160, 3), dtype=np.uint8)
    return np.concatenate([images, noise])


@pytest.fixture(scope="module")
def variants(tflite_files, int8_file):
    files = {f"exported {q}": path for q, path in tflite_files.items()}
    files["exported int8"] = int8_file
    files.update({f"shipped {name}": path for name, path in SHIPPED.items()})
    return files


VARIANTS = ["exported none", "exported dynamic", "exported float16", "exported int8",
            "shipped ssd_tiny.tflite", "shipped ssd_tiny_int8.tflite"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_mediapipe_object_detector_loads_the_file_and_agrees(variants, test_images, tmp_path, variant):
    path = variants[variant]
    metadata = export.read_detection_metadata(path)
    assert metadata["output_names"] == ["location", "category", "score", "number of detections"]
    expected = export.TFLiteDetector(path, num_threads=1)(test_images)
    mediapipe = run_runtime("mediapipe", path, test_images, tmp_path, "--min-score", str(MIN_SCORE))
    compared = assert_mediapipe_matches(mediapipe, expected, metadata["class_names"], 160)
    assert compared >= 8, f"only {compared} detections compared"
    assert {d["class"] for found in mediapipe for d in found} <= {"circle", "square", "triangle"}


def test_metadata_names_the_model_and_its_classes(tflite_files, trained_model):
    path = tflite_files["none"]
    metadata = export.read_detection_metadata(path)
    assert metadata["class_names"] == ["circle", "square", "triangle"]
    assert metadata["class_names"] == export.TFLiteDetector(path).class_names  # the labels.txt beside it
    assert metadata["name"] == trained_model.name and metadata["version"] == keras_ssd.__version__
    assert "3 classes" in metadata["description"] and "per-class NMS" in metadata["description"]
    assert metadata["min_parser_version"] == "1.2.0"
    # The outputs are the last post-processing op's own outputs, in its port order.
    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    last_op = [op for op in interpreter._get_ops_details() if op["op_name"] == "TFLite_Detection_PostProcess"][-1]
    assert [o["index"] for o in interpreter.get_output_details()] == list(last_op["outputs"])


def _decode(offsets, anchors):
    """float64 decode of `[N, 4]` offsets against `[N, 4]` centre-form anchors -> yxyx."""
    offsets, anchors = offsets.astype(np.float64), anchors.astype(np.float64)
    centre = offsets[:, :2] / 10.0 * anchors[:, 2:] + anchors[:, :2]
    half = 0.5 * np.exp(offsets[:, 2:] / 5.0) * anchors[:, 2:]
    return np.concatenate([centre - half, centre + half], axis=1)


def test_int8_boxes_are_float_decodes_of_the_raw_outputs(int8_file, tflite_files, test_images):
    def grid_share(path):
        out = export.TFLiteDetector(path)(test_images)
        coords = np.concatenate([out["detection_boxes"][b, :n].ravel() for b, n in enumerate(out["num_detections"])])
        inner = coords[(coords > 0) & (coords < 1)]
        return np.mean(np.abs(inner * 255 - np.round(inner * 255)) < 1e-4), len(inner)

    int8_share, count = grid_share(int8_file)
    float_share, _ = grid_share(tflite_files["none"])
    assert count > 200
    assert int8_share < 0.01 and float_share < 0.01, (int8_share, float_share)

    interpreter = Interpreter(model_path=int8_file, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    first_op = next(op for op in interpreter._get_ops_details() if op["op_name"] == "TFLite_Detection_PostProcess")
    offsets_index, _, anchors_index = first_op["inputs"]
    runner = interpreter.get_signature_runner("serving_default")
    worst = 0.0
    for image in test_images[:8]:
        out = runner(images=image[None])
        decoded = np.clip(_decode(interpreter.get_tensor(offsets_index)[0], interpreter.get_tensor(anchors_index)), 0, 1)
        for box in out["detection_boxes"][0, : int(out["num_detections"][0])]:
            worst = max(worst, np.abs(decoded - box).max(axis=1).min() * 1920)
    assert worst <= 0.5, f"an int8 box is {worst:.2f} px from every float decode at 1920 px"


@pytest.fixture(scope="module")
def busy_then_sparse():
    """uint8 `[8, 160, 160, 3]`: images with many detections, each followed by one with fewer.

    `shapes_test.png` (~20 detections from the demo model), noise (~165), it again, a
    flat grey image (~1), four validation images: the op's outputs of a later image
    sit where an earlier image's longer list was written, and the validation images give
    the confident detections the two kernel sets are compared on.
    """
    with Image.open(os.path.join(DEMO, "shapes_test.png")) as image:
        test_png = at_input_size(np.asarray(image.convert("RGB"))[None], 160)[0]
    noise = np.random.default_rng(5).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    grey = np.full((160, 160, 3), 128, np.uint8)
    real = [e["image"] for e in shapes_examples("validation", 4, seed=3)]
    return np.stack([test_png, noise, test_png, grey, *real])


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_reader_setting_gives_zeros_past_the_count(variants, busy_then_sparse, keras_detector, tmp_path,
                                                         variant):
    # LiteRT's TFLite_Detection_PostProcess writes only the first num_detections rows; the
    # rest hold whatever the interpreter's memory held, which differs by CPU, kernel set
    # and the images run before. Every reader must hand out zeros there.
    outputs = run_runtime("loader", variants[variant], busy_then_sparse, tmp_path, "--threads", "1", "2", "4")
    outputs = {name: {k: np.asarray(v) for k, v in out.items()} for name, out in outputs.items()}
    for name, out in outputs.items():
        counts = out["num_detections"]
        assert counts.max() > counts.min(), f"{name}: counts {counts} do not provoke stale rows"
        past = np.arange(out["detection_scores"].shape[1])[None] >= counts[:, None]
        for key in ("detection_boxes", "detection_scores", "detection_classes"):
            stale = np.abs(out[key][past]).max()
            assert stale == 0, f"{variant}, {name}: {key} past num_detections up to {stale}, not 0"
        # The rows before the count: XNNPack's are identical at every thread count; the built-in
        # kernels split convolutions by thread, which moves float32 results by an ulp (1.2e-7 seen).
        kernels = "xnnpack" if name == "load_detector" else name.split("/")[0]
        atol = 0 if kernels == "xnnpack" else 1e-5
        for key, value in out.items():
            np.testing.assert_allclose(value, outputs[f"{kernels}/1"][key], rtol=0, atol=atol,
                                       err_msg=f"{variant}: {name} vs {kernels}/1")
    # The two kernel sets compute the same model: float32 files within 1e-3, dynamic and
    # float16 as against Keras (test_tflite.py). int8 kernels requantise differently
    # (XNNPack against LiteRT's reference): on 21 images, scores up to 0.051 (13 steps of
    # 1/256) and boxes 0.004 apart, so int8 gets twice that.
    int8 = "int8" in variant
    float32 = variant in ("exported none", "shipped ssd_tiny.tflite")
    tol = dict(tol=1e-2, score_tol=0.1) if int8 else dict(tol=1e-3) if float32 else dict(tol=1e-2, score_tol=3e-2)
    assert assert_same_detections(outputs["xnnpack/1"], outputs["builtin/1"], **tol) >= 4
    if not int8:  # int8 files are held to the Keras model by their mAP (test_demo_model.py)
        expected = keras_detector(busy_then_sparse.astype(np.float32))
        assert assert_same_detections(expected, outputs["load_detector"], **tol) >= 4


@pytest.fixture(scope="module")
def random_model_files(tmp_path_factory):
    """An untrained ssd_tiny (every box scores ~1/4 in every class) in both NMS modes."""
    keras.utils.set_random_seed(3)
    model = keras_ssd.build_ssd(keras_ssd.SSDConfig.from_preset("ssd_tiny", num_classes=3))
    folder = tmp_path_factory.mktemp("random")
    return {
        nms: export.export_tflite(model, str(folder / f"random_{nms}.tflite"), use_regular_nms=nms == "regular")
        for nms in ("regular", "fast")
    }


@pytest.mark.parametrize("model", ["random regular", "random fast", "shipped ssd_tiny.tflite"])
def test_litert_gives_the_same_detections_at_1_to_4_threads(random_model_files, model, tmp_path):
    path = SHIPPED["ssd_tiny.tflite"] if model.startswith("shipped") else random_model_files[model.split()[1]]
    real = np.stack([e["image"] for e in shapes_examples("validation", 15, seed=7)])
    noise = np.random.default_rng(2).integers(0, 256, (15, 160, 160, 3), dtype=np.uint8)
    images = np.concatenate([real, noise])
    by_threads = {t: run_runtime("litert", path, images, tmp_path, "--threads", str(t)) for t in (1, 2, 3, 4)}
    counts = [len(d) for d in by_threads[1]]
    if model.startswith("random"):
        assert min(counts) == 200, counts  # the case that aborted: thousands of candidates per class
    for threads in (2, 3, 4):
        assert by_threads[threads] == by_threads[1], f"{threads} threads differ from 1 thread"


def test_export_options_reach_the_file(trained_model, images, tmp_path):
    path = export.export_tflite(
        trained_model, str(tmp_path / "fast.tflite"), use_regular_nms=False, score_threshold=0.3, max_detections=5
    )
    out = export.TFLiteDetector(path)(images)
    assert out["detection_boxes"].shape == (8, 5, 4)
    valid = np.arange(5)[None] < out["num_detections"][:, None]
    assert (out["detection_scores"][valid] >= 0.3).all() and out["num_detections"].sum() >= 4
    assert "fast (class-agnostic) NMS" in export.read_detection_metadata(path)["description"]
    with pytest.raises(ValueError, match=r"score threshold in \(0, 1\), got 0.0"):
        export.convert_to_tflite(trained_model, score_threshold=0.0)


def test_a_bad_tflite_path_is_an_error_naming_the_file(tmp_path):
    with open(SHIPPED["ssd_tiny.tflite"], "rb") as f:
        head = f.read(100_000)
    (tmp_path / "truncated.tflite").write_bytes(head)
    (tmp_path / "text.tflite").write_text("not a model\n")
    with pytest.raises(ValueError, match="'missing.tflite' does not exist"):
        export.TFLiteDetector("missing.tflite")
    for name in ("truncated.tflite", "text.tflite"):
        with pytest.raises(ValueError, match=f"{name}' is not a TFLite detection model"):
            export.TFLiteDetector(str(tmp_path / name))

"""ONNX export: standard ops only, parity with the Keras detector in ONNX Runtime, loader errors, CLIs."""

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import SHAPES, assert_same_detections
from onnx_graphs import quantised_network_convs
from PIL import Image

import keras_ssd
from keras_ssd import export
from training import evaluate, predict
from training import export as export_cli


@pytest.fixture(scope="module")
def model_file(trained_model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("onnx_model") / "ssd_tiny.keras")
    trained_model.save(path)
    return path


@pytest.fixture(scope="module")
def onnx_file(model_file, tmp_path_factory):
    """The trained model exported by `python -m training.export --format onnx`."""
    folder = tmp_path_factory.mktemp("onnx")
    assert export_cli.main(["--model", model_file, "--format", "onnx", "--output", str(folder)]) == 0
    return str(folder / "ssd_tiny.onnx")


def test_file_passes_the_checker_with_standard_ops_only(onnx_file):
    model = onnx.load(onnx_file)
    onnx.checker.check_model(model, full_check=True)
    ops = {node.op_type for node in model.graph.node}
    assert "NonMaxSuppression" in ops and "CombinedNonMaxSuppression" not in ops
    assert {node.domain for node in model.graph.node} <= {""}
    assert {o.domain: o.version for o in model.opset_import}[""] == export.onnx.OPSET


def test_inputs_outputs_and_class_names(onnx_file):
    session = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()
    assert (image.name, image.type, image.shape) == ("images", "tensor(uint8)", ["batch", 160, 160, 3])
    outputs = {o.name: (o.type, o.shape) for o in session.get_outputs()}
    assert outputs == {
        "detection_boxes": ("tensor(float)", ["batch", 200, 4]),
        "detection_scores": ("tensor(float)", ["batch", 200]),
        "detection_classes": ("tensor(int32)", ["batch", 200]),
        "num_detections": ("tensor(int32)", ["batch"]),
    }
    meta = session.get_modelmeta()
    assert meta.custom_metadata_map["class_names"] == "circle\nsquare\ntriangle\n"
    assert meta.producer_name == "keras_ssd" and "per-class NMS at IoU 0.45" in meta.description
    with open(onnx_file[: -len(".onnx")] + ".labels.txt") as f:
        assert f.read().split() == ["circle", "square", "triangle"]
    assert export.load_detector(onnx_file).class_names == ["circle", "square", "triangle"]


@pytest.mark.numerics
@pytest.mark.parametrize("batch", [1, 8])
def test_matches_keras(onnx_file, keras_detector, images, batch):
    expected = {k: np.asarray(v) for k, v in keras_detector(images[:batch].astype(np.float32)).items()}
    actual = export.load_detector(onnx_file)(images[:batch])
    assert {k: v.dtype for k, v in actual.items()} == {
        "detection_boxes": np.float32, "detection_scores": np.float32,
        "detection_classes": np.int32, "num_detections": np.int32,
    }
    assert assert_same_detections(expected, actual, tol=1e-3, score_tol=1e-4) >= batch // 2 + 1
    # Same graph, same thresholds: every detection down to the 0.01 threshold, not only the confident.
    np.testing.assert_array_equal(actual["num_detections"], expected["num_detections"])
    boxes = actual["detection_boxes"]
    assert boxes.min() >= 0.0 and boxes.max() <= 1.0


@pytest.mark.numerics
def test_dynamic_batch_gives_each_image_its_own_detections(onnx_file, images):
    detector = export.OnnxDetector(onnx_file, num_threads=2)
    single = [detector(images[i : i + 1]) for i in range(len(images))]
    for batch in (3, 8):
        together = detector(images[:batch])
        for i in range(batch):
            n = single[i]["num_detections"][0]
            assert together["num_detections"][i] == n
            np.testing.assert_array_equal(together["detection_classes"][i, :n], single[i]["detection_classes"][0, :n])
            np.testing.assert_allclose(together["detection_scores"][i], single[i]["detection_scores"][0], atol=1e-5)
            np.testing.assert_allclose(together["detection_boxes"][i], single[i]["detection_boxes"][0], atol=1e-5)
            assert not together["detection_scores"][i, n:].any()


def test_bad_input_is_a_clear_error(onnx_file, images):
    detector = export.load_detector(onnx_file)
    with pytest.raises(ValueError, match=r"got shape \(160, 160, 3\)"):
        detector(images[0])
    with pytest.raises(ValueError, match=r"got shape \(1, 160, 160, 4\)"):
        detector(np.zeros([1, 160, 160, 4], np.uint8))
    with pytest.raises(ValueError, match="got dtype float32"):
        detector(images.astype(np.float32))
    with pytest.raises(ValueError, match=r"got shape \(0, 160, 160, 3\)"):
        detector(images[:0])
    # ONNX Runtime itself refuses the wrong dtype rather than misreading it.
    with pytest.raises(Exception, match=r"tensor\(float\).*tensor\(uint8\)"):
        detector.session.run(None, {"images": images[:1].astype(np.float32)})
    # Still works afterwards, and other sizes are resized.
    assert detector(images[:1])["num_detections"][0] >= 1
    assert detector(np.zeros([2, 90, 120, 3], np.uint8))["detection_boxes"].shape == (2, 200, 4)


def test_missing_corrupt_and_foreign_files_name_the_file(onnx_file, tmp_path):
    missing = str(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="ONNX model '.*missing.onnx' does not exist"):
        export.OnnxDetector(missing)
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        export.load_detector(missing)
    truncated = str(tmp_path / "truncated.onnx")
    with open(onnx_file, "rb") as f, open(truncated, "wb") as out:
        out.write(f.read()[:50_000])
    text = str(tmp_path / "text.onnx")
    with open(text, "w") as f:
        f.write("not a model\n")
    empty = str(tmp_path / "empty.onnx")
    open(empty, "wb").close()
    for path in (truncated, text, empty):
        with pytest.raises(ValueError, match=f"'{path}' is not an ONNX model ONNX Runtime can load"):
            export.load_detector(path)
    identity = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "identity",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    ), opset_imports=[onnx.helper.make_opsetid("", 18)])
    foreign = str(tmp_path / "identity.onnx")
    onnx.save(identity, foreign)
    with pytest.raises(ValueError, match="identity.onnx' is not an SSD detector exported by keras_ssd"):
        export.load_detector(foreign)


def test_names_come_from_the_labels_file_without_metadata(onnx_file, tmp_path):
    model = onnx.load(onnx_file)
    del model.metadata_props[:]
    path = str(tmp_path / "bare.onnx")
    onnx.save(model, path)
    assert export.OnnxDetector(path).class_names is None
    export.labels.write_labels(str(tmp_path / "bare.labels.txt"), ["a", "b", "c"])
    assert export.OnnxDetector(path).class_names == ["a", "b", "c"]


def test_overrides_reach_the_graph_and_short_lists_are_padded(trained_model, images, tmp_path, capsys):
    # 5 candidates per class, 3 classes: at most 15 survivors, padded to 20 rows.
    overrides = {"score_threshold": 0.2, "nms_iou_threshold": 0.3, "pre_nms_top_k": 5, "max_detections": 20}
    path = export.export_onnx(trained_model, tmp_path / "small.onnx", **overrides)
    err = capsys.readouterr().err
    assert "ONNX export: converting ssd_tiny with tf2onnx (opset 18)" in err and " nodes in " in err
    expected = keras_ssd.build_detector(trained_model, **overrides)(images.astype(np.float32))
    actual = export.load_detector(path)(images)
    assert actual["detection_boxes"].shape == (8, 20, 4)
    np.testing.assert_array_equal(actual["num_detections"], np.asarray(expected["num_detections"]))
    assert actual["num_detections"].max() <= 15 and actual["num_detections"].min() >= 1
    assert assert_same_detections(expected, actual, tol=1e-3, score_tol=1e-4) >= 4
    for b, n in enumerate(actual["num_detections"]):
        assert actual["detection_scores"][b, :n].min() > 0.2
        assert not actual["detection_scores"][b, n:].any() and not actual["detection_boxes"][b, n:].any()
        assert not actual["detection_classes"][b, n:].any()

    before = os.path.getmtime(path)
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        export.export_onnx(trained_model, path)
    assert os.path.getmtime(path) == before
    with pytest.raises(ValueError, match="must end in .onnx"):
        export.export_onnx(trained_model, tmp_path / "model.pb")
    with pytest.raises(ValueError, match="needs an SSD model"):
        export.convert_to_onnx(keras_ssd.build_detector(trained_model))
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".partial")]


def test_predict_and_evaluate_run_the_onnx_file(onnx_file, model_file, tmp_path):
    image = str(tmp_path / "shape.png")
    detector = export.load_detector(onnx_file)
    examples = list(keras_ssd.data.load("shapes", "validation", num_examples=1, seed=3, **SHAPES).as_numpy_iterator())
    Image.fromarray(examples[0]["image"]).save(image)
    assert predict.main(["--model", onnx_file, image, "--output", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "detections.json") as f:
        (result,) = json.load(f)
    best = detector(examples[0]["image"][None])
    assert result["detections"][0]["class_name"] == detector.class_names[best["detection_classes"][0, 0]]
    assert result["detections"][0]["score"] == pytest.approx(float(best["detection_scores"][0, 0]), abs=1e-4)

    options = {**SHAPES, "num_examples": 48}
    keras_map = evaluate.evaluate(model_file, "shapes", "validation", dataset_options=options,
                                  precision="float32")["mAP"]
    onnx_map = evaluate.evaluate(onnx_file, "shapes", "validation", dataset_options=options)["mAP"]
    assert keras_map > 0.3 and abs(onnx_map - keras_map) < 0.005, (keras_map, onnx_map)


def test_int8_file_quantises_the_network_only(model_file, onnx_file, tmp_path):
    """`--quantize int8`: QDQ around the convolutions, decoder and NMS untouched, same interface."""
    assert export_cli.main(["--model", model_file, "--format", "onnx", "--quantize", "int8", "--output",
                            str(tmp_path), "--calibration-dataset", "shapes", "--calibration-examples", "16"]) == 0
    path = tmp_path / "ssd_tiny_int8.onnx"
    assert (tmp_path / "ssd_tiny_int8.labels.txt").exists()
    int8, float32 = onnx.load(path), onnx.load(onnx_file)
    onnx.checker.check_model(int8)
    quantised_network_convs(int8)
    decoder = [node for node in int8.graph.node if "/detection_decoder" in node.name]
    assert decoder and not any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in decoder)
    assert os.path.getsize(path) < 0.4 * os.path.getsize(onnx_file)  # int8 weights
    assert [(i.name, i.type) for i in int8.graph.input] == [(i.name, i.type) for i in float32.graph.input]
    assert [(o.name, o.type) for o in int8.graph.output] == [(o.name, o.type) for o in float32.graph.output]
    assert export.OnnxDetector(str(path)).class_names == export.OnnxDetector(onnx_file).class_names


def test_int8_needs_calibration_and_rejects_other_quantisations(trained_model, model_file, tmp_path, capsys):
    with pytest.raises(ValueError, match="calibration images are needed"):
        export.export_onnx(trained_model, tmp_path / "m.onnx", quantize="int8")
    with pytest.raises(ValueError, match="ONNX quantize must be one of"):
        export.export_onnx(trained_model, tmp_path / "m.onnx", quantize="dynamic")
    status = export_cli.main(["--model", model_file, "--format", "onnx", "--quantize", "dynamic",
                              "--output", str(tmp_path)])
    assert status == 2
    assert "applies to --format tflite (any) and onnx (none, int8)" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.onnx"))


@pytest.mark.full_size
def test_ssd300_exports_to_onnx(tmp_path):
    cfg = keras_ssd.SSDConfig.from_preset("ssd300_vgg16", num_classes=20, max_detections=100)
    path = export.export_onnx(keras_ssd.build_ssd(cfg), tmp_path / "ssd300.onnx", verbose=False)
    detector = export.OnnxDetector(path, num_threads=2)
    assert detector.image_size == 300
    image = np.random.default_rng(0).integers(0, 256, (1, 375, 500, 3)).astype(np.uint8)
    detected = detector(image)
    assert detected["detection_boxes"].shape == (1, 100, 4)
    assert detected["detection_classes"].max() < 20
    assert np.isfinite(detected["detection_scores"]).all() and detected["num_detections"][0] > 0

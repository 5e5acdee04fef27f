"""bfloat16 inference: the bf16 SavedModel variant and the Keras detector in bf16 against float32.

Measured on the demo model and the 200 shapes validation images (AMD EPYC Zen 4,
AVX512_BF16, oneDNN on): VOC07 0.80836 in float32 against 0.80811 (Keras
detector) and 0.80814 (SavedModel) in bf16; detections above 0.3 all found again
with the same class, scores within 0.0107 and boxes within 0.0098.
"""

import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import DEMO_MODEL
from PIL import Image

from keras_ssd import data, export, precision
from keras_ssd.evaluation import VOCEvaluator
from training import evaluate, predict
from training import export as export_cli

# bf16 keeps 8 significant bits; the tolerances are ~3x the measured differences.
SCORE_TOLERANCE = 0.03
BOX_TOLERANCE = 0.02
MAP_TOLERANCE = 0.005


@pytest.fixture(scope="module")
def validation():
    """The shapes validation split the demo model's VOC07 is reported on."""
    return list(data.load("shapes", "validation").as_numpy_iterator())


@pytest.fixture(scope="module")
def bf16_dir(trained_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bf16") / "serving"
    return export.export_saved_model(trained_model, folder, name="ssd_tiny_bf16", precision="mixed_bfloat16")


def _conv_dtypes(path):
    """The `T` dtypes of every Conv2D in the SavedModel's serving_default function library."""
    graph = tf.saved_model.load(path).signatures["serving_default"].graph.as_graph_def()
    nodes = [node for function in graph.library.function for node in function.node_def]
    return {tf.dtypes.as_dtype(node.attr["T"].type).name for node in nodes if node.op == "Conv2D"}


def _run(detector, examples):
    """(VOC07 mAP, per-image outputs) of `detector` over `examples`, one raw image at a time."""
    evaluator, outputs = VOCEvaluator(3, metric="voc07"), []
    for e in examples:
        outputs.append(detector(e["image"][None]))
        evaluator.update(outputs[-1], {key: e[key][None] for key in ("boxes", "labels", "difficult")})
    return evaluator.result()["mAP"], outputs


def _confident(output, threshold):
    n = output["num_detections"][0]
    keep = output["detection_scores"][0][:n] > threshold
    return [(c, s, b) for c, s, b in zip(output["detection_classes"][0][:n][keep],
                                         output["detection_scores"][0][:n][keep],
                                         output["detection_boxes"][0][:n][keep])]


def _assert_found_again(ours, theirs):
    """The detections of `ours` above 0.3 are in `theirs` with their class, score and box, within tolerance.

    Where two boxes of one object score within bf16's rounding of each other, the two
    precisions can keep different ones through NMS, and the kept box can then suppress a
    weaker detection nearby. The fitted demo model (8790 default boxes, ~6 positives per
    object) does that on 3 of 200 images with oneDNN on (AMD EPYC Zen 5): 4 of 464
    float32 detections and 3 of 464 bf16 ones lack their counterpart (e.g. a 95 px
    circle at 0.901 whose two boxes lie 0.088 apart, and a 0.36 detection beside it that
    the other box then suppresses); none with oneDNN off. At most 2% may.
    """
    compared, missing = 0, []
    for image, (a, b) in enumerate(zip(ours, theirs)):
        candidates = _confident(b, 0.3 - SCORE_TOLERANCE)
        for cls, score, box in _confident(a, 0.3):
            compared += 1
            if not any(c == cls and abs(score - s) < SCORE_TOLERANCE and np.abs(box - bx).max() < BOX_TOLERANCE
                       for c, s, bx in candidates):
                missing.append((image, int(cls), round(float(score), 3)))
    assert compared > 100 and len(missing) <= compared // 50, (compared, missing)


def test_bf16_saved_model_computes_in_bf16_with_float32_interface(bf16_dir, saved_model_dir):
    assert _conv_dtypes(bf16_dir) == {"bfloat16"}
    assert _conv_dtypes(saved_model_dir) == {"float32"}
    signature = tf.saved_model.load(bf16_dir).signatures["serving_default"]
    assert signature.structured_input_signature[1]["images"].dtype == tf.uint8
    outputs = signature.structured_outputs
    assert {key: spec.dtype for key, spec in outputs.items()} == {
        "detection_boxes": tf.float32, "detection_scores": tf.float32,
        "detection_classes": tf.int32, "num_detections": tf.int32,
    }


@pytest.mark.numerics
def test_bf16_saved_model_detects_as_float32_does(bf16_dir, saved_model_dir, validation):
    float32_map, float32_out = _run(export.load_detector(saved_model_dir), validation)
    bf16_map, bf16_out = _run(export.load_detector(bf16_dir), validation)
    assert bf16_map == pytest.approx(float32_map, abs=MAP_TOLERANCE)
    _assert_found_again(float32_out, bf16_out)
    _assert_found_again(bf16_out, float32_out)


@pytest.mark.numerics
def test_keras_detector_in_bf16_keeps_the_demo_map():
    """`training.evaluate`'s path (batches under a tf.function) in each precision."""
    maps = {p: evaluate.evaluate(DEMO_MODEL, "shapes", precision=p)["mAP"] for p in ("float32", "mixed_bfloat16")}
    assert maps["mixed_bfloat16"] == pytest.approx(maps["float32"], abs=MAP_TOLERANCE), maps


def test_export_cli_writes_the_bf16_variant_beside_float32(tmp_path):
    written = export_cli.run(export_cli.COMMAND.parse(
        ["--model", DEMO_MODEL, "--output", str(tmp_path), "--saved-model-precision", "mixed_bfloat16"]
    ))
    assert written == [str(tmp_path / "ssd_tiny_bf16" / "1")]
    assert os.path.exists(tmp_path / "ssd_tiny_bf16" / "1" / "saved_model.pb")
    assert _conv_dtypes(written[0]) == {"bfloat16"}


def test_precision_of_an_exported_model_is_a_clear_error(trained_model, saved_model_dir):
    with pytest.raises(ValueError, match="applies to .keras models only"):
        export.load_detector(saved_model_dir, precision="mixed_bfloat16")
    with pytest.raises(ValueError, match="precision must be one of"):
        export.export_saved_model(trained_model, "unused", precision="bf16")


def test_predict_and_evaluate_say_the_precision_and_refuse_it_for_exports(saved_model_dir, tmp_path, capsys):
    image = tmp_path / "shape.png"
    Image.fromarray(next(data.load("shapes", "validation").as_numpy_iterator())["image"]).save(image)
    assert predict.main(["--model", DEMO_MODEL, str(image), "--output", str(tmp_path / "out"),
                         "--precision", "mixed_bfloat16"]) == 0
    assert "precision: mixed_bfloat16 (given)" in capsys.readouterr().out
    assert evaluate.main(["--model", saved_model_dir, "--precision", "float32", "--examples", "2"]) == 2
    assert "--precision float32 applies to .keras models" in capsys.readouterr().err


def test_a_model_in_bf16_exports_to_tflite_and_onnx_as_float32(trained_model, images, tmp_path):
    """A model trained in bf16 (what `with_precision` or training.train gives) converts from its float32 twin."""
    bf16 = precision.with_precision(trained_model, "mixed_bfloat16")
    for name, model in (("float32", trained_model), ("bf16", bf16)):
        export.export_tflite(model, tmp_path / f"{name}.tflite", verbose=False)
        export.export_onnx(model, tmp_path / f"{name}.onnx", verbose=False)
    for suffix, reader in ((".tflite", export.TFLiteDetector), (".onnx", export.OnnxDetector)):
        ours, theirs = (reader(str(tmp_path / f"{name}{suffix}"))(images) for name in ("float32", "bf16"))
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=f"{suffix} {key}")

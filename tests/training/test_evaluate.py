"""`python -m training.evaluate` on a training checkpoint (fresh process) and on exported models."""

import json
import os
import subprocess
import sys

import pytest

import keras_ssd
from keras_ssd.optimizers import build_sgd
from training import evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_evaluate_cli_loads_a_training_checkpoint_and_writes_json(tmp_path, tiny_cfg):
    # Compiled with the training recipe's schedule, as training.train saves it.
    model = keras_ssd.build_ssd(tiny_cfg, class_names=["circle", "square", "triangle"])
    model.compile(optimizer=build_sgd(0.01, 8, 10, 2), loss=keras_ssd.SSDLoss())
    path = tmp_path / "model.keras"
    model.save(path)
    output = tmp_path / "result.json"
    report = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "training.evaluate", "--model", str(path), "--metric", "voc12",
         "--output", str(output), "--report", str(report)],
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "circle" in result.stdout and "mAP" in result.stdout
    metrics = json.loads(output.read_text())
    assert 0.0 <= metrics["mAP"] < 0.05  # an untrained model finds almost nothing
    assert set(metrics["per_class_ap"]) == {"circle", "square", "triangle"}
    # The report from the same pass: no training run beside the model, so no training curves.
    assert f"Wrote the report {report / 'report.html'} in " in result.stdout
    assert {p.name for p in report.iterdir()} == {
        "report.html", "pr_curves.png", "f1_curves.png", "confusion_matrix.png", "confusion_matrix_normalized.png",
        "coverage.png", "predictions.png",
    }
    assert f"mAP <b>{metrics['mAP']:.4f}</b>" in (report / "report.html").read_text()


DEMO = os.path.join(ROOT, "saved_models")


@pytest.mark.numerics
@pytest.mark.slow
def test_exported_models_score_what_the_keras_model_scores(tmp_path, capsys):
    # The shipped demo model and its exports, all from one training run that
    # recorded VOC07 mAP 0.8052 on the shapes validation split.
    with open(os.path.join(DEMO, "ssd_tiny.json")) as f:
        recorded = json.load(f)["mAP"]
    maps = {
        name: evaluate.evaluate(os.path.join(DEMO, name), "shapes")["mAP"]
        for name in ("ssd_tiny.keras", "ssd_tiny", "ssd_tiny.tflite", "ssd_tiny_int8.tflite")
    }
    with capsys.disabled():
        print("\nVOC07 mAP by training.evaluate: " + ", ".join(f"{k} {v:.4f}" for k, v in maps.items()))
    assert maps["ssd_tiny.keras"] == pytest.approx(recorded, abs=0.005)
    assert maps["ssd_tiny"] == pytest.approx(maps["ssd_tiny.keras"], abs=0.005)  # SavedModel
    assert maps["ssd_tiny.tflite"] == pytest.approx(maps["ssd_tiny.keras"], abs=0.005)
    assert maps["ssd_tiny.tflite"] - maps["ssd_tiny_int8.tflite"] <= 0.02

    output = tmp_path / "int8.json"
    evaluate.main(["--model", os.path.join(DEMO, "ssd_tiny_int8.tflite"), "--output", str(output)])
    assert json.loads(output.read_text())["mAP"] == pytest.approx(maps["ssd_tiny_int8.tflite"])
    assert "circle" in capsys.readouterr().out


def test_missing_model_and_unbatchable_pipeline_are_clear_errors():
    with pytest.raises(ValueError, match="'no/such.tflite' does not exist"):
        evaluate.evaluate("no/such.tflite", "shapes")
    with pytest.raises(ValueError, match="batch_size must be 1, got 4"):
        keras_ssd.data.eval_pipeline(keras_ssd.data.load("shapes", "validation"), None, 4)


@pytest.mark.parametrize("name, preset", [("ssd_tiny.tflite", None), ("ssd_tiny", "ssd_tiny")])
def test_report_of_an_exported_model_has_coverage_only_with_a_preset(tmp_path, name, preset):
    report = tmp_path / "report"
    result = evaluate.evaluate(os.path.join(DEMO, name), "shapes", examples=6, report=str(report), preset=preset)
    pictures = {p.name for p in report.iterdir()}
    assert "report.html" in pictures and "pr_curves.png" in pictures and "training_curves.png" not in pictures
    assert ("coverage.png" in pictures) == (preset is not None)
    assert f"mAP <b>{result['mAP']:.4f}</b>" in (report / "report.html").read_text()


def test_a_failing_report_is_one_warning_line_and_the_json_is_written(tmp_path, tiny_cfg, monkeypatch, capsys):
    model = keras_ssd.build_ssd(tiny_cfg, class_names=["circle", "square", "triangle"])
    path = tmp_path / "model.keras"
    model.save(path)

    def broken_report(*args, **kwargs):
        raise RuntimeError("a figure failed")

    monkeypatch.setattr(evaluate, "detection_report", broken_report)
    output = tmp_path / "result.json"
    status = evaluate.main(["--model", str(path), "--examples", "8", "--report", str(tmp_path / "report"),
                            "--output", str(output)])
    err = capsys.readouterr().err
    assert status == 0, err[-3000:]
    assert [line for line in err.splitlines() if line.startswith(("warning:", "error:"))] == [
        "warning: the report could not be written (RuntimeError: a figure failed); evaluating without it"
    ]
    assert json.loads(output.read_text()) == json.loads(json.dumps(evaluate.evaluate(str(path), "shapes", examples=8)))

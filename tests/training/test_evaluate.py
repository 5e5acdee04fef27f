"""`python -m training.evaluate` on a checkpoint saved by training (fresh process)."""

import json
import os
import subprocess
import sys

import keras_ssd
from keras_ssd.optimizers import build_sgd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_evaluate_cli_loads_a_training_checkpoint_and_writes_json(tmp_path, tiny_cfg):
    # Compiled with the training recipe's schedule, as training.train saves it.
    model = keras_ssd.build_ssd(tiny_cfg, class_names=["circle", "square", "triangle"])
    model.compile(optimizer=build_sgd(0.01, 8, 10, 2), loss=keras_ssd.SSDLoss())
    path = tmp_path / "model.keras"
    model.save(path)
    output = tmp_path / "result.json"
    result = subprocess.run(
        [sys.executable, "-m", "training.evaluate", "--model", str(path), "--metric", "voc12",
         "--output", str(output)],
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

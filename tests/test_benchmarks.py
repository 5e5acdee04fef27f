"""benchmarks/compare.py --quick runs and prints every row of its table (timings are not checked)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = (
    "Keras `predict_on_batch`, detector",
    "Keras `tf.function`, detector",
    "Keras `tf.function`, XLA network + decoder",
    "SavedModel `serving_default` (uint8)",
    "TFLite float32 (LiteRT)",
    "TFLite dynamic-range (LiteRT)",
    "TFLite int8 (LiteRT)",
    "ONNX Runtime (CPU)",
    "network only, no post-processing",
    "decode + NMS share of inference",
    "training step (`train_on_batch`, the ssd_tiny recipe: adamw, jit_compile auto)",
    "training step, `jit_compile=True`",
    "input pipeline",
)


@pytest.mark.slow
def test_compare_quick_prints_the_table():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, os.path.join("benchmarks", "compare.py"), "--quick"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    throughput, latency = result.stdout.split("Latency at batch 1, single calls (ms):")
    table = [line for line in throughput.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| what | batch | keras_ssd img/s | torchvision img/s | keras / torch |")
    for name in ROWS:
        rows = [line for line in table if line.startswith(f"| {name}")]
        expected = 1 if name in ("input pipeline",) or name.startswith("training step") else 2
        assert len(rows) == expected, (name, result.stdout)
    for name in ROWS[:8]:  # the detectors: batch-1 median and p90 ms
        assert sum(line.startswith(f"| {name} | ") for line in latency.splitlines()) == 1, (name, latency)
    assert "measured fp32 peak" in result.stdout and "XNNPack" in result.stdout
    assert "load average (1 / 5 / 15 min)" in result.stdout
    assert "command: `python benchmarks/compare.py --quick`" in result.stdout

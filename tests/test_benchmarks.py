"""The benchmark scripts run and print their tables and figures (timings are not checked)."""

import os
import re
import subprocess
import sys

import pytest

from keras_ssd import cpu, precision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DETECTOR_ROWS = (
    "Keras `predict_on_batch`, detector",
    "Keras `tf.function`, detector",
    "Keras `tf.function`, XLA network + decoder",
    "SavedModel `serving_default` (uint8)",
    "TFLite float32 (LiteRT)",
    "TFLite dynamic-range (LiteRT)",
    "TFLite int8 (LiteRT)",
    "ONNX Runtime (CPU)",
    "ONNX Runtime int8 (QDQ, CPU)",
)
# Rows of this machine's automatic precision, where it is not float32 (bf16 CPUs).
POLICY_ROWS = (
    "Keras `tf.function`, detector, {policy} (this machine's auto)",
    "SavedModel `serving_default`, {policy} variant",
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
    assert table[0].startswith("| what | batch | keras_ssd img/s | torchvision img/s (fastest variant) |")
    policy = precision.auto_precision().value
    detectors = DETECTOR_ROWS + (tuple(r.format(policy=policy) for r in POLICY_ROWS) if policy != "float32" else ())
    for name in detectors:
        assert len([line for line in table if line.startswith(f"| {name} |")]) == 2, (name, result.stdout)
    for name in ("network only, no post-processing", "decode + NMS share of inference"):
        assert len([line for line in table if line.startswith(f"| {name}")]) == 2, (name, result.stdout)
    for name in detectors:  # the detectors: batch-1 median and p90 ms
        assert sum(line.startswith(f"| {name} | ") for line in latency.splitlines()) == 1, (name, latency)
    if policy == "float32":  # no bf16 rows where bf16 is not this machine's choice
        assert "(this machine's auto)" not in throughput and "variant |" not in "\n".join(table[1:])
    training = [line for line in table if line.startswith("| training step")]
    assert len(training) == 2, result.stdout
    jit = precision.resolve_jit_compile("auto", "ssd_tiny", policy).value
    assert training[0].startswith(
        f"| training step (`train_on_batch`), `training.train`'s defaults here: adamw, {policy}, jit_compile {jit} |"
    ), training
    assert sum(line.startswith("| input pipeline") for line in table) == 1
    # Each precision's peak is at least its fastest row: no share of the peak above 100%.
    shares = [int(share) for line in table for share in re.findall(r"\((\d+)%\)", line)]
    assert shares and max(shares) <= 100, table
    assert "measured fp32 peak" in result.stdout and "XNNPack" in result.stdout
    assert ("measured bf16 peak" in result.stdout) == (policy == "mixed_bfloat16")
    assert f"- CPU: {cpu.describe()}" in result.stdout
    assert "load average (1 / 5 / 15 min)" in result.stdout
    assert "command: `python benchmarks/compare.py --quick`" in result.stdout


@pytest.mark.slow
def test_filter_gradient_table_has_a_row_per_stride_1_convolution():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, os.path.join("benchmarks", "filter_gradient.py"), "--preset", "ssd_tiny", "--repeats", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split(" | ") for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    header, rows = rows[0], rows[1:]
    assert header[0] == "| layer" and header[-1] == "Conv2D trains with |"
    # ssd_tiny's 3x3 and 1x1 stride-1 convolutions, none wide enough for the per-tap gradient.
    assert rows[0][:2] == ["| block1_conv1", "160x160x3"]
    assert len(rows) >= 8 and all(row[-1] == "TensorFlow's |" or "skipped" in row[-1] for row in rows)
    assert "filter gradients in all: TensorFlow's" in result.stdout


def test_training_run_rates_come_from_the_log_minutes(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import training_run
    finally:
        sys.path.remove(os.path.join(ROOT, "benchmarks"))
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss,minutes,val_mAP\n0,3.0,0.5,0.1\n1,2.0,1.0,0.2\n2,1.5,1.25,0.3\n")
    # 64 images per epoch: epoch 2 took 30 s, epoch 3 15 s; epoch 1 (tracing) is not counted.
    assert training_run.epoch_rates(log, 64) == pytest.approx([64 / 30, 64 / 15])


@pytest.mark.slow
def test_training_run_times_the_training_command():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, os.path.join("benchmarks", "training_run.py"), "--preset", "ssd_tiny", "--epochs", "3",
         "--steps-per-epoch", "2", "--rounds", "1", "--no-torch"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("training command: python -m training.train --preset ssd_tiny --dataset shapes --examples 16 "
            "--val-examples 8 --batch-size 8 --steps-per-epoch 2 --epochs 3 --output <tmp>") in result.stdout
    rates = re.search(r"^round 1: training.train ([\d.]+), ([\d.]+) img/s$", result.stdout, re.M)
    assert rates and all(float(rate) > 0 for rate in rates.groups()), result.stdout
    assert re.search(r"^median: training.train [\d.]+ img/s \(epochs 2-3 of 1 runs\)$", result.stdout, re.M)
    assert f"CPU: {cpu.describe()}" in result.stdout

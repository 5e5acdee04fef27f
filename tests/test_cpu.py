"""`keras_ssd.cpu`: the CPU line every test run prints, and the oneDNN flip CI runs the numerics tests under."""

import os
import subprocess
import sys

from keras_ssd import cpu


def _cpu_cli(*args, onednn):
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "keras_ssd.cpu", *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_opposite_onednn_flips_what_tensorflow_runs():
    assert _cpu_cli("--opposite-onednn", onednn="0") == "1"
    assert _cpu_cli("--opposite-onednn", onednn="1") == "0"
    assert _cpu_cli(onednn="0").endswith("oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)")


def test_describe_names_the_cpu_and_its_kernel_flags():
    line = cpu.describe()
    assert line.startswith(cpu.cpu_model())
    assert set(cpu.kernel_flags()) <= set(cpu.KERNEL_FLAGS)
    if sys.platform.startswith("linux"):
        with open("/proc/cpuinfo") as f:
            flags = set(next(line for line in f if line.startswith("flags")).split(":")[1].split())
        assert set(cpu.kernel_flags()) == flags & set(cpu.KERNEL_FLAGS)
        assert ("no AMX" in line) == ("amx_tile" not in flags)

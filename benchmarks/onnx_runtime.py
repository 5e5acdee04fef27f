"""ONNX Runtime latency at batch 1 and 8: the shipped demo `.onnx` and a random-weight SSD300.

    python benchmarks/onnx_runtime.py [--seconds 10] [--threads 2]

Runs `saved_models/ssd_tiny.onnx` (trained, post-processing as exported) on
shapes validation images, and SSD300-VGG16 (20 classes, random weights,
exported with `keras_ssd.export.export_onnx` into a temporary folder) on
random images, each through `keras_ssd.export.OnnxDetector` (CPU execution
provider, `--threads` intra-op threads), post-processing included. Prints
per-call median and 90th-percentile latency in ms and images/s (batch / median).

A random network scores every box near 1 / (classes + 1), so at the usual
0.01 threshold NMS would rank thousands of boxes per class, a cost a trained
detector never pays; SSD300 is exported with `--score-threshold` (default
0.3, as `benchmarks/ssdlite.py`) so its figures are the network's. Cases are
timed one after the other; `uptime` is printed before and after.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import onnxruntime

import keras_ssd
from keras_ssd import data, export

DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models", "ssd_tiny.onnx")
BATCHES = (1, 8)


def latencies_ms(detector, images, seconds, warmup=3, min_calls=5):
    """Per-call wall-clock ms of `detector(images)` over about `seconds`, after `warmup` calls."""
    for _ in range(warmup):
        detector(images)
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < min_calls:
        tick = time.perf_counter()
        detector(images)
        times.append(1000 * (time.perf_counter() - tick))
    return times


def report(name, detector, images, seconds):
    """Prints one row per batch size: median and p90 ms per call, images/s."""
    for batch in BATCHES:
        times = latencies_ms(detector, images[:batch], seconds)
        median, p90 = statistics.median(times), statistics.quantiles(times, n=10)[-1]
        print(f"{name:<34}{batch:>6}{len(times):>7}{median:>10.1f}{p90:>10.1f}{1000 * batch / median:>8.2f}",
              flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="timing window per case")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--score-threshold", type=float, default=0.3, help="SSD300's (random weights)")
    args = parser.parse_args()

    print(subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())
    print(f"onnxruntime {onnxruntime.__version__}, CPUExecutionProvider, {args.threads} threads, "
          f"{os.cpu_count()} CPU cores")
    print(f"{'model':<34}{'batch':>6}{'calls':>7}{'median ms':>10}{'p90 ms':>10}{'img/s':>8}")
    demo = export.OnnxDetector(DEMO, num_threads=args.threads)
    shapes = data.load("shapes", "validation", num_examples=max(BATCHES), image_size=demo.image_size)
    report("ssd_tiny demo (saved_models)", demo, np.stack([e["image"] for e in shapes.as_numpy_iterator()]),
           args.seconds)

    cfg = keras_ssd.SSDConfig.from_preset("ssd300_vgg16", num_classes=20)
    with tempfile.TemporaryDirectory() as folder:
        path = export.export_onnx(
            keras_ssd.build_ssd(cfg), os.path.join(folder, "ssd300.onnx"), verbose=False,
            score_threshold=args.score_threshold,
        )
        ssd300 = export.OnnxDetector(path, num_threads=args.threads)
        images = np.random.default_rng(0).integers(0, 256, (max(BATCHES), 300, 300, 3), dtype=np.uint8)
        report(f"SSD300-VGG16 random, score > {args.score_threshold}", ssd300, images, args.seconds)
    print(subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())

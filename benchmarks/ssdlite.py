"""TFLite latency at batch 1: SSDLite320-MobileNetV2 (float32, int8) beside SSD300-VGG16 (float32).

    python benchmarks/ssdlite.py [--seconds 20] [--threads 2] [--model runs/ssdlite/best.keras]

Exports each model with `keras_ssd.export.export_tflite` (post-processing
inside, uint8 input) into a temporary folder, then times
`ai_edge_litert`'s interpreter (XNNPack) on one image at a time: median
latency in ms, images/s, the `.tflite` size, and each model's speed relative
to SSD300 float32. The int8 model is calibrated on 100 "shapes" training
images at 320 px.

Weights are random (20 classes) unless `--model` gives a trained
`ssdlite320_mobilenetv2` `.keras` file. A random network scores every box
near 1 / (classes + 1), so at the usual 0.01 threshold NMS would rank
thousands of boxes per class, a cost a trained detector never pays;
`--score-threshold` (default 0.3, for every model) keeps the figures those
of the networks. Other jobs on the machine slow every row alike, so the
ratios are steadier than the absolute figures: `uptime` is printed first.
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from ai_edge_litert.interpreter import Interpreter

import keras_ssd
from keras_ssd import data, export


def latency_ms(path, image, seconds, threads):
    """Per-call latencies (ms) of the `.tflite` at `path` on uint8 `image` `[1, S, S, 3]`."""
    runner = Interpreter(model_path=path, num_threads=threads).get_signature_runner("serving_default")
    for _ in range(3):
        runner(images=image)
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 5:
        tick = time.perf_counter()
        runner(images=image)
        times.append(1000 * (time.perf_counter() - tick))
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="timing window per model")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="interpreter threads")
    parser.add_argument("--score-threshold", type=float, default=0.3)
    parser.add_argument("--model", help="a trained ssdlite320_mobilenetv2 .keras file (default: random)")
    args = parser.parse_args()

    print(subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())
    print(f"{os.cpu_count()} CPU cores, {args.threads} interpreter threads, score threshold "
          f"{args.score_threshold}")
    ssd300 = keras_ssd.build_ssd(keras_ssd.SSDConfig.from_preset("ssd300_vgg16", num_classes=20))
    if args.model:
        lite = keras.saving.load_model(args.model, compile=False)
    else:
        lite = keras_ssd.build_ssd(keras_ssd.SSDConfig.from_preset("ssdlite320_mobilenetv2", num_classes=20))
    size = lite.ssd_config.image_size
    calibration = export.calibration_images(data.load("shapes", "train", image_size=size), size, 100)
    rows = [
        ("SSD300-VGG16", "float32", ssd300, 300),
        ("SSDLite320-MobileNetV2", "float32", lite, size),
        ("SSDLite320-MobileNetV2", "int8", lite, size),
    ]
    print(f"{'model':<24}{'tflite':>8}{'params':>12}{'MB':>8}{'ms':>9}{'img/s':>8}{'x SSD300':>10}")
    base_ms = None
    with tempfile.TemporaryDirectory() as folder:
        for name, kind, model, side in rows:
            path = export.export_tflite(
                model,
                os.path.join(folder, f"{model.name}_{kind}.tflite"),
                quantize="int8" if kind == "int8" else "none",
                calibration=calibration,
                verbose=False,
                score_threshold=args.score_threshold,
            )
            image = np.random.default_rng(0).integers(0, 256, (1, side, side, 3), dtype=np.uint8)
            if model is lite:
                image = calibration[:1]
            ms = statistics.median(latency_ms(path, image, args.seconds, args.threads))
            base_ms = base_ms or ms
            megabytes = os.path.getsize(path) / 1e6
            print(f"{name:<24}{kind:>8}{model.count_params():>12,}{megabytes:>8.2f}{ms:>9.1f}"
                  f"{1000 / ms:>8.1f}{base_ms / ms:>10.1f}", flush=True)
    print(subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())


if __name__ == "__main__":
    main()

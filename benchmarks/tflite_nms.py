"""TFLite post-processing choices on one trained model: VOC07 mAP and batch-1 latency.

    python benchmarks/tflite_nms.py [--model saved_models/ssd_tiny.keras] [--seconds 3] [--repeats 5]

Exports the model (default: the shipped demo model) as float32 and int8
`.tflite` files with regular (per-class) and fast (class-agnostic) NMS,
then, for each file:

* VOC07 mAP on the 200-image shapes validation split (`TFLiteDetector`);
* batch-1 latency in `ai_edge_litert`'s interpreter at 1 thread and at all
  cores, median and p90 in ms over `--repeats` rounds of `--seconds` each
  (every file and thread count in each round), on 20 shapes validation
  images resized to the input;
* whether the detections at all cores equal those at 1 thread.

Other jobs on the machine slow every row alike, so compare rows of one run;
`uptime` is printed first.
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

from keras_ssd import data, export
from keras_ssd.evaluation import VOCEvaluator


def voc07_map(detector, examples, num_classes):
    evaluator = VOCEvaluator(num_classes, metric="voc07")
    for e in examples:
        truth = {key: e[key][None] for key in ("boxes", "labels", "difficult")}
        evaluator.update(detector(e["image"][None]), truth)
    return evaluator.result()["mAP"]


def latencies_ms(runner, images, seconds):
    """Per-call latencies (ms) of a signature runner over `images`, cycling, for `seconds`."""
    times, start, i = [], time.perf_counter(), 0
    while time.perf_counter() - start < seconds or len(times) < 5:
        t = time.perf_counter()
        runner(images=images[i % len(images)][None])
        times.append((time.perf_counter() - t) * 1000)
        i += 1
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join("saved_models", "ssd_tiny.keras"))
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    model = keras.saving.load_model(args.model, compile=False)
    size, num_classes = model.ssd_config.image_size, model.ssd_config.num_classes
    validation = list(data.load("shapes", "validation").as_numpy_iterator())
    images = export.calibration_images(data.load("shapes", "validation"), size, 20)  # resized to the input
    calibration = export.calibration_images(data.load("shapes", "train"), size)  # as training.export does
    cores = os.cpu_count()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for quantize in ("none", "int8"):
            for nms in ("regular", "fast"):
                path = os.path.join(tmp, f"{quantize}_{nms}.tflite")
                export.export_tflite(model, path, quantize=quantize, calibration=calibration,
                                     use_regular_nms=nms == "regular", verbose=False)
                files[(quantize, nms)] = path
        runners = {
            (key, threads): Interpreter(model_path=path, num_threads=threads).get_signature_runner("serving_default")
            for key, path in files.items()
            for threads in (1, cores)
        }
        samples = {case: [] for case in runners}
        for case, runner in runners.items():
            latencies_ms(runner, images, 0.5)  # warm-up
        for round_index in range(args.repeats):
            for case, runner in runners.items():
                samples[case] += latencies_ms(runner, images, args.seconds)
            print(f"round {round_index + 1}/{args.repeats} done", flush=True)
        for key, path in files.items():
            detector = export.TFLiteDetector(path, num_threads=1)
            # Compared as every reader returns them: rows past num_detections hold junk.
            detect = {t: export.TFLiteDetector(path, num_threads=t) for t in (1, cores)}
            same = all(
                np.array_equal(detect[1](im[None])[k], detect[cores](im[None])[k])
                for im in images for k in export.OUTPUT_KEYS
            )
            stats = []
            for threads in (1, cores):
                ms = samples[(key, threads)]
                stats += [statistics.median(ms), float(np.percentile(ms, 90))]
            rows.append((key, voc07_map(detector, validation, num_classes), stats, same))
    print(f"\n{args.model}: {len(validation)} shapes validation images, batch 1, {cores} cores\n")
    print(f"| quantize | NMS | VOC07 mAP | 1 thread median / p90 ms | {cores} threads median / p90 ms "
          f"| same detections at {cores} threads |")
    print("|---|---|---|---|---|---|")
    for (quantize, nms), mAP, (m1, p1, mn, pn), same in rows:
        print(f"| {quantize} | {nms} | {mAP:.4f} | {m1:.2f} / {p1:.2f} | {mn:.2f} / {pn:.2f} | {same} |")
    print(f"\ncommand: `python benchmarks/tflite_nms.py --model {args.model} --seconds {args.seconds} "
          f"--repeats {args.repeats}`")


if __name__ == "__main__":
    main()

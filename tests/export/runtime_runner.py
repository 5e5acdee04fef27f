"""Runs a `.tflite` detector in one real runtime and prints its detections as JSON.

Run in a subprocess by the tests, so a runtime that aborts the interpreter
fails one test and not the suite:

    python tests/export/runtime_runner.py mediapipe MODEL IMAGES.npy
    python tests/export/runtime_runner.py litert MODEL IMAGES.npy --threads 2
    python tests/export/runtime_runner.py loader MODEL IMAGES.npy --threads 1 2 4

IMAGES.npy holds uint8 `[B, S, S, 3]` RGB at the model's input size. For
`mediapipe` and `litert`, prints one JSON list per image of
`{"class": name, "score": s, "box": [...]}`: MediaPipe's own integer pixel box
`[origin_y, origin_x, height, width]` (it truncates each to whole pixels),
LiteRT's normalised `[ymin, xmin, ymax, xmax]`. LiteRT runs the plain
`ai_edge_litert` interpreter (as an app does), not keras_ssd's loader.

`loader` runs keras_ssd's own reader instead: `load_detector(MODEL)`, then
`TFLiteDetector(MODEL, num_threads=t, xnnpack=x)` for every thread count given
and both kernel sets, on the whole batch; prints one JSON object
`{"load_detector": outputs, "xnnpack/1": outputs, "builtin/1": outputs, ...}`,
each the reader's four arrays, all K rows, as lists.
"""

import argparse
import json

import numpy as np


def mediapipe_detections(model, images, min_score):
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.ObjectDetectorOptions(
        base_options=BaseOptions(model_asset_path=model), score_threshold=min_score, max_results=-1
    )
    results = []
    with vision.ObjectDetector.create_from_options(options) as detector:
        for image in images:
            found = detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
            # MediaPipe merges detections that share a box into one with several categories.
            results.append([
                {
                    "class": c.category_name,
                    "score": c.score,
                    "box": [d.bounding_box.origin_y, d.bounding_box.origin_x,
                            d.bounding_box.height, d.bounding_box.width],
                }
                for d in found.detections
                for c in d.categories
            ])
    return results


def litert_detections(model, images, threads, min_score):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=model, num_threads=threads).get_signature_runner("serving_default")
    results = []
    for image in images:
        out = runner(images=image[None])
        n = int(out["num_detections"][0])
        results.append([
            {"class": int(c), "score": float(s), "box": [float(v) for v in b]}
            for b, c, s in zip(out["detection_boxes"][0, :n], out["detection_classes"][0, :n],
                               out["detection_scores"][0, :n])
            if s >= min_score
        ])
    return results


def loader_outputs(model, images, threads):
    from keras_ssd.export import TFLiteDetector, load_detector

    detectors = {"load_detector": load_detector(model)}
    for xnnpack in (True, False):
        for t in threads:
            detectors[f"{'xnnpack' if xnnpack else 'builtin'}/{t}"] = TFLiteDetector(model, t, xnnpack=xnnpack)
    return {name: {k: v.tolist() for k, v in detect(images).items()} for name, detect in detectors.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runtime", choices=["mediapipe", "litert", "loader"])
    parser.add_argument("model")
    parser.add_argument("images")
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--min-score", type=float, default=0.0)
    args = parser.parse_args()
    images = np.load(args.images)
    if args.runtime == "mediapipe":
        results = mediapipe_detections(args.model, images, args.min_score)
    elif args.runtime == "litert":
        results = litert_detections(args.model, images, args.threads[0], args.min_score)
    else:
        results = loader_outputs(args.model, images, args.threads)
    print(json.dumps(results))


if __name__ == "__main__":
    main()

"""Runs a `.tflite` detector in one real runtime and prints its detections as JSON.

Run in a subprocess by the tests, so a runtime that aborts the interpreter
fails one test and not the suite:

    python tests/export/runtime_runner.py mediapipe MODEL IMAGES.npy
    python tests/export/runtime_runner.py litert MODEL IMAGES.npy --threads 2

IMAGES.npy holds uint8 `[B, S, S, 3]` RGB at the model's input size. Prints
one JSON list per image of `{"class": name, "score": s, "box": [...]}`:
MediaPipe's own integer pixel box `[origin_y, origin_x, height, width]` (it
truncates each to whole pixels), LiteRT's normalised `[ymin, xmin, ymax, xmax]`. LiteRT runs the plain `ai_edge_litert` interpreter (as
an app does), not keras_ssd's loader.
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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runtime", choices=["mediapipe", "litert"])
    parser.add_argument("model")
    parser.add_argument("images")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-score", type=float, default=0.0)
    args = parser.parse_args()
    images = np.load(args.images)
    if args.runtime == "mediapipe":
        results = mediapipe_detections(args.model, images, args.min_score)
    else:
        results = litert_detections(args.model, images, args.threads, args.min_score)
    print(json.dumps(results))


if __name__ == "__main__":
    main()

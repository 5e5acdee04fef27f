"""Detect objects in image files with a trained or exported SSD.

    python -m training.predict --model M.keras photo1.jpg photo2.png --output predictions

`--model` is a `.keras` file, a `.tflite` file or an exported SavedModel
directory. Writes `<output>/detections.json` (per image: its size and the
detections scoring at least `--min-score`, with class names, scores and boxes
in pixels) and `<output>/<image stem>.png`, a copy of each image with the
detections drawn and labelled.
"""

import argparse
import json
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

from keras_ssd.export import load_detector

_COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240))


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m training.predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help=".keras, .tflite or SavedModel directory")
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, BMP, GIF)")
    parser.add_argument("--output", default="predictions", help="folder for the JSON and PNGs")
    parser.add_argument("--min-score", type=float, default=0.3, help="keep detections scoring this or more")
    return parser


def read_image(path):
    """uint8 `[H, W, 3]` RGB from an image file; ValueError naming the file if unreadable."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read image {path!r}: {error}") from error


def to_records(outputs, index, height, width, class_names, min_score):
    """Detections of image `index` of a detector's output as JSON-ready dicts.

    Args:
        outputs: a detector's output dict (boxes normalised `[ymin, xmin, ymax, xmax]`).
        index: the image's index in the batch.
        height, width: the image's size in pixels.
        class_names: names of the 0-based classes, or None.
        min_score: lowest score kept.

    Returns:
        list of `{"class_id", "class_name", "score", "box": {"xmin", "ymin",
        "xmax", "ymax"}}`, box in pixels of the original image, best first.
    """
    records = []
    for k in range(int(outputs["num_detections"][index])):
        score = float(outputs["detection_scores"][index, k])
        if score < min_score:
            continue
        ymin, xmin, ymax, xmax = (float(v) for v in outputs["detection_boxes"][index, k])
        class_id = int(outputs["detection_classes"][index, k])
        records.append(
            {
                "class_id": class_id,
                "class_name": class_names[class_id] if class_names else str(class_id),
                "score": round(score, 4),
                "box": {
                    "xmin": round(xmin * width, 1),
                    "ymin": round(ymin * height, 1),
                    "xmax": round(xmax * width, 1),
                    "ymax": round(ymax * height, 1),
                },
            }
        )
    return records


def draw(image, records):
    """A PIL copy of uint8 `[H, W, 3]` `image` with each record's box and "name score" label."""
    canvas = Image.fromarray(image)
    pen = ImageDraw.Draw(canvas)
    width = max(1, round(min(canvas.size) / 200))
    for record in records:
        colour = _COLOURS[record["class_id"] % len(_COLOURS)]
        box = record["box"]
        pen.rectangle([box["xmin"], box["ymin"], box["xmax"], box["ymax"]], outline=colour, width=width)
        text = f"{record['class_name']} {record['score']:.2f}"
        left, top, right, bottom = pen.textbbox((box["xmin"], box["ymin"]), text)
        top_edge = max(0, box["ymin"] - (bottom - top) - 2)
        pen.rectangle([left, top_edge, right + 2, top_edge + (bottom - top) + 2], fill=colour)
        pen.text((left + 1, top_edge), text, fill=(255, 255, 255))
    return canvas


def predict(model, image_paths, output, min_score=0.3):
    """Runs the detector on each file; writes the JSON and PNGs.

    Returns:
        `(results, errors)`: the JSON entries written, and `(path, message)`
        for files that could not be read (skipped).
    """
    detector = load_detector(model)
    os.makedirs(output, exist_ok=True)
    results, errors, stems = [], [], set()
    for path in image_paths:
        try:
            image = read_image(path)
        except ValueError as error:
            errors.append((path, str(error)))
            continue
        outputs = detector(image[None])
        records = to_records(outputs, 0, image.shape[0], image.shape[1], detector.class_names, min_score)
        stem = os.path.splitext(os.path.basename(path))[0]
        while stem in stems:  # same name in different folders
            stem += "_"
        stems.add(stem)
        png = os.path.join(output, f"{stem}.png")
        draw(image, records).save(png)
        results.append(
            {"image": path, "height": image.shape[0], "width": image.shape[1], "drawn": png, "detections": records}
        )
    with open(os.path.join(output, "detections.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results, errors


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        results, errors = predict(args.model, args.images, args.output, args.min_score)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for result in results:
        print(f"{result['image']}: {len(result['detections'])} detection(s) -> {result['drawn']}")
    for path, message in errors:
        print(f"error: {message}", file=sys.stderr)
    print(f"wrote {os.path.join(args.output, 'detections.json')}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

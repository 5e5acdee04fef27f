"""Detect objects in image files with a trained or exported SSD.

    python -m training.predict --model M.keras photo1.jpg photo2.png --output predictions

`--model` is a `.keras` file, a `.tflite` or `.onnx` file or an exported
SavedModel directory. Writes `<output>/detections.json` (per image: its size and the
detections scoring at least `--min-score`, with class names, scores and boxes
in pixels) and `<output>/<image stem>.png`, a copy of each image with the
detections drawn and labelled. Images are read by `keras_ssd.data.read_image`
(EXIF orientation applied, so a phone photo is drawn upright; 16-bit images
scaled to 8 bits). Unreadable files are skipped with an error line (exit
status 1); when none can be read nothing is written. Images the model cannot
judge (far smaller than its input, or without edges or texture) get a warning.
"""

import json
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

from keras_ssd.data import ImageFileError, read_image
from keras_ssd.export import load_detector
from training import cli, options
from training.options import Option

# Low-information inputs (see `low_information`).
_MAX_UPSCALE = 4
_EDGE_STEP = 8
_MIN_EDGE_SHARE = 0.01
_DETAIL_SIDE = 300
_COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240))


COMMAND = options.Command("python -m training.predict", __doc__, [
    Option("model", ".keras, .tflite, .onnx or SavedModel directory", required=True),
    Option("images", "image files (JPEG, PNG, BMP, GIF, WebP, TIFF)", positional=True, required=True),
    Option("output", "folder for the JSON and PNGs (default predictions)", default="predictions"),
    Option("min_score", "keep detections scoring this or more (default 0.3)", type=float, default=0.3),
    options.precision_option("a .keras model's"),
])


def low_information(image, image_size):
    """Why detections on `image` would be unreliable, or an empty list.

    Args:
        image: uint8 `[H, W, 3]` RGB.
        image_size: side of the model's square input, or None if the detector
            does not say (then only the detail is checked, at 300 px).

    Returns:
        list of str, each naming one problem: a side far smaller than the
        network input (upscaled more than `_MAX_UPSCALE` times), or almost no
        edges or texture at the network's resolution (a constant, nearly
        constant or smoothly graded image).
    """
    problems = []
    height, width = image.shape[:2]
    if image_size and min(height, width) * _MAX_UPSCALE < image_size:
        problems.append(
            f"it is {height}x{width} px, far smaller than the model's {image_size}x{image_size} input"
        )
    side = image_size or _DETAIL_SIDE
    seen = np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR), np.int16)
    steps = np.concatenate([np.abs(np.diff(seen, axis=0)).ravel(), np.abs(np.diff(seen, axis=1)).ravel()])
    edges = float(np.mean(steps > _EDGE_STEP))
    if edges < _MIN_EDGE_SHARE:
        problems.append(
            f"it has almost no edges or texture ({edges:.1%} of neighbouring pixel values differ by "
            f"more than {_EDGE_STEP} levels: constant, nearly constant or a smooth gradient)"
        )
    return problems


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


def predict(model, image_paths, output, min_score=0.3, precision="auto"):
    """Runs the detector on each file; writes the JSON and PNGs.

    A `.keras` model runs in `precision` ("auto": this machine's fastest,
    `keras_ssd.precision`); exported models in the precision they were exported in.

    Prints one line on stderr for each file that cannot be read (skipped) and
    a warning for each low-information image (see `low_information`).

    Returns:
        `(results, errors)`: the JSON entries written, and `(path, message)`
        for files that could not be read (skipped).

    Raises:
        ValueError: no image could be read; nothing is written then, and an
            `output` folder this call made is removed.
    """
    detector = load_detector(model, precision)
    if hasattr(detector, "precision"):  # a .keras model: say which precision this machine got
        print(f"precision: {detector.precision.value} ({detector.precision.reason})")
    results, errors, stems = [], [], set()
    with cli.output_folder(output, keep=lambda: bool(results)):
        for path in image_paths:
            try:
                image = read_image(path)
            except ImageFileError as error:
                errors.append((path, str(error)))
                print(f"error: {error}", file=sys.stderr)
                continue
            for problem in low_information(image, getattr(detector, "image_size", None)):
                print(f"warning: {path}: {problem}; detections on it are unreliable", file=sys.stderr)
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
        if not results:
            raise ValueError(
                f"none of the {len(image_paths)} image(s) could be read (see above); nothing was written"
            )
        with open(os.path.join(output, "detections.json"), "w") as f:
            json.dump(results, f, indent=2)
    return results, errors


@cli.entry_point
def main(argv=None):
    args = COMMAND.parse(argv)
    results, errors = predict(args.model, args.images, args.output, args.min_score, args.precision)
    for result in results:
        print(f"{result['image']}: {len(result['detections'])} detection(s) -> {result['drawn']}")
    print(f"wrote {os.path.join(args.output, 'detections.json')}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

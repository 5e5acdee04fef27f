"""Export a trained SSD for serving and phones.

    python -m training.export --model M.keras --format saved_model --output saved_models
    python -m training.export --model M.keras --format tflite --quantize int8 \\
        --calibration-data shapes --output saved_models
    python -m training.export --model M.keras --format onnx --output saved_models

SavedModel: written to `<output>/<name>/<version>/` (the layout TF Serving
loads), the next free version unless `--version` is given; an existing version
is never overwritten. TFLite: `<output>/<name>.tflite` (float32) or
`<output>/<name>_<quantize>.tflite`, plus `<stem>.labels.txt`; an existing file
is an error unless `--overwrite`; every `.tflite` carries TFLite metadata
with the class names (MediaPipe's `ObjectDetector` loads it as it is). ONNX:
`<output>/<name>.onnx` (post-processing inside, for ONNX Runtime; needs the
`onnx` extra) plus `<name>.labels.txt`, `--overwrite` as for TFLite. Several
formats and quantisations can be written in one call (`--format saved_model
tflite --quantize none int8`). Phone apps may want `--score-threshold 0.3
--max-detections 20`, and `--nms fast` with many classes.
"""

import argparse
import os
import sys

import keras

import keras_ssd
from keras_ssd import export
from training import cli, options


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m training.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="a .keras file saved from an SSD model")
    parser.add_argument(
        "--format", nargs="+", default=["saved_model"], choices=["saved_model", "tflite", "onnx"]
    )
    parser.add_argument(
        "--quantize",
        nargs="+",
        default=["none"],
        choices=list(export.QUANTIZATIONS),
        help="TFLite quantisation(s); SavedModels are always float32",
    )
    parser.add_argument("--output", required=True, help="base directory of the exports")
    parser.add_argument("--name", help="model name in paths (default: the model's name)")
    parser.add_argument("--version", type=int, help="SavedModel version (default: next free)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing .tflite / .onnx files")
    parser.add_argument(
        "--calibration-data", help="int8: source of representative images (keras_ssd.data.load)"
    )
    parser.add_argument("--calibration-split", default="train")
    parser.add_argument("--calibration-image-dir", help="image directory of a COCO json source")
    parser.add_argument("--calibration-images", type=int, default=100)
    parser.add_argument("--score-threshold", type=float, help="post-processing override")
    parser.add_argument("--nms-iou-threshold", type=float, help="post-processing override")
    parser.add_argument("--max-detections", type=int, help="post-processing override")
    parser.add_argument(
        "--nms",
        choices=["regular", "fast"],
        default="regular",
        help="TFLite NMS: regular = per class, as the Keras detector (default); fast = one NMS "
        "over each box's best class (the TF Object Detection API's mobile default)",
    )
    return parser


def tflite_path(output, name, quantize):
    """`<output>/<name>.tflite` for float32, `<output>/<name>_<quantize>.tflite` otherwise."""
    suffix = "" if quantize == "none" else f"_{quantize}"
    return os.path.join(output, f"{name}{suffix}.tflite")


def run(args):
    """Exports `args.model` as asked; returns the list of written paths."""
    if "saved_model" in args.format and args.quantize != ["none"] and "tflite" not in args.format:
        raise ValueError(f"--quantize {args.quantize} applies to --format tflite only")
    if "int8" in args.quantize and "tflite" in args.format and not args.calibration_data:
        raise ValueError("--quantize int8 needs --calibration-data (e.g. your training source)")
    if not os.path.isfile(args.model):
        raise ValueError(f"Model file {args.model!r} does not exist")
    model = keras.saving.load_model(args.model, compile=False)
    if not isinstance(model, keras_ssd.SSD):
        raise ValueError(f"{args.model!r} is not an SSD model saved by keras_ssd")
    name = args.name or model.name
    postprocess = {
        key: value
        for key, value in (
            ("score_threshold", args.score_threshold),
            ("nms_iou_threshold", args.nms_iou_threshold),
            ("max_detections", args.max_detections),
        )
        if value is not None
    }
    written = []
    if "saved_model" in args.format:
        written.append(
            export.export_saved_model(model, args.output, name=name, version=args.version, **postprocess)
        )
    if "tflite" in args.format:
        calibration = None
        if "int8" in args.quantize:
            source = options.load_dataset(
                args.calibration_data, args.calibration_split, args.calibration_image_dir
            )
            calibration = export.calibration_images(
                source, model.ssd_config.image_size, args.calibration_images
            )
        for quantize in args.quantize:
            written.append(
                export.export_tflite(
                    model,
                    tflite_path(args.output, name, quantize),
                    quantize=quantize,
                    calibration=calibration,
                    use_regular_nms=args.nms == "regular",
                    overwrite=args.overwrite,
                    **postprocess,
                )
            )
    if "onnx" in args.format:
        path = os.path.join(args.output, f"{name}.onnx")
        written.append(export.export_onnx(model, path, overwrite=args.overwrite, **postprocess))
    return written


@cli.entry_point
def main(argv=None):
    args = build_parser().parse_args(argv)
    paths = run(args)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

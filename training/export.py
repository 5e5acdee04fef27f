"""Export a trained SSD for serving and phones.

    python -m training.export --model M.keras --format saved_model --output saved_models
    python -m training.export --model M.keras --format tflite --quantize int8 \\
        --calibration-dataset shapes --output saved_models
    python -m training.export --model M.keras --format onnx --output saved_models
    python -m training.export --model M.keras --format onnx --quantize int8 \\
        --calibration-dataset shapes --output saved_models
    python -m training.export --model M.keras --saved-model-precision mixed_bfloat16 --output saved_models

SavedModel: written to `<output>/<name>/<version>/` (the layout TF Serving
loads), the next free version unless `--version` is given; an existing version
is never overwritten; `--saved-model-precision mixed_bfloat16` writes
`<output>/<name>_bf16/<version>/`, computing in bfloat16 (for CPUs with
AVX512_BF16 or AMX). TFLite: `<output>/<name>.tflite` (float32) or
`<output>/<name>_<quantize>.tflite`, plus `<stem>.labels.txt`; an existing file
is an error unless `--overwrite`; every `.tflite` carries TFLite metadata
with the class names (MediaPipe's `ObjectDetector` loads it as it is). ONNX:
`<output>/<name>.onnx` (post-processing inside, for ONNX Runtime; needs the
`onnx` extra) or `<output>/<name>_int8.onnx` (the network quantised for ONNX Runtime,
`--quantize int8`; ONNX takes `none` and `int8`) plus `<stem>.labels.txt`,
`--overwrite` as for TFLite. Several
formats and quantisations can be written in one call (`--format saved_model
tflite --quantize none int8`). Phone apps may want `--score-threshold 0.3
--max-detections 20`, and `--nms fast` with many classes. An option that none of
the formats asked for uses (e.g. `--saved-model-precision` without `--format
saved_model`, `--nms` without tflite) is an error.
"""

import os
import sys

from keras_ssd import export
from keras_ssd.export.onnx import QUANTIZATIONS as ONNX_QUANTIZATIONS
from keras_ssd.model import load_ssd
from keras_ssd.precision import POLICIES, SHORT_NAMES
from training import cli, options
from training.options import Option

_QUANTIZATIONS_BY_FORMAT = {"tflite": set(export.QUANTIZATIONS), "onnx": set(ONNX_QUANTIZATIONS)}
CALIBRATION_OPTIONS = options.dataset_options("calibration_", role="the int8 calibration images", split="train",
                                              examples=100)
COMMAND = options.Command("python -m training.export", __doc__, [
    Option("model", "a .keras file saved from an SSD model", required=True),
    Option("format", "export format(s) (default saved_model)", nargs="+", default=["saved_model"],
           choices=("saved_model", "tflite", "onnx")),
    Option("quantize", "quantisation(s): .tflite takes none, dynamic, float16 and int8; .onnx none and int8 "
           "(default none)", nargs="+", default=["none"], choices=tuple(export.QUANTIZATIONS)),
    Option("saved_model_precision", "the SavedModel's network precision: float32 (any machine) or "
           "mixed_bfloat16 (serving on CPUs with AVX512_BF16 or AMX, 2-3x faster there); the bf16 model's "
           "default name ends in _bf16 (default float32)", default="float32", choices=POLICIES),
    Option("output", "base directory of the exports", required=True),
    Option("name", "model name in paths (default: the model's name)"),
    Option("version", "SavedModel version (default: next free)", type=int),
    Option("overwrite", "replace existing .tflite / .onnx files", switch=True, default=False),
    *CALIBRATION_OPTIONS,
    Option("score_threshold", "post-processing override", type=float),
    Option("nms_iou_threshold", "post-processing override", type=float),
    Option("max_detections", "post-processing override", type=int),
    Option("nms", "TFLite NMS: regular = per class, as the Keras detector (default); fast = one NMS "
           "over each box's best class (the TF Object Detection API's mobile default)",
           default="regular", choices=("regular", "fast")),
])


def file_path(output, name, quantize, extension):
    """`<output>/<name><extension>` for float32, `<output>/<name>_<quantize><extension>` otherwise."""
    suffix = "" if quantize == "none" else f"_{quantize}"
    return os.path.join(output, f"{name}{suffix}{extension}")


def check_options(args):
    """Raises ValueError, naming the option, for an option set (to other than its default) that the
    formats and quantisations asked for do not use."""
    formats = set(args.format)
    taken = {"none"}.union(*(takes for form, takes in _QUANTIZATIONS_BY_FORMAT.items() if form in formats))
    for quantize in args.quantize:
        if quantize not in taken:
            raise ValueError(f"--quantize {quantize} applies to --format tflite (any) and onnx (none, int8), "
                             f"not to {' '.join(args.format)}")
    quantizing_int8 = "int8" in args.quantize  # the formats take it (checked above)
    if quantizing_int8 and not args.calibration_dataset:
        raise ValueError("--quantize int8 needs --calibration-dataset (e.g. your training source)")
    applies = {
        "saved_model_precision": ("saved_model" in formats, "--format saved_model"),
        "version": ("saved_model" in formats, "--format saved_model"),
        "nms": ("tflite" in formats, "--format tflite"),
        "overwrite": (formats & {"tflite", "onnx"}, "--format tflite or onnx"),
        **{option.name: (quantizing_int8, "--quantize int8") for option in CALIBRATION_OPTIONS},
    }
    for name, (used, by) in applies.items():
        option = COMMAND.options[name]
        value = getattr(args, name)
        if not used and value != option.default:
            shown = "" if option.switch else f" {value}"
            raise ValueError(f"{option.flag}{shown} applies only with {by}; this export does not use it")


def run(args):
    """Exports `args.model` as asked; returns the list of written paths."""
    check_options(args)
    onnx_quantize = [q for q in args.quantize if q in ONNX_QUANTIZATIONS]
    model = load_ssd(args.model)
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
        precision = args.saved_model_precision
        suffix = "" if args.name or precision == "float32" else f"_{SHORT_NAMES[precision]}"
        written.append(export.export_saved_model(
            model, args.output, name=name + suffix, version=args.version, precision=precision, **postprocess
        ))
    calibration = None
    if "int8" in args.quantize:
        calibration = export.calibration_images(
            options.load_dataset_options(args, "calibration_"),
            model.ssd_config.image_size,
            args.calibration_examples,
        )
    if "tflite" in args.format:
        for quantize in args.quantize:
            written.append(
                export.export_tflite(
                    model,
                    file_path(args.output, name, quantize, ".tflite"),
                    quantize=quantize,
                    calibration=calibration,
                    use_regular_nms=args.nms == "regular",
                    overwrite=args.overwrite,
                    **postprocess,
                )
            )
    if "onnx" in args.format:
        for quantize in onnx_quantize or ["none"]:
            written.append(export.export_onnx(
                model, file_path(args.output, name, quantize, ".onnx"), quantize=quantize,
                calibration=calibration if quantize == "int8" else None, overwrite=args.overwrite, **postprocess,
            ))
    return written


@cli.entry_point
def main(argv=None):
    paths = run(COMMAND.parse(argv))
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

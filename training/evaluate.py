"""Evaluate a trained or exported SSD: `python -m training.evaluate --model M --dataset D`.

`--model` is a `.keras` file saved by `training.train`, a `.tflite` or `.onnx`
file or a SavedModel directory from `training.export` (exported models are run as users
run them, through `keras_ssd.export.load_detector`, one raw image at a time).
Prints the per-class AP table and writes the result as JSON (default:
`<model>.<metric>.json` beside the model). With `--report DIR` the same pass also
writes the detection report (`report.html` and its PNGs,
`keras_ssd.evaluation.report`) into DIR; a `.keras` model's report shows the
training curves and recipe when its folder is a `training.train` run folder.
A report that cannot be written is one warning line: the model is then evaluated
without it, and the JSON is written all the same. An option that does not apply
to the model (`--batch-size`, `--precision` for an exported model; `--preset` for
a `.keras` model or without `--report`) is an error.
"""

import json
import os
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf

import keras_ssd
from keras_ssd import evaluation, export
from keras_ssd.config import PRESETS
from keras_ssd.evaluation.report import detection_report, report_metric
from keras_ssd.model import load_ssd
from keras_ssd.precision import resolve_precision, with_precision
from training import cli, options
from training.options import Option

BATCH_SIZE = 16  # a .keras model's evaluation batch, unless given

COMMAND = options.Command("python -m training.evaluate", __doc__, [
    Option("model", "a .keras file saved by training.train, a .tflite or .onnx file or a SavedModel "
           "directory", required=True),
    *options.dataset_options(role="the evaluation data", dataset="shapes"),
    Option("metric", "mAP definition (default voc07)", default="voc07", choices=tuple(evaluation.METRICS)),
    Option("batch_size", f"batch size of a .keras model (default {BATCH_SIZE})", type=int, default=BATCH_SIZE),
    options.precision_option("a .keras model's"),
    Option("output", "JSON file for the result (default: <model>.<metric>.json)"),
    Option("report", "also write the detection report (report.html and its PNGs) into this directory"),
    Option("preset", "SSDConfig preset of an exported model, for the report's default-box coverage at the "
           "model's input size (a .keras model carries its config; without it an exported model's report has "
           "no coverage)", choices=tuple(PRESETS)),
])


class _Loaded(NamedTuple):
    """A model ready to run over evaluation batches."""

    detector: Callable  # numpy images [B, H, W, 3] -> detection dict
    batches: object  # eval_pipeline batches the detector takes
    num_classes: int
    class_names: list
    cfg: object  # the SSDConfig, or None when unknown


def _load(model_path, examples, batch_size, dataset, preset=None, precision="auto") -> _Loaded:
    """The detector and batches of a `.keras` SSD (batches of `batch_size` at its input size, in
    `precision`) or of an exported model (one raw image at a time; its config from `preset`, if given)."""
    if model_path.endswith(".keras"):
        choice = resolve_precision(precision)
        print(f"precision: {choice.value} ({choice.reason})")
        model = with_precision(load_ssd(model_path), choice.value)
        cfg = model.ssd_config
        return _Loaded(
            tf.function(keras_ssd.build_detector(model, cfg), reduce_retracing=True),
            keras_ssd.data.eval_pipeline(examples, cfg, batch_size),
            cfg.num_classes,
            model.class_names or keras_ssd.data.class_names(dataset),
            cfg,
        )
    if precision != "auto":
        raise ValueError(f"--precision {precision} applies to .keras models; {model_path!r} runs in the "
                         "precision it was exported in (training.export --saved-model-precision)")
    if batch_size != BATCH_SIZE:
        raise ValueError(f"--batch-size {batch_size} applies to .keras models; {model_path!r} runs one raw image "
                         "at a time")
    detector = export.load_detector(model_path)
    names = detector.class_names or keras_ssd.data.class_names(dataset)
    cfg = None
    if preset:
        # The SavedModel resizes inside its graph and does not say to what: the preset's size then.
        size = {"image_size": detector.image_size} if hasattr(detector, "image_size") else {}
        cfg = keras_ssd.SSDConfig.from_preset(preset, num_classes=len(names), **size)
    return _Loaded(detector, keras_ssd.data.eval_pipeline(examples, None, 1), len(names), names, cfg)


def evaluate(model_path, dataset, split=None, metric="voc07", batch_size=BATCH_SIZE, image_dir=None,
             dataset_options=None, examples=None, report=None, preset=None, precision="auto"):
    """Evaluates the model at `model_path` on `dataset`; returns the evaluator's result.

    Args:
        model_path: a `.keras` SSD (run in batches of `batch_size`), or an
            exported model `load_detector` reads (run one raw image at a time).
        dataset, split, image_dir, dataset_options: as for `keras_ssd.data.load`
            (split None: `options.validation_split`).
        metric: a key of `keras_ssd.evaluation.METRICS`.
        examples: evaluate on the first N examples only (None: all).
        report: a directory for the detection report, written from the same
            pass (None: no report). A report that fails is one warning line on
            stderr, and the model is evaluated again without it.
        preset: the `SSDConfig` preset of an exported model, for the report's
            default-box coverage (only with `report`).
        precision: a `.keras` model's precision ("auto": this machine's
            fastest, `keras_ssd.precision`); exported models keep theirs.

    Raises:
        ValueError: `model_path` does not exist or is not an SSD of keras_ssd,
            the dataset is unusable (the message names the file or option), or
            an option does not apply to the model.
    """
    if not os.path.exists(model_path):
        raise ValueError(f"Model {model_path!r} does not exist")
    if preset and (report is None or model_path.endswith(".keras")):
        raise ValueError(f"--preset {preset} applies to the --report of an exported model (a .keras model carries "
                         "its own config)")
    examples = options.load_dataset(
        dataset, options.validation_split(dataset, split), image_dir, dataset_options, examples
    )
    loaded = _load(model_path, examples, batch_size, dataset, preset, precision)
    evaluator = evaluation.make_evaluator(metric, loaded.num_classes, loaded.class_names)
    if report is not None:
        reported = cli.optional_step(
            lambda: _report(loaded, evaluator, report, model_path, dataset, split, metric),
            "the report could not be written", "evaluating without it",
        )
        if reported is not None:
            return reported
        evaluator.reset()  # it may hold part of the failed pass
    for batch in loaded.batches:
        evaluator.update(loaded.detector(np.asarray(batch["image"])), batch)
    return evaluator.result()


def _report(loaded, evaluator, report, model_path, dataset, split, metric):
    """Writes the detection report into `report` from one pass that also feeds `evaluator`; returns its result."""
    start = time.time()
    run_dir = os.path.dirname(os.path.abspath(model_path))
    written = detection_report(
        loaded.detector, loaded.batches, class_names=loaded.class_names, cfg=loaded.cfg, output_dir=report,
        run_dir=run_dir if os.path.exists(os.path.join(run_dir, "log.csv")) else None,
        metric=report_metric(metric), data_source=f"{dataset}, split {options.validation_split(dataset, split)}",
        model=model_path, evaluators=[evaluator],
    )
    print(f"Wrote the report {written.html_path} in {time.time() - start:.1f} s")
    return evaluator.result()


@cli.entry_point
def main(argv=None):
    args = COMMAND.parse(argv)
    result = evaluate(
        args.model, args.dataset, args.split, args.metric, args.batch_size, args.image_dir,
        args.dataset_options, args.examples, args.report, args.preset, args.precision,
    )
    print(evaluation.format_table(result, title=f"{args.metric} AP of {args.model}"))
    stem = os.path.splitext(os.path.normpath(args.model))[0]
    path = args.output or f"{stem}.{args.metric}.json"
    with open(path, "w") as f:
        json.dump(result, f, indent=2, default=float)
    print(f"Wrote {path}")


if __name__ == "__main__":
    sys.exit(main())

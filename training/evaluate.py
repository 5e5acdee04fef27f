"""Evaluate a trained or exported SSD: `python -m training.evaluate --model M --dataset D`.

`--model` is a `.keras` file saved by `training.train`, a `.tflite` or `.onnx`
file or a SavedModel directory from `training.export` (exported models are run as users
run them, through `keras_ssd.export.load_detector`, one raw image at a time).
Prints the per-class AP table and writes the result as JSON (default:
`<model>.<metric>.json` beside the model).
"""

import json
import os
import sys

import keras_ssd
from keras_ssd import evaluation, export
from keras_ssd.model import load_ssd
from training import cli, options
from training.options import Option

COMMAND = options.Command("python -m training.evaluate", __doc__, [
    Option("model", "a .keras file saved by training.train, a .tflite or .onnx file or a SavedModel "
           "directory", required=True),
    *options.dataset_options(role="the evaluation data", dataset="shapes"),
    Option("metric", "mAP definition (default voc07)", default="voc07", choices=tuple(evaluation.METRICS)),
    Option("batch_size", "batch size of a .keras model (default 16)", type=int, default=16),
    Option("output", "JSON file for the result (default: <model>.<metric>.json)"),
])


def _evaluate_keras(model_path, examples, metric, batch_size, dataset):
    model = load_ssd(model_path)
    cfg = model.ssd_config
    names = model.class_names or keras_ssd.data.class_names(dataset)
    callback = evaluation.MeanAveragePrecisionCallback(
        keras_ssd.data.eval_pipeline(examples, cfg, batch_size),
        evaluation.make_evaluator(metric, cfg.num_classes, names),
        detector=keras_ssd.build_detector(model, cfg),
    )
    return callback.evaluate()


def _evaluate_exported(model_path, examples, metric, dataset):
    detector = export.load_detector(model_path)
    names = detector.class_names or keras_ssd.data.class_names(dataset)
    evaluator = evaluation.make_evaluator(metric, len(names), names)
    for batch in keras_ssd.data.eval_pipeline(examples, None, 1):
        evaluator.update(detector(batch["image"].numpy()), batch)
    return evaluator.result()


def evaluate(model_path, dataset, split=None, metric="voc07", batch_size=16, image_dir=None,
             dataset_options=None, examples=None):
    """Evaluates the model at `model_path` on `dataset`; returns the evaluator's result.

    Args:
        model_path: a `.keras` SSD (run in batches of `batch_size`), or an
            exported model `load_detector` reads (run one raw image at a time).
        dataset, split, image_dir, dataset_options: as for `keras_ssd.data.load`
            (split None: `options.validation_split`).
        metric: a key of `keras_ssd.evaluation.METRICS`.
        examples: evaluate on the first N examples only (None: all).

    Raises:
        ValueError: `model_path` does not exist or is not an SSD of keras_ssd,
            or the dataset is unusable (the message names the file or option).
    """
    if not os.path.exists(model_path):
        raise ValueError(f"Model {model_path!r} does not exist")
    examples = options.load_dataset(
        dataset, options.validation_split(dataset, split), image_dir, dataset_options, examples
    )
    if model_path.endswith(".keras"):
        return _evaluate_keras(model_path, examples, metric, batch_size, dataset)
    return _evaluate_exported(model_path, examples, metric, dataset)


@cli.entry_point
def main(argv=None):
    args = COMMAND.parse(argv)
    result = evaluate(
        args.model, args.dataset, args.split, args.metric, args.batch_size, args.image_dir,
        args.dataset_options, args.examples,
    )
    print(evaluation.format_table(result, title=f"{args.metric} AP of {args.model}"))
    stem = os.path.splitext(os.path.normpath(args.model))[0]
    path = args.output or f"{stem}.{args.metric}.json"
    with open(path, "w") as f:
        json.dump(result, f, indent=2, default=float)
    print(f"Wrote {path}")


if __name__ == "__main__":
    sys.exit(main())

"""Evaluate a trained SSD: `python -m training.evaluate --model M.keras --dataset D --metric voc07`.

Prints the per-class AP table and writes the result as JSON (default:
`<model>.<metric>.json` beside the model).
"""

import argparse
import json
import os

import keras

import keras_ssd
from keras_ssd import evaluation


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__)
    parser.add_argument("--model", required=True, help="a .keras file saved by training.train")
    parser.add_argument("--dataset", default="shapes", help="source, as for keras_ssd.data.load")
    parser.add_argument("--split", default=None, help="default: 'val' for a VOC dir, else 'validation'")
    parser.add_argument("--image-dir", help="image directory of a COCO json dataset")
    parser.add_argument("--metric", default="voc07", choices=list(evaluation.METRICS))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--output", help="JSON file for the result")
    return parser


def evaluate(model_path, dataset, split=None, metric="voc07", batch_size=16, image_dir=None):
    """Evaluates the `.keras` SSD at `model_path` on `dataset`; returns the evaluator's result."""
    if not os.path.isfile(model_path):
        raise ValueError(f"Model file {model_path!r} does not exist")
    model = keras.models.load_model(model_path)
    cfg = getattr(model, "ssd_config", None)
    if cfg is None:
        raise ValueError(f"{model_path!r} is not an SSD training model saved by keras_ssd")
    if split is None:
        split = "val" if os.path.isdir(dataset) else "validation"
    names = model.class_names or keras_ssd.data.class_names(dataset)
    batches = keras_ssd.data.eval_pipeline(
        keras_ssd.data.load(dataset, split=split, image_dir=image_dir), cfg, batch_size
    )
    callback = evaluation.MeanAveragePrecisionCallback(
        batches,
        evaluation.make_evaluator(metric, cfg.num_classes, names),
        detector=keras_ssd.build_detector(model, cfg),
    )
    return callback.evaluate()


def main(argv=None):
    args = build_parser().parse_args(argv)
    result = evaluate(args.model, args.dataset, args.split, args.metric, args.batch_size, args.image_dir)
    print(evaluation.format_table(result, title=f"{args.metric} AP"))
    path = args.output or f"{os.path.splitext(args.model)[0]}.{args.metric}.json"
    with open(path, "w") as f:
        json.dump(result, f, indent=2, default=float)
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()

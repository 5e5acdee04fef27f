"""Regenerate the shipped demo model and every export of it in `saved_models/`.

    python -m training.regenerate_demo                  # train the main job, then export
    python -m training.regenerate_demo --run runs/shapes  # from a finished main-job run

Trains the default main job (`python -m training.train --output <run>`) unless
`--run` names a finished one, then writes, replacing the old files:

* `ssd_tiny.keras`: the run's `best.keras` without optimizer state;
* `ssd_tiny.json`: the VOC07 mAP and per-class AP of the shipped model
  evaluated in float32 (the report's figures, the same on every machine;
  tests/export/test_demo_model.py checks the model against them), and what
  training recorded: its final mAP in the precision it trained in
  (`training_mAP`, `training_precision`), minutes and per-epoch `val_mAP`;
* `ssd_tiny/1/`: the SavedModel for TF Serving;
* `ssd_tiny.tflite` and `ssd_tiny_int8.tflite` (calibrated on 100 `shapes`
  training images), each with metadata and a `.labels.txt`;
* `ssd_tiny.onnx`: for ONNX Runtime, post-processing inside (it shares
  `ssd_tiny.labels.txt` with `ssd_tiny.tflite`);
* `shapes_test.png`: the example image of the README's first commands, the
  first image of the `shapes` test split with three objects (it is in no
  split the model trained or was evaluated on);
* `report/`: the demo model's detection report on the `shapes` validation split
  (`report.html`, its PNGs and `ssd_tiny.voc07.json`), what
  `python -m training.evaluate --model saved_models/ssd_tiny.keras --precision float32
  --report saved_models/report --output saved_models/report/ssd_tiny.voc07.json` writes
  (float32 on every machine, so the figures are the model's, not a CPU's).

All of them come from the one model, and the tests check them against each other.
"""

from training import onednn  # noqa: F401 (first: sets the oneDNN default before TensorFlow loads)

# isort: split
import csv
import json
import os
import shutil
import sys

from PIL import Image

from keras_ssd import data
from keras_ssd.model import load_ssd
from training import cli, options, train
from training import evaluate as evaluate_cli
from training import export as export_cli
from training.options import Option

NAME = "ssd_tiny"


COMMAND = options.Command("python -m training.regenerate_demo", __doc__, [
    Option("run", "a finished main-job output folder (default: train one in runs/demo)"),
    Option("output", "folder of the shipped files (default saved_models)", default="saved_models"),
])


def record(run, evaluated):
    """The `ssd_tiny.json` record of a finished main-job run folder and the float32 evaluation of its model."""
    with open(os.path.join(run, "metrics.json")) as f:
        metrics = json.load(f)
    with open(os.path.join(run, "log.csv")) as f:
        per_epoch = [round(float(row["val_mAP"]), 4) for row in csv.DictReader(f)]
    return {
        "source": "python -m training.train (the default main job), via python -m training.regenerate_demo",
        "metric": metrics["metric"],
        "mAP": evaluated["mAP"],
        "per_class_ap": evaluated["per_class_ap"],
        "evaluated_in": "float32",
        "training_mAP": metrics["mAP"],
        "training_precision": metrics.get("machine", {}).get("precision", {}).get("value"),
        "minutes": round(metrics["minutes"], 2),
        "val_mAP_per_epoch": per_epoch,
    }


def write_test_image(path):
    """Saves the first `shapes` test-split image with three objects as a PNG at `path`."""
    for example in data.load("shapes", split="test").as_numpy_iterator():
        if len(example["labels"]) == 3:
            Image.fromarray(example["image"]).save(path)
            return


@cli.entry_point
def main(argv=None):
    args = COMMAND.parse(argv)
    run = args.run
    if run is None:
        run = os.path.join("runs", "demo")
        if os.path.exists(run):
            raise ValueError(f"{run} exists; remove it, or pass --run {run} to export a finished run")
        status = train.main(["--output", run])
        if status:
            return status
    best = os.path.join(run, "best.keras")
    if not os.path.isfile(best):
        raise ValueError(f"{best!r} does not exist: --run must be a finished main-job output folder")
    model = load_ssd(best)
    os.makedirs(args.output, exist_ok=True)
    model.save(os.path.join(args.output, f"{NAME}.keras"))
    write_test_image(os.path.join(args.output, "shapes_test.png"))
    shutil.rmtree(os.path.join(args.output, NAME), ignore_errors=True)
    keras_file = os.path.join(args.output, f"{NAME}.keras")
    exports = (
        ["--format", "saved_model", "tflite", "--quantize", "none", "int8", "--calibration-dataset", "shapes",
         "--version", "1", "--overwrite"],
        ["--format", "onnx", "--overwrite"],
    )
    for flags in exports:
        status = export_cli.main(["--model", keras_file, "--output", args.output, *flags])
        if status:
            return status
    report = os.path.join(args.output, "report")
    shutil.rmtree(report, ignore_errors=True)
    evaluation = os.path.join(report, f"{NAME}.voc07.json")
    status = evaluate_cli.main([
        "--model", keras_file, "--precision", "float32", "--report", report, "--output", evaluation,
    ])
    if status:
        return status
    with open(evaluation) as f:
        evaluated = json.load(f)
    with open(os.path.join(args.output, f"{NAME}.json"), "w") as f:
        json.dump(record(run, evaluated), f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m training.regenerate_demo --run RUN` writes exactly the shipped set of demo files, machine-independent."""

import csv
import json
import os
import shutil

import pytest

from training import regenerate_demo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "saved_models")


def _finished_run(folder):
    """A main-job run folder holding the shipped demo model and the record it was shipped with."""
    with open(os.path.join(DEMO, "ssd_tiny.json")) as f:
        recorded = json.load(f)
    os.makedirs(folder)
    shutil.copy(os.path.join(DEMO, "ssd_tiny.keras"), os.path.join(folder, "best.keras"))
    metrics = {key: recorded[key] for key in ("metric", "mAP", "per_class_ap", "minutes")}
    with open(os.path.join(folder, "metrics.json"), "w") as f:
        json.dump(metrics, f)
    with open(os.path.join(folder, "log.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "val_mAP"])
        writer.writerows(enumerate(recorded["val_mAP_per_epoch"]))
    return recorded


@pytest.mark.slow
def test_regeneration_writes_the_shipped_files(tmp_path):
    recorded = _finished_run(tmp_path / "run")
    output = tmp_path / "saved_models"
    assert regenerate_demo.main(["--run", str(tmp_path / "run"), "--output", str(output)]) == 0

    def names(folder):
        return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files)

    # The shipped folder holds exactly what the command writes, the example image included.
    assert names(output) == names(DEMO)
    with open(output / "shapes_test.png", "rb") as new, open(os.path.join(DEMO, "shapes_test.png"), "rb") as shipped:
        assert new.read() == shipped.read()
    with open(output / "report" / "ssd_tiny.voc07.json") as f:
        evaluated = json.load(f)
    # The report evaluates in float32 on every machine, so it reproduces the recorded mAP
    # (to the last digit with oneDNN on and off on the Zen 4 EPYC with the previous demo
    # model; training's own evaluation in bf16 differs: 0.8757 against 0.8741 now).
    assert evaluated["mAP"] == pytest.approx(recorded["mAP"], abs=1e-4)
    with open(output / "ssd_tiny.json") as f:
        assert json.load(f)["val_mAP_per_epoch"] == recorded["val_mAP_per_epoch"]

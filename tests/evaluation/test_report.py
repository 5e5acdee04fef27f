"""The detection report: files, a self-contained HTML page, and figures that show the printed numbers."""

import base64
import html.parser
import json
import os

import matplotlib.figure
import numpy as np
import pytest

import keras_ssd
from keras_ssd.evaluation import format_table
from keras_ssd.evaluation.report import HTML_NAME, detection_report, read_run_log
from keras_ssd.run_log import RunLog

NAMES = ["circle", "square", "triangle"]
PNGS = {"training_curves", "pr_curves", "f1_curves", "confusion_matrix", "confusion_matrix_normalized",
        "coverage", "predictions"}


def _fake_detector(batches, seed=0):
    """A detector that replays detections made from each batch's ground truth: jittered boxes,
    one in five of another class, random scores, plus one box on background per image."""
    rng = np.random.default_rng(seed)
    replies = []
    for batch in batches:
        size, width = batch["labels"].shape
        boxes = np.zeros((size, width + 1, 4), np.float32)
        scores = np.zeros((size, width + 1), np.float32)
        classes = np.zeros((size, width + 1), np.int32)
        for b in range(size):
            valid = batch["labels"][b] >= 0
            n = int(valid.sum())
            boxes[b, :n] = np.clip(batch["boxes"][b, valid] + rng.normal(0, 0.02, (n, 4)), 0, 1)
            swap = rng.uniform(size=n) < 0.2
            classes[b, :n] = np.where(swap, (batch["labels"][b, valid] + 1) % 3, batch["labels"][b, valid])
            scores[b, : n + 1] = rng.uniform(0.05, 1.0, n + 1)
            boxes[b, n] = [0.0, 0.0, 0.05, 0.05]
        counts = ((batch["labels"] >= 0).sum(1) + 1).astype(np.int32)
        replies.append({"detection_boxes": boxes, "detection_scores": scores, "detection_classes": classes,
                        "num_detections": counts})
    answers = iter(replies)
    return lambda images: next(answers)


class _Sources(html.parser.HTMLParser):
    """Every attribute that makes a browser load something."""

    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        self.sources += [value for name, value in attrs if name in ("src", "href", "srcset", "data", "poster")]


@pytest.fixture
def run_dir(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "log.csv").write_text(
        "epoch,learning_rate,loss,minutes,val_mAP\n0,0.002,30.5,0.5,0.1\n1,0.001,20.25,1.0,\n2,0.0,15.0,1.5,0.4\n"
    )
    (folder / "metrics.json").write_text(json.dumps({"minutes": 1.6, "recipe": {"optimizer": "adamw"}}))
    return folder


def test_report_files_are_self_contained_and_show_the_printed_ap(tmp_path, run_dir, tiny_cfg):
    batches = list(keras_ssd.data.eval_pipeline(keras_ssd.data.load("shapes", "validation").take(10), tiny_cfg, 4)
                   .as_numpy_iterator())
    output = tmp_path / "report"
    report = detection_report(_fake_detector(batches), batches, class_names=NAMES, cfg=tiny_cfg,
                              output_dir=str(output), run_dir=str(run_dir), metric="voc12", data_source="shapes")
    assert set(report.figures) == PNGS
    assert all(isinstance(f, matplotlib.figure.Figure) for f in report.figures.values())
    assert sorted(os.listdir(output)) == sorted([HTML_NAME, *(f"{name}.png" for name in PNGS)])
    assert report.html_path == str(output / HTML_NAME)

    page = (output / HTML_NAME).read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    parser = _Sources()
    parser.feed(page)
    assert len(parser.sources) == len(PNGS)
    for source in parser.sources:
        assert source.startswith("data:image/png;base64,")
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in parser.sources}
    assert embedded == {(output / f"{name}.png").read_bytes() for name in PNGS}  # the same pictures

    result = report.analysis.result()
    printed = dict(line.split() for line in format_table(result).splitlines()[2:-2])  # as the CLIs print it
    axes = report.figures["pr_curves"].axes[0]
    for name in NAMES:
        # The drawn interpolated curve (steps-pre, for voc12): its area is the AP.
        (line,) = [line for line in axes.lines if line.get_label().startswith(f"{name}  AP")]
        assert line.get_drawstyle() == "steps-pre"
        recall, precision = line.get_xdata(), line.get_ydata()
        area = np.sum(np.diff(recall) * precision[1:])
        assert area == pytest.approx(result["per_class_ap"][name], abs=1e-12)
        assert f"{area:.4f}" == printed[name]
        assert f"<td>{name}</td><td>{area:.4f}</td>" in page  # the report's table
    assert 0.3 < result["mAP"] < 1.0

    matrix = report.analysis.confusion_matrix()
    assert matrix[:3].sum(axis=1).tolist() == [c.num_positives for c in report.analysis.curves()]
    assert report.coverage is not None and len(report.coverage.best_iou) == matrix[:3].sum()
    assert report.info["training wall time (min)"] == 1.6 and report.info["recipe"] == {"optimizer": "adamw"}
    assert report.info["versions"]["keras_ssd"] == keras_ssd.__version__


def test_voc07_curve_is_the_11_points_and_no_config_means_no_coverage(tmp_path, tiny_cfg):
    batches = list(keras_ssd.data.eval_pipeline(keras_ssd.data.load("shapes", "validation").take(4), tiny_cfg, 4)
                   .as_numpy_iterator())
    report = detection_report(_fake_detector(batches, seed=1), batches, class_names=NAMES, metric="voc07")
    assert report.html_path is None and report.coverage is None
    assert set(report.figures) == PNGS - {"coverage", "training_curves"}
    axes = report.figures["pr_curves"].axes[0]
    for name, ap in report.analysis.result()["per_class_ap"].items():
        if np.isnan(ap):
            continue
        (line,) = [line for line in axes.lines if line.get_label().startswith(f"{name}  AP")]
        assert line.get_xdata().tolist() == [k / 10 for k in range(11)]
        assert np.mean(line.get_ydata()) == pytest.approx(ap, abs=1e-12)


def test_run_log_reads_empty_cells_as_nan(run_dir, tmp_path):
    log = read_run_log(str(run_dir))
    assert log.columns["loss"].tolist() == [30.5, 20.25, 15.0] and log.columns["learning_rate"][-1] == 0.0
    assert np.isnan(log.columns["val_mAP"][1]) and log.notes == ()
    assert read_run_log(str(tmp_path / "nowhere")) == RunLog({})


# log.csv files as this package wrote them over time (Keras' CSVLogger until it had its own
# logger), with what the training curves must draw and say.
KERAS_NO_EVALUATION = (  # --eval-every past the last epoch: NA in invented val_ twins, no val_mAP
    "epoch,learning_rate,loss,minutes,val_learning_rate,val_loss,val_minutes\r\n"
    "0,0.0005,32.5,0.07,NA,NA,NA\r\n1,0.00025,20.1,0.08,NA,NA,NA\r\n2,0.0,15.0,0.09,NA,NA,NA\r\n"
)
RESUMED_ACROSS_COLUMNS = (  # started before learning_rate was logged, resumed after
    "epoch,loss,minutes,val_mAP\r\n0,30.5,0.5,0.1\r\n1,20.0,1.0,0.2\r\n"
    "2,0.001,15.0,1.5,0.3\r\n3,0.0005,12.0,2.0,0.4\r\n"
)
NAN_LOSSES = "epoch,loss,minutes,val_mAP\n0,30.5,0.5,0.1\n1,nan,1.0,\n2,inf,1.5,\n"
ONE_EPOCH = "epoch,learning_rate,loss,minutes,val_mAP\n0,0.002,30.5,0.5,0.1\n"
TWO_RUNS = "epoch,loss,minutes\n0,30.5,0.5\n1,20.0,1.0\n0,31.0,0.5\n"


@pytest.mark.parametrize("text, panels, notes", [
    (KERAS_NO_EVALUATION, ["loss", "learning rate"], ["no validation mAP in the log (no epoch was evaluated)"]),
    (RESUMED_ACROSS_COLUMNS, ["loss", "validation mAP"],
     ["log.csv has 2 row(s) (line 4-5) with another number of cells than its 4-column header",
      "loss missing, NaN or infinite at epoch(s) 3-4", "no learning rate in the log"]),
    (NAN_LOSSES, ["loss", "validation mAP"], ["loss missing, NaN or infinite at epoch(s) 2-3"]),
    (ONE_EPOCH, ["loss", "validation mAP", "learning rate"], []),
    (TWO_RUNS, ["loss"], ["log.csv holds 2 runs (the epochs start again at 0); only the last is read"]),
], ids=["keras-no-evaluation", "resumed-across-columns", "nan-losses", "one-epoch", "two-runs"])
def test_every_log_csv_form_gives_a_report_that_says_what_is_missing(tmp_path, tiny_cfg, text, panels, notes):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_bytes(text.encode())
    batches = list(keras_ssd.data.eval_pipeline(keras_ssd.data.load("shapes", "validation").take(4), tiny_cfg, 4)
                   .as_numpy_iterator())
    report = detection_report(_fake_detector(batches), batches, class_names=NAMES, output_dir=str(tmp_path / "report"),
                              run_dir=str(run))
    assert (tmp_path / "report" / "training_curves.png").exists() and report.html_path
    figure = report.figures["training_curves"]
    assert [axes.get_title() for axes in figure.axes] == panels
    for axes in figure.axes:  # every drawn point is a number, at a whole epoch number
        assert all(np.isfinite(line.get_ydata()).all() and len(line.get_ydata()) for line in axes.lines)
        low, high = axes.get_xlim()
        assert all(float(tick).is_integer() for tick in axes.get_xticks() if low <= tick <= high)
    note = figure.get_supxlabel().replace("\n", " ")
    assert all(sentence in note for sentence in notes), note
    assert bool(note) == bool(notes)


def test_fit_history_draws_the_loss_terms_without_a_run_folder(tiny_cfg):
    batches = list(keras_ssd.data.eval_pipeline(keras_ssd.data.load("shapes", "validation").take(4), tiny_cfg, 4)
                   .as_numpy_iterator())
    history = {"loss": [9.0, 6.0, 5.0], "conf_loss": [7.0, 5.0, 4.5], "loc_loss": [2.0, 1.0, 0.5]}
    report = detection_report(_fake_detector(batches, seed=2), batches, class_names=NAMES, history=history)
    (loss_axes, *_) = report.figures["training_curves"].axes
    drawn = {line.get_label(): (line.get_xdata().tolist(), line.get_ydata().tolist()) for line in loss_axes.lines}
    assert drawn == {name: ([1, 2, 3], values) for name, values in history.items()}


def test_fitted_boxes_report_their_coverage_beside_the_presets_and_ap_by_size(tmp_path, tiny_cfg):
    batches = list(keras_ssd.data.eval_pipeline(keras_ssd.data.load("shapes", "validation").take(16), tiny_cfg, 8)
                   .as_numpy_iterator())
    objects = np.concatenate([b["boxes"][b["labels"] >= 0] for b in batches])
    fitted = keras_ssd.fit_default_boxes(objects, tiny_cfg).config
    assert fitted.with_preset_boxes() == tiny_cfg and tiny_cfg.with_preset_boxes() is None
    report = detection_report(_fake_detector(batches, seed=2), batches, class_names=NAMES, cfg=fitted,
                              output_dir=str(tmp_path / "report"))
    preset = keras_ssd.evaluation.default_box_coverage(objects, tiny_cfg)
    assert report.preset_coverage.share_unmatchable == preset.share_unmatchable
    assert report.coverage.share_unmatchable < preset.share_unmatchable
    page = (tmp_path / "report" / HTML_NAME).read_text()
    assert f"the preset&#x27;s would leave {preset.share_unmatchable:.1%}" in page
    # Sizes are split at 10, 24, 48 and 96 input px; every counted object is in one range.
    sizes = report.ap_by_size
    assert [(row.low, row.high) for row in sizes] == [(0, 10), (10, 24), (24, 48), (48, 96), (96, np.inf)]
    assert sum(row.objects for row in sizes) == sum(c.num_positives for c in report.analysis.curves())
    assert f"<td>0-10</td><td>{sizes[0].objects}</td><td>{sizes[0].mAP:.4f}</td>" in page

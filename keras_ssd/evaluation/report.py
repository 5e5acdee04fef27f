"""The detection report: one call that runs a detector over evaluation data and explains it.

`detection_report(detector, batches, ...)` makes one pass over the batches,
feeding a `DetectionAnalysis` (the VOC AP's own matching) and keeping a few
images, and returns the figures (`keras_ssd.evaluation.figures`). With
`output_dir` it also writes them as PNG files plus `report.html`, which embeds
the same PNGs as `data:` URIs and references nothing outside itself, so it
opens anywhere without a network. Sections: training curves (from a run
folder's `log.csv`), the per-class table, PR and F1 curves, the confusion
matrix (counts and row-normalised), default-box coverage of the evaluation
data's objects, the worst images beside a few good ones, and the run's recipe,
config, data source, wall time and versions.
"""

import base64
import heapq
import html
import io
import json
import math
import os
import platform
import time
from typing import NamedTuple

import keras
import matplotlib
import numpy as np
import tensorflow as tf

from keras_ssd.evaluation import figures
from keras_ssd.evaluation.analysis import DEFAULT_SCORE_THRESHOLD, DetectionAnalysis
from keras_ssd.evaluation.coverage import Coverage, default_box_coverage
from keras_ssd.evaluation.voc import METRICS as VOC_METRICS
from keras_ssd.run_log import RunLog, read_log
from keras_ssd.version import __version__

HTML_NAME = "report.html"
# Edges of the report's object-size ranges, sqrt(h w) in input pixels.
SIZE_EDGES = (0.0, 10.0, 24.0, 48.0, 96.0, math.inf)


class Report(NamedTuple):
    """What `detection_report` made.

    Attributes:
        figures: `{name: matplotlib Figure}`; written as `<name>.png`.
        analysis: the `DetectionAnalysis` of the pass (AP, curves, confusion).
        coverage: the default-box `Coverage` of the evaluation data's objects,
            or None without a config.
        ap_by_size: the mAP per object size range (`SizeAP`s at `SIZE_EDGES`
            input pixels), or None without a config (sizes need its input side).
        preset_coverage: the same objects' `Coverage` by the default boxes of
            the config's preset, when the config's own differ (fitted boxes,
            `SSDConfig.with_preset_boxes`); else None.
        info: the run facts shown in the report (recipe, config, data source,
            wall time, versions), JSON-friendly.
        html_path: the written `report.html`, or None without `output_dir`.
    """

    figures: dict
    analysis: DetectionAnalysis
    coverage: Coverage | None
    ap_by_size: list | None
    preset_coverage: Coverage | None
    info: dict
    html_path: str | None


class _ExampleImages:
    """Keeps the `worst` images with the most missed + false boxes, and the first `good` flawless ones."""

    def __init__(self, worst: int, good: int):
        self.worst, self.good = worst, good
        self._worst_heap, self._good = [], []

    def add(self, errors, image) -> None:
        badness = errors.missed + errors.false
        if badness:
            # Min-heap on (badness, -index): the earlier image wins a tie.
            item = (badness, -errors.index, errors, image)
            if len(self._worst_heap) < self.worst:
                heapq.heappush(self._worst_heap, item)
            elif item[:2] > self._worst_heap[0][:2]:
                heapq.heapreplace(self._worst_heap, item)
        elif errors.objects and len(self._good) < self.good:
            self._good.append((errors, image))

    def chosen(self):
        """`(title, errors, image)` of the worst images, worst first, then the good ones."""
        worst = sorted(self._worst_heap, key=lambda item: item[:2], reverse=True)
        titled = [(f"worst {rank + 1}: image {e.index}, {e.missed} missed, {e.false} false", e, image)
                  for rank, (_, _, e, image) in enumerate(worst)]
        return titled + [(f"good: image {e.index}, {e.found} found", e, image) for e, image in self._good]


def report_metric(metric: str) -> str:
    """The report's AP interpolation for an evaluation metric: a VOC metric itself, else
    `"voc12"` (all-point, the nearest to COCO's 101-point AP50)."""
    return metric if metric in VOC_METRICS else "voc12"


def read_run_log(run_dir) -> RunLog:
    """A run folder's `log.csv` (`keras_ssd.run_log.read_log`: any version's, with notes on what it lacks)."""
    return read_log(os.path.join(run_dir, "log.csv"))


def _versions() -> dict:
    return {"keras_ssd": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "matplotlib": matplotlib.__version__, "python": platform.python_version()}


def _run(detector, batches, analysis, examples, evaluators) -> None:
    """The one pass: detections of every batch into the analysis and the evaluators, images into `examples`."""
    for batch in batches:
        images = np.asarray(batch["image"])
        first = analysis.num_images
        detections = detector(images)
        for evaluator in (analysis, *evaluators):
            evaluator.update(detections, batch)
        for offset, image in enumerate(images):
            examples.add(analysis.errors_of(first + offset), np.clip(image, 0, 255).astype(np.uint8))


def detection_report(
    detector,
    batches,
    *,
    class_names,
    cfg=None,
    output_dir=None,
    run_dir=None,
    history=None,
    metric: str = "voc07",
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    data_source: str | None = None,
    model: str | None = None,
    num_worst: int = 6,
    num_good: int = 3,
    evaluators=(),
) -> Report:
    """Runs `detector` over `batches` and builds (and optionally writes) the report.

    Example:
        ```python
        detector = keras_ssd.build_detector(model, cfg)
        batches = keras_ssd.data.eval_pipeline(keras_ssd.data.load("shapes", "validation"), cfg, 16)
        report = detection_report(detector, batches, class_names=model.class_names, cfg=cfg,
                                  output_dir="runs/x/report", run_dir="runs/x")
        report.figures["pr_curves"]   # a matplotlib Figure
        ```

    Args:
        detector: callable, a batch of images (numpy `[B, H, W, 3]` RGB 0..255,
            as `batches` holds them) -> the detection dict (`detection_boxes`
            `[B, K, 4]` normalised `[ymin, xmin, ymax, xmax]`,
            `detection_scores`, `detection_classes` 0-based, `num_detections`),
            e.g. `keras_ssd.build_detector(...)` or `keras_ssd.export.load_detector(...)`.
        batches: iterable of batch dicts from `keras_ssd.data.eval_pipeline`
            (`"image"` plus the ground-truth keys `VOCEvaluator.update` reads).
        class_names: the object class names (label k is `class_names[k]`).
        cfg: the model's `SSDConfig`, for the default-box coverage (None: no
            coverage section, e.g. for an exported model of unknown config).
        output_dir: folder for `report.html` and the PNGs (created; None:
            write nothing).
        run_dir: a `training.train` run folder whose `log.csv` and
            `metrics.json` (recipe, wall time) the report shows (None: none).
        history: without a run folder's `log.csv`, the per-epoch logs to draw
            instead: `model.fit(...).history`, `{name: [value per epoch]}`.
        metric: `"voc07"` or `"voc12"`, the AP's interpolation.
        score_threshold: detections below it are left out of the confusion
            matrix and the image grid.
        data_source: how the evaluation data was loaded, shown as given.
        model: which model file this is, shown as given.
        num_worst, num_good: images of the grid: the most missed + false
            boxes, and flawless ones.
        evaluators: other evaluators (e.g. a `COCOEvaluator`) fed the same
            detections and batches, so one pass serves them too.

    Returns:
        A `Report`.
    """
    start = time.time()
    analysis = DetectionAnalysis(len(class_names), metric, list(class_names), score_threshold=score_threshold)
    examples = _ExampleImages(num_worst, num_good)
    _run(detector, batches, analysis, examples, evaluators)
    ground_truth = [analysis.image(i)[1] for i in range(analysis.num_images)]
    gt_labels = np.concatenate([np.zeros(0, np.int64)] + [gt.labels for gt in ground_truth])
    coverage = preset_coverage = ap_by_size = None
    if cfg is not None:
        ap_by_size = analysis.ap_by_size(SIZE_EDGES, cfg.image_size)
        objects = np.concatenate([np.zeros((0, 4))] + [gt.boxes for gt in ground_truth])
        coverage = default_box_coverage(objects, cfg)
        preset = cfg.with_preset_boxes()
        if preset is not None:
            preset_coverage = default_box_coverage(objects, preset)

    names = analysis.names
    curves = analysis.curves()
    figure_set = {}
    log = read_run_log(run_dir) if run_dir else RunLog({})
    if not log.columns and history:
        log = RunLog.from_history(history)
    if log.columns:
        figure_set["training_curves"] = figures.training_curves(log.columns, log.notes)
    figure_set["pr_curves"] = figures.precision_recall_curves(curves, names, metric)
    figure_set["f1_curves"] = figures.f1_curves(curves, names, score_threshold)
    matrix = analysis.confusion_matrix()
    figure_set["confusion_matrix"] = figures.confusion_matrix(matrix, names, score_threshold)
    figure_set["confusion_matrix_normalized"] = figures.confusion_matrix(matrix, names, score_threshold, True)
    if coverage is not None:
        figure_set["coverage"] = figures.coverage(coverage, preset_coverage)
    chosen = [(title, image, *analysis.image(e.index)) for title, e, image in examples.chosen()]
    if chosen:
        figure_set["predictions"] = figures.example_images(chosen, names, score_threshold)

    metrics = {}
    if run_dir and os.path.exists(os.path.join(run_dir, "metrics.json")):
        with open(os.path.join(run_dir, "metrics.json")) as f:
            metrics = json.load(f)
    info = {
        "model": model,
        "data source": data_source,
        "images": analysis.num_images,
        "metric": metric,
        "score threshold": score_threshold,
        "training wall time (min)": metrics.get("minutes"),
        "recipe": metrics.get("recipe"),
        "config": None if cfg is None else cfg.to_dict(),
        "versions": _versions(),
    }
    info["pass and figures (s)"] = round(time.time() - start, 2)
    html_path = None
    if output_dir is not None:
        html_path = _write(output_dir, figure_set, analysis, matrix, coverage, preset_coverage, ap_by_size, gt_labels,
                           info)
    return Report(figure_set, analysis, coverage, ap_by_size, preset_coverage, info, html_path)


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})  # no URL inside
    return buffer.getvalue()


def _text(value) -> str:
    """A table cell's text: floats to 4 decimals, NaN and None as n/a, HTML-escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return html.escape(f"{value:.4f}" if isinstance(value, float) else str(value))


def _table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_text(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _facts(info: dict) -> str:
    """The run facts as a table; a mapping (recipe, config, versions) as a nested table of compact JSON."""

    def cell(value):
        if isinstance(value, dict):
            return _facts({k: json.dumps(v, default=str) for k, v in value.items()})
        return _text(value)

    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{cell(v)}</td></tr>" for k, v in info.items())
    return f'<table class="facts">{rows}</table>'


def _class_section(summaries, coverage, gt_labels) -> list[str]:
    header = ["class", "AP", "precision", "recall", "F1", "threshold", "ground truth"]
    rows = [[s.name, s.ap, s.precision, s.recall, s.f1, s.threshold, s.num_positives] for s in summaries]
    note = "AP as the evaluator prints it; precision, recall and F1 at each class's best-F1 score threshold"
    if coverage is not None:
        header.append("below default-box threshold")
        note += ("; the share of the class's objects (difficult ones too) that no default box overlaps at the "
                 "matching threshold (see Default-box coverage)")
        for label, row in enumerate(rows):
            mine = gt_labels == label
            row.append(float(coverage.unmatchable[mine].mean()) if mine.any() else float("nan"))
    return ["<h2>Per class</h2>", f"<p>{html.escape(note)}.</p>", _table(header, rows)]


def _coverage_section(coverage, preset_coverage) -> list[str]:
    if coverage is None:
        return ["<h2>Default-box coverage</h2>",
                "<p>Not measured: no SSDConfig was given (exported models do not store theirs).</p>"]
    header = ["object size (input px)", "objects", "below threshold", "share"]
    bins = [[f"{b.low:.1f}-{b.high:.1f}", b.count, b.unmatchable, b.share] for b in coverage.by_size()]
    text = (f"{coverage.share_unmatchable:.1%} of the {len(coverage.best_iou)} objects of the evaluation data "
            f"have no default box with IoU >= {coverage.threshold:g} (the matching threshold): in training "
            "each gets only its single best default box as a positive.")
    if preset_coverage is not None:
        header += ["below threshold, preset's boxes", "share, preset's boxes"]
        for row, b in zip(bins, preset_coverage.by_size(coverage.scales)):
            row += [b.unmatchable, b.share]
        text += (f" This model's default boxes are not its preset's (fitted to its training data, or "
                 f"given); the preset's would leave "
                 f"{preset_coverage.share_unmatchable:.1%} (mean best IoU {coverage.mean_best_iou:.2f} against "
                 f"{preset_coverage.mean_best_iou:.2f}, {coverage.mean_positives:.1f} against "
                 f"{preset_coverage.mean_positives:.1f} default boxes per object at the threshold).")
    return ["<h2>Default-box coverage</h2>", f"<p>{html.escape(text)}</p>", _table(header, bins)]


def _size_section(ap_by_size) -> list[str]:
    if ap_by_size is None:
        return []
    rows = [[f"{row.low:g}-{row.high:g}" if math.isfinite(row.high) else f">= {row.low:g}", row.objects, row.mAP]
            for row in ap_by_size]
    note = ("mAP of the objects of each size, sqrt(h w) in pixels of the network input; objects of other sizes, "
            "and false detections of other sizes, are ignored (COCO's rule for its small/medium/large AP)")
    return ["<h2>AP by object size</h2>", f"<p>{html.escape(note)}.</p>",
            _table(["object size (input px)", "objects", "mAP"], rows)]


def _write(output_dir, figure_set, analysis, matrix, coverage, preset_coverage, ap_by_size, gt_labels,
           info) -> str:
    """Writes the PNGs and `report.html` (the same PNGs as data: URIs) into `output_dir`; returns the HTML path."""
    os.makedirs(output_dir, exist_ok=True)
    images = {}
    for name, figure in figure_set.items():
        png = _png(figure)
        with open(os.path.join(output_dir, f"{name}.png"), "wb") as f:
            f.write(png)
        images[name] = base64.b64encode(png).decode("ascii")

    def image(name, caption):
        if name not in images:
            return ""
        return (f'<figure><img alt="{name}" src="data:image/png;base64,{images[name]}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    result = analysis.result()
    summaries = analysis.class_summaries()
    rated = [s for s in summaries if not math.isnan(s.ap)]
    weakest = min(rated, key=lambda s: s.ap) if rated else None
    summary = (f"{info['model'] or 'The model'} on {info['data source'] or 'the data'}: {info['images']} images, "
               f"{info['metric']} mAP ")
    confusion = (f"IoU >= {analysis.iou_threshold:g}, detections with score >= {analysis.score_threshold:g}. "
                 "A class row sums to that class's ground-truth count (found, taken for another class, or "
                 f"missed); the background row holds every false positive ({matrix[-1].sum()} in all), by "
                 "detected class.")
    parts = [
        "<h1>Detection report</h1>",
        f"<p>{html.escape(summary)}<b>{_text(result['mAP'])}</b>"
        + (f"; weakest class {_text(weakest.name)} (AP {_text(weakest.ap)})" if weakest else "") + "</p>",
        image("training_curves", "loss, validation mAP and learning rate per epoch (log.csv)"),
        *_class_section(summaries, coverage, gt_labels),
        image("pr_curves", "precision-recall per class: the bold curve is the interpolation whose area is the AP"),
        image("f1_curves", "F1 against the score threshold"),
        "<h2>Confusion</h2>",
        f"<p>{html.escape(confusion)}</p>",
        image("confusion_matrix", "counts"),
        image("confusion_matrix_normalized", "row-normalised"),
        *_size_section(ap_by_size),
        *_coverage_section(coverage, preset_coverage),
        image("coverage", "best IoU with any default box against object size, coloured by source map"),
        "<h2>Images</h2>",
        image("predictions", "the worst images (most missed + false boxes) and a few flawless ones"),
        "<h2>Run</h2>",
        _facts(info),
    ]
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
             "img{max-width:100%}figure{margin:1em 0}.facts td,.facts th{text-align:left;vertical-align:top}")
    page = ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>Detection report</title>'
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    path = os.path.join(output_dir, HTML_NAME)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path

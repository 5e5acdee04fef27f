"""Detection metrics: VOC07 / VOC2010+ AP, COCO AP, a Keras mAP callback, and what explains them.

Every evaluator takes the detector's output dict and the evaluation batch dict
(boxes normalised `[ymin, xmin, ymax, xmax]`, 0-based classes) through
`update(detections, ground_truth)` and returns `{"mAP": ..., "per_class_ap": ...}`
from `result()`. `DetectionAnalysis` is the VOC evaluator that also gives PR and
F1 curves, a confusion matrix and per-image errors; `default_box_coverage`
measures which objects no default box of a config can match; `detection_report`
draws all of it (matplotlib figures, one self-contained HTML file, PNGs).
"""

from keras_ssd.evaluation.analysis import DetectionAnalysis
from keras_ssd.evaluation.callback import MeanAveragePrecisionCallback
from keras_ssd.evaluation.coco import COCOEvaluator
from keras_ssd.evaluation.coverage import dataset_boxes, default_box_coverage
from keras_ssd.evaluation.report import detection_report
from keras_ssd.evaluation.table import format_table
from keras_ssd.evaluation.voc import VOCEvaluator, average_precision

METRICS = ("voc07", "voc12", "coco")


def make_evaluator(metric: str, num_classes: int, class_names=None):
    """Builds the evaluator for a metric name, for CLIs and configs.

    Args:
        metric: `"voc07"`, `"voc12"` or `"coco"`.
        num_classes: number of object classes.
        class_names: optional `num_classes` names, used as per-class keys.

    Returns:
        A `VOCEvaluator` or `COCOEvaluator`.

    Raises:
        ValueError: unknown metric name.
    """
    if metric == "coco":
        return COCOEvaluator(num_classes, class_names=class_names)
    if metric in ("voc07", "voc12"):
        return VOCEvaluator(num_classes, metric=metric, class_names=class_names)
    raise ValueError(f"Unknown metric {metric!r}; expected one of {METRICS}")


__all__ = [
    "METRICS",
    "COCOEvaluator",
    "DetectionAnalysis",
    "MeanAveragePrecisionCallback",
    "VOCEvaluator",
    "average_precision",
    "dataset_boxes",
    "default_box_coverage",
    "detection_report",
    "format_table",
    "make_evaluator",
]

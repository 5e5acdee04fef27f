"""PASCAL VOC detection AP: the VOC2007 11-point and VOC2010+ all-point metrics.

Reproduces the VOC devkit's `VOCevaldet.m` / `VOCap.m`:

- Per class, detections of the whole dataset are ranked by score (a stable sort,
  like MATLAB's `sort`, so ties keep the order in which images were fed).
- Each detection takes the ground truth of its class, in its image, with the
  highest IoU (the first one on ties), whether or not that box is already taken.
  If that IoU >= 0.5: a difficult box makes the detection ignored (neither TP nor
  FP); otherwise the first detection to take the box is a TP and later ones are
  FP (duplicates). Below 0.5, or with no box of its class, it is an FP.
- The number of positives counts non-difficult boxes only.
- Crowd boxes (`is_crowd`, COCO sources) are treated like difficult ones: VOC has
  no crowd notion, and an unmatched crowd region is not a miss.

IoU is plain continuous IoU on the normalised boxes, without the devkit's "+1
pixel". That is exact, not an approximation: the data sources store a VOC box
with 1-based inclusive pixel corners `(x1, x2)` as the continuous interval
`[x1 - 1, x2]` (the TFDS convention), whose length `x2 - x1 + 1` is the devkit's
"+1" width, and the same holds for intersections. No pixel scaling is needed
either: scaling x by `W` and y by `H` multiplies every area (both boxes, their
intersection, their union) by `W * H`, so IoU is invariant under axis-aligned
anisotropic scaling and normalised coordinates give the pixel IoU. Results can
differ from the devkit only by float rounding at IoU exactly 0.5.

Matching within an image only depends on the higher-scored detections of that
image, so `VOCEvaluator.update` labels detections TP/FP per image as batches
arrive and keeps only (score, class, TP, FP) per detection; `curves` does the
dataset-wide ranking into each class's precision/recall curve, and `result` takes
each class's AP from its curve (`interpolated_precision` is the curve the AP
integrates, for plotting).
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from keras_ssd.evaluation.batch_inputs import ImageDetections, ImageGroundTruth, split_batch

METRICS = ("voc07", "voc12")


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"Unknown VOC metric {metric!r}; expected one of {METRICS}")


def interpolated_precision(recall, precision, metric: str = "voc07"):
    """The interpolated precision/recall curve whose area is the VOC AP.

    Args:
        recall: float `[D]`, non-decreasing recall after each ranked detection.
        precision: float `[D]`, precision after each ranked detection.
        metric: `"voc07"` or `"voc12"`, as for `average_precision`.

    Returns:
        `(recall_points, precision_points)`, float64 `[P]` each.
        `"voc07"`: the 11 recall thresholds t = 0, 0.1, ..., 1 (exactly k/10)
        and the highest precision at recall >= t (0 if recall never reaches
        t); AP is their mean. `"voc12"`: the recall values where recall
        rises (ending at 1) and the monotone precision envelope just after
        each rise, a step curve holding `precision_points[i]` over
        `(recall_points[i - 1], recall_points[i]]` (from 0 for i = 0); AP is
        its area, `sum(diff([0, *recall_points]) * precision_points)`.

    Raises:
        ValueError: unknown metric or mismatched shapes.
    """
    _check_metric(metric)
    recall = np.asarray(recall, np.float64)
    precision = np.asarray(precision, np.float64)
    if recall.shape != precision.shape or recall.ndim != 1:
        raise ValueError(
            f"recall and precision must be 1-D of equal length; got {recall.shape} and {precision.shape}"
        )
    if metric == "voc07":
        thresholds = np.arange(11) / 10.0
        # Highest precision at recall >= t = the envelope at the first index reaching t.
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        first = np.searchsorted(recall, thresholds, side="left")
        reached = first < recall.size
        values = np.zeros(thresholds.size)
        values[reached] = envelope[first[reached]]
        return thresholds, values
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return mrec[steps + 1], mpre[steps + 1]


def average_precision(recall, precision, metric: str = "voc07") -> float:
    """Area under a precision/recall curve the way the VOC devkit computes it.

    Args:
        recall: float `[D]`, non-decreasing recall after each ranked detection.
        precision: float `[D]`, precision after each ranked detection.
        metric: `"voc07"`: mean over recall thresholds t = 0, 0.1, ..., 1 of the
            highest precision at recall >= t (0 if recall never reaches t); the
            thresholds are exactly k/10, so a recall of 3/10 reaches 0.3.
            `"voc12"` (VOC2010 and later): exact area under the monotone
            precision envelope, `sum (r[i+1] - r[i]) * max(p[j] for j > i)`.
            Both integrate `interpolated_precision`'s curve.

    Returns:
        AP in [0, 1]; 0.0 for empty inputs.

    Raises:
        ValueError: unknown metric or mismatched shapes.
    """
    points, values = interpolated_precision(recall, precision, metric)
    if metric == "voc07":
        return float(np.mean(values))
    return float(np.sum(np.diff(points, prepend=0.0) * values))


def pairwise_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Continuous IoU between two sets of boxes.

    Args:
        boxes_a: float `[N, 4]`, `[ymin, xmin, ymax, xmax]` (any consistent units).
        boxes_b: float `[M, 4]`, same format.

    Returns:
        float64 `[N, M]`; 0 where the union is empty.
    """
    a = np.asarray(boxes_a, np.float64)[:, None, :]
    b = np.asarray(boxes_b, np.float64)[None, :, :]
    inter_h = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_w = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_h * inter_w
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


class ImageMatch(NamedTuple):
    """How the VOC matching labelled one image's detections.

    Attributes:
        order: int `[K]`, sorts the detections by descending score (stable);
            the other fields are in that order.
        tp: bool `[K]`, true positives.
        fp: bool `[K]`, false positives. A detection with neither flag is
            ignored (it matched a difficult or crowd box).
        gt_index: int `[K]`, the ground-truth box each detection took (its
            highest-IoU box of its class, at IoU >= the threshold), -1 if none.
            A true positive is the first detection to take its box.
    """

    order: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    gt_index: np.ndarray


def match_image(dets: ImageDetections, gt: ImageGroundTruth, iou_threshold: float = 0.5) -> ImageMatch:
    """Labels one image's detections TP, FP or ignored, the devkit way.

    Args:
        dets: the image's detections (boxes normalised `[ymin, xmin, ymax, xmax]`).
        gt: the image's ground truth (same box format).
        iou_threshold: minimum IoU for a match (the devkit's `minoverlap`, 0.5).

    Returns:
        An `ImageMatch`, its arrays in descending score order.
    """
    order = np.argsort(-dets.scores, kind="stable")
    classes = dets.classes[order]
    num = order.size
    tp = np.zeros(num, bool)
    if gt.labels.size == 0 or num == 0:
        return ImageMatch(order, tp, ~tp, np.full(num, -1))
    iou = pairwise_iou(dets.boxes[order], gt.boxes)
    iou = np.where(classes[:, None] == gt.labels[None, :], iou, -np.inf)
    best = np.argmax(iou, axis=1)
    hit = iou[np.arange(num), best] >= iou_threshold
    ignored = hit & (gt.difficult | gt.is_crowd)[best]
    candidates = np.flatnonzero(hit & ~ignored)
    # The first (highest-scored) detection to take a box is the TP; later ones are duplicates.
    _, first = np.unique(best[candidates], return_index=True)
    tp[candidates[first]] = True
    return ImageMatch(order, tp, ~tp & ~ignored, np.where(hit, best, -1))


class OperatingPoint(NamedTuple):
    """Precision and recall of one class when detections below a score are dropped.

    Attributes:
        threshold: the lowest score kept (detections with score >= it count).
        precision: TP / counted detections at that threshold.
        recall: TP / positives at that threshold.
        f1: `2 * precision * recall / (precision + recall)` (0 when both are 0).
    """

    threshold: float
    precision: float
    recall: float
    f1: float


class PrecisionRecallCurve(NamedTuple):
    """One class's detections over a dataset, ranked as the VOC AP ranks them.

    Attributes:
        scores: float64 `[D]`, the class's TP and FP detections (ignored ones
            left out), best first (a stable sort: ties keep feed order).
        recall: float64 `[D]`, recall after each detection (NaN without positives).
        precision: float64 `[D]`, precision after each detection.
        num_positives: the class's ground-truth boxes that count (not
            difficult, not crowd).
    """

    scores: np.ndarray
    recall: np.ndarray
    precision: np.ndarray
    num_positives: int

    def interpolated(self, metric: str = "voc07"):
        """`interpolated_precision` of this curve: the curve whose area is its AP."""
        return interpolated_precision(self.recall, self.precision, metric)

    def average_precision(self, metric: str = "voc07") -> float:
        """The class's AP, NaN without positives (see `VOCEvaluator.result`)."""
        if not self.num_positives:
            return float("nan")
        return average_precision(self.recall, self.precision, metric)

    def _cuts(self) -> np.ndarray:
        """Indices of the last detection of each run of equal scores."""
        return np.flatnonzero(np.diff(self.scores, append=-np.inf))

    def f1_curve(self):
        """F1 against the score threshold.

        Returns:
            `(thresholds, f1)`, float64 `[T]` each, thresholds descending: one
            per distinct score (a cut inside a run of equal scores is not a
            threshold). F1 at threshold t counts the detections with score >= t.
        """
        ends = self._cuts()
        p, r = self.precision[ends], self.recall[ends]
        total = p + r
        f1 = np.divide(2 * p * r, total, out=np.zeros_like(total), where=total > 0)
        return self.scores[ends], f1

    def best_f1(self) -> OperatingPoint:
        """The score threshold of highest F1 (the highest such threshold on ties).

        Returns:
            An `OperatingPoint`; all NaN without positives, threshold NaN and
            zeros without detections.
        """
        if not self.num_positives:
            return OperatingPoint(*[float("nan")] * 4)
        thresholds, f1 = self.f1_curve()
        if not thresholds.size:
            return OperatingPoint(float("nan"), 0.0, 0.0, 0.0)
        best = int(np.argmax(f1))
        end = self._cuts()[best]
        return OperatingPoint(
            float(thresholds[best]), float(self.precision[end]), float(self.recall[end]), float(f1[best])
        )


class VOCEvaluator:
    """Accumulates detections over a dataset and computes VOC per-class AP and mAP.

    Example:
        ```python
        ev = VOCEvaluator(num_classes=20, metric="voc07", class_names=names)
        for batch in eval_ds:
            ev.update(detector(batch["image"]), batch)
        print(format_table(ev.result()))
        ```

    Args:
        num_classes: number of object classes (0-based labels `0..num_classes-1`).
        metric: `"voc07"` (11-point, the SSD paper's VOC2007 test number) or
            `"voc12"` (all-point, VOC2010 and later).
        class_names: optional `num_classes` names used as keys of the per-class AP.
        iou_threshold: minimum IoU for a true positive (0.5 in VOC).
    """

    def __init__(
        self,
        num_classes: int,
        metric: str = "voc07",
        class_names: Sequence[str] | None = None,
        iou_threshold: float = 0.5,
    ):
        _check_metric(metric)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1; got {num_classes}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(
                f"class_names has {len(class_names)} names but num_classes is {num_classes}"
            )
        self.num_classes = int(num_classes)
        self.metric = metric
        self.class_names = None if class_names is None else list(class_names)
        self.iou_threshold = float(iou_threshold)
        self.reset()

    def reset(self) -> None:
        """Forgets everything accumulated so far."""
        self._scores, self._classes, self._tp = [], [], []
        self._num_positives = np.zeros(self.num_classes, np.int64)
        self.num_images = 0

    @property
    def names(self) -> list:
        """The class names, or the class ids when there are none: the keys of `result`'s per-class AP."""
        return self.class_names or list(range(self.num_classes))

    def update(self, detections, ground_truth) -> None:
        """Adds one batch.

        Args:
            detections: dict of arrays or tensors from the detector:
                `detection_boxes` `[B, K, 4]` (normalised `[ymin, xmin, ymax, xmax]`),
                `detection_scores` `[B, K]`, `detection_classes` `[B, K]` (0-based),
                `num_detections` `[B]` (entries past it are ignored).
            ground_truth: dict of arrays or tensors: `"boxes"` `[B, M, 4]` (normalised
                `[ymin, xmin, ymax, xmax]`), `"labels"` `[B, M]` (0-based, -1 pads),
                optional `"difficult"` and `"is_crowd"` bool `[B, M]`. Other keys
                (e.g. `"image"`, `"original_size"`) are ignored.

        Raises:
            ValueError: malformed or mismatched batches (see `split_batch`).
        """
        for dets, gt in split_batch(detections, ground_truth, self.num_classes):
            self._add_image(dets, gt, match_image(dets, gt, self.iou_threshold))

    def _add_image(self, dets: ImageDetections, gt: ImageGroundTruth, match: ImageMatch) -> None:
        """Keeps what the ranking needs of one matched image (subclasses keep more)."""
        counted = match.tp | match.fp
        self._scores.append(dets.scores[match.order][counted])
        self._classes.append(dets.classes[match.order][counted])
        self._tp.append(match.tp[counted])
        positives = gt.labels[~(gt.difficult | gt.is_crowd)]
        self._num_positives += np.bincount(positives, minlength=self.num_classes)
        self.num_images += 1

    def curves(self) -> list[PrecisionRecallCurve]:
        """Each class's precision/recall curve over everything added since the last `reset`.

        Returns:
            `num_classes` `PrecisionRecallCurve`s, indexed by class; `result`
            takes each class's AP from its curve.
        """
        scores = np.concatenate(self._scores + [np.zeros(0)])
        # One dataset-wide ranking; ties keep feed order, as MATLAB's stable sort does.
        ranked = np.argsort(-scores, kind="stable")
        classes = np.concatenate(self._classes + [np.zeros(0, np.int64)])[ranked]
        tp = np.concatenate(self._tp + [np.zeros(0, bool)])[ranked]
        scores = scores[ranked]
        curves = []
        for c, num_positives in enumerate(self._num_positives):
            tp_cum = np.cumsum(tp[classes == c])
            recall = tp_cum / num_positives if num_positives else np.full(tp_cum.size, np.nan)
            precision = tp_cum / np.arange(1, tp_cum.size + 1)
            curves.append(PrecisionRecallCurve(scores[classes == c], recall, precision, int(num_positives)))
        return curves

    def result(self) -> dict[str, object]:
        """Per-class AP and mAP over everything added since the last `reset`.

        Returns:
            `{"mAP": float, "per_class_ap": {name_or_id: float}}`. Classes without
            a non-difficult ground-truth box have AP NaN and are left out of the
            mAP (the devkit would divide by zero); mAP is NaN if every class is.
        """
        per_class = np.array([curve.average_precision(self.metric) for curve in self.curves()])
        valid = per_class[~np.isnan(per_class)]
        return {
            "mAP": float(np.mean(valid)) if valid.size else float("nan"),
            "per_class_ap": {name: float(ap) for name, ap in zip(self.names, per_class)},
        }

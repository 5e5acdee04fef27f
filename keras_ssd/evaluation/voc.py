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
arrive and keeps only (score, class, TP, FP) per detection; `result` does the
dataset-wide ranking.
"""

from collections.abc import Sequence

import numpy as np

from keras_ssd.evaluation.batch_inputs import ImageDetections, ImageGroundTruth, split_batch

METRICS = ("voc07", "voc12")


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"Unknown VOC metric {metric!r}; expected one of {METRICS}")


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

    Returns:
        AP in [0, 1]; 0.0 for empty inputs.

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
        return float(np.sum(envelope[first[reached]]) / thresholds.size)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


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


def match_image(dets: ImageDetections, gt: ImageGroundTruth, iou_threshold: float = 0.5):
    """Labels one image's detections TP, FP or ignored, the devkit way.

    Args:
        dets: the image's detections (boxes normalised `[ymin, xmin, ymax, xmax]`).
        gt: the image's ground truth (same box format).
        iou_threshold: minimum IoU for a match (the devkit's `minoverlap`, 0.5).

    Returns:
        `(order, tp, fp)`: `order` int `[K]` sorts the detections by descending
        score (stable); `tp` and `fp` are bool `[K]` in that order. A detection
        with neither flag is ignored (it matched a difficult or crowd box).
    """
    order = np.argsort(-dets.scores, kind="stable")
    classes = dets.classes[order]
    num = order.size
    tp = np.zeros(num, bool)
    if gt.labels.size == 0 or num == 0:
        return order, tp, ~tp
    iou = pairwise_iou(dets.boxes[order], gt.boxes)
    iou = np.where(classes[:, None] == gt.labels[None, :], iou, -np.inf)
    best = np.argmax(iou, axis=1)
    hit = iou[np.arange(num), best] >= iou_threshold
    ignored = hit & (gt.difficult | gt.is_crowd)[best]
    candidates = np.flatnonzero(hit & ~ignored)
    # The first (highest-scored) detection to take a box is the TP; later ones are duplicates.
    _, first = np.unique(best[candidates], return_index=True)
    tp[candidates[first]] = True
    return order, tp, ~tp & ~ignored


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
            order, tp, fp = match_image(dets, gt, self.iou_threshold)
            counted = tp | fp
            self._scores.append(dets.scores[order][counted])
            self._classes.append(dets.classes[order][counted])
            self._tp.append(tp[counted])
            positives = gt.labels[~(gt.difficult | gt.is_crowd)]
            self._num_positives += np.bincount(positives, minlength=self.num_classes)
            self.num_images += 1

    def result(self) -> dict[str, object]:
        """Per-class AP and mAP over everything added since the last `reset`.

        Returns:
            `{"mAP": float, "per_class_ap": {name_or_id: float}}`. Classes without
            a non-difficult ground-truth box have AP NaN and are left out of the
            mAP (the devkit would divide by zero); mAP is NaN if every class is.
        """
        scores = np.concatenate(self._scores + [np.zeros(0)])
        # One dataset-wide ranking; ties keep feed order, as MATLAB's stable sort does.
        ranked = np.argsort(-scores, kind="stable")
        classes = np.concatenate(self._classes + [np.zeros(0, np.int64)])[ranked]
        tp = np.concatenate(self._tp + [np.zeros(0, bool)])[ranked]
        per_class = np.full(self.num_classes, np.nan)
        for c in np.flatnonzero(self._num_positives):
            tp_cum = np.cumsum(tp[classes == c])
            recall = tp_cum / self._num_positives[c]
            precision = tp_cum / np.arange(1, tp_cum.size + 1)
            per_class[c] = average_precision(recall, precision, self.metric)
        names = self.class_names or list(range(self.num_classes))
        valid = per_class[~np.isnan(per_class)]
        return {
            "mAP": float(np.mean(valid)) if valid.size else float("nan"),
            "per_class_ap": {name: float(ap) for name, ap in zip(names, per_class)},
        }

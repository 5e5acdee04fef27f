"""Where a detector goes wrong: per-class operating points, a confusion matrix, per-image errors.

`DetectionAnalysis` is a `VOCEvaluator` that also keeps each image's matched
detections, so everything here comes from the one VOC matching (`match_image`)
that gives the AP: its precision-recall curves, their best-F1 operating points,
and, at a stated score threshold, a detection confusion matrix and each image's
missed and false boxes.

The confusion matrix has a row per object class plus a background row and a
column per object class plus a background column, all at IoU >= the evaluator's
`iou_threshold` and counting only detections scored at or above
`score_threshold`. Difficult and crowd objects, and the detections the matching
ignores, are left out, as in the AP.

- Row c (an object class) places each counted object of class c once, so it sums
  to the class's ground-truth count: column c if the matching made a detection
  of class c its true positive; else column k if a false positive of another
  class k overlaps it (the highest-IoU one; a class confusion); else the
  background column (missed).
- The background row counts every false positive at the threshold by its
  class: localisation errors, duplicates, detections on background, and also
  the detections a class confusion names, so its column k sums to class k's
  false positives. Rows, not columns, partition the counts.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from keras_ssd.evaluation.batch_inputs import ImageDetections, ImageGroundTruth
from keras_ssd.evaluation.coverage import object_sizes
from keras_ssd.evaluation.voc import ImageMatch, VOCEvaluator, match_image, pairwise_iou

# The stated score threshold of the confusion matrix and the image grid, unless told.
DEFAULT_SCORE_THRESHOLD = 0.3


class ImageErrors(NamedTuple):
    """One image's outcome at the analysis's score threshold.

    Attributes:
        index: the image's position in feed order (0-based).
        objects: counted ground-truth objects (not difficult, not crowd).
        found: those a detection of their class found (true positives).
        missed: `objects - found`.
        false: false positives (detections scored at or above the threshold).
    """

    index: int
    objects: int
    found: int
    missed: int
    false: int


class ClassSummary(NamedTuple):
    """One row of the per-class table.

    Attributes:
        name: the class name (or its id).
        ap: the class's AP (the evaluator's metric), NaN without ground truth.
        threshold, precision, recall, f1: the best-F1 operating point
            (`PrecisionRecallCurve.best_f1`).
        num_positives: counted ground-truth objects.
    """

    name: object
    ap: float
    threshold: float
    precision: float
    recall: float
    f1: float
    num_positives: int


class SizeAP(NamedTuple):
    """The mAP of the objects whose size lies in `[low, high)` pixels (`DetectionAnalysis.ap_by_size`).

    Attributes:
        low, high: the size range, `sqrt(h w)` in pixels of the network input.
        objects: counted ground-truth objects in the range.
        mAP: the mean over classes with objects in the range (NaN without any).
    """

    low: float
    high: float
    objects: int
    mAP: float


class _Image(NamedTuple):
    """What one image leaves for the analysis: its detections, ground truth and matching."""

    dets: ImageDetections
    gt: ImageGroundTruth
    match: ImageMatch


class DetectionAnalysis(VOCEvaluator):
    """A `VOCEvaluator` that also explains its AP: curves, confusion matrix, per-image errors.

    Use it exactly like `VOCEvaluator` (`update(detections, ground_truth)`,
    `result()`); `result()` gives the same numbers.

    Args:
        num_classes: number of object classes (0-based labels).
        metric: `"voc07"` or `"voc12"`, the AP's interpolation.
        class_names: optional `num_classes` names.
        iou_threshold: minimum IoU of a true positive and of a class confusion.
        score_threshold: detections scored below it are dropped from the
            confusion matrix and the per-image errors (not from the AP).
    """

    def __init__(
        self,
        num_classes: int,
        metric: str = "voc07",
        class_names: Sequence[str] | None = None,
        iou_threshold: float = 0.5,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    ):
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1]; got {score_threshold!r}")
        self.score_threshold = float(score_threshold)
        super().__init__(num_classes, metric, class_names, iou_threshold)

    def reset(self) -> None:
        """Forgets everything accumulated so far."""
        super().reset()
        self._images = []

    def _add_image(self, dets, gt, match) -> None:
        super()._add_image(dets, gt, match)
        self._images.append(_Image(dets, gt, match))

    def class_summaries(self) -> list[ClassSummary]:
        """AP, best-F1 precision and recall and ground-truth count of each class."""
        rows = []
        for name, curve in zip(self.names, self.curves()):
            point = curve.best_f1()
            rows.append(ClassSummary(name, curve.average_precision(self.metric), *point, curve.num_positives))
        return rows

    def ap_by_size(self, edges, image_size: int) -> list[SizeAP]:
        """The mAP of the objects of each size range, COCO's way (its APsmall/medium/large rule).

        For a range, objects of other sizes are ignored (as difficult ones are:
        a detection that matches one is neither true nor false), and so are
        false positives whose own size lies outside the range.

        Args:
            edges: increasing sizes in input pixels; ranges `[edges[i], edges[i + 1])`.
            image_size: side of the network input, for sizes of normalised boxes.

        Returns:
            One `SizeAP` per range.
        """
        rows = []
        for low, high in zip(edges[:-1], edges[1:]):
            evaluator = VOCEvaluator(self.num_classes, self.metric, self.class_names, self.iou_threshold)
            for dets, gt, _ in self._images:
                sizes = object_sizes(gt.boxes, image_size)
                gt = gt._replace(difficult=gt.difficult | (sizes < low) | (sizes >= high))
                match = match_image(dets, gt, self.iou_threshold)
                outside = object_sizes(dets.boxes, image_size)[match.order]
                outside = (outside < low) | (outside >= high)
                evaluator._add_image(dets, gt, match._replace(fp=match.fp & ~outside))
            counted = sum(curve.num_positives for curve in evaluator.curves())
            rows.append(SizeAP(float(low), float(high), counted, evaluator.result()["mAP"]))
        return rows

    def _outcome(self, image: _Image):
        """`(found, false)`: bool `[M]` objects found (never a difficult or crowd
        one: the matching ignores those) and bool `[K]` false positives in
        ranked order, both at the score threshold."""
        dets, gt, match = image
        kept = dets.scores[match.order] >= self.score_threshold
        found = np.zeros(gt.labels.size, bool)
        found[match.gt_index[match.tp & kept]] = True
        return found, match.fp & kept

    def errors_of(self, index: int) -> ImageErrors:
        """Image `index`'s (feed order) found, missed and false boxes at `score_threshold`."""
        image = self._images[index]
        found, false = self._outcome(image)
        objects, hits = int((~(image.gt.difficult | image.gt.is_crowd)).sum()), int(found.sum())
        return ImageErrors(index, objects, hits, objects - hits, int(false.sum()))

    def image(self, index: int):
        """`(detections, ground_truth)` of image `index` (feed order) as `ImageDetections`, `ImageGroundTruth`."""
        return self._images[index].dets, self._images[index].gt

    def confusion_matrix(self) -> np.ndarray:
        """Counts at `score_threshold`, laid out as the module docstring says.

        Returns:
            int64 `[C + 1, C + 1]`: rows the true class (last: background),
            columns the detected class (last: background, i.e. missed). Row c
            sums to class c's counted ground truth, the last row to the false
            positives at the threshold.
        """
        background = self.num_classes
        matrix = np.zeros((background + 1, background + 1), np.int64)
        for image in self._images:
            dets, gt, match = image
            found, false = self._outcome(image)
            classes = dets.classes[match.order]
            matrix[background] += np.bincount(classes[false], minlength=background + 1)
            np.add.at(matrix, (gt.labels[found], gt.labels[found]), 1)
            counted = ~(gt.difficult | gt.is_crowd)
            missed = np.flatnonzero(counted & ~found)
            columns = np.full(missed.size, background)
            if missed.size and false.any():
                iou = pairwise_iou(gt.boxes[missed], dets.boxes[match.order][false])
                other_class = gt.labels[missed][:, None] != classes[false][None, :]
                iou = np.where(other_class & (iou >= self.iou_threshold), iou, -1.0)
                best = np.argmax(iou, axis=1)  # ties: the higher-scored detection
                confused = iou[np.arange(missed.size), best] >= 0
                columns[confused] = classes[false][best[confused]]
            np.add.at(matrix, (gt.labels[missed], columns), 1)
        return matrix

"""DetectionAnalysis: PR curves whose area is the AP, best-F1 points, the confusion matrix, per-image errors."""

import numpy as np
import pytest

from keras_ssd.evaluation import VOCEvaluator
from keras_ssd.evaluation.analysis import DetectionAnalysis
from keras_ssd.evaluation.voc import PrecisionRecallCurve

BOTH = ("voc07", "voc12")


def _random_images(seed=1, count=40, num_classes=3):
    """Per image (gt list, detection list) with TPs, duplicates, confusions, misses and difficult boxes."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        m = int(rng.integers(0, 5))
        corner = rng.uniform(0, 0.6, (m, 2))
        boxes = np.concatenate([corner, corner + rng.uniform(0.1, 0.4, (m, 2))], 1)
        labels, difficult = rng.integers(0, num_classes, m), rng.uniform(size=m) < 0.15
        gts = [(boxes[i], labels[i], difficult[i], False) for i in range(m)]
        k = int(rng.integers(0, 8))
        source = rng.integers(0, max(m, 1), k)
        if m:
            det_boxes = np.clip(boxes[source] + rng.normal(0, 0.04, (k, 4)), 0, 1)
            det_classes = np.where(rng.uniform(size=k) < 0.75, labels[source], rng.integers(0, num_classes, k))
        else:
            det_boxes = np.sort(rng.uniform(0, 1, (k, 2, 2)), axis=1).transpose(0, 2, 1).reshape(k, 4)[:, [0, 2, 1, 3]]
            det_classes = rng.integers(0, num_classes, k)
        det_boxes[:, 2:] = np.maximum(det_boxes[:, 2:], det_boxes[:, :2] + 0.01)
        scores = np.round(rng.uniform(size=k), 2)  # coarse: ties across images
        images.append((gts, list(zip(det_boxes, scores, det_classes))))
    return images


def _feed(evaluator, images, make_detections, make_ground_truth, batch=5):
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        evaluator.update(make_detections([d for _, d in chunk]), make_ground_truth([g for g, _ in chunk]))
    return evaluator


@pytest.mark.parametrize("metric", BOTH)
def test_area_under_each_interpolated_curve_is_the_printed_ap(metric, make_detections, make_ground_truth):
    images = _random_images()
    analysis = _feed(DetectionAnalysis(3, metric), images, make_detections, make_ground_truth)
    printed = _feed(VOCEvaluator(3, metric), images, make_detections, make_ground_truth).result()
    assert analysis.result() == printed  # the analysis is the evaluator, same numbers
    for c, curve in enumerate(analysis.curves()):
        recall, precision = curve.interpolated(metric)
        assert np.all(np.diff(precision) <= 0)  # interpolated precision never rises
        if metric == "voc07":
            assert recall.tolist() == [k / 10 for k in range(11)]
            for t, p in zip(recall, precision):  # the best precision at recall >= t
                assert p == max(curve.precision[curve.recall >= t], default=0.0)
            area = precision.sum() / 11
        else:
            assert recall[-1] == 1.0 and np.all(np.diff(recall) > 0)
            for r, p in zip(curve.recall, curve.precision):  # an upper envelope of the raw curve
                assert p <= precision[np.searchsorted(recall, r)]
            area = sum((r1 - r0) * p for r0, r1, p in zip([0.0, *recall[:-1]], recall, precision))
        assert area == pytest.approx(printed["per_class_ap"][c], abs=1e-12)
    assert 0.2 < printed["mAP"] < 0.95  # a non-trivial mix


def test_best_f1_is_taken_only_between_distinct_scores():
    def curve(scores, tp, positives):
        cumulative = np.cumsum(tp)
        return PrecisionRecallCurve(
            np.array(scores, float), cumulative / positives, cumulative / np.arange(1, len(tp) + 1), positives
        )

    # The hand-computed list of test_voc_evaluator: F1 .4, .33, .57, .5, .44, .6 -> the last.
    point = curve([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [1, 0, 1, 0, 0, 1], 4).best_f1()
    assert point == pytest.approx((0.4, 0.5, 0.75, 0.6))
    # Scores .9, .9: keeping "the first .9 only" (F1 .67) is not a threshold; at .9 both count: F1 .5.
    tied = curve([0.9, 0.9, 0.5], [1, 0, 0], 2)
    thresholds, f1 = tied.f1_curve()
    assert thresholds.tolist() == [0.9, 0.5] and f1 == pytest.approx([0.5, 0.4])
    assert tied.best_f1() == pytest.approx((0.9, 0.5, 0.5, 0.5))
    assert np.isnan(curve([], [], 0).best_f1().f1)


def test_hand_made_confusion_matrix(make_detections, make_ground_truth):
    a, b, c = [0.0, 0.0, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9], [0.0, 0.6, 0.3, 0.9]
    d = [0.6, 0.0, 0.9, 0.3]  # difficult
    ground_truth = make_ground_truth([[(a, 0), (b, 1), (c, 2), (d, 0, True, False)]])
    detections = make_detections([[
        (d, 0.95, 0),  # takes the difficult box: ignored
        (a, 0.9, 0),  # true positive
        ([0.0, 0.0, 0.4, 0.38], 0.8, 0),  # duplicate of a: false positive
        (b, 0.7, 2),  # b called class 2: false positive and a confusion of class 1
        ([0.4, 0.4, 0.5, 0.5], 0.6, 1),  # on background: false positive
        (c, 0.4, 2),  # true positive in the AP, but below the threshold: c is missed here
    ]])
    analysis = DetectionAnalysis(3, "voc12", score_threshold=0.5)
    analysis.update(detections, ground_truth)
    # Image 2 (test_voc_evaluator's "best box even if taken"): e2 overlaps p (taken) at .67 and
    # q at .54, so it is a false positive of q's own class, and q is missed, not found.
    p, q, e2 = [0.0, 0.0, 1.0, 0.6], [0.0, 0.3, 1.0, 0.9], [0.0, 0.12, 1.0, 0.72]
    analysis.update(make_detections([[(p, 0.9, 0), (e2, 0.8, 0)]]), make_ground_truth([[(p, 0), (q, 0)]]))
    expected = [
        [2, 0, 0, 1],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
        [2, 1, 1, 0],
    ]
    assert analysis.confusion_matrix().tolist() == expected
    errors = analysis.errors_of(0)
    assert (errors.objects, errors.found, errors.missed, errors.false) == (3, 1, 2, 3)
    assert analysis.errors_of(1)[1:] == (2, 1, 1, 1)
    # At threshold 0.3 c is found and nothing else changes.
    low = DetectionAnalysis(3, "voc12", score_threshold=0.3)
    low.update(detections, ground_truth)
    assert low.confusion_matrix()[2].tolist() == [0, 0, 1, 0]


@pytest.mark.parametrize("threshold", [0.0, 0.35, 0.8])
def test_confusion_rows_sum_to_gt_counts_and_background_row_to_false_positives(
    threshold, make_detections, make_ground_truth
):
    analysis = _feed(DetectionAnalysis(3, "voc07", score_threshold=threshold), _random_images(seed=3),
                     make_detections, make_ground_truth)
    matrix = analysis.confusion_matrix()
    curves = analysis.curves()
    assert matrix[:3].sum(axis=1).tolist() == [curve.num_positives for curve in curves]
    for k, curve in enumerate(curves):
        kept = curve.scores >= threshold
        true_positives = round(curve.recall[kept][-1] * curve.num_positives) if kept.any() else 0
        assert matrix[k, k] == true_positives
        assert matrix[3, k] == kept.sum() - true_positives  # every false positive at the threshold
    assert matrix[3, 3] == 0
    errors = [analysis.errors_of(i) for i in range(analysis.num_images)]
    assert sum(e.false for e in errors) == matrix[3].sum()
    assert sum(e.missed for e in errors) == matrix[:3].sum() - np.trace(matrix[:3, :3])
    assert matrix[:3, 3].all() and matrix[:3, :3].sum() > np.trace(matrix[:3, :3])  # misses and confusions


def test_bad_score_threshold_is_quoted():
    with pytest.raises(ValueError, match="1.5"):
        DetectionAnalysis(2, score_threshold=1.5)


def test_ap_by_size_ignores_objects_and_false_detections_of_other_sizes():
    # At a 100 px input: object A is 8 px, object B 50 px, both class 0. A detection
    # finds A; a false 50 px detection lies elsewhere; B is missed.
    small, large = [0.1, 0.1, 0.18, 0.18], [0.4, 0.4, 0.9, 0.9]
    analysis = DetectionAnalysis(1)
    analysis.update(
        {"detection_boxes": [[small, [0.0, 0.45, 0.5, 0.95]]], "detection_scores": [[0.9, 0.8]],
         "detection_classes": [[0, 0]], "num_detections": [2]},
        {"boxes": [[small, large]], "labels": [[0, 0]]},
    )
    below, above = analysis.ap_by_size([0, 10, np.inf], 100)
    # Under 10 px: A found, B and the 50 px false detection ignored.
    assert (below.low, below.high, below.objects, below.mAP) == (0, 10, 1, 1.0)
    # 10 px and up: B counted and missed; the detection of A ignored; the false one counts.
    assert (above.objects, above.mAP) == (1, 0.0)
    assert analysis.result()["mAP"] == pytest.approx(6 / 11)  # both sizes: recall 1/2 at precision 1

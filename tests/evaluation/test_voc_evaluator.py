import math

import numpy as np
import pytest
import tensorflow as tf

from keras_ssd.evaluation import VOCEvaluator, average_precision, format_table, make_evaluator
from keras_ssd.evaluation.voc import pairwise_iou

BOTH = ("voc07", "voc12")

# The hand-computed ranked list (one class, 4 non-difficult positives, B missed):
#   rank  score  outcome                    cumTP cumFP  recall  precision
#   1     .9     TP  (A, image 1)           1     0      .25     1
#   2     .8     FP  (background, image 1)  1     1      .25     1/2
#   3     .7     TP  (C, image 2)           2     1      .50     2/3
#   4     .6     FP  (duplicate of A)       2     2      .50     1/2
#   5     .5     FP  (IoU .4 with D)        2     3      .50     2/5
#   6     .4     TP  (D)                    3     3      .75     1/2
# Precision envelope (max precision at this rank or later): 1, 2/3, 2/3, 1/2, 1/2, 1/2.
# VOC07 11-point: t = 0, .1, .2 -> 1;  t = .3, .4, .5 -> 2/3;  t = .6, .7 -> 1/2;
#   t = .8, .9, 1 -> 0 (recall never reaches them).  AP = (3 + 2 + 1) / 11 = 6/11.
# VOC2010+ all-point: recall steps 0->.25 at envelope 1, .25->.5 at 2/3, .5->.75 at 1/2,
#   .75->1 at 0.  AP = .25 + .25 * 2/3 + .25 * 1/2 = 13/24.
RECALL = [0.25, 0.25, 0.5, 0.5, 0.5, 0.75]
PRECISION = [1, 1 / 2, 2 / 3, 1 / 2, 2 / 5, 1 / 2]
EXPECTED = {"voc07": 6 / 11, "voc12": 13 / 24}

A, B = [0.0, 0.0, 0.4, 0.4], [0.6, 0.6, 1.0, 1.0]  # image 1
C, D = [0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]  # image 2


def _ranked_list_batches(make_detections, make_ground_truth):
    """The ranked list above as two single-image batches, detections out of score order."""
    image1 = (
        make_detections(
            [
                [
                    ([0.0, 0.0, 0.4, 0.38], 0.6, 0),  # IoU .95 with A, after A: duplicate
                    ([0.5, 0.0, 0.6, 0.1], 0.8, 0),  # touches nothing
                    (A, 0.9, 0),
                ]
            ]
        ),
        make_ground_truth([[(A, 0), (B, 0)]]),
    )
    image2 = (
        make_detections([[(D, 0.4, 0), ([0.5, 0.5, 0.7, 1.0], 0.5, 0), (C, 0.7, 0)]]),
        make_ground_truth([[(C, 0), (D, 0)]]),
    )
    return [image1, image2]


@pytest.mark.parametrize("metric", BOTH)
def test_average_precision_of_hand_computed_curve(metric):
    assert average_precision(RECALL, PRECISION, metric) == pytest.approx(
        EXPECTED[metric], abs=1e-12
    )


@pytest.mark.parametrize("metric", BOTH)
def test_ranked_list_through_evaluator(metric, make_detections, make_ground_truth):
    ev = VOCEvaluator(1, metric=metric, class_names=["thing"])
    for detections, ground_truth in _ranked_list_batches(make_detections, make_ground_truth):
        ev.update(detections, ground_truth)
    result = ev.result()
    assert result["per_class_ap"]["thing"] == pytest.approx(EXPECTED[metric], abs=1e-12)
    assert result["mAP"] == pytest.approx(EXPECTED[metric], abs=1e-12)


def test_voc07_threshold_is_exactly_three_tenths():
    # 3 of 10 positives found at precision 1, nothing more: recall 3/10 reaches t = .3
    # (4 thresholds: 0, .1, .2, .3), so AP = 4/11. Thresholds built as 0.1 * 3 =
    # 0.30000000000000004 would miss it and give 3/11.
    recall, precision = np.arange(1, 4) / 10, np.ones(3)
    assert average_precision(recall, precision, "voc07") == pytest.approx(4 / 11)
    assert average_precision([], [], "voc07") == 0.0
    assert average_precision([], [], "voc12") == 0.0


@pytest.mark.parametrize("metric", BOTH)
def test_perfect_detector_scores_one_and_class_without_gt_is_nan(
    metric, make_detections, make_ground_truth
):
    gts = [[([0.1, 0.1, 0.5, 0.6], 0), ([0.5, 0.5, 0.9, 0.9], 2)], [([0.2, 0.3, 0.4, 0.5], 0)]]
    dets = [[(box, 0.5 + 0.1 * i, label) for i, (box, label) in enumerate(image)] for image in gts]
    ev = VOCEvaluator(3, metric=metric)
    ev.update(make_detections(dets), make_ground_truth(gts))
    result = ev.result()
    assert result["per_class_ap"][0] == 1.0 and result["per_class_ap"][2] == 1.0
    assert math.isnan(result["per_class_ap"][1])  # no ground truth: excluded from mAP
    assert result["mAP"] == 1.0
    assert ev.num_images == 2


def test_difficult_objects_are_neither_misses_nor_false_positives(
    make_detections, make_ground_truth
):
    x, y = [0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]

    def ap(difficult, detect_y):
        ev = VOCEvaluator(1, metric="voc12")
        dets = [(x, 0.8, 0)] + ([(y, 0.9, 0)] if detect_y else [])
        ev.update(make_detections([dets]), make_ground_truth([[(x, 0), (y, 0, difficult, False)]]))
        return ev.result()["mAP"]

    # Y difficult: detecting it (ranked first) is ignored, not an FP; missing it is not a miss.
    assert ap(difficult=True, detect_y=True) == 1.0
    assert ap(difficult=True, detect_y=False) == 1.0
    # Controls: a normal Y that is missed halves recall -> AP .5.
    assert ap(difficult=False, detect_y=False) == pytest.approx(0.5)


def test_crowd_boxes_are_ignored_like_difficult(make_detections, make_ground_truth):
    x, y = [0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]
    ev = VOCEvaluator(1, metric="voc12")
    ev.update(
        make_detections([[(y, 0.9, 0), (x, 0.8, 0)]]),
        make_ground_truth([[(x, 0), (y, 0, False, True)]]),
    )
    assert ev.result()["mAP"] == 1.0


@pytest.mark.parametrize("metric, expected", [("voc07", 28 / 33), ("voc12", 5 / 6)])
def test_duplicate_detections_are_false_positives(
    metric, expected, make_detections, make_ground_truth
):
    # Ranked: TP (x), FP (second box on x), TP (z); 2 positives.
    # recall .5, .5, 1; precision 1, 1/2, 2/3; envelope 1, 2/3, 2/3.
    # voc12: .5 * 1 + .5 * 2/3 = 5/6.  voc07: t = 0...5 -> 1 (6 points), t = .6...1 -> 2/3
    # (5 points): (6 + 10/3) / 11 = 28/33.
    x, z = [0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]
    ev = VOCEvaluator(1, metric=metric)
    ev.update(
        make_detections([[(x, 0.9, 0), (x, 0.8, 0), (z, 0.7, 0)]]),
        make_ground_truth([[(x, 0), (z, 0)]]),
    )
    assert ev.result()["mAP"] == pytest.approx(expected)


def test_detection_takes_its_best_box_even_if_already_matched(make_detections, make_ground_truth):
    # The devkit matches each detection to its highest-IoU box of the class and does not fall
    # back to the next one: e2 has IoU .667 with p (already taken by e1) and .538 with q, so it
    # is an FP and q stays missed. Ranked TP, FP with 2 positives -> voc12 AP = .5 * 1 = .5
    # (a "best unmatched box" rule would give 1.0).
    p, q = [0.0, 0.0, 1.0, 0.6], [0.0, 0.3, 1.0, 0.9]
    e2 = [0.0, 0.12, 1.0, 0.72]
    np.testing.assert_allclose(pairwise_iou([e2], [p, q]), [[0.48 / 0.72, 0.42 / 0.78]])
    ev = VOCEvaluator(1, metric="voc12")
    ev.update(make_detections([[(p, 0.9, 0), (e2, 0.8, 0)]]), make_ground_truth([[(p, 0), (q, 0)]]))
    assert ev.result()["mAP"] == pytest.approx(0.5)


@pytest.mark.parametrize("height, expected", [(0.5, 1.0), (0.49, 0.0)])
def test_iou_threshold_is_inclusive(height, expected, make_detections, make_ground_truth):
    # Against the unit box, a full-width box of height h has IoU exactly h (0.5 is exact in
    # binary): IoU 0.5 matches (the devkit's ov >= minoverlap), 0.49 does not.
    ev = VOCEvaluator(1, metric="voc12")
    ev.update(
        make_detections([[([0.0, 0.0, height, 1.0], 0.9, 0)]]),
        make_ground_truth([[([0.0, 0.0, 1.0, 1.0], 0)]]),
    )
    assert ev.result()["mAP"] == expected


def test_other_class_boxes_do_not_match(make_detections, make_ground_truth):
    x = [0.0, 0.0, 0.5, 0.5]
    ev = VOCEvaluator(2, metric="voc12")
    ev.update(make_detections([[(x, 0.9, 1)]]), make_ground_truth([[(x, 0)]]))
    result = ev.result()["per_class_ap"]
    assert result[0] == 0.0 and math.isnan(result[1])


def test_padded_entries_are_ignored(make_detections, make_ground_truth):
    x = [0.1, 0.1, 0.3, 0.3]
    detections = make_detections([[(x, 0.5, 0)], []], max_detections=5)
    # Garbage past num_detections, including an out-of-range class, must not be read.
    detections["detection_classes"][:, 3:] = 99
    ground_truth = make_ground_truth([[(x, 0)], []])
    ground_truth["boxes"][:, 1:] = 0.7  # junk boxes behind label -1
    ev = VOCEvaluator(1, metric="voc07")
    ev.update(detections, ground_truth)
    assert ev.result()["mAP"] == 1.0
    # Control: counting the padded slots would rank PAD_BOX first as an FP.
    detections["num_detections"][:] = 5
    detections["detection_classes"][:] = 0
    ev.reset()
    ev.update(detections, ground_truth)
    assert ev.result()["mAP"] < 1.0


def test_accepts_tensors_and_float_classes(make_detections, make_ground_truth):
    x = [0.1, 0.1, 0.3, 0.3]
    detections = {k: tf.constant(v) for k, v in make_detections([[(x, 0.5, 1)]]).items()}
    detections["detection_classes"] = tf.cast(detections["detection_classes"], tf.float32)
    ground_truth = {k: tf.constant(v) for k, v in make_ground_truth([[(x, 1)]]).items()}
    ev = make_evaluator("voc12", 2, class_names=["a", "b"])
    ev.update(detections, ground_truth)
    assert ev.result()["per_class_ap"]["b"] == 1.0


def test_iou_is_invariant_under_axis_aligned_scaling():
    rng = np.random.default_rng(0)
    ymin_xmin = rng.uniform(0, 0.5, size=(2, 6, 2))
    a, b = np.concatenate([ymin_xmin, ymin_xmin + rng.uniform(0.1, 0.5, size=(2, 6, 2))], -1)
    scale = np.array([480.0, 640.0, 480.0, 640.0])
    np.testing.assert_allclose(pairwise_iou(a, b), pairwise_iou(a * scale, b * scale), rtol=1e-12)


def test_errors_quote_bad_values(make_detections, make_ground_truth):
    with pytest.raises(ValueError, match="'voc2007'"):
        VOCEvaluator(3, metric="voc2007")
    with pytest.raises(ValueError, match="'map'"):
        make_evaluator("map", 3)
    with pytest.raises(ValueError, match="2 names"):
        VOCEvaluator(3, class_names=["a", "b"])
    ev = VOCEvaluator(2)
    x = [0.1, 0.1, 0.3, 0.3]
    with pytest.raises(ValueError, match=r"\[5\]"):
        ev.update(make_detections([[(x, 0.5, 5)]]), make_ground_truth([[(x, 0)]]))
    with pytest.raises(ValueError, match="2 images"):
        ev.update(make_detections([[(x, 0.5, 0)], []]), make_ground_truth([[(x, 0)]]))
    bad = make_detections([[(x, 0.5, 0)]])
    bad["detection_scores"] = bad["detection_scores"][:, :1]
    with pytest.raises(ValueError, match=r"\(1, 1\)"):
        ev.update(bad, make_ground_truth([[(x, 0)]]))
    with pytest.raises(ValueError, match="num_detections"):
        ev.update({k: v for k, v in bad.items() if k != "num_detections"}, make_ground_truth([[]]))


def test_format_table_aligns_names_and_marks_nan():
    table = format_table({"mAP": 0.5, "per_class_ap": {"aeroplane": 1.0, "cow": float("nan")}})
    lines = table.splitlines()
    assert lines[0].split() == ["class", "AP"]
    assert "aeroplane" in lines[2] and "1.0000" in lines[2]
    assert lines[3].split() == ["cow", "n/a"]
    assert lines[-1].split() == ["mAP", "0.5000"]
    assert len({len(line) for line in lines}) == 1  # every row the same width


def _devkit_ap(images, class_id, metric):
    """Line-by-line transcription of VOCevaldet.m + VOCap.m for one class (loops, no numpy
    tricks), on per-image (gt boxes, gt labels, difficult, det boxes, det scores, det classes)."""
    gt = {
        i: (g[l == class_id], d[l == class_id], [False] * int((l == class_id).sum()))
        for i, (g, l, d, *_) in enumerate(images)
    }
    npos = sum(int((~d).sum()) for _, d, _ in gt.values())
    dets = [
        (s, i, b)
        for i, (*_, db, ds, dc) in enumerate(images)
        for b, s, c in zip(db, ds, dc)
        if c == class_id
    ]
    dets.sort(key=lambda t: -t[0])  # Python's sort is stable, like MATLAB's
    tp, fp = [], []
    for _, i, bb in dets:
        boxes, difficult, detected = gt[i]
        ovmax, jmax = -np.inf, -1
        for j, bbgt in enumerate(boxes):
            iw = min(bb[3], bbgt[3]) - max(bb[1], bbgt[1])
            ih = min(bb[2], bbgt[2]) - max(bb[0], bbgt[0])
            if iw > 0 and ih > 0:
                ua = (
                    (bb[2] - bb[0]) * (bb[3] - bb[1])
                    + (bbgt[2] - bbgt[0]) * (bbgt[3] - bbgt[1])
                    - iw * ih
                )
                if iw * ih / ua > ovmax:
                    ovmax, jmax = iw * ih / ua, j
        if ovmax >= 0.5:
            if not difficult[jmax]:
                if not detected[jmax]:
                    tp.append(1), fp.append(0)
                    detected[jmax] = True
                else:
                    tp.append(0), fp.append(1)
            # difficult: the devkit leaves tp = fp = 0 for this detection
        else:
            tp.append(0), fp.append(1)
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec = tp / npos
    prec = tp / np.maximum(tp + fp, 1)
    if metric == "voc07":
        ap = 0.0
        for t in np.arange(11) / 10:
            p = prec[rec >= t]
            ap += (p.max() if p.size else 0.0) / 11
        return ap
    mrec, mpre = [0.0, *rec, 1.0], [0.0, *prec, 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return sum(
        (mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1]
    )


@pytest.mark.parametrize("metric", BOTH)
def test_matches_devkit_transcription_on_random_data(metric, make_detections, make_ground_truth):
    rng = np.random.default_rng(1)
    images = []
    for _ in range(40):
        m = rng.integers(0, 5)
        corner = rng.uniform(0, 0.6, (m, 2))
        g = np.concatenate([corner, corner + rng.uniform(0.1, 0.4, (m, 2))], 1)
        labels, difficult = rng.integers(0, 3, m), rng.uniform(size=m) < 0.2
        # Detections jittered around ground truths (duplicates included), mostly of the right
        # class; boxes rounded to float32 as the batch stores them.
        k = rng.integers(0, 8)
        source = rng.integers(0, m, k) if m else np.zeros(k, int)
        db = rng.uniform(0, 0.5, (k, 4)) if not m else g[source] + rng.normal(0, 0.03, (k, 4))
        db = np.clip(db, 0, 1)
        db[:, 2:] = np.maximum(db[:, 2:], db[:, :2] + 0.01)
        ds = np.round(rng.uniform(size=k), 1)  # coarse scores: many ties across images
        dc = np.where(rng.uniform(size=k) < 0.8, labels[source] if m else 0, rng.integers(0, 3, k))
        images.append(
            (
                g.astype(np.float32).astype(np.float64),
                labels,
                difficult,
                db.astype(np.float32).astype(np.float64),
                ds.astype(np.float32),
                dc,
            )
        )
    ev = VOCEvaluator(3, metric=metric)
    for start in range(0, len(images), 7):
        chunk = images[start : start + 7]
        ev.update(
            make_detections([list(zip(db, ds, dc)) for *_, db, ds, dc in chunk]),
            make_ground_truth([list(zip(g, l, d)) for g, l, d, *_ in chunk]),
        )
    result = ev.result()
    expected = [_devkit_ap(images, c, metric) for c in range(3)]
    assert [result["per_class_ap"][c] for c in range(3)] == pytest.approx(expected, abs=1e-9)
    assert result["mAP"] == pytest.approx(np.mean(expected), abs=1e-9)
    assert 0.2 < result["mAP"] < 0.95  # a non-trivial mix of TPs, FPs and misses

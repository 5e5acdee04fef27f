import math

import pytest

from keras_ssd.evaluation import COCOEvaluator, format_table

# Sizes chosen so the image (200 x 400 px, h x w) holds one small (< 32^2 px), one medium
# and one large (> 96^2 px) box: 0.1 x 0.05 -> 20 x 20 px; 0.3 x 0.15 -> 60 x 60 px;
# 0.8 x 0.4 -> 160 x 160 px.
SIZE = (200, 400)
SMALL, MEDIUM, LARGE = [0.0, 0.0, 0.1, 0.05], [0.0, 0.5, 0.3, 0.65], [0.2, 0.1, 1.0, 0.5]


def test_perfect_detector_scores_one_everywhere(make_detections, make_ground_truth):
    gts = [[(SMALL, 0), (MEDIUM, 1), (LARGE, 2)], [(LARGE, 0)]]
    dets = [[(box, 0.9, label) for box, label in image] for image in gts]
    ev = COCOEvaluator(3, class_names=["a", "b", "c"])
    ev.update(make_detections(dets), make_ground_truth(gts, sizes=[SIZE, SIZE]))
    result = ev.result()
    for key in ("mAP", "AP", "AP50", "AP75", "APs", "APm", "APl"):
        assert result[key] == pytest.approx(1.0), key
    assert result["per_class_ap"] == pytest.approx({"a": 1.0, "b": 1.0, "c": 1.0})
    assert "Average Precision" in ev.summary


def test_single_box_at_iou_072_hand_derived(make_detections, make_ground_truth):
    # One ground truth, one detection with IoU 0.72 (same width, 72 % of the height).
    # It is a TP at IoU thresholds .50, .55, .60, .65, .70 and a miss at .75 ... .95:
    # precision 1 at every recall point for 5 of the 10 thresholds, 0 for the rest.
    # AP@[.5:.95] = 5/10; AP50 = 1; AP75 = 0. The box is 200 x 400 px: large.
    ev = COCOEvaluator(1)
    ev.update(
        make_detections([[([0.0, 0.0, 0.72, 1.0], 0.9, 0)]]),
        make_ground_truth([[([0.0, 0.0, 1.0, 1.0], 0)]], sizes=[SIZE]),
    )
    result = ev.result()
    assert result["AP"] == pytest.approx(0.5)
    assert result["AP50"] == pytest.approx(1.0) and result["AP75"] == pytest.approx(0.0)
    assert math.isnan(result["APs"]) and math.isnan(result["APm"])  # no such ground truth
    assert result["APl"] == pytest.approx(0.5)


def test_half_recall_gives_51_of_101_points(make_detections, make_ground_truth):
    # Two boxes, one found exactly, one missed: precision 1 up to recall .5, nothing after.
    # COCO samples 101 recall points 0, .01, ..., 1; points 0 ... .50 (51 of them) get 1.
    ev = COCOEvaluator(1)
    ev.update(
        make_detections([[(MEDIUM, 0.9, 0)]]),
        make_ground_truth([[(MEDIUM, 0), (LARGE, 0)]], sizes=[SIZE]),
    )
    assert ev.result()["AP"] == pytest.approx(51 / 101)


def test_detection_on_crowd_region_is_not_a_false_positive(make_detections, make_ground_truth):
    person, crowd = [0.0, 0.0, 0.3, 0.2], [0.4, 0.4, 1.0, 1.0]
    inside_crowd = [0.5, 0.5, 0.7, 0.6]  # IoU with the crowd box << .5, fully inside it
    dets = make_detections([[(inside_crowd, 0.95, 0), (person, 0.9, 0)]])

    def ap(is_crowd):
        ev = COCOEvaluator(1)
        ev.update(
            dets, make_ground_truth([[(person, 0), (crowd, 0, False, is_crowd)]], sizes=[SIZE])
        )
        return ev.result()["AP"]

    assert ap(is_crowd=True) == pytest.approx(1.0)  # ignored, and the region is not a miss
    assert ap(is_crowd=False) < 0.6  # control: top-ranked FP and a missed box


def test_boxes_are_scaled_by_each_images_original_size(make_detections, make_ground_truth):
    # The same normalised 0.1 x 0.1 box is 20 x 20 px (small) in a 200 x 200 image and
    # 100 x 100 px (large) in a 1000 x 1000 one.
    box = [0.2, 0.2, 0.3, 0.3]
    results = []
    for size in [(200, 200), (1000, 1000)]:
        ev = COCOEvaluator(1)
        ev.update(make_detections([[(box, 0.9, 0)]]), make_ground_truth([[(box, 0)]], sizes=[size]))
        results.append(ev.result())
    assert results[0]["APs"] == pytest.approx(1.0) and math.isnan(results[0]["APl"])
    assert results[1]["APl"] == pytest.approx(1.0) and math.isnan(results[1]["APs"])


def test_no_detections_and_no_images(make_detections, make_ground_truth):
    ev = COCOEvaluator(2)
    assert math.isnan(ev.result()["mAP"])
    ev.update(make_detections([[]]), make_ground_truth([[(LARGE, 1)]], sizes=[SIZE]))
    result = ev.result()
    assert result["AP"] == 0.0
    assert math.isnan(result["per_class_ap"][0]) and result["per_class_ap"][1] == 0.0
    assert "n/a" in format_table(result)


def test_requires_original_size(make_detections, make_ground_truth):
    ground_truth = make_ground_truth([[(LARGE, 0)]])
    del ground_truth["original_size"]
    with pytest.raises(ValueError, match="original_size"):
        COCOEvaluator(1).update(make_detections([[]]), ground_truth)

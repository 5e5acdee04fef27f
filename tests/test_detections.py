"""The detection output contract every reader ends in (`keras_ssd.detections`)."""

import numpy as np
import pytest

from keras_ssd.detections import DETECTION_KEYS, as_detections


def _raw_tflite_like():
    """Two images, K=4, float outputs as LiteRT's op leaves them: counts 2 and 0, junk after."""
    boxes = np.array(
        [
            [[0.1, 0.2, 0.5, 0.6], [-0.05, 0.3, 0.4, 1.2], [1.0, 0.0, 1.0, 0.0], [np.nan, 7.0, -3.0, 1.0]],
            [[1.0, 0.0, 1.0, 0.0], [0.2, 0.2, 0.3, 0.3], [0.0, 0.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0]],
        ],
        np.float32,
    )
    scores = np.array([[0.9, 0.4, 1.016, np.nan], [0.7, 0.325, 0.0, 3e38]], np.float32)
    classes = np.array([[2.0, 0.0, 1.0, 1e30], [1.0, 2.0, -1.0, np.inf]], np.float32)
    return {"detection_boxes": boxes, "detection_scores": scores, "detection_classes": classes,
            "num_detections": np.array([2.0, 0.0], np.float32), "extra": np.zeros(3)}


def test_rows_past_the_count_are_zero_whatever_the_runtime_left_there():
    with np.errstate(all="raise"):  # no "invalid value in cast" from the junk either
        out = as_detections(_raw_tflite_like())
    assert tuple(out) == DETECTION_KEYS
    np.testing.assert_array_equal(out["num_detections"], [2, 0])
    np.testing.assert_array_equal(out["detection_boxes"][0, :2], np.float32([[0.1, 0.2, 0.5, 0.6], [0.0, 0.3, 0.4, 1.0]]))
    np.testing.assert_array_equal(out["detection_scores"][0, :2], np.float32([0.9, 0.4]))
    np.testing.assert_array_equal(out["detection_classes"][0, :2], [2, 0])
    assert not out["detection_boxes"][0, 2:].any() and not out["detection_boxes"][1].any()
    assert not out["detection_scores"][0, 2:].any() and not out["detection_scores"][1].any()
    assert not out["detection_classes"][0, 2:].any() and not out["detection_classes"][1].any()
    dtypes = {k: v.dtype for k, v in out.items()}
    assert dtypes == {"detection_boxes": np.float32, "detection_scores": np.float32,
                      "detection_classes": np.int32, "num_detections": np.int32}


def test_tensors_and_a_full_batch_pass_through_unchanged():
    tf = pytest.importorskip("tensorflow")
    raw = _raw_tflite_like()
    raw["num_detections"] = np.array([4, 4])
    raw["detection_boxes"] = np.full((2, 4, 4), 0.25, np.float32)
    raw["detection_scores"] = np.full((2, 4), 0.5, np.float32)
    raw["detection_classes"] = np.ones((2, 4), np.int64)
    out = as_detections({k: tf.constant(v) for k, v in raw.items()})
    for key in DETECTION_KEYS:
        np.testing.assert_array_equal(out[key], raw[key])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"num_detections": np.array([5, 0])}, r"num_detections must lie in \[0, K=4\]; got \[5, 0\]"),
        ({"num_detections": np.array([-1, 0])}, r"must lie in \[0, K=4\]"),
        ({"num_detections": np.array([np.nan, 0])}, r"must lie in \[0, K=4\]"),
        ({"num_detections": np.array([1, 0, 0])}, r"num_detections must be \[B\] with B=2; got \(3,\)"),
        ({"detection_scores": np.zeros((2, 3))}, r"must be \[B, K\] matching detection_boxes \(2, 4, 4\)"),
        ({"detection_boxes": np.zeros((2, 4))}, r"detection_boxes must be \[B, K, 4\]; got shape \(2, 4\)"),
    ],
)
def test_malformed_outputs_are_one_clear_error(change, message):
    with pytest.raises(ValueError, match=message):
        as_detections({**_raw_tflite_like(), **change})


def test_a_missing_output_is_named():
    raw = _raw_tflite_like()
    del raw["num_detections"]
    with pytest.raises(ValueError, match=r"detections lack key\(s\) \['num_detections'\]"):
        as_detections(raw)

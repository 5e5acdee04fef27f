import numpy as np
import pytest

import keras_ssd
from keras_ssd import DetectionDecoder, DefaultBoxes


def _y_pred(cfg, hits):
    """Logits strongly background everywhere except `hits`: {box index: class}."""
    n, c = cfg.num_boxes, cfg.num_classes
    y_pred = np.zeros((1, n, 4 + c + 1), np.float32)
    y_pred[0, :, 4] = 10.0
    for index, cls in hits.items():
        y_pred[0, index, 4] = 0.0
        y_pred[0, index, 5 + cls] = 10.0
    return y_pred


def _decoder(cfg, **kwargs):
    return DetectionDecoder(cfg.num_classes, DefaultBoxes.from_ssd_config(cfg), **kwargs)


@pytest.mark.numerics
def test_zero_offsets_decode_to_the_default_box_with_its_class(tiny_cfg):
    anchors = keras_ssd.default_boxes(tiny_cfg)
    index = 20 * 20 * 4 + 37 * 6  # a box of source 1, well inside the image
    out = _decoder(tiny_cfg)(_y_pred(tiny_cfg, {index: 2}))
    assert int(out["num_detections"][0]) == 1
    np.testing.assert_allclose(out["detection_boxes"][0, 0], anchors[index], atol=1e-6)
    assert int(out["detection_classes"][0, 0]) == 2
    # softmax of logit 10 against three logits 0.
    assert float(out["detection_scores"][0, 0]) == pytest.approx(np.exp(10) / (np.exp(10) + 3), rel=1e-6)
    # Padding past num_detections is zero.
    assert not np.asarray(out["detection_scores"][0, 1:]).any()


def test_nms_suppresses_overlaps_within_a_class_only(tiny_cfg):
    # Boxes 840 and 841: the first two boxes of one conv4_3 location, sides 0.06 and
    # sqrt(0.06 * 0.15), same centre: IoU 0.0036 / 0.009 = 0.4.
    hits = {840: 0, 841: 0}
    assert int(_decoder(tiny_cfg, iou_threshold=0.35)(_y_pred(tiny_cfg, hits))["num_detections"][0]) == 1
    assert int(_decoder(tiny_cfg, iou_threshold=0.45)(_y_pred(tiny_cfg, hits))["num_detections"][0]) == 2
    out = _decoder(tiny_cfg, iou_threshold=0.35)(_y_pred(tiny_cfg, {840: 0, 841: 1}))
    assert int(out["num_detections"][0]) == 2
    assert sorted(np.asarray(out["detection_classes"][0, :2])) == [0, 1]


def test_thresholds_and_sizes_are_configurable(tiny_cfg):
    y_pred = _y_pred(tiny_cfg, {})
    strict = _decoder(tiny_cfg, score_threshold=0.5)(y_pred)
    assert int(strict["num_detections"][0]) == 0
    small = _decoder(tiny_cfg, max_detections=7)(np.random.default_rng(0).normal(size=y_pred.shape))
    assert tuple(small["detection_boxes"].shape) == (1, 7, 4)
    assert int(small["num_detections"][0]) == 7


def test_build_detector_outputs_and_overrides(tiny_cfg):
    model = keras_ssd.build_ssd(tiny_cfg)
    detector = keras_ssd.build_detector(model, max_detections=50)
    images = np.random.default_rng(0).integers(0, 256, (2, 160, 160, 3)).astype(np.float32)
    out = detector(images)
    assert set(out) == {"detection_boxes", "detection_scores", "detection_classes", "num_detections"}
    assert tuple(out["detection_boxes"].shape) == (2, 50, 4)
    assert out["detection_classes"].dtype == "int32"
    boxes = np.asarray(out["detection_boxes"])
    assert boxes.min() >= 0.0 and boxes.max() <= 1.0
    assert np.asarray(out["detection_classes"]).max() < 3
    with pytest.raises(ValueError, match="nms_iou"):
        keras_ssd.build_detector(model, nms_iou=0.5)


def test_load_detector_on_a_keras_file_runs_compiled_once_per_batch_size(tiny_cfg, tmp_path):
    import tensorflow as tf

    from keras_ssd import export
    from keras_ssd.detections import as_detections

    path = str(tmp_path / "tiny.keras")
    keras_ssd.build_ssd(tiny_cfg).save(path)
    detector = export.load_detector(path, precision="float32")
    images = np.random.default_rng(0).integers(0, 256, (3, tiny_cfg.image_size, tiny_cfg.image_size, 3), np.uint8)
    single = [detector(images[i : i + 1]) for i in range(2)]
    batch = detector(images)
    assert detector._detect.experimental_get_tracing_count() == 2  # batch 1 and batch 3
    eager = as_detections(detector.detector(tf.constant(images, tf.float32), training=False))
    for key, value in eager.items():
        np.testing.assert_allclose(batch[key], value, atol=1e-5, err_msg=key)
        np.testing.assert_allclose(single[1][key][0], value[1], atol=1e-5, err_msg=key)

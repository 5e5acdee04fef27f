"""Paper-size export: `ssd300_vgg16` (random weights) to SavedModel and TFLite float32."""

import numpy as np
import pytest
import tensorflow as tf

import keras_ssd
from keras_ssd import export


@pytest.mark.full_size
def test_ssd300_exports_to_saved_model_and_tflite(tmp_path):
    cfg = keras_ssd.SSDConfig.from_preset("ssd300_vgg16", num_classes=20, max_detections=100)
    model = keras_ssd.build_ssd(cfg)
    image = np.random.default_rng(0).integers(0, 256, (1, 375, 500, 3)).astype(np.uint8)

    path = export.export_saved_model(model, tmp_path / "serving")
    out = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(image))
    assert tuple(out["detection_boxes"].shape) == (1, 100, 4)
    assert np.isfinite(out["detection_scores"].numpy()).all()

    tflite = export.export_tflite(model, str(tmp_path / "ssd300.tflite"))
    detected = export.TFLiteDetector(tflite)(image)
    assert detected["detection_boxes"].shape == (1, 100, 4)
    assert detected["detection_classes"].max() < 20
    assert np.isfinite(detected["detection_scores"]).all()

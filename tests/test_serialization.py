"""`.keras` round trips of the training model and the detector, no custom_objects."""

import keras
import numpy as np

import keras_ssd


def test_training_model_round_trip(tiny_cfg, tmp_path):
    model = keras_ssd.build_ssd(tiny_cfg, class_names=["circle", "square", "triangle"])
    model.compile(optimizer="sgd", loss=keras_ssd.SSDLoss(neg_pos_ratio=2.0))
    norm = model.get_layer("conv4_3_norm")
    norm.scale.assign(np.linspace(1, 30, norm.scale.shape[0]))
    path = tmp_path / "ssd.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, keras_ssd.SSD)
    assert loaded.ssd_config == tiny_cfg
    assert loaded.class_names == ["circle", "square", "triangle"]
    assert isinstance(loaded.loss, keras_ssd.SSDLoss) and loaded.loss.neg_pos_ratio == 2.0
    images = np.random.default_rng(1).integers(0, 256, (2, 160, 160, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(images, verbose=0), loaded.predict(images, verbose=0))


def test_detector_round_trip(tiny_cfg, tmp_path):
    model = keras_ssd.build_ssd(tiny_cfg)
    detector = keras_ssd.build_detector(model, score_threshold=0.2, max_detections=20)
    path = tmp_path / "detector.keras"
    detector.save(path)
    loaded = keras.models.load_model(path)
    decoder = loaded.get_layer("detection_decoder")
    assert (decoder.score_threshold, decoder.max_detections) == (0.2, 20)
    images = np.random.default_rng(2).integers(0, 256, (2, 160, 160, 3)).astype(np.float32)
    expected, actual = detector(images), loaded(images)
    for key in expected:
        np.testing.assert_array_equal(np.asarray(expected[key]), np.asarray(actual[key]))
    assert int(np.asarray(actual["num_detections"]).sum()) > 0

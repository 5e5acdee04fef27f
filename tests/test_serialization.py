"""`.keras` round trips of the training model and the detector, no custom_objects."""

import numpy as np
from round_trips import check_config_round_trip, check_keras_file_round_trip

import keras_ssd


def test_training_model_round_trip(tiny_cfg, tmp_path):
    model = keras_ssd.build_ssd(tiny_cfg, class_names=["circle", "square", "triangle"])
    model.compile(optimizer="sgd", loss=keras_ssd.SSDLoss(neg_pos_ratio=2.0))
    norm = model.get_layer("conv4_3_norm")
    norm.scale.assign(np.linspace(1, 30, norm.scale.shape[0]))
    images = np.random.default_rng(1).integers(0, 256, (2, 160, 160, 3)).astype(np.float32)
    loaded = check_keras_file_round_trip(model, images, tmp_path / "ssd.keras")
    assert loaded.ssd_config == tiny_cfg
    assert loaded.class_names == ["circle", "square", "triangle"]
    assert isinstance(loaded.loss, keras_ssd.SSDLoss) and loaded.loss.neg_pos_ratio == 2.0


def test_detector_round_trip(tiny_cfg, tmp_path):
    model = keras_ssd.build_ssd(tiny_cfg)
    detector = keras_ssd.build_detector(model, score_threshold=0.2, max_detections=20)
    images = np.random.default_rng(2).integers(0, 256, (2, 160, 160, 3)).astype(np.float32)
    loaded = check_keras_file_round_trip(detector, images, tmp_path / "detector.keras")
    decoder = loaded.get_layer("detection_decoder")
    assert (decoder.score_threshold, decoder.max_detections) == (0.2, 20)
    assert int(np.asarray(loaded(images)["num_detections"]).sum()) > 0


def test_decoder_layer_config_round_trip(tiny_cfg):
    decoder = keras_ssd.build_detector(keras_ssd.build_ssd(tiny_cfg), score_threshold=0.05).get_layer(
        "detection_decoder"
    )
    y_pred = np.random.default_rng(3).normal(size=(2, tiny_cfg.num_boxes, 4 + 3 + 1)).astype(np.float32)
    check_config_round_trip(decoder, y_pred)

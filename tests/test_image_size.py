"""`SSDConfig.with_image_size`: a preset at another input side, boxes scaled with it."""

import numpy as np
import pytest

import keras_ssd
from keras_ssd import SSDConfig


def test_ssdlite_at_160_px_by_hand():
    # MobileNetV2 halves with ceil: 160 -> 80, 40, 20, 10 (stride 16), 5 (stride 32);
    # extras (H + 2 - 3) // 2 + 1: 5 -> 3 -> 2 -> 1 -> 1.
    cfg = SSDConfig.from_preset("ssdlite320_mobilenetv2", image_size=160)
    assert cfg.feature_map_sizes == (10, 5, 3, 2, 1, 1)
    assert cfg.num_boxes == 6 * (100 + 25 + 9 + 4 + 1 + 1) == 840
    np.testing.assert_allclose(cfg.steps, (16, 32, 160 / 3, 80, 160, 160))
    # Scales keep their fraction of the side: 0.1 .. 0.95 of 160 px.
    np.testing.assert_allclose(cfg.min_sizes, (16, 32, 56, 80, 104, 128))
    np.testing.assert_allclose(cfg.max_sizes, (32, 56, 80, 104, 128, 152))
    assert cfg.aspect_ratios == SSDConfig.from_preset("ssdlite320_mobilenetv2").aspect_ratios


def test_ssd_tiny_at_192_px_by_hand():
    # pool1, pool2 floor, pool3 ceil: 192 -> 96 -> 48 -> 24 (conv4_3); pool4 floor: 12 (fc7);
    # extras: (12 + 2 - 3) // 2 + 1 = 6, then 3, then (3 - 3) // 1 + 1 = 1.
    cfg = SSDConfig.from_preset("ssd_tiny", image_size=192)
    assert cfg.feature_map_sizes == (24, 12, 6, 3, 1)
    assert cfg.num_boxes == 24 * 24 * 4 + 144 * 6 + 36 * 6 + 9 * 4 + 4 == 3424
    tiny = SSDConfig.from_preset("ssd_tiny")
    np.testing.assert_allclose(cfg.min_sizes, np.round(np.array(tiny.min_sizes) * 1.2, 2))
    np.testing.assert_allclose(cfg.steps, (8, 16, 32, 64, 192))


def test_the_preset_size_changes_nothing():
    ssd300 = SSDConfig.from_preset("ssd300_vgg16")
    assert SSDConfig.from_preset("ssd300_vgg16", image_size=300) == ssd300
    assert ssd300.with_image_size(300) is ssd300
    assert ssd300.steps == (8, 16, 32, 64, 100, 300)  # Caffe's steps stay


@pytest.mark.parametrize(
    "preset, sizes",
    [("ssd_tiny", (144, 161, 224)), ("ssd300_vgg16", (321,)), ("ssdlite320_mobilenetv2", (160, 255))],
)
def test_source_map_sizes_are_those_of_the_built_network(preset, sizes):
    for size in sizes:
        cfg = SSDConfig.from_preset(preset, num_classes=3, image_size=size)
        model = keras_ssd.build_ssd(cfg)  # raises if the maps differ from the config
        assert model.output_shape == (None, cfg.num_boxes, 4 + 3 + 1)
        assert keras_ssd.default_boxes(cfg).shape == (cfg.num_boxes, 4)


def test_weights_fit_every_size():
    small = keras_ssd.build_ssd(SSDConfig.from_preset("ssd_tiny", num_classes=3, image_size=192))
    large = keras_ssd.build_ssd(SSDConfig.from_preset("ssd_tiny", num_classes=3))
    large.set_weights(small.get_weights())
    image = np.random.default_rng(0).uniform(0, 255, (1, 160, 160, 3)).astype("float32")
    assert np.isfinite(large.predict(image, verbose=0)).all()


def test_explicit_box_fields_beside_image_size_win():
    cfg = SSDConfig.from_preset("ssd_tiny", image_size=192, min_sizes=(10, 30, 60, 90, 120))
    assert cfg.min_sizes == (10, 30, 60, 90, 120)
    assert cfg.feature_map_sizes == (24, 12, 6, 3, 1)


@pytest.mark.parametrize(
    "preset, size, message",
    [
        ("ssd_tiny", 128, r"ssd_tiny at image_size=128 would give source maps \(16, 8, 4, 2, 0\)"),
        ("ssd300_vgg16", 257, "image_size=257"),
        ("ssdlite320_mobilenetv2", 16, "at least 32 px, got 16"),
        ("ssdlite320_mobilenetv2", 160.0, "int of at least 32 px, got 160.0"),
        ("ssd_tiny", 160.0, "int of at least 32 px, got 160.0"),  # even at the preset's size
    ],
)
def test_too_small_sizes_are_clear_errors(preset, size, message):
    with pytest.raises(ValueError, match=message):
        SSDConfig.from_preset(preset, image_size=size)

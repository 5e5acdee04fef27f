import dataclasses
import json

import pytest

from keras_ssd import SSDConfig


@pytest.mark.parametrize(
    "preset, maps, boxes_per_location, num_boxes",
    [
        ("ssd300_vgg16", (38, 19, 10, 5, 3, 1), (4, 6, 6, 6, 4, 4), 8732),
        ("ssd512_vgg16", (64, 32, 16, 8, 4, 2, 1), (4, 6, 6, 6, 6, 4, 4), 24564),
        ("ssd_tiny", (20, 10, 5, 3, 1), (4, 6, 6, 4, 4), 2390),
    ],
)
def test_presets_match_paper_tables(preset, maps, boxes_per_location, num_boxes):
    cfg = SSDConfig.from_preset(preset)
    assert cfg.feature_map_sizes == maps
    assert cfg.boxes_per_location == boxes_per_location
    assert cfg.num_boxes == num_boxes


def test_ssd300_sizes_are_the_caffe_ones():
    cfg = SSDConfig.from_preset("ssd300_vgg16")
    assert cfg.steps == (8, 16, 32, 64, 100, 300)
    assert cfg.min_sizes == (30, 60, 111, 162, 213, 264)
    assert cfg.max_sizes == (60, 111, 162, 213, 264, 315)


def test_overrides_apply_and_config_is_frozen():
    cfg = SSDConfig.from_preset("ssd300_vgg16", num_classes=80)
    assert cfg.num_classes == 80
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.num_classes = 3


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(ValueError, match="ssd300_vgg16.*ssd512_vgg16.*ssd_tiny"):
        SSDConfig.from_preset("ssd301")


def test_unknown_override_lists_valid_fields():
    with pytest.raises(ValueError, match=r"\['num_clases'\].*num_classes"):
        SSDConfig.from_preset("ssd_tiny", num_clases=3)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"steps": (8, 16)}, "steps has 2 entries"),
        ({"aspect_ratios": ((1,),) * 6}, "not 1"),
        ({"variances": (0.1, 0.1, 0.2)}, "variances"),
    ],
)
def test_bad_values_are_rejected_with_the_value(override, message):
    with pytest.raises(ValueError, match=message):
        SSDConfig.from_preset("ssd300_vgg16", **override)


def test_dict_round_trip_through_json():
    cfg = SSDConfig.from_preset("ssd512_vgg16", num_classes=7)
    assert SSDConfig(**json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize(
    "override, message",
    [
        ({"clip_boxes": "centre"}, "clip_boxes must be one of .*'centre'"),
        ({"pixel_mean_bgr": (1.0, 2.0)}, r"pixel_mean_bgr must be 3 numbers .*\(1.0, 2.0\)"),
    ],
)
def test_bad_clip_mode_and_mean_are_rejected(override, message):
    with pytest.raises(ValueError, match=message):
        SSDConfig.from_preset("ssd300_vgg16", **override)


def test_pixel_mean_defaults_to_vgg_and_round_trips():
    from keras_ssd.layers.preprocessing import VGG_BGR_MEAN

    assert SSDConfig().pixel_mean_bgr == VGG_BGR_MEAN
    cfg = SSDConfig.from_preset("ssd_tiny", clip_boxes="center", pixel_mean_bgr=[104, 117, 123])
    assert cfg.pixel_mean_bgr == (104, 117, 123)
    assert SSDConfig(**json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_config_dict_without_the_new_fields_still_loads():
    # Models saved before clip modes and pixel_mean_bgr existed.
    old = SSDConfig.from_preset("ssd_tiny").to_dict()
    del old["pixel_mean_bgr"]
    assert SSDConfig(**old).pixel_mean_bgr == (103.939, 116.779, 123.68)


def test_batch_norm_momentum_reaches_every_vgg_and_extra_batch_norm():
    import keras

    import keras_ssd

    cfg = keras_ssd.SSDConfig.from_preset("ssd_tiny", num_classes=3)
    assert cfg.batch_norm_momentum == 0.9
    model = keras_ssd.build_ssd(cfg)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    # One per conv: 7 in the base, fc6, fc7 and 2 in each of the 3 extra blocks.
    assert len(norms) == 7 + 2 + 6
    assert {(n.momentum, n.synchronized) for n in norms} == {(0.9, True)}
    restored = keras_ssd.SSDConfig(**{k: v for k, v in cfg.to_dict().items() if k != "batch_norm_momentum"})
    assert restored.batch_norm_momentum == 0.99  # files saved before the field load as before

import math

import numpy as np
import pytest
from round_trips import check_config_round_trip

import keras_ssd
from keras_ssd import DefaultBoxes, SSDConfig


def _box(cy, cx, h, w):
    return [cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2]


@pytest.mark.parametrize("preset, count", [("ssd300_vgg16", 8732), ("ssd512_vgg16", 24564)])
def test_count(preset, count):
    boxes = keras_ssd.default_boxes(SSDConfig.from_preset(preset))
    assert boxes.shape == (count, 4) and boxes.dtype == np.float32


def test_ssd300_hand_computed_boxes():
    boxes = keras_ssd.default_boxes(SSDConfig.from_preset("ssd300_vgg16"))
    # Source 0 (38x38, step 8), location (0, 0): centre 0.5 * 8 / 300.
    c = 4 / 300
    s, s2 = 0.1, math.sqrt(0.1 * 0.2)
    np.testing.assert_allclose(boxes[0], _box(c, c, s, s), atol=1e-6)
    np.testing.assert_allclose(boxes[1], _box(c, c, s2, s2), atol=1e-6)
    np.testing.assert_allclose(boxes[2], _box(c, c, s / math.sqrt(2), s * math.sqrt(2)), atol=1e-6)
    np.testing.assert_allclose(boxes[3], _box(c, c, s * math.sqrt(2), s / math.sqrt(2)), atol=1e-6)
    # Source 1 (19x19, step 16, 6 boxes), row 2 column 5, ratio-3 wide box (index 4).
    index = 38 * 38 * 4 + (2 * 19 + 5) * 6 + 4
    cy, cx, s = 2.5 * 16 / 300, 5.5 * 16 / 300, 0.2
    np.testing.assert_allclose(boxes[index], _box(cy, cx, s / math.sqrt(3), s * math.sqrt(3)), atol=1e-6)
    # Source 3 (5x5, step 64), location (4, 4), second box: sqrt(162 * 213) / 300.
    index = 38 * 38 * 4 + 19 * 19 * 6 + 10 * 10 * 6 + 24 * 6 + 1
    c, s2 = 4.5 * 64 / 300, math.sqrt(162 * 213) / 300
    np.testing.assert_allclose(boxes[index], _box(c, c, s2, s2), atol=1e-6)
    # Last box: 1x1 source, step 300, tall ratio-2 box of s = 0.88, not clipped.
    np.testing.assert_allclose(
        boxes[-1], [0.5 - 0.622254, 0.5 - 0.311127, 0.5 + 0.622254, 0.5 + 0.311127], atol=1e-6
    )


def test_ssd512_hand_computed_boxes():
    boxes = keras_ssd.default_boxes(SSDConfig.from_preset("ssd512_vgg16"))
    # Source 0 (64x64, step 8), last location (63, 63), first box s = 35.84 / 512 = 0.07.
    c = 63.5 * 8 / 512
    np.testing.assert_allclose(boxes[64 * 64 * 4 - 4], _box(c, c, 0.07, 0.07), atol=1e-6)
    # Source 6 (1x1, step 512), second box sqrt(0.9 * 1.05).
    s2 = math.sqrt(0.9 * 1.05)
    np.testing.assert_allclose(boxes[-3], _box(0.5, 0.5, s2, s2), atol=1e-6)
    # Source 4 (4x4, step 128, 6 boxes), location (1, 2), ratio-3 tall box (index 5).
    first = 64 * 64 * 4 + 32 * 32 * 6 + 16 * 16 * 6 + 8 * 8 * 6
    index = first + (1 * 4 + 2) * 6 + 5
    s = 307.2 / 512
    np.testing.assert_allclose(
        boxes[index], _box(1.5 * 128 / 512, 2.5 * 128 / 512, s * math.sqrt(3), s / math.sqrt(3)), atol=1e-6
    )


def test_clip_option_clips_to_unit_square():
    cfg = SSDConfig.from_preset("ssd300_vgg16", clip_boxes=True)
    boxes = keras_ssd.default_boxes(cfg)
    assert boxes.min() == 0.0 and boxes.max() == 1.0
    np.testing.assert_allclose(boxes[-1], [0.0, 0.188873, 1.0, 0.811127], atol=1e-6)


def test_clip_true_and_corners_are_the_same():
    corners = keras_ssd.default_boxes(SSDConfig.from_preset("ssd300_vgg16", clip_boxes="corners"))
    legacy = keras_ssd.default_boxes(SSDConfig.from_preset("ssd300_vgg16", clip_boxes=True))
    np.testing.assert_array_equal(corners, legacy)


def test_center_clip_clamps_height_and_width_not_corners():
    cfg = SSDConfig.from_preset("ssd300_vgg16", clip_boxes="center")
    boxes = keras_ssd.default_boxes(cfg)
    unclipped = keras_ssd.default_boxes(SSDConfig.from_preset("ssd300_vgg16"))
    # First box (38x38 source, location (0, 0), s = 0.1): fits in the unit size,
    # so it is unchanged and still reaches past the top-left corner.
    np.testing.assert_array_equal(boxes[0], unclipped[0])
    assert boxes[0, 0] < 0
    # Last source (1x1, centre 0.5): the ratio-2 boxes' long side 0.88 sqrt 2 > 1
    # becomes 1, the short side is kept.
    np.testing.assert_allclose(boxes[-2], [0.188873, 0.0, 0.811127, 1.0], atol=1e-6)
    np.testing.assert_allclose(boxes[-1], [0.0, 0.188873, 1.0, 0.811127], atol=1e-6)
    # Source 4 (3x3, step 100), location (0, 0), box s' = sqrt(213 * 264) / 300 < 1,
    # centre 1/6: corners clipping would cut it at 0, centre clamping does not.
    index = 38 * 38 * 4 + 19 * 19 * 6 + 10 * 10 * 6 + 5 * 5 * 6 + 1
    s2 = math.sqrt(213 * 264) / 300
    np.testing.assert_allclose(boxes[index], _box(1 / 6, 1 / 6, s2, s2), atol=1e-6)
    assert boxes[index, 0] < 0
    # Source 4's ratio-2 wide box: w = 213 / 300 * sqrt 2 > 1 -> w = 1, centred at x = 1/6.
    s = 213 / 300
    np.testing.assert_allclose(
        boxes[index + 1], _box(1 / 6, 1 / 6, s / math.sqrt(2), 1.0), atol=1e-6
    )


def test_bad_clip_mode_is_rejected():
    with pytest.raises(ValueError, match="clip must be one of .*'centre'"):
        DefaultBoxes(300, (1,), (300,), (30,), (60,), ((2,),), clip="centre")


@pytest.mark.parametrize("clip", [False, True, "corners", "center"])
def test_clip_mode_round_trips(clip):
    layer = DefaultBoxes(300, (3,), (100,), (213,), (264,), ((2,),), clip=clip)
    clone = check_config_round_trip(layer, np.zeros((1, 3, 3, 1), np.float32))
    assert clone.clip == clip
    np.testing.assert_array_equal(clone.boxes(), layer.boxes())


def test_layer_call_tiles_boxes_and_config_round_trips(tiny_cfg):
    layer = DefaultBoxes.from_ssd_config(tiny_cfg)
    out = layer(np.zeros((3, 8, 8, 1), np.float32))
    assert tuple(out.shape) == (3, 2390, 4)
    np.testing.assert_array_equal(np.asarray(out[2]), keras_ssd.default_boxes(tiny_cfg))
    clone = check_config_round_trip(layer, np.zeros((2, 8, 8, 1), np.float32))
    np.testing.assert_array_equal(clone.boxes(), layer.boxes())

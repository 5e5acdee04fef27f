"""Default boxes fitted to the objects: the fit, its measure, the stride-4 source."""

import time

import numpy as np
import pytest

import keras_ssd
from keras_ssd import recipes
from keras_ssd.default_box_fit import _GridScorer, layout
from keras_ssd.evaluation.coverage import dataset_boxes, default_box_coverage


def _tiny(**overrides):
    return keras_ssd.SSDConfig.from_preset("ssd_tiny", num_classes=3, **overrides)


def _elongated_boxes(count, seed=0):
    """`count` objects of aspect 1:4 or 4:1 (half each), long side 40-140 px at 160 px, anywhere."""
    rng = np.random.default_rng(seed)
    long_side = rng.uniform(40, 140, count) / 160
    short_side = long_side / 4
    tall = rng.random(count) < 0.5
    h = np.where(tall, long_side, short_side)
    w = np.where(tall, short_side, long_side)
    cy = rng.uniform(h / 2, 1 - h / 2)
    cx = rng.uniform(w / 2, 1 - w / 2)
    return np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=1)


def _random_boxes(count, seed=0):
    rng = np.random.default_rng(seed)
    corners = rng.random((count, 2, 2))
    low, high = corners.min(axis=1), corners.max(axis=1)
    return np.stack([low[:, 0], low[:, 1], high[:, 0], high[:, 1]], axis=1)


@pytest.mark.parametrize("preset", ["ssd_tiny", "ssd300_vgg16", "ssdlite320_mobilenetv2"])
@pytest.mark.parametrize("clip", [False, "center"])
def test_nearest_centre_search_measure_equals_iou_with_every_default_box(preset, clip):
    # The search scores each source at the grid centre nearest the object; for
    # unclipped and centre-clipped boxes that is the best IoU over all N boxes.
    cfg = keras_ssd.SSDConfig.from_preset(preset, clip_boxes=clip)
    boxes = np.concatenate([_random_boxes(300), _elongated_boxes(100)])
    fast = _GridScorer(boxes, cfg).best()
    # float32 default boxes on one side, float64 on the other
    np.testing.assert_allclose(fast, default_box_coverage(boxes, cfg).best_iou, atol=1e-5)


def test_elongated_objects_are_covered_after_the_fit():
    boxes = _elongated_boxes(3000)
    cfg = _tiny()
    start = time.time()
    fit = keras_ssd.fit_default_boxes(boxes, cfg, stride4=False)
    print(f"fit of {len(boxes)} boxes in {time.time() - start:.1f} s")
    assert fit.preset.matched_share < 0.5 and fit.fitted.matched_share >= 0.9, fit.describe()
    assert fit.chosen is fit.fitted and fit.config.stride4_source is False
    # Measured again with every default box, on other objects of the same kind.
    held_out = _elongated_boxes(1000, seed=1)
    assert default_box_coverage(held_out, fit.config).share_unmatchable <= 0.10, fit.describe()
    assert default_box_coverage(held_out, cfg).share_unmatchable > 0.5
    # The heads keep their boxes per location; the ratios moved towards 4.
    assert fit.config.boxes_per_location == cfg.boxes_per_location
    assert max(max(r) for r in fit.config.aspect_ratios) >= 3, layout(fit.config)


def test_shapes_validation_objects_after_a_fit_to_the_augmented_training_objects():
    # The built-in data: the preset leaves about a third of the validation objects
    # without a default box at IoU >= 0.5; fitted to the training objects as the
    # recipe's augmentation shows them, with the stride-4 source the fit chooses.
    cfg = _tiny()
    train = keras_ssd.data.load("shapes", split="train", num_examples=1000)
    boxes = keras_ssd.training_boxes(train, cfg, recipes.TINY.augment)
    fit = keras_ssd.fit_default_boxes(boxes, cfg)
    print(fit.describe())
    validation = dataset_boxes(keras_ssd.data.load("shapes", split="validation"))
    preset = default_box_coverage(validation, cfg)
    fitted = default_box_coverage(validation, fit.config)
    assert preset.share_unmatchable > 0.3
    assert fit.chosen is fit.stride4 and fit.config.stride4_source
    assert fitted.share_unmatchable <= 0.15, fit.describe()
    assert fitted.mean_best_iou > preset.mean_best_iou and fitted.mean_positives > preset.mean_positives
    # The printed trade-off: boxes and compute of each layout.
    assert (fit.preset.config.num_boxes, fit.stride4.config.num_boxes) == (2390, 8790)
    assert fit.preset.gmacs < fit.stride4.gmacs < 1.25 * fit.preset.gmacs
    assert f"fitted: {fit.chosen.matched_share:.1%}" in fit.summary() and "a stride-4 source added" in fit.summary()


def test_ratio_counts_change_the_boxes_per_location_when_asked():
    boxes = _elongated_boxes(2000)
    cfg = _tiny()
    kept = keras_ssd.fit_default_boxes(boxes, cfg, stride4=False)
    more = keras_ssd.fit_default_boxes(boxes, cfg, stride4=False, ratio_counts=(3, 3, 3, 3, 3))
    assert more.config.boxes_per_location == (8, 8, 8, 8, 8) and more.preset.config == cfg
    assert more.fitted.matched_share >= kept.fitted.matched_share
    with pytest.raises(ValueError, match="ratio_counts"):
        keras_ssd.fit_default_boxes(boxes, cfg, ratio_counts=(1, 2))


def test_the_fit_is_repeatable_for_a_seed_and_samples_large_sets():
    boxes = np.concatenate([_random_boxes(6000, seed=3) * 0.3, _elongated_boxes(6000, seed=4)])
    first = keras_ssd.fit_default_boxes(boxes, _tiny(), seed=5, max_objects=10000)
    again = keras_ssd.fit_default_boxes(boxes, _tiny(), seed=5, max_objects=10000)
    assert first.config == again.config and first.num_objects == 10000
    print(f"fit of 10000 of {len(boxes)} boxes in {first.seconds:.1f} s")


def test_the_preset_is_kept_when_no_fit_is_better():
    # Objects that are the preset's own default boxes: every one is matched at IoU 1.
    cfg = _tiny()
    boxes = keras_ssd.default_boxes(cfg)[::7].astype(np.float64)
    fit = keras_ssd.fit_default_boxes(boxes, cfg)
    assert fit.chosen is fit.preset and fit.config == cfg
    assert fit.preset.matched_share == 1.0 and "kept" in fit.summary()
    assert fit.to_dict()["chosen"] == "preset"


def test_fit_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"\[M, 4\]"):
        keras_ssd.fit_default_boxes(np.zeros((0, 4)), _tiny())
    with pytest.raises(ValueError, match="stride4"):
        keras_ssd.fit_default_boxes(_random_boxes(10), _tiny(), stride4="yes")
    with pytest.raises(ValueError, match="vgg16"):
        keras_ssd.fit_default_boxes(_random_boxes(10), keras_ssd.SSDConfig.from_preset("ssdlite320_mobilenetv2"),
                                    stride4=True)


def test_training_boxes_are_the_pipelines_boxes():
    # augment=False: the boxes as annotated; with augmentation, the boxes the
    # training pipeline's augment step gives for the same seeds.
    examples = keras_ssd.data.load("shapes", split="train", num_examples=20)
    annotated = dataset_boxes(examples)
    np.testing.assert_array_equal(keras_ssd.training_boxes(examples, _tiny(), False), annotated)
    augmented = keras_ssd.training_boxes(examples, _tiny(), recipes.TINY.augment, seed=1)
    again = keras_ssd.training_boxes(examples, _tiny(), recipes.TINY.augment, seed=1)
    np.testing.assert_array_equal(augmented, again)
    assert augmented.shape[1] == 4 and 0 < len(augmented) <= len(annotated)
    assert np.all((augmented >= 0) & (augmented <= 1))
    # Zoom-out up to 2x shrinks objects: the median side falls.
    sides = lambda b: np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))  # noqa: E731
    assert np.median(sides(augmented)) < np.median(sides(annotated))


@pytest.mark.parametrize("preset, sides, boxes", [
    ("ssd_tiny", (40, 20, 10, 5, 3, 1), 8790),
    ("ssd300_vgg16", (75, 38, 19, 10, 5, 3, 1), 8732 + 75 * 75 * 4),
    ("ssd512_vgg16", (128, 64, 32, 16, 8, 4, 2, 1), 24564 + 128 * 128 * 4),
])
def test_stride4_source_is_conv3_3_at_a_quarter_of_the_input(preset, sides, boxes):
    cfg = keras_ssd.SSDConfig.from_preset(preset)
    fine = cfg.with_stride4_source()
    assert fine.feature_map_sizes == sides and fine.num_boxes == boxes
    assert fine.steps[0] == cfg.image_size / sides[0] and fine.steps[1:] == cfg.steps
    assert (fine.min_sizes[0], fine.max_sizes[0]) == (round(cfg.min_sizes[0] / 2, 2), cfg.min_sizes[0])
    assert fine.boxes_per_location[0] == 4 and fine.with_preset_boxes() == cfg
    with pytest.raises(ValueError, match="already"):
        fine.with_stride4_source()


def test_stride4_network_adds_an_l2_normalised_block3_source_and_its_predictors():
    cfg = _tiny()
    fine = cfg.with_stride4_source()
    model = keras_ssd.build_ssd(fine)
    plain = keras_ssd.build_ssd(cfg)
    assert model.output_shape == (None, 8790, 8)
    norm = model.get_layer("conv3_3_norm")
    assert norm.input.shape[1:] == (40, 40, 64)  # ssd_tiny's block3_conv1
    assert model.get_layer("loc_0").output.shape[1:] == (40, 40, 16)
    added = {layer.name for layer in model.layers} - {layer.name for layer in plain.layers}
    assert added == {"conv3_3_norm", "loc_5", "conf_5", "loc_5_flat", "conf_5_flat"}
    # Off, nothing changes: the preset network is the one without the option.
    assert "conv3_3_norm" not in {layer.name for layer in plain.layers}
    assert cfg.num_boxes == 2390


def test_stride4_source_needs_vgg():
    with pytest.raises(ValueError, match="vgg16"):
        keras_ssd.SSDConfig.from_preset("ssdlite320_mobilenetv2").with_stride4_source()

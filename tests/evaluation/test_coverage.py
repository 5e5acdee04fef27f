"""Default-box coverage: objects no default box can match, by size and source map."""

import numpy as np
import pytest

import keras_ssd
from keras_ssd.evaluation.coverage import (
    dataset_boxes,
    default_box_coverage,
    source_of_boxes,
)


def test_objects_smaller_than_the_smallest_default_box_are_unmatchable(tiny_cfg):
    # ssd_tiny's smallest default box is 9.6 px of 160 (0.06); these objects are 3.2 px (0.02),
    # so their best IoU is at most (0.02 / 0.06) ** 2 = 0.11.
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 0.95, (50, 2))
    tiny = np.concatenate([corners, corners + 0.02], axis=1)
    coverage = default_box_coverage(tiny, tiny_cfg)
    assert coverage.share_unmatchable == 1.0
    assert coverage.best_iou.max() < 0.12
    assert (coverage.source == 0).all()  # the finest map comes closest
    bins = coverage.by_size()
    assert (bins[0].low, bins[0].high, bins[0].count, bins[0].unmatchable) == (0.0, 9.6, 50, 50)
    assert sum(b.count for b in bins[1:]) == 0


def test_a_default_box_is_covered_by_itself_on_its_own_source_map(tiny_cfg):
    anchors = keras_ssd.default_boxes(tiny_cfg)
    sources = source_of_boxes(tiny_cfg)
    assert sources.shape == (tiny_cfg.num_boxes,) and sources[-1] == len(tiny_cfg.feature_map_sizes) - 1
    # The second box at the first location of each source: side sqrt(min_size * max_size).
    second_of_each = np.searchsorted(sources, np.arange(len(tiny_cfg.feature_map_sizes))) + 1
    coverage = default_box_coverage(anchors[second_of_each], tiny_cfg)
    assert coverage.best_iou == pytest.approx(1.0)
    assert coverage.source.tolist() == list(range(len(tiny_cfg.feature_map_sizes)))
    assert coverage.share_unmatchable == 0.0
    assert coverage.sizes == pytest.approx(np.sqrt(np.multiply(tiny_cfg.min_sizes, tiny_cfg.max_sizes)))
    assert [b.count for b in coverage.by_size()] == [0, 1, 1, 1, 1, 1]  # between min_sizes k and k + 1


def test_shapes_objects_are_covered_except_the_smallest(tiny_cfg):
    # Measured on the shapes validation split (474 objects, 3-80% of the image side,
    # log-uniform) with ssd_tiny: 34% of the objects have no default box at IoU >= 0.5:
    # 83% of those under the smallest default box (9.6 px), 36% at 9.6-24 px, where
    # sizes fall between the 20x20 map's boxes and its 8 px grid, 14% at 24-53 px, none
    # of the few over 120 px.
    coverage = default_box_coverage(dataset_boxes(keras_ssd.data.load("shapes", "validation")), tiny_cfg)
    shares = [b.share for b in coverage.by_size()]
    assert len(coverage.best_iou) == 474
    assert 0.25 < coverage.share_unmatchable < 0.45
    assert shares[0] > 0.7 and shares[2] < 0.25 and shares == sorted(shares, reverse=True)
    # Objects of 25-60% of a square 160 px image, as the shortened main job trains on: nearly none.
    easy = {"image_size": 160, "object_size": [0.25, 0.6], "max_objects": 1}
    coverage = default_box_coverage(dataset_boxes(keras_ssd.data.load("shapes", "validation", **easy)), tiny_cfg)
    assert coverage.share_unmatchable < 0.1


def test_dataset_boxes_read_examples_and_padded_batches_alike(tiny_cfg):
    examples = keras_ssd.data.load("shapes", "validation").take(6)
    batches = keras_ssd.data.eval_pipeline(examples, tiny_cfg, 4)
    from_examples = dataset_boxes(examples)
    np.testing.assert_array_equal(dataset_boxes(batches), from_examples)
    assert from_examples.shape[1] == 4 and len(from_examples) >= 6


def test_bad_boxes_are_quoted(tiny_cfg):
    with pytest.raises(ValueError, match=r"\(3,\)"):
        default_box_coverage(np.zeros(3), tiny_cfg)

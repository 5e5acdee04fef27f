"""The generated "shapes" dataset: exact boxes, seeds, splits, sizes."""

import hashlib

import numpy as np
import pytest

from keras_ssd import data


def _load(split="train", n=20, **kw):
    """Shapes examples; without empty images unless asked (most checks look at objects)."""
    kw.setdefault("image_size", (48, 80))
    kw.setdefault("empty_share", 0.0)
    return list(data.load("shapes", split, num_examples=n, **kw).as_numpy_iterator())


def test_class_names():
    assert data.class_names("shapes") == ["circle", "square", "triangle"]


def test_structure_and_ranges():
    for ex in _load(n=30):
        h, w, c = ex["image"].shape
        assert (
            48 <= h <= 80 and 48 <= w <= 80 and c == 3 and ex["image"].dtype == np.uint8
        )
        m = len(ex["labels"])
        assert 1 <= m <= 4
        assert ex["boxes"].shape == (m, 4) and ex["boxes"].dtype == np.float32
        assert ex["labels"].dtype == np.int32 and set(ex["labels"]) <= {0, 1, 2}
        assert ex["difficult"].shape == (m,) and not ex["difficult"].any()
        assert (ex["boxes"] >= 0).all() and (ex["boxes"] <= 1).all()
        assert (ex["boxes"][:, 2:] > ex["boxes"][:, :2]).all()


def test_top_object_box_is_exact_to_the_pixel():
    # The last object is drawn on top, so its colour region is the whole shape.
    checked = 0
    for ex in _load(n=40):
        h, w = ex["image"].shape[:2]
        r0, c0, r1, c1 = np.round(ex["boxes"][-1] * [h, w, h, w]).astype(int)
        np.testing.assert_allclose(
            ex["boxes"][-1] * [h, w, h, w], [r0, c0, r1, c1], atol=1e-3
        )
        colour = ex["image"][(r0 + r1) // 2, (c0 + c1) // 2]
        mask = np.all(ex["image"] == colour, axis=-1)
        # Look in the box plus a 2 px margin: the shape must touch all 4 sides.
        sub = mask[max(r0 - 2, 0) : r1 + 2, max(c0 - 2, 0) : c1 + 2]
        rows, cols = np.nonzero(sub)
        oy, ox = max(r0 - 2, 0), max(c0 - 2, 0)
        assert [
            rows.min() + oy,
            cols.min() + ox,
            rows.max() + oy + 1,
            cols.max() + ox + 1,
        ] == [
            r0,
            c0,
            r1,
            c1,
        ], ex["image_id"]
        checked += 1
    assert checked == 40


def test_each_class_is_a_different_shape():
    # Filled fraction of the box: circle ~ pi/4, square 1, triangle ~ 1/2.
    fractions = {0: [], 1: [], 2: []}
    for ex in _load(n=40, image_size=96, object_size=(0.3, 0.5), max_objects=1):
        r0, c0, r1, c1 = np.round(ex["boxes"][0] * 96).astype(int)
        colour = ex["image"][(r0 + r1) // 2, (c0 + c1) // 2]
        region = np.all(ex["image"][r0:r1, c0:c1] == colour, axis=-1)
        fractions[int(ex["labels"][0])].append(region.mean())
    assert all(fractions.values())
    assert 0.74 < np.mean(fractions[0]) < 0.84
    assert np.mean(fractions[1]) > 0.99
    assert 0.45 < np.mean(fractions[2]) < 0.6


def test_object_sizes_span_3_to_80_percent_of_the_side():
    sides = []
    for ex in _load(n=150, image_size=200):
        b = ex["boxes"]
        sides.extend((b[:, 2] - b[:, 0]).tolist())
    sides = np.array(sides)
    assert sides.min() >= 0.03 - 0.005 and sides.max() <= 0.8 + 0.005
    assert sides.min() < 0.05 and sides.max() > 0.6


def test_default_image_size_varies_between_256_and_320():
    sizes = {
        ex["image"].shape[:2]
        for ex in data.load("shapes", num_examples=6).as_numpy_iterator()
    }
    assert len(sizes) > 1
    assert all(256 <= s <= 320 for hw in sizes for s in hw)


def _digests(examples):
    return [hashlib.sha1(ex["image"].tobytes()).hexdigest() for ex in examples]


def test_same_seed_same_data_and_other_seed_other_data():
    a, b, c = _load(n=5), _load(n=5), _load(n=5, seed=1)
    assert _digests(a) == _digests(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["boxes"], y["boxes"])
    assert not set(_digests(a)) & set(_digests(c))


def test_splits_do_not_overlap():
    digests = {
        s: set(_digests(_load(s, n=30))) for s in ("train", "validation", "test")
    }
    assert all(len(d) == 30 for d in digests.values())
    assert not digests["train"] & digests["validation"]
    assert not digests["train"] & digests["test"]
    assert not digests["validation"] & digests["test"]
    assert _load("test", n=1)[0]["image_id"] == b"shapes/test/000000"


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="Unknown shapes split 'val'"):
        data.load("shapes", "val")
    with pytest.raises(ValueError, match="image_size"):
        data.load("shapes", image_size=(300, 200))
    with pytest.raises(TypeError):
        data.load("shapes", bogus=1)


def test_empty_and_plain_shares():
    examples = _load(n=60, empty_share=0.5, plain_share=1.0)
    counts = [len(ex["labels"]) for ex in examples]
    assert 15 <= counts.count(0) <= 45 and max(counts) > 0
    for ex in examples:
        assert ex["boxes"].shape == (len(ex["labels"]), 4)
        if not len(ex["labels"]):
            # A plain background: a flat colour plus a gentle gradient, no stripes or noise.
            steps = np.abs(np.diff(ex["image"].astype(int), axis=1))
            assert steps.max() <= 2, ex["image_id"]
    # Textured images do not depend on the shares (their own random streams).
    plain, textured = _load(n=40, empty_share=0.1, plain_share=1.0), _load(n=40, empty_share=0.1, plain_share=0.0)
    default = _load(n=40, empty_share=0.1)
    same = [np.array_equal(d["image"], t["image"]) for d, t in zip(default, textured)]
    flat = [np.array_equal(d["image"], p["image"]) for d, p in zip(default, plain)]
    assert all(s or f for s, f in zip(same, flat)) and 2 <= flat.count(True) <= 18
    # Plain backgrounds reach black and white.
    levels = [np.median(p["image"]) for p in plain]
    assert min(levels) < 30 or max(levels) > 226
    with pytest.raises(ValueError, match=r"empty_share must be in \[0, 1\], got 1.5"):
        data.load("shapes", empty_share=1.5)

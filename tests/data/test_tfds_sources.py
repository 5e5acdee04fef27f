"""TFDS sources on `tfds.testing.mock_data` (offline, real feature structure)."""

import numpy as np
import pytest
import tensorflow as tf

tfds = pytest.importorskip("tensorflow_datasets")

from keras_ssd import data


def _mock():
    return tfds.testing.mock_data(
        num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE
    )


def _expected(raw, flag_key):
    """The valid boxes of a raw TFDS example, computed in numpy."""
    objects = raw["objects"]
    m = min(len(objects["bbox"]), len(objects["label"]), len(objects[flag_key]))
    boxes = objects["bbox"][:m]
    keep = (
        np.isfinite(boxes).all(1)
        & (boxes >= 0).all(1)
        & (boxes <= 1).all(1)
        & (boxes[:, 2] > boxes[:, 0])
        & (boxes[:, 3] > boxes[:, 1])
    )
    return boxes[keep], objects["label"][:m][keep], objects[flag_key][:m][keep]


@pytest.mark.parametrize("name", ["voc/2007", "voc/2012"])
def test_voc_tfds_matches_the_raw_features(name):
    with _mock():
        raw = list(tfds.load(name, split="train").as_numpy_iterator())
        with pytest.warns(data.BadInputWarning, match=r"Skipping box .*box\(es\)"):
            got = list(data.load(name, "train").as_numpy_iterator())
    assert len(got) == len(raw) == 3
    for r, g in zip(raw, got):
        boxes, labels, difficult = _expected(r, "is_difficult")
        np.testing.assert_array_equal(g["image"], r["image"])
        h, w = r["image"].shape[:2]
        np.testing.assert_allclose(
            g["boxes"] * [h, w, h, w], boxes * [h, w, h, w], atol=1e-4
        )
        assert g["labels"].dtype == np.int32 and g["labels"].tolist() == labels.tolist()
        assert g["difficult"].tolist() == difficult.tolist()
        assert g["image_id"] == r["image/filename"].rsplit(b".", 1)[0]
        assert "is_crowd" not in g


def test_coco_tfds_keeps_crowd_flags():
    with _mock():
        raw = list(tfds.load("coco/2017", split="validation").as_numpy_iterator())
        with pytest.warns(data.BadInputWarning):
            got = list(data.load("coco/2017", "validation").as_numpy_iterator())
    for r, g in zip(raw, got):
        boxes, labels, crowd = _expected(r, "is_crowd")
        np.testing.assert_allclose(g["boxes"], boxes, atol=1e-6)
        assert g["labels"].tolist() == labels.tolist()
        assert g["is_crowd"].tolist() == crowd.tolist()
        assert not g["difficult"].any()
        assert g["image_id"] == str(r["image/id"]).encode()


def test_strict_tfds_names_the_file_of_a_bad_box():
    with _mock():
        first = next(tfds.load("voc/2007", split="train").as_numpy_iterator())
        ds = data.load("voc/2007", "train", strict=True)
        with pytest.raises(
            tf.errors.InvalidArgumentError, match="out-of-image box"
        ) as info:
            list(ds.as_numpy_iterator())
    assert first["image/filename"].decode() in str(info.value)


def test_tfds_class_names():
    names = data.class_names("voc/2007")
    assert len(names) == 20 and names[0] == "aeroplane" and names[-1] == "tvmonitor"
    coco = data.class_names("coco/2017")
    assert len(coco) == 80 and coco[0] == "person" and coco[-1] == "toothbrush"

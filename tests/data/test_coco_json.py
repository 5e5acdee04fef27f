"""COCO json + image dir: xywh pixels -> normalised yxyx, ids -> 0-based labels."""

import numpy as np
import pytest

from keras_ssd import data


@pytest.fixture
def coco(tmp_path, files):
    img_dir = tmp_path / "images"
    files.write_image(
        str(img_dir / "a.png"), files.canvas(40, 60, [(4, 10, 11, 29, (255, 255, 255))])
    )
    files.write_image(str(img_dir / "b.png"), files.canvas(30, 50, []))
    files.write_image(str(img_dir / "c.jpg"), files.canvas(20, 20, []))
    ann = {
        # Category ids out of order and with gaps: labels follow increasing id.
        "categories": [
            {"id": 7, "name": "zebra"},
            {"id": 3, "name": "ant"},
            {"id": 11, "name": "cow"},
        ],
        "images": [
            {"id": 42, "file_name": "a.png", "height": 40, "width": 60},
            {"id": 5, "file_name": "b.png", "height": 30, "width": 50},
            {
                "id": 9,
                "file_name": "c.jpg",
                "height": 20,
                "width": 20,
            },  # no annotations
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 42,
                "category_id": 7,
                "bbox": [10, 4, 20, 8],
                "iscrowd": 0,
            },
            {
                "id": 2,
                "image_id": 42,
                "category_id": 11,
                "bbox": [0.5, 20.25, 59.5, 19.75],
                "iscrowd": 1,
            },
            {
                "id": 3,
                "image_id": 5,
                "category_id": 3,
                "bbox": [12.5, 3, 7.25, 26],
                "iscrowd": 0,
            },
        ],
    }
    path = tmp_path / "instances.json"
    files.write_json(str(path), ann)
    return str(path), str(img_dir)


def test_class_names_in_category_id_order(coco):
    assert data.class_names(coco[0]) == ["ant", "zebra", "cow"]


def test_boxes_labels_and_crowd(coco, as_list):
    path, img_dir = coco
    got = {
        ex["image_id"].decode(): ex
        for ex in as_list(data.load(path, image_dir=img_dir))
    }
    assert list(got) == ["42", "5", "9"]
    a = got["42"]
    np.testing.assert_allclose(
        a["boxes"] * [40, 60, 40, 60],
        [[4, 10, 12, 30], [20.25, 0.5, 40, 60]],
        atol=1e-4,
    )
    assert a["labels"].tolist() == [1, 2]
    assert a["is_crowd"].tolist() == [False, True]
    assert a["difficult"].tolist() == [False, False]
    # The first box is exactly the white rectangle the test drew.
    rows, cols = np.nonzero(np.all(a["image"] == 255, axis=-1))
    assert [rows.min(), cols.min(), rows.max() + 1, cols.max() + 1] == [4, 10, 12, 30]
    b = got["5"]
    np.testing.assert_allclose(
        b["boxes"] * [30, 50, 30, 50], [[3, 12.5, 29, 19.75]], atol=1e-4
    )
    assert b["labels"].tolist() == [0]
    c = got["9"]  # an image without objects is valid: all background
    assert (
        c["boxes"].shape == (0, 4)
        and c["labels"].shape == (0,)
        and c["is_crowd"].shape == (0,)
    )
    assert c["image"].shape == (20, 20, 3)


def test_class_names_subset_skips_other_categories(coco, as_list):
    path, img_dir = coco
    with pytest.warns(data.BadInputWarning, match="category not in class_names 11"):
        got = as_list(data.load(path, image_dir=img_dir, class_names=["zebra", "ant"]))
    assert got[0]["labels"].tolist() == [0]
    assert got[1]["labels"].tolist() == [1]


def test_image_dir_is_required(coco):
    with pytest.raises(ValueError, match="needs image_dir"):
        data.load(coco[0])

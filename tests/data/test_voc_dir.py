"""VOC-layout directories: boxes to the pixel against the XML the test writes."""

import os

import numpy as np
import pytest

from keras_ssd import data

# (image id, format, height, width, objects as (name, row0, col0, row1, col1, difficult))
# rows/cols are 0-based inclusive pixel indices of the drawn rectangle.
IMAGES = [
    (
        "000001",
        "png",
        40,
        60,
        [("dog", 5, 10, 24, 39, False), ("cat", 30, 0, 39, 9, True)],
    ),
    ("000002", "png", 50, 30, [("bird", 0, 0, 49, 29, False)]),
    ("000003", "jpg", 32, 48, [("cat", 8, 16, 15, 31, False)]),
]
COLOURS = {"dog": (255, 0, 0), "cat": (0, 255, 0), "bird": (0, 0, 255)}


@pytest.fixture
def voc_dir(tmp_path, files):
    root = str(tmp_path / "VOC")
    for image_id, fmt, h, w, objects in IMAGES:
        rects = [(r0, c0, r1, c1, COLOURS[n]) for n, r0, c0, r1, c1, _ in objects]
        files.write_image(
            f"{root}/JPEGImages/{image_id}.{fmt}", files.canvas(h, w, rects), fmt
        )
        files.write_voc_xml(
            root,
            image_id,
            f"{image_id}.{fmt}",
            (h, w),
            # VOC: 1-based indices of the first and last pixel inside.
            [
                (n, (c0 + 1, r0 + 1, c1 + 1, r1 + 1), d)
                for n, r0, c0, r1, c1, d in objects
            ],
        )
    files.write_split(root, "train", ["000001", "000002"])
    files.write_split(root, "val", ["000003"])
    return root


def test_class_names_are_sorted_names_found_in_all_splits(voc_dir):
    assert data.class_names(voc_dir) == ["bird", "cat", "dog"]


def test_boxes_match_xml_to_the_pixel(voc_dir, as_list):
    got = {ex["image_id"].decode(): ex for ex in as_list(data.load(voc_dir, "train"))}
    assert sorted(got) == ["000001", "000002"]
    names = data.class_names(voc_dir)
    for image_id, _, h, w, objects in IMAGES[:2]:
        ex = got[image_id]
        assert ex["image"].shape == (h, w, 3) and ex["image"].dtype == np.uint8
        pixels = ex["boxes"] * np.array([h, w, h, w], np.float32)
        # Continuous corners of the drawn rectangles: [row0, col0, row1 + 1, col1 + 1].
        want = np.array(
            [[r0, c0, r1 + 1, c1 + 1] for _, r0, c0, r1, c1, _ in objects], np.float32
        )
        np.testing.assert_allclose(pixels, want, atol=1e-3)
        assert ex["labels"].tolist() == [names.index(o[0]) for o in objects]
        assert ex["difficult"].tolist() == [o[5] for o in objects]
        # The box is exactly the region of its colour in the lossless PNG.
        for (name, *_), box in zip(objects, np.round(pixels).astype(int)):
            mask = np.all(ex["image"] == COLOURS[name], axis=-1)
            rows, cols = np.nonzero(mask)
            assert [
                rows.min(),
                cols.min(),
                rows.max() + 1,
                cols.max() + 1,
            ] == box.tolist()


def test_val_split_and_jpeg(voc_dir, as_list):
    (ex,) = as_list(data.load(voc_dir, "val"))
    assert ex["image_id"] == b"000003"
    np.testing.assert_allclose(
        ex["boxes"] * [32, 48, 32, 48], [[8, 16, 16, 32]], atol=1e-3
    )
    assert ex["labels"].tolist() == [1]  # cat


def test_split_none_reads_every_annotation(voc_dir, as_list):
    assert len(as_list(data.load(voc_dir, None))) == 3


def test_class_names_fix_the_label_order(voc_dir, as_list):
    order = ["dog", "cat", "bird"]
    got = {
        ex["image_id"].decode(): ex
        for ex in as_list(data.load(voc_dir, "train", class_names=order))
    }
    assert got["000001"]["labels"].tolist() == [0, 1]
    assert got["000002"]["labels"].tolist() == [2]


def test_unknown_split_names_the_file_and_the_splits(voc_dir):
    with pytest.raises(ValueError, match=r"test\.txt.*'train', 'val'"):
        data.load(voc_dir, "test")


def test_unknown_source_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not in VOC layout"):
        data.load(str(tmp_path))
    with pytest.raises(ValueError, match="Unknown data source 'voc/2099'"):
        data.load("voc/2099")


def test_edited_annotation_is_read_again(voc_dir, files, as_list):
    assert as_list(data.load(voc_dir, "val"))[0]["labels"].tolist() == [1]
    files.write_voc_xml(
        voc_dir, "000003", "000003.jpg", (32, 48), [("dog", (17, 9, 32, 16), False)]
    )
    os.utime(f"{voc_dir}/Annotations/000003.xml", ns=(2**61, 2**61))  # a later mtime
    assert as_list(data.load(voc_dir, "val"))[0]["labels"].tolist() == [2]

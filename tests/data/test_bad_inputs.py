"""A folder of bad inputs, loaded in default (skip + warn) and strict mode."""

import os
import warnings

import numpy as np
import pytest

from keras_ssd import data

NAMES = ["cat", "dog"]
GOOD_BOX = ("cat", (3, 3, 12, 10), False)  # 1-based VOC corners inside a 20x24 image


def _jpeg_bytes(files, tmp_path):
    path = str(tmp_path / "scratch.jpg")
    return files.write_image(path, np.full((20, 24, 3), 128, np.uint8))


def _write_case(root, case, files, tmp_path):
    """Writes one case into a VOC dir; returns (image id, file named in messages)."""
    img = f"{root}/JPEGImages/{case}.jpg"
    xml = f"{root}/Annotations/{case}.xml"
    objects = [GOOD_BOX]
    if case == "ok":
        files.write_image(img, np.full((20, 24, 3), 200, np.uint8))
        bad = img
    elif case == "truncated":
        data_ = _jpeg_bytes(files, tmp_path)
        os.makedirs(os.path.dirname(img), exist_ok=True)
        with open(img, "wb") as f:
            f.write(data_[: len(data_) // 2])
        bad = img
    elif case == "not_an_image":
        os.makedirs(os.path.dirname(img), exist_ok=True)
        with open(img, "w") as f:
            f.write("this is not a JPEG\n")
        bad = img
    elif case == "missing_image":
        bad = img  # nothing written
    else:
        files.write_image(img, np.full((20, 24, 3), 50, np.uint8))
        bad = xml
        broken = {
            "box_outside": ("dog", (3, 3, 40, 10), False),
            "xmin_ge_xmax": (
                "dog",
                (12, 3, 9, 10),
                False,
            ),  # VOC xmin == xmax is 1 px wide
            "nan_coordinate": ("dog", ("nan", 3, 12, 10), False),
            "unknown_class": ("unicorn", (3, 3, 12, 10), False),
        }
        if case == "no_objects":
            objects = []
        else:
            objects = [GOOD_BOX, broken[case]]
    files.write_voc_xml(root, case, f"{case}.jpg", (20, 24), objects)
    return case, bad


def _write_converted(root, files):
    """Valid but unusual images: grayscale JPEG, RGBA PNG, CMYK JPEG."""
    gray = np.tile(np.arange(24, dtype=np.uint8)[None, :, None] * 10, (20, 1, 1))
    files.write_image(f"{root}/JPEGImages/gray.jpg", gray)
    rgba = np.zeros((20, 24, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 128
    files.write_image(f"{root}/JPEGImages/rgba.png", rgba)
    files.write_cmyk_jpeg(f"{root}/JPEGImages/cmyk.jpg", 20, 24, cmyk=(0, 255, 0, 0))
    for name, fn in [("gray", "gray.jpg"), ("rgba", "rgba.png"), ("cmyk", "cmyk.jpg")]:
        files.write_voc_xml(root, name, fn, (20, 24), [GOOD_BOX])


SKIPPED_EXAMPLES = {
    "truncated": "truncated JPEG",
    "not_an_image": "not an image file",
    "missing_image": "image file not found",
}
SKIPPED_BOXES = {
    "box_outside": "lies outside the 20x24 image",
    "xmin_ge_xmax": "empty box",
    "nan_coordinate": "non-finite coordinate",
    "unknown_class": "unknown class name 'unicorn'",
}


@pytest.fixture
def bad_dir(tmp_path, files):
    root = str(tmp_path / "bad")
    named = {}
    for case in ["ok", "no_objects", *SKIPPED_EXAMPLES, *SKIPPED_BOXES]:
        named[case] = _write_case(root, case, files, tmp_path)[1]
    _write_converted(root, files)
    return root, named


def test_default_mode_skips_each_bad_input_with_one_warning(bad_dir, as_list):
    root, named = bad_dir
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = data.load(root, None, class_names=NAMES)
    messages = [
        str(w.message) for w in caught if issubclass(w.category, data.BadInputWarning)
    ]
    for case, reason in {**SKIPPED_EXAMPLES, **SKIPPED_BOXES}.items():
        hits = [m for m in messages if named[case] in m and reason in m]
        assert len(hits) == 1, (case, messages)
    assert messages[-1].endswith(
        "skipped 3 example(s) and 4 box(es); kept 9 example(s)"
    )
    assert len(messages) == 3 + 4 + 1

    got = {ex["image_id"].decode(): ex for ex in as_list(ds)}
    assert sorted(got) == sorted(
        ["ok", "no_objects", "gray", "rgba", "cmyk", *SKIPPED_BOXES]
    )
    assert got["no_objects"]["boxes"].shape == (0, 4)  # valid: all background
    for case in SKIPPED_BOXES:  # the good box of each survives, the bad one is gone
        np.testing.assert_allclose(
            got[case]["boxes"] * [20, 24, 20, 24], [[2, 2, 10, 12]], atol=1e-4
        )
        assert got[case]["labels"].tolist() == [0]
    for ex in got.values():
        assert ex["image"].shape == (20, 24, 3) and ex["image"].dtype == np.uint8
    # Converted images: grayscale replicated, alpha dropped, CMYK -> RGB.
    gray = got["gray"]["image"].astype(int)
    assert np.abs(gray[..., 0] - gray[..., 2]).max() == 0 and gray[..., 0].max() > 150
    assert got["rgba"]["image"][0, 0].tolist() == [255, 0, 0]
    assert np.abs(got["cmyk"]["image"][10, 10].astype(int) - [255, 0, 255]).max() <= 3


@pytest.mark.parametrize("case", [*SKIPPED_EXAMPLES, *SKIPPED_BOXES])
def test_strict_mode_raises_naming_the_file(case, tmp_path, files):
    root = str(tmp_path / "one")
    _write_case(root, "ok", files, tmp_path)
    _, named = _write_case(root, case, files, tmp_path)
    reason = {**SKIPPED_EXAMPLES, **SKIPPED_BOXES}[case]
    with pytest.raises(ValueError) as info:
        data.load(root, None, class_names=NAMES, strict=True)
    assert named in str(info.value) and reason in str(info.value)


def test_strict_mode_accepts_unusual_but_valid_images(tmp_path, files, as_list):
    root = str(tmp_path / "valid")
    _write_case(root, "no_objects", files, tmp_path)
    _write_converted(root, files)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = as_list(data.load(root, None, class_names=NAMES, strict=True))
    assert len(got) == 4


def test_dataset_whose_every_example_is_skipped_says_so(tmp_path, files):
    root = str(tmp_path / "allbad")
    files.write_image(f"{root}/JPEGImages/x.jpg", np.zeros((20, 24, 3), np.uint8))
    files.write_voc_xml(root, "x", "x.jpg", (20, 24), [("cat", (5, 5, 4, 9), False)])
    with pytest.warns(data.BadInputWarning, match="every object was invalid"):
        with pytest.raises(ValueError, match="kept 0 of 1 examples: every annotation was skipped"):
            data.load(root, None, class_names=NAMES)


@pytest.fixture
def bad_coco(tmp_path, files):
    img_dir = tmp_path / "img"
    for name in ("ok", "a", "b"):
        files.write_image(str(img_dir / f"{name}.jpg"), np.zeros((20, 30, 3), np.uint8))
    with open(img_dir / "text.jpg", "w") as f:
        f.write("no image here")
    anns = [
        (1, [2, 3, 10, 5]),  # good
        (2, [2, 3, 10, 5]),  # good, beside each bad one below
        (2, [25, 3, 10, 5]),  # outside: x + w = 35 > 30
        (2, [2, 3, 0, 5]),  # zero width
        (2, [2, float("nan"), 10, 5]),  # NaN
        (3, [2, 3, 10, 5]),
    ]
    annotations = [
        {"id": i, "image_id": img, "category_id": 1, "bbox": bbox, "iscrowd": 0}
        for i, (img, bbox) in enumerate(anns)
    ]
    annotations.append(
        {"id": 99, "image_id": 3, "category_id": 5, "bbox": [1, 1, 2, 2]}
    )
    coco = {
        "categories": [{"id": 1, "name": "thing"}],
        "images": [
            {"id": 1, "file_name": "ok.jpg", "height": 20, "width": 30},
            {"id": 2, "file_name": "a.jpg", "height": 20, "width": 30},
            {"id": 3, "file_name": "b.jpg", "height": 20, "width": 30},
            {"id": 4, "file_name": "gone.jpg", "height": 20, "width": 30},
            {"id": 5, "file_name": "text.jpg", "height": 20, "width": 30},
        ],
        "annotations": annotations,
    }
    path = str(tmp_path / "bad.json")
    files.write_json(path, coco)
    return path, str(img_dir)


COCO_PROBLEMS = [
    "lies outside the 20x30 image",
    "width and height must be > 0",
    "non-finite bbox",
    "unknown category id 5",
    "gone.jpg: image file not found",
    "text.jpg: not an image file",
]


def test_coco_default_mode_skips_and_counts(bad_coco, as_list):
    path, img_dir = bad_coco
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = data.load(path, image_dir=img_dir)
    messages = [
        str(w.message) for w in caught if issubclass(w.category, data.BadInputWarning)
    ]
    for problem in COCO_PROBLEMS:
        assert sum(problem in m for m in messages) == 1, (problem, messages)
    assert messages[-1].endswith(
        "skipped 2 example(s) and 4 box(es); kept 3 example(s)"
    )
    got = as_list(ds)
    assert [ex["image_id"] for ex in got] == [b"1", b"2", b"3"]
    assert [len(ex["labels"]) for ex in got] == [1, 1, 1]


@pytest.mark.parametrize("problem", COCO_PROBLEMS)
def test_coco_strict_mode_raises_naming_the_file(bad_coco, problem, tmp_path, files):
    import json

    path, img_dir = bad_coco
    with open(path) as f:
        coco = json.load(f)
    # Keep only the image the problem concerns (and image 1, which is good).
    wanted = {
        "lies outside": 2,
        "width and height": 2,
        "non-finite": 2,
        "unknown category": 3,
        "gone.jpg": 4,
        "text.jpg": 5,
    }
    image_id = next(v for k, v in wanted.items() if k in problem)
    coco["images"] = [im for im in coco["images"] if im["id"] in (1, image_id)]
    one = str(tmp_path / "one.json")
    files.write_json(one, coco)
    with pytest.raises(ValueError) as info:
        data.load(one, image_dir=img_dir, strict=True)
    message = str(info.value)
    assert one in message or img_dir in message
    if image_id == 2:  # several bad boxes: strict stops at the first
        assert "lies outside" in message
    else:
        assert problem in message

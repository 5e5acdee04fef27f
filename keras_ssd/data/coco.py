"""COCO-format JSON annotation files plus their image directory.

COCO boxes are `[x, y, width, height]` in continuous pixel coordinates (0 is
the left edge of the first pixel), so the normalised box is
`[y / H, x / W, (y + height) / H, (x + width) / W]`. Category ids (COCO's are
1..90 with gaps) are remapped to contiguous 0-based labels in increasing id
order, the order TFDS `coco/*` uses. `iscrowd` objects are kept and marked in
the boolean `"is_crowd"` key so metrics can ignore them and training can drop
them.
"""

import collections
import json
import math
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from keras_ssd.data import image_files
from keras_ssd.data.records import Record, records_to_dataset
from keras_ssd.data.reporting import SkipReport
from keras_ssd.data.voc import check_box


def is_coco_json(path: str) -> bool:
    """True if `path` is a file ending in `.json`."""
    return os.path.isfile(path) and path.lower().endswith(".json")


def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"Cannot read COCO json {path}: {e}") from e
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"COCO json {path} has no {key!r} list")  # noqa: TRY004
    return data


def _categories(data: dict, path: str):
    cats = sorted(data["categories"], key=lambda c: c["id"])
    ids = [c["id"] for c in cats]
    if len(set(ids)) != len(ids):
        raise ValueError(f"COCO json {path} has duplicate category ids: {ids}")
    return ids, [str(c.get("name", c["id"])) for c in cats]


def class_names(path: str) -> list[str]:
    """Category names of a COCO json, in increasing category-id order."""
    return _categories(_read_json(path), path)[1]


_found_class_names = class_names  # `load` has a parameter of the same name


def read_records(
    path: str,
    image_dir: str,
    report: SkipReport,
    class_names: Sequence[str] | None = None,
    check_images: bool = True,
) -> list[Record]:
    """Parses and checks a COCO json.

    Args:
        path: the json file.
        image_dir: directory holding the `file_name`s of the json's images.
        report: where skipped examples/boxes are recorded.
        class_names: optional label order (names must match category names);
            default: category-id order.
        check_images: probe every image header; if False, sizes come from the
            json's `width`/`height`.

    Returns:
        Checked `Record`s (boxes normalised `[ymin, xmin, ymax, xmax]`, with
        `is_crowd`), in the json's image order.
    """
    data = _read_json(path)
    ids, cat_names = _categories(data, path)
    if class_names is None:
        label_of = {cid: k for k, cid in enumerate(ids)}
    else:
        index = {n: k for k, n in enumerate(class_names)}
        label_of = {cid: index[n] for cid, n in zip(ids, cat_names) if n in index}
    name_of = dict(zip(ids, cat_names))
    per_image = collections.defaultdict(list)
    for ann in data.get("annotations", []):
        per_image[ann.get("image_id")].append(ann)

    records = []
    for image in data["images"]:
        image_id = image.get("id")
        file_name = image.get("file_name", "")
        image_path = os.path.join(image_dir, file_name)
        where = f"{path} (image id {image_id}, {image_path})"
        if check_images:
            size = image_files.checked_size(
                image_path, (image.get("height"), image.get("width")), report, where, "json"
            )
            if size is None:
                continue
            height, width = size
        else:
            height, width = image.get("height") or 0, image.get("width") or 0
            if height <= 0 or width <= 0:
                report.skip_example(
                    where, "no valid width/height and check_images=False"
                )
                continue

        boxes, labels, crowd = [], [], []
        anns = per_image.get(image_id, [])
        for ann in anns:
            cid = ann.get("category_id")
            if cid not in label_of:
                known = (
                    "unknown category id"
                    if cid not in name_of
                    else "category not in class_names"
                )
                report.skip_box(
                    where, f"{known} {cid!r} (annotation id {ann.get('id')})"
                )
                continue
            bbox = ann.get("bbox")
            try:
                x, y, w, h = (float(v) for v in bbox)
            except (TypeError, ValueError):
                report.skip_box(
                    where,
                    f"bbox {bbox!r} is not 4 numbers (annotation id {ann.get('id')})",
                )
                continue
            if not all(math.isfinite(v) for v in (x, y, w, h)):
                report.skip_box(
                    where,
                    f"non-finite bbox [x, y, w, h]={bbox} (annotation id {ann.get('id')})",
                )
                continue
            if w <= 0 or h <= 0:
                report.skip_box(
                    where,
                    f"empty bbox [x, y, w, h]={bbox}: width and height must be > 0 "
                    f"(annotation id {ann.get('id')})",
                )
                continue
            # Boxes out by up to 1 px (common in COCO) are clipped silently.
            box, reason, _ = check_box(y, x, y + h, x + w, height, width)
            if box is None:
                report.skip_box(
                    where,
                    f"{reason} (bbox [x, y, w, h]={bbox}, annotation id {ann.get('id')})",
                )
                continue
            boxes.append(box)
            labels.append(label_of[cid])
            crowd.append(bool(ann.get("iscrowd", 0)))
        if anns and not boxes:
            report.skip_example(
                where, "every annotation was invalid (image would be unlabelled)"
            )
            continue
        records.append(
            Record(
                image_path=image_path,
                image_id=str(image_id),
                boxes=np.array(boxes, np.float32).reshape(-1, 4),
                labels=np.array(labels, np.int32),
                difficult=np.zeros(len(labels), bool),
                is_crowd=np.array(crowd, bool),
            )
        )
    return records


def load(
    path: str,
    image_dir: str | None = None,
    *,
    class_names: Sequence[str] | None = None,
    strict: bool = False,
    check_images: bool = True,
) -> tf.data.Dataset:
    """Loads a COCO-format json and its images.

    Args:
        path: the annotation json (`images`, `annotations`, `categories`).
        image_dir: directory of the images; required.
        class_names: optional label order by category name.
        strict: raise `ValueError` naming the file on the first bad input.
        check_images: probe image headers up front.

    Returns:
        Dataset of `{"image": uint8[H,W,3], "boxes": float32[M,4]` normalised
        `[ymin, xmin, ymax, xmax]`, `"labels": int32[M], "difficult": bool[M]`
        (all False), `"is_crowd": bool[M], "image_id": string}` (the COCO
        image id as a decimal string).
    """
    if image_dir is None:
        raise ValueError(
            f"COCO json {path} needs image_dir= (the folder of its images)"
        )
    if not os.path.isdir(image_dir):
        raise ValueError(
            f"image_dir {image_dir} for COCO json {path} is not a directory"
        )
    report = SkipReport(source=f"COCO json {path}", strict=strict)
    records = read_records(
        path, image_dir, report, class_names=class_names, check_images=check_images
    )
    report.summarize(len(records))
    return records_to_dataset(records, with_crowd=True, ignore_decode_errors=not strict)

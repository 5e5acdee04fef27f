"""PASCAL VOC layout directories (also what labelImg and many tools write).

Layout::

    <root>/Annotations/<id>.xml
    <root>/JPEGImages/<id>.jpg          (or the <filename> the XML names)
    <root>/ImageSets/Main/<split>.txt   (one <id> per line)

VOC boxes are 1-based pixel indices of the first and last pixel inside the
object (xmin=1 is the leftmost column). In continuous coordinates the box spans
`[xmin - 1, xmax]`, so the normalised box is
`[(ymin - 1) / H, (xmin - 1) / W, ymax / H, xmax / W]`, the convention TFDS
uses for `voc/*` too. `H` and `W` are the true pixel size read from the image
header (the XML's `<size>` is only compared against it).
"""

import functools
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from keras_ssd.data import image_files
from keras_ssd.data.records import Record, records_to_dataset
from keras_ssd.data.reporting import SkipReport

# Tolerance in pixels for boxes that stick out of the image; such boxes are
# clipped (with a note), boxes further out are skipped.
_EDGE_TOLERANCE_PX = 1.0
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG", ".bmp", ".gif")


def is_voc_dir(path: str) -> bool:
    """True if `path` is a directory with an `Annotations/` folder."""
    return os.path.isdir(os.path.join(path, "Annotations"))


@functools.lru_cache(maxsize=8)
def _parse_all(root: str, _mtime: float) -> dict[str, object]:
    """Parses every XML under Annotations/ once: {id: dict or error string}."""
    parsed = {}
    ann_dir = os.path.join(root, "Annotations")
    for name in sorted(os.listdir(ann_dir)):
        if not name.endswith(".xml"):
            continue
        parsed[name[:-4]] = _parse_xml(os.path.join(ann_dir, name))
    return parsed


def _text(node, tag, default=None):
    child = node.find(tag)
    if child is None or child.text is None:
        return default
    return child.text.strip()


def _parse_xml(path: str):
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        return f"unreadable XML ({e})"
    size = root.find("size")
    declared = None
    if size is not None:
        try:
            declared = (
                int(float(_text(size, "height"))),
                int(float(_text(size, "width"))),
            )
        except (TypeError, ValueError):
            declared = None
    objects = []
    for obj in root.findall("object"):
        name = _text(obj, "name", "")
        bnd = obj.find("bndbox")
        coords = []
        for tag in ("ymin", "xmin", "ymax", "xmax"):
            value = _text(bnd, tag) if bnd is not None else None
            try:
                coords.append(float(value))
            except (TypeError, ValueError):
                coords.append(float("nan"))
        difficult = _text(obj, "difficult", "0") in ("1", "true", "True")
        objects.append((name, coords, difficult))
    return {"filename": _text(root, "filename"), "size": declared, "objects": objects}


def _annotations(root: str):
    """Parsed annotations, re-read when any XML is added, removed or edited."""
    ann_dir = os.path.join(root, "Annotations")
    with os.scandir(ann_dir) as entries:
        stamps = [e.stat().st_mtime_ns for e in entries if e.name.endswith(".xml")]
    signature = (len(stamps), max(stamps, default=0), os.stat(ann_dir).st_mtime_ns)
    return _parse_all(os.path.abspath(root), signature)


def class_names(root: str) -> list[str]:
    """Sorted object names found in all of `root/Annotations/*.xml`.

    All XML files are read, not one split, so the label order is the same for
    every split. For the real VOC this is the standard 20-class order.
    """
    names = set()
    for parsed in _annotations(root).values():
        if isinstance(parsed, dict):
            names.update(name for name, _, _ in parsed["objects"] if name)
    return sorted(names)


_found_class_names = class_names  # `load` has a parameter of the same name


def split_ids(root: str, split: str | None) -> list[str]:
    """Image ids of `split` (ImageSets/Main/<split>.txt), or all XMLs if None."""
    if split is None:
        return list(_annotations(root))
    main = os.path.join(root, "ImageSets", "Main")
    path = os.path.join(main, f"{split}.txt")
    if not os.path.isfile(path):
        available = sorted(
            n[:-4]
            for n in (os.listdir(main) if os.path.isdir(main) else [])
            if "_" not in n
        )
        raise ValueError(
            f"VOC split file {path} not found; available splits: {available} "
            "(or split=None for every XML in Annotations/)"
        )
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


def _find_image(root: str, image_id: str, filename: str | None) -> str | None:
    img_dir = os.path.join(root, "JPEGImages")
    if filename:
        candidate = os.path.join(img_dir, filename)
        if os.path.isfile(candidate):
            return candidate
    for ext in _IMAGE_EXTENSIONS:
        candidate = os.path.join(img_dir, image_id + ext)
        if os.path.isfile(candidate):
            return candidate
    return None


def check_box(
    ymin: float, xmin: float, ymax: float, xmax: float, height: int, width: int
) -> "tuple[np.ndarray | None, str | None, bool]":
    """Checks a box in continuous pixel coordinates `[ymin, xmin, ymax, xmax]`.

    Returns:
        `(normalised yxyx box or None, reason or None, clipped)`: a box that
        sticks out by at most 1 px is clipped; one that is NaN/inf, empty or
        further outside the `height` x `width` image is rejected with a reason.
    """
    values = (ymin, xmin, ymax, xmax)
    if not all(math.isfinite(v) for v in values):
        return (
            None,
            f"non-finite coordinate in box (ymin, xmin, ymax, xmax)={values}",
            False,
        )
    if ymin >= ymax or xmin >= xmax:
        return (
            None,
            f"empty box: need min < max, got (ymin, xmin, ymax, xmax)={values}",
            False,
        )
    tol = _EDGE_TOLERANCE_PX
    if ymin < -tol or xmin < -tol or ymax > height + tol or xmax > width + tol:
        return (
            None,
            f"box (ymin, xmin, ymax, xmax)={values} px lies outside the {height}x{width} image",
            False,
        )
    clipped = ymin < 0 or xmin < 0 or ymax > height or xmax > width
    box = np.array(
        [
            max(ymin, 0) / height,
            max(xmin, 0) / width,
            min(ymax, height) / height,
            min(xmax, width) / width,
        ],
        np.float32,
    )
    if box[0] >= box[2] or box[1] >= box[3]:
        return (
            None,
            f"box (ymin, xmin, ymax, xmax)={values} px has no area inside the image",
            False,
        )
    return box, None, clipped


def read_records(
    root: str,
    split: str | None,
    names: Sequence[str],
    report: SkipReport,
    check_images: bool = True,
) -> list[Record]:
    """Parses and checks the examples of one split of a VOC directory.

    Args:
        root: VOC-layout directory.
        split: split name or None for all annotations.
        names: class names; label k is `names[k]`. Objects with other names
            are skipped (or raise in strict mode).
        report: where skipped examples/boxes are recorded.
        check_images: probe every image header (finds missing, truncated and
            non-image files); if False, sizes come from the XML `<size>`.

    Returns:
        Checked `Record`s with boxes normalised `[ymin, xmin, ymax, xmax]`.
    """
    index = {n: i for i, n in enumerate(names)}
    annotations = _annotations(root)
    records = []
    for image_id in split_ids(root, split):
        xml_path = os.path.join(root, "Annotations", image_id + ".xml")
        parsed = annotations.get(image_id)
        if parsed is None:
            report.skip_example(
                xml_path, "annotation file listed in the split is missing"
            )
            continue
        if isinstance(parsed, str):
            report.skip_example(xml_path, parsed)
            continue
        image_path = _find_image(root, image_id, parsed["filename"])
        if image_path is None:
            wanted = parsed["filename"] or image_id + ".jpg"
            report.skip_example(
                os.path.join(root, "JPEGImages", wanted),
                f"image file not found (for {xml_path})",
            )
            continue
        if check_images:
            size = image_files.checked_size(image_path, parsed["size"], report, xml_path, "<size>")
            if size is None:
                continue
            height, width = size
        else:
            if not parsed["size"] or min(parsed["size"]) <= 0:
                report.skip_example(xml_path, "no valid <size> and check_images=False")
                continue
            height, width = parsed["size"]

        boxes, labels, difficult = [], [], []
        for name, (ymin, xmin, ymax, xmax), diff in parsed["objects"]:
            if name not in index:
                report.skip_box(
                    xml_path, f"unknown class name {name!r} (known: {list(names)})"
                )
                continue
            # 1-based inclusive pixel indices -> continuous coordinates.
            box, reason, clipped = check_box(
                ymin - 1, xmin - 1, ymax, xmax, height, width
            )
            if box is None:
                report.skip_box(xml_path, reason)
                continue
            if clipped:
                report.note(xml_path, f"box of {name!r} clipped to the image border")
            boxes.append(box)
            labels.append(index[name])
            difficult.append(diff)
        if parsed["objects"] and not boxes:
            report.skip_example(
                xml_path, "every object was invalid (image would be unlabelled)"
            )
            continue
        records.append(
            Record(
                image_path=image_path,
                image_id=image_id,
                boxes=np.array(boxes, np.float32).reshape(-1, 4),
                labels=np.array(labels, np.int32),
                difficult=np.array(difficult, bool),
            )
        )
    return records


def load(
    root: str,
    split: str | None = "train",
    *,
    class_names: Sequence[str] | None = None,
    strict: bool = False,
    check_images: bool = True,
) -> tf.data.Dataset:
    """Loads one split of a VOC-layout directory.

    Args:
        root: directory with `Annotations/`, `JPEGImages/`, `ImageSets/Main/`.
        split: name of `ImageSets/Main/<split>.txt`, or None for every XML.
        class_names: label order; default: sorted names found in all XMLs.
        strict: raise `ValueError` naming the file on the first bad input
            instead of skipping it with a `BadInputWarning`.
        check_images: probe image headers up front (see `read_records`).

    Returns:
        Dataset of `{"image": uint8[H,W,3], "boxes": float32[M,4]` normalised
        `[ymin, xmin, ymax, xmax]`, `"labels": int32[M], "difficult": bool[M],
        "image_id": string}`.
    """
    names = list(class_names) if class_names is not None else _found_class_names(root)
    report = SkipReport(source=f"VOC directory {root}", strict=strict)
    records = read_records(root, split, names, report, check_images=check_images)
    report.summarize(len(records))
    return records_to_dataset(
        records, with_crowd=False, ignore_decode_errors=not strict
    )

"""`load` and `class_names`: one entry point for every dataset source.

Sources:

* `"voc/2007"`, `"voc/2012"`, `"coco/2014"`, `"coco/2017"`: TensorFlow Datasets
  (downloaded and prepared by TFDS on first use).
* a directory in VOC layout (`Annotations/`, `JPEGImages/`,
  `ImageSets/Main/<split>.txt`).
* a COCO-format `.json` file, with `image_dir=` its image folder.
* `"shapes"`: the generated dataset of `shapes.py` (no files, no network).

Every source yields the example dict of DESIGN.md:
`{"image": uint8[H,W,3], "boxes": float32[M,4], "labels": int32[M],
"difficult": bool[M], "image_id": string}`, boxes normalised
`[ymin, xmin, ymax, xmax]`; COCO sources add `"is_crowd": bool[M]`.
"""

import os
from collections.abc import Sequence

import tensorflow as tf

from keras_ssd.data import coco, shapes, tfds, voc


def _kind(source) -> str:
    source = os.fspath(source)
    if source == "shapes":
        return "shapes"
    if source in tfds.TFDS_SOURCES:
        return "tfds"
    if coco.is_coco_json(source):
        return "coco"
    if voc.is_voc_dir(source):
        return "voc"
    if os.path.isdir(source):
        raise ValueError(
            f"Directory {source} is not in VOC layout: it has no Annotations/ folder"
        )
    raise ValueError(
        f"Unknown data source {source!r}: not one of "
        f"{['shapes'] + sorted(tfds.TFDS_SOURCES)}, a VOC-layout directory or a COCO .json file"
    )


def load(
    source,
    split: str | None = "train",
    *,
    class_names: Sequence[str] | None = None,
    strict: bool = False,
    image_dir: str | None = None,
    **options,
) -> tf.data.Dataset:
    """Loads a detection dataset as a `tf.data.Dataset` of example dicts.

    Args:
        source: "shapes", "voc/2007", "voc/2012", "coco/2014", "coco/2017", a
            VOC-layout directory, or a COCO-format .json file.
        split: the split. TFDS: any TFDS split string ("train",
            "validation", "test", "train[:10%]"). VOC directory: the name of
            `ImageSets/Main/<split>.txt`, or None for every annotation.
            Shapes: "train", "validation" or "test". Ignored for a COCO json
            (the file is the split).
        class_names: label order for a VOC directory or COCO json (label k is
            `class_names[k]`; objects of other classes are skipped with a
            warning). Default: sorted names found (VOC), category-id order
            (COCO). Not accepted for TFDS and shapes, whose order is fixed.
        strict: raise `ValueError` naming the file on the first bad file or
            box instead of skipping it with a `BadInputWarning` (TFDS sources
            check in the graph and raise `tf.errors.InvalidArgumentError`
            while iterating).
        image_dir: image folder of a COCO json (required there).
        **options: source-specific options. VOC dir and COCO json:
            `check_images=True` (probe every image header up front). TFDS:
            `data_dir`, `download=True`, `shuffle_files=False`. Shapes:
            `num_examples`, `image_size=(256, 320)`, `max_objects=4`,
            `min_objects=1`, `object_size=(0.03, 0.8)`, `empty_share=0.1`,
            `plain_share=0.2`, `seed=0`.

    Returns:
        Dataset of `{"image": uint8[H,W,3], "boxes": float32[M,4]` normalised
        `[ymin, xmin, ymax, xmax]`, `"labels": int32[M]` (0-based),
        `"difficult": bool[M], "image_id": string}`; COCO sources add
        `"is_crowd": bool[M]` (crowd regions, which metrics ignore).
        Images without objects are kept with M = 0. Image files are read
        by `read_image` (EXIF orientation applied: boxes refer to the
        upright image, as annotation tools draw them).

    Raises:
        ValueError: unknown source or split, missing `image_dir`, bad input
            in strict mode, every example of a VOC dir or COCO json skipped.
            TypeError: an option the source does not take.
    """
    kind = _kind(source)
    if kind != "coco" and image_dir is not None:
        raise ValueError(
            f"image_dir= is only used with a COCO json, not with {source!r}"
        )
    if kind in ("shapes", "tfds") and class_names is not None:
        raise ValueError(f"class_names= cannot reorder the fixed classes of {source!r}")
    if kind == "shapes":
        return shapes.load(split, **options)
    if kind == "tfds":
        return tfds.load(source, split, strict=strict, **options)
    if kind == "coco":
        return coco.load(
            os.fspath(source),
            image_dir,
            class_names=class_names,
            strict=strict,
            **options,
        )
    return voc.load(
        os.fspath(source), split, class_names=class_names, strict=strict, **options
    )


def class_names(source, **options) -> list[str]:
    """Class names of a source: label k of `load(source)` is `names[k]`.

    Args:
        source: as for `load`.
        **options: `data_dir` for TFDS sources.

    Returns:
        list of str. VOC directory: sorted names found in all its XMLs; COCO
        json: category names in id order; TFDS: the dataset's names (COCO's
        80 standard names); shapes: ["circle", "square", "triangle"].
    """
    kind = _kind(source)
    if kind == "shapes":
        return shapes.class_names()
    if kind == "tfds":
        return tfds.class_names(source, **options)
    if kind == "coco":
        return coco.class_names(os.fspath(source))
    return voc.class_names(os.fspath(source))

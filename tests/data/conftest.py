"""Helpers that write real image and annotation files for the data tests."""

import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf


class Files:
    """Writes images (JPEG/PNG/CMYK), VOC XMLs and COCO jsons into a folder."""

    @staticmethod
    def canvas(height, width, rects, background=(0, 0, 0)):
        """uint8 [H, W, 3] image with solid rectangles.

        rects: list of `(row0, col0, row1, col1, rgb)`, 0-based inclusive pixel
        indices of the first and last row/column inside the rectangle.
        """
        image = np.zeros((height, width, 3), np.uint8)
        image[:] = background
        for r0, c0, r1, c1, rgb in rects:
            image[r0 : r1 + 1, c0 : c1 + 1] = rgb
        return image

    @staticmethod
    def write_image(path, image, fmt=None):
        fmt = fmt or os.path.splitext(path)[1].lower().lstrip(".")
        image = tf.constant(image)
        if fmt in ("jpg", "jpeg"):
            data = tf.io.encode_jpeg(image, quality=100).numpy()
        elif fmt == "png":
            data = tf.io.encode_png(image).numpy()
        else:
            raise ValueError(fmt)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return data

    @staticmethod
    def write_cmyk_jpeg(path, height, width, cmyk=(0, 255, 0, 0)):
        from PIL import Image  # Pillow comes with matplotlib

        buf = io.BytesIO()
        Image.new("CMYK", (width, height), cmyk).save(buf, "JPEG")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(buf.getvalue())

    @staticmethod
    def write_voc_xml(root, image_id, filename, size, objects):
        """objects: list of `(name, (xmin, ymin, xmax, ymax) 1-based, difficult)`;
        coordinates are written verbatim (strings allowed, e.g. "nan")."""
        h, w = size
        parts = [
            f"<annotation><folder>VOC</folder><filename>{filename}</filename>",
            f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>",
        ]
        for name, (xmin, ymin, xmax, ymax), difficult in objects:
            parts.append(
                f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
                f"<difficult>{int(difficult)}</difficult><bndbox><xmin>{xmin}</xmin>"
                f"<ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
            )
        parts.append("</annotation>")
        os.makedirs(os.path.join(root, "Annotations"), exist_ok=True)
        with open(os.path.join(root, "Annotations", f"{image_id}.xml"), "w") as f:
            f.write("\n".join(parts))

    @staticmethod
    def write_split(root, split, ids):
        os.makedirs(os.path.join(root, "ImageSets", "Main"), exist_ok=True)
        with open(os.path.join(root, "ImageSets", "Main", f"{split}.txt"), "w") as f:
            f.write("\n".join(ids) + "\n")

    @staticmethod
    def write_json(path, data):
        with open(path, "w") as f:
            json.dump(data, f)


@pytest.fixture
def files():
    return Files


def examples(ds):
    """The dataset as a list of numpy dicts."""
    return list(ds.as_numpy_iterator())


@pytest.fixture
def as_list():
    return examples

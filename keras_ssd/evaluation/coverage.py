"""Default-box coverage: how well the default boxes of a config fit a dataset's objects.

SSD's matching (`keras_ssd.ops.matching.match`) makes a default box positive
when its IoU with an object is at least `cfg.match_iou_threshold`, and gives
every object its single best default box whatever the IoU. An object whose best
IoU with any default box is below the threshold therefore trains one positive at
most, regressed from a box it barely overlaps, and is rarely found. This module
measures that before (or after) training, from the boxes alone: per object its
best IoU, the source map of that default box, and the share of objects below
the threshold by object size.

Object size is `sqrt(h * w)` in pixels of the square network input (the
default-box scales `min_sizes` / `max_sizes` are that same measure), with boxes
normalised `[ymin, xmin, ymax, xmax]` as every source gives them: resizing to
the square input stretches the image, and normalised coordinates stay the same.
"""

from itertools import pairwise
from typing import NamedTuple

import numpy as np

from keras_ssd.evaluation.voc import pairwise_iou
from keras_ssd.layers.default_boxes import default_boxes

# Objects per block of the [objects, default boxes] IoU matrix (SSD512: 24564 boxes,
# 256 objects -> 50 MB per float64 block).
_BLOCK = 256


def object_sizes(boxes, image_size) -> np.ndarray:
    """float64 `[M]`: `sqrt(h * w)` of normalised `[ymin, xmin, ymax, xmax]` boxes `[M, 4]`,
    in pixels of the square `image_size` input."""
    boxes = np.asarray(boxes, np.float64)
    return np.sqrt(np.clip((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 0, None)) * image_size


class SizeBin(NamedTuple):
    """Objects whose size lies in `[low, high)` input pixels.

    Attributes:
        low, high: the size range in pixels of the network input (`high` may
            be inf).
        count: objects in the range.
        unmatchable: those whose best IoU is below the matching threshold.
    """

    low: float
    high: float
    count: int
    unmatchable: int

    @property
    def share(self) -> float:
        """`unmatchable / count`, NaN for an empty bin."""
        return self.unmatchable / self.count if self.count else float("nan")


class Coverage(NamedTuple):
    """Best default-box IoU of each object of a dataset.

    Attributes:
        boxes: float64 `[M, 4]`, the objects, normalised `[ymin, xmin, ymax, xmax]`.
        best_iou: float64 `[M]`, each object's highest IoU with a default box.
        source: int64 `[M]`, the source map (0 = the finest) of that default box.
        positives: int64 `[M]`, default boxes at IoU >= `threshold` with each
            object (the matcher's threshold rule; an object with none still
            gets its best box as its one positive).
        threshold: the config's `match_iou_threshold`.
        image_size: side of the network input in pixels.
        scales: the config's `min_sizes` in pixels: the size bins' edges.
    """

    boxes: np.ndarray
    best_iou: np.ndarray
    source: np.ndarray
    positives: np.ndarray
    threshold: float
    image_size: int
    scales: tuple

    @property
    def sizes(self) -> np.ndarray:
        """float64 `[M]`: each object's `sqrt(h * w)` in input pixels."""
        return object_sizes(self.boxes, self.image_size)

    @property
    def unmatchable(self) -> np.ndarray:
        """bool `[M]`: best IoU below the matching threshold."""
        return self.best_iou < self.threshold

    @property
    def share_unmatchable(self) -> float:
        """Share of objects whose best IoU is below the threshold (NaN without objects)."""
        return float(np.mean(self.unmatchable)) if self.best_iou.size else float("nan")

    @property
    def mean_best_iou(self) -> float:
        """Mean of `best_iou` (NaN without objects)."""
        return float(np.mean(self.best_iou)) if self.best_iou.size else float("nan")

    @property
    def mean_positives(self) -> float:
        """Mean of `positives` (NaN without objects)."""
        return float(np.mean(self.positives)) if self.positives.size else float("nan")

    def by_size(self, scales=None) -> list[SizeBin]:
        """Counts per size range, with edges at the default-box scales.

        Args:
            scales: the edges in input pixels (default: this coverage's
                `scales`; another config's, to compare two on the same ranges).

        Returns:
            One `SizeBin` per range: below the smallest default box
            (`[0, min_sizes[0])`), between consecutive `min_sizes`, and at or
            above the largest (`[min_sizes[-1], inf)`).
        """
        edges = [0.0, *(self.scales if scales is None else scales), float("inf")]
        sizes, unmatchable = self.sizes, self.unmatchable
        bins = []
        for low, high in pairwise(edges):
            inside = (sizes >= low) & (sizes < high)
            bins.append(SizeBin(low, high, int(inside.sum()), int((inside & unmatchable).sum())))
        return bins


def source_of_boxes(cfg) -> np.ndarray:
    """int64 `[N]`: the source map of each default box of `cfg`, in `default_boxes` order."""
    counts = cfg.boxes_per_source_map
    return np.repeat(np.arange(len(counts)), counts)


def default_box_coverage(boxes, cfg) -> Coverage:
    """Best IoU of each object with the default boxes of `cfg`.

    Args:
        boxes: float `[M, 4]`, objects as normalised `[ymin, xmin, ymax, xmax]`
            (e.g. `dataset_boxes(...)`).
        cfg: the `keras_ssd.SSDConfig` whose default boxes
            (`keras_ssd.default_boxes(cfg)`) and `match_iou_threshold` are
            measured.

    Returns:
        A `Coverage`.

    Raises:
        ValueError: `boxes` is not `[M, 4]`.
    """
    boxes = np.asarray(boxes, np.float64)
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be [M, 4] normalised [ymin, xmin, ymax, xmax]; got shape {boxes.shape}")
    anchors = default_boxes(cfg)
    best_iou = np.zeros(len(boxes))
    best_box = np.zeros(len(boxes), np.int64)
    positives = np.zeros(len(boxes), np.int64)
    for start in range(0, len(boxes), _BLOCK):
        block = slice(start, start + _BLOCK)
        iou = pairwise_iou(boxes[block], anchors)
        best_box[block] = np.argmax(iou, axis=1)
        best_iou[block] = iou[np.arange(len(iou)), best_box[block]]
        positives[block] = np.sum(iou >= cfg.match_iou_threshold, axis=1)
    return Coverage(
        boxes,
        best_iou,
        source_of_boxes(cfg)[best_box],
        positives,
        float(cfg.match_iou_threshold),
        int(cfg.image_size),
        tuple(float(s) for s in cfg.min_sizes),
    )


def dataset_boxes(dataset) -> np.ndarray:
    """Every object box of a dataset.

    Args:
        dataset: an iterable (e.g. a `tf.data.Dataset`) of example dicts from
            `keras_ssd.data.load` (`"boxes"` `[M, 4]`) or of batches from
            `keras_ssd.data.eval_pipeline` (`"boxes"` `[B, M, 4]` with
            `"labels"` padded with -1). Boxes are normalised
            `[ymin, xmin, ymax, xmax]`.

    Returns:
        float32 `[total, 4]`, padding dropped.
    """
    found = [np.zeros((0, 4), np.float32)]
    for element in dataset:
        boxes = np.asarray(element["boxes"], np.float32)
        labels = np.asarray(element["labels"])
        found.append(boxes.reshape(-1, 4)[labels.reshape(-1) >= 0])
    return np.concatenate(found)

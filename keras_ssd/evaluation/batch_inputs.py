"""Splits padded detection and ground-truth batches into per-image numpy arrays.

Both evaluators accept the same two batch dicts; this module checks them once and
turns the padding conventions (`num_detections` for detections, label -1 for
ground truth) into per-image arrays with the padding removed.
"""

from typing import NamedTuple

import numpy as np

from keras_ssd.detections import detection_arrays


class ImageDetections(NamedTuple):
    """Detections of one image, padding removed.

    Attributes:
        boxes: float64 `[K, 4]`, normalised `[ymin, xmin, ymax, xmax]`.
        scores: float64 `[K]`.
        classes: int64 `[K]`, 0-based object class.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


class ImageGroundTruth(NamedTuple):
    """Ground truth of one image, padding removed.

    Attributes:
        boxes: float64 `[M, 4]`, normalised `[ymin, xmin, ymax, xmax]`.
        labels: int64 `[M]`, 0-based object class.
        difficult: bool `[M]`.
        is_crowd: bool `[M]`.
        original_size: int `(height, width)` in pixels, or None if the batch has no
            `"original_size"`.
    """

    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    is_crowd: np.ndarray
    original_size: tuple | None


def _check_classes(values: np.ndarray, num_classes: int, what: str) -> None:
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
        raise ValueError(
            f"{what} must be 0-based object classes in [0, {num_classes}); "
            f"got {sorted(set(bad.tolist()))[:10]}"
        )


def split_detections(detections, num_classes: int) -> list[ImageDetections]:
    """Splits a padded detection batch into per-image arrays.

    Args:
        detections: dict of arrays or tensors, as returned by
            `keras_ssd.build_detector(...)(images)`: `detection_boxes` `[B, K, 4]`
            (normalised `[ymin, xmin, ymax, xmax]`), `detection_scores` `[B, K]`,
            `detection_classes` `[B, K]` (0-based object class), `num_detections`
            `[B]`. Entries at index >= `num_detections[b]` are ignored.
        num_classes: number of object classes; classes outside `[0, num_classes)`
            among the valid entries raise.

    Returns:
        A list of B `ImageDetections`.

    Raises:
        ValueError: a key is missing, shapes disagree, or a class is out of range.
    """
    boxes, scores, classes, counts = detection_arrays(detections)
    boxes, scores = boxes.astype(np.float64), scores.astype(np.float64)
    classes = np.rint(classes).astype(np.int64)
    result = []
    for b, n in enumerate(counts):
        image_classes = classes[b, :n]
        _check_classes(image_classes, num_classes, "detection_classes")
        result.append(ImageDetections(boxes[b, :n], scores[b, :n], image_classes))
    return result


def split_ground_truth(ground_truth, num_classes: int) -> list[ImageGroundTruth]:
    """Splits a padded ground-truth batch into per-image arrays.

    Args:
        ground_truth: dict of arrays or tensors: `"boxes"` `[B, M, 4]` (normalised
            `[ymin, xmin, ymax, xmax]`, zero padded), `"labels"` int `[B, M]`
            (0-based, padded with -1), and optionally `"difficult"` bool `[B, M]`,
            `"is_crowd"` bool `[B, M]` (both False when absent) and
            `"original_size"` int `[B, 2]` as `(height, width)` pixels.
        num_classes: number of object classes; labels >= `num_classes` raise.

    Returns:
        A list of B `ImageGroundTruth`; entries with label < 0 are dropped.

    Raises:
        ValueError: a key is missing, shapes disagree, or a label is out of range.
    """
    missing = [k for k in ("boxes", "labels") if k not in ground_truth]
    if missing:
        raise ValueError(f"ground_truth lacks key(s) {missing}; got keys {sorted(ground_truth)}")
    boxes = np.asarray(ground_truth["boxes"], np.float64)
    labels = np.asarray(ground_truth["labels"]).astype(np.int64)
    if boxes.ndim != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"ground_truth['boxes'] must be [B, M, 4]; got shape {boxes.shape}")
    if labels.shape != boxes.shape[:2]:
        raise ValueError(
            f"ground_truth['labels'] must be [B, M] = {boxes.shape[:2]}; got {labels.shape}"
        )
    flags = {}
    for key in ("difficult", "is_crowd"):
        value = ground_truth.get(key)
        flags[key] = np.zeros(labels.shape, bool) if value is None else np.asarray(value, bool)
        if flags[key].shape != labels.shape:
            raise ValueError(
                f"ground_truth['{key}'] must be [B, M] = {labels.shape}; got {flags[key].shape}"
            )
    sizes = ground_truth.get("original_size")
    if sizes is not None:
        sizes = np.asarray(sizes).astype(np.int64)
        if sizes.shape != (boxes.shape[0], 2):
            raise ValueError(
                f"ground_truth['original_size'] must be [B, 2] = ({boxes.shape[0]}, 2) "
                f"(height, width); got {sizes.shape}"
            )
    valid = labels >= 0
    _check_classes(labels[valid], num_classes, "ground_truth['labels']")
    return [
        ImageGroundTruth(
            boxes[b][valid[b]],
            labels[b][valid[b]],
            flags["difficult"][b][valid[b]],
            flags["is_crowd"][b][valid[b]],
            None if sizes is None else (int(sizes[b, 0]), int(sizes[b, 1])),
        )
        for b in range(boxes.shape[0])
    ]


def split_batch(detections, ground_truth, num_classes: int):
    """Splits a detection batch and its ground-truth batch into per-image pairs.

    Args:
        detections: the detector's output dict; see `split_detections`.
        ground_truth: the evaluation batch dict; see `split_ground_truth`.
        num_classes: number of object classes.

    Returns:
        A list of B `(ImageDetections, ImageGroundTruth)` pairs.

    Raises:
        ValueError: either dict is malformed or their batch sizes differ.
    """
    dets = split_detections(detections, num_classes)
    gts = split_ground_truth(ground_truth, num_classes)
    if len(dets) != len(gts):
        raise ValueError(f"detections hold {len(dets)} images but ground_truth holds {len(gts)}")
    return list(zip(dets, gts))

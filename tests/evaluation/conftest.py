"""Builders for padded detection / ground-truth batches in the detector's format."""

import numpy as np
import pytest

# Padding written past num_detections: a top-scored class-0 box far from every test
# ground truth. Were it counted, it would be a false positive ranked first.
PAD_BOX, PAD_SCORE, PAD_CLASS = [0.97, 0.97, 0.99, 0.99], 1.0, 0


def detections_batch(images, max_detections=None):
    """images: per image a list of (box yxyx normalised, score, class)."""
    k = max_detections or max(1, max(len(d) for d in images) + 2)
    boxes = np.tile(np.array(PAD_BOX, np.float32), (len(images), k, 1))
    scores = np.full((len(images), k), PAD_SCORE, np.float32)
    classes = np.full((len(images), k), PAD_CLASS, np.int32)
    for b, dets in enumerate(images):
        for i, (box, score, cls) in enumerate(dets):
            boxes[b, i], scores[b, i], classes[b, i] = box, score, cls
    return {
        "detection_boxes": boxes,
        "detection_scores": scores,
        "detection_classes": classes,
        "num_detections": np.array([len(d) for d in images], np.int32),
    }


def ground_truth_batch(images, sizes=None):
    """images: per image a list of (box, label) or (box, label, difficult, is_crowd)."""
    m = max(1, max(len(g) for g in images) + 1)
    out = {
        "boxes": np.zeros((len(images), m, 4), np.float32),
        "labels": np.full((len(images), m), -1, np.int32),
        "difficult": np.zeros((len(images), m), bool),
        "is_crowd": np.zeros((len(images), m), bool),
        "original_size": np.array(sizes or [(300, 300)] * len(images), np.int32),
    }
    for b, objects in enumerate(images):
        for i, obj in enumerate(objects):
            box, label, difficult, crowd = (tuple(obj) + (False, False))[:4]
            out["boxes"][b, i], out["labels"][b, i] = box, label
            out["difficult"][b, i], out["is_crowd"][b, i] = difficult, crowd
    return out


@pytest.fixture
def make_detections():
    return detections_batch


@pytest.fixture
def make_ground_truth():
    return ground_truth_batch

"""The detection output contract: what every detector and every reader of an exported model returns.

A batch of detections is a dict of four arrays, K = the model's `max_detections`:

* `detection_boxes` float32 `[B, K, 4]`, normalised `[ymin, xmin, ymax, xmax]`
  in [0, 1];
* `detection_scores` float32 `[B, K]`, best first;
* `detection_classes` int32 `[B, K]`, 0-based object class;
* `num_detections` int32 `[B]`, how many rows of image b hold detections.

Rows at index >= `num_detections[b]` are zero. Runtimes do not all promise that:
LiteRT's `TFLite_Detection_PostProcess` writes only the first `num_detections`
rows and leaves the rest as the interpreter's memory held them (scores above 1
and boxes like `[1, 0, 1, 0]` have been read there). `as_detections` is the one
place that turns a runtime's raw outputs into the contract.
"""

import numpy as np

DETECTION_KEYS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def detection_arrays(detections):
    """Checks a detection dict and returns its four arrays, unchanged in value.

    Args:
        detections: dict of arrays or tensors with the keys of `DETECTION_KEYS`:
            boxes `[B, K, 4]`, scores `[B, K]`, classes `[B, K]`, counts `[B]`.

    Returns:
        `(boxes, scores, classes, counts)` as numpy arrays in their own dtypes,
        except `counts`, int64.

    Raises:
        ValueError: a key is missing, the shapes disagree, or a count lies
            outside [0, K] (the message quotes what was given).
    """
    missing = [k for k in DETECTION_KEYS if k not in detections]
    if missing:
        raise ValueError(f"detections lack key(s) {missing}; got keys {sorted(detections)}")
    boxes, scores, classes, counts = (np.asarray(detections[k]) for k in DETECTION_KEYS)
    if boxes.ndim != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"detection_boxes must be [B, K, 4]; got shape {boxes.shape}")
    if scores.shape != boxes.shape[:2] or classes.shape != boxes.shape[:2]:
        raise ValueError(
            "detection_scores and detection_classes must be [B, K] matching detection_boxes "
            f"{boxes.shape}; got {scores.shape} and {classes.shape}"
        )
    counts = counts.reshape(-1)
    if counts.shape != boxes.shape[:1]:
        raise ValueError(f"num_detections must be [B] with B={boxes.shape[0]}; got {counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any((counts < 0) | (counts > boxes.shape[1])):
        raise ValueError(f"num_detections must lie in [0, K={boxes.shape[1]}]; got {counts.tolist()}")
    return boxes, scores, classes, np.rint(counts).astype(np.int64)


def as_detections(outputs):
    """A runtime's raw detection outputs as the contract every reader returns.

    Args:
        outputs: dict with the keys of `DETECTION_KEYS` (other keys are
            dropped), numpy arrays or tensors of any numeric dtype, as a
            runtime returned them: boxes `[B, K, 4]` normalised yxyx, scores and
            classes (0-based) `[B, K]`, counts `[B]`; rows past a count may hold
            anything, NaN included.

    Returns:
        dict of numpy arrays: `detection_boxes` float32 `[B, K, 4]` clipped to
        [0, 1], `detection_scores` float32 `[B, K]`, `detection_classes` int32
        `[B, K]`, `num_detections` int32 `[B]`; every row at index >=
        `num_detections[b]` is zero.

    Raises:
        ValueError: as `detection_arrays`.
    """
    boxes, scores, classes, counts = detection_arrays(outputs)
    valid = np.arange(boxes.shape[1])[None, :] < counts[:, None]
    return {
        "detection_boxes": np.clip(np.where(valid[..., None], boxes, 0), 0.0, 1.0).astype(np.float32),
        "detection_scores": np.where(valid, scores, 0).astype(np.float32),
        "detection_classes": np.rint(np.where(valid, classes, 0)).astype(np.int32),
        "num_detections": counts.astype(np.int32),
    }

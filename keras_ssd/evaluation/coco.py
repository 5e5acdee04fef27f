"""COCO detection AP (AP@[.5:.95], AP50, AP75, APs/m/l) through pycocotools.

Batches are kept as arrays and turned into in-memory COCO ground-truth and result
objects only in `COCOEvaluator.result`, so nothing touches the disk. Conversions:

- Boxes: normalised `[ymin, xmin, ymax, xmax]` become COCO pixel `[x, y, w, h]`
  using each image's `original_size` `(height, width)`, the size COCO's area
  ranges (small < 32^2 px, medium < 96^2, large) refer to.
- Ground-truth `area` is the pixel box area. Official COCO uses the mask area for
  the size buckets, which a box-only pipeline does not have, so APs/m/l can
  differ slightly from the official server's; AP, AP50 and AP75 do not depend
  on it.
- `is_crowd` boxes become `iscrowd=1` annotations: pycocotools then ignores
  detections that fall inside them instead of counting them as FPs, and never
  counts them as misses. `difficult` boxes (VOC sources) are passed the same way,
  crowd being pycocotools' only ignore mechanism.
- Category id = the 0-based object class; image ids are 1, 2, ... in feed order.
"""

import contextlib
import io
from collections.abc import Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from keras_ssd.evaluation.batch_inputs import split_batch

SUMMARY_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def _to_pixel_xywh(boxes: np.ndarray, size) -> np.ndarray:
    """Normalised `[ymin, xmin, ymax, xmax]` `[N, 4]` -> pixel `[x, y, w, h]` `[N, 4]`."""
    height, width = size
    scale = np.array([height, width, height, width], np.float64)
    ymin, xmin, ymax, xmax = (boxes * scale).T
    return np.stack([xmin, ymin, xmax - xmin, ymax - ymin], axis=-1)


def _coco(dataset: dict) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    coco.createIndex()
    return coco


class COCOEvaluator:
    """Accumulates detections over a dataset and computes COCO box AP.

    Example:
        ```python
        ev = COCOEvaluator(num_classes=80, class_names=names)
        for batch in eval_ds:
            ev.update(detector(batch["image"]), batch)
        print(format_table(ev.result()))
        print(ev.summary)  # pycocotools' own 12-line summary
        ```

    Args:
        num_classes: number of object classes (0-based labels `0..num_classes-1`).
        class_names: optional `num_classes` names used as keys of the per-class AP.

    Attributes:
        summary: pycocotools' 12-line AP/AR summary from the last `result()`
            call (captured, not printed; its progress messages are dropped),
            "" before.
    """

    def __init__(self, num_classes: int, class_names: Sequence[str] | None = None):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1; got {num_classes}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(
                f"class_names has {len(class_names)} names but num_classes is {num_classes}"
            )
        self.num_classes = int(num_classes)
        self.class_names = None if class_names is None else list(class_names)
        self.summary = ""
        self.reset()

    def reset(self) -> None:
        """Forgets everything accumulated so far."""
        self._images, self._gt, self._dets = [], [], []
        self.num_images = 0

    def update(self, detections, ground_truth) -> None:
        """Adds one batch.

        Args:
            detections: dict of arrays or tensors from the detector:
                `detection_boxes` `[B, K, 4]` (normalised `[ymin, xmin, ymax, xmax]`),
                `detection_scores` `[B, K]`, `detection_classes` `[B, K]` (0-based),
                `num_detections` `[B]` (entries past it are ignored).
            ground_truth: dict of arrays or tensors: `"boxes"` `[B, M, 4]` (normalised
                `[ymin, xmin, ymax, xmax]`), `"labels"` `[B, M]` (0-based, -1 pads),
                `"original_size"` int `[B, 2]` `(height, width)` in pixels, optional
                `"is_crowd"` and `"difficult"` bool `[B, M]`.

        Raises:
            ValueError: malformed or mismatched batches, or no `"original_size"`.
        """
        if "original_size" not in ground_truth:
            raise ValueError(
                "COCO metrics need ground_truth['original_size'] [B, 2] (height, width) to "
                f"convert boxes to pixels; got keys {sorted(ground_truth)}"
            )
        for dets, gt in split_batch(detections, ground_truth, self.num_classes):
            self.num_images += 1
            image_id = self.num_images
            self._images.append(
                {"id": image_id, "height": gt.original_size[0], "width": gt.original_size[1]}
            )
            self._gt.append(
                (
                    image_id,
                    _to_pixel_xywh(gt.boxes, gt.original_size),
                    gt.labels,
                    gt.is_crowd | gt.difficult,
                )
            )
            self._dets.append(
                (image_id, _to_pixel_xywh(dets.boxes, gt.original_size), dets.classes, dets.scores)
            )

    def _datasets(self):
        categories = [{"id": k} for k in range(self.num_classes)]
        gt_anns, det_anns = [], []
        for image_id, boxes, labels, crowd in self._gt:
            for box, label, is_crowd in zip(boxes.tolist(), labels.tolist(), crowd.tolist()):
                gt_anns.append(
                    {
                        "id": len(gt_anns) + 1,
                        "image_id": image_id,
                        "bbox": box,
                        "area": box[2] * box[3],
                        "category_id": label,
                        "iscrowd": int(is_crowd),
                    }
                )
        for image_id, boxes, classes, scores in self._dets:
            for box, label, score in zip(boxes.tolist(), classes.tolist(), scores.tolist()):
                det_anns.append(
                    {
                        "id": len(det_anns) + 1,
                        "image_id": image_id,
                        "bbox": box,
                        "area": box[2] * box[3],
                        "category_id": label,
                        "score": score,
                        "iscrowd": 0,
                    }
                )
        gt = {"images": self._images, "categories": categories, "annotations": gt_anns}
        dt = {"images": self._images, "categories": categories, "annotations": det_anns}
        return gt, dt

    def result(self) -> dict[str, object]:
        """COCO AP over everything added since the last `reset`.

        Returns:
            `{"mAP", "AP", "AP50", "AP75", "APs", "APm", "APl": float,
            "per_class_ap": {name_or_id: float}}`. `"mAP"` equals `"AP"`
            (AP@[.5:.95], 100 detections per image) so callers can treat every
            evaluator alike; per-class AP is AP@[.5:.95] of that class. A value
            pycocotools cannot compute (no ground truth in that class or size
            range; it reports -1) is NaN.
        """
        names = self.class_names or list(range(self.num_classes))
        if not self.num_images:
            self.summary = ""
            nan = float("nan")
            return {
                "mAP": nan,
                **{k: nan for k in SUMMARY_KEYS},
                "per_class_ap": {name: nan for name in names},
            }
        gt, dt = self._datasets()
        with contextlib.redirect_stdout(io.StringIO()):  # progress chatter
            evaluation = COCOeval(_coco(gt), _coco(dt), iouType="bbox")
            evaluation.evaluate()
            evaluation.accumulate()
        summary = io.StringIO()
        with contextlib.redirect_stdout(summary):
            evaluation.summarize()
        self.summary = summary.getvalue()
        stats = [float("nan") if s < 0 else float(s) for s in evaluation.stats[: len(SUMMARY_KEYS)]]
        # precision: [iou thresholds, recall points, classes, area ranges ("all" first),
        # max detections (100 last)]; -1 where the class has no ground truth.
        precision = evaluation.eval["precision"][:, :, :, 0, -1]
        per_class = []
        for k in range(self.num_classes):
            values = precision[:, :, k]
            values = values[values > -1]
            per_class.append(float(np.mean(values)) if values.size else float("nan"))
        result = dict(zip(SUMMARY_KEYS, stats))
        return {"mAP": result["AP"], **result, "per_class_ap": dict(zip(names, per_class))}

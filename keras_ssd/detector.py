"""`build_detector`: the training model plus post-processing, for inference and export."""

import dataclasses

import keras

from keras_ssd.layers.default_boxes import DefaultBoxes
from keras_ssd.layers.detection_decoder import DetectionDecoder
from keras_ssd.model import ssd_config_of


def build_detector(model, cfg=None, **overrides):
    """Wraps an SSD training model with a `DetectionDecoder`.

    Args:
        model: an `SSD` model from `build_ssd` (or any model with the same output).
        cfg: its `SSDConfig`; defaults to `model.ssd_config`.
        **overrides: post-processing settings to change from `cfg`:
            `score_threshold`, `nms_iou_threshold`, `pre_nms_top_k`, `max_detections`.

    Returns:
        A Keras model: RGB images 0..255 `[B, S, S, 3]` -> dict with
        `detection_boxes` `[B, K, 4]` (normalised yxyx), `detection_scores` `[B, K]`,
        `detection_classes` `[B, K]` (0-based object class), `num_detections` `[B]`.
    """
    if cfg is None:
        cfg = ssd_config_of(model, "build_detector without cfg")
    allowed = {"score_threshold", "nms_iou_threshold", "pre_nms_top_k", "max_detections"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"Unknown post-processing setting(s) {unknown}; valid: {sorted(allowed)}")
    cfg = dataclasses.replace(cfg, **overrides)
    images = keras.Input((cfg.image_size, cfg.image_size, 3), name="images")
    decoder = DetectionDecoder(
        num_classes=cfg.num_classes,
        default_boxes=DefaultBoxes.from_ssd_config(cfg, name="default_boxes", dtype="float32"),
        variances=cfg.variances,
        score_threshold=cfg.score_threshold,
        iou_threshold=cfg.nms_iou_threshold,
        pre_nms_top_k=cfg.pre_nms_top_k,
        max_detections=cfg.max_detections,
        name="detection_decoder",
        # Float32 under any global policy: box decoding and scores keep full precision.
        dtype="float32",
    )
    return keras.Model(images, decoder(model(images)), name=f"{model.name}_detector")

"""Transfer learning: change the classes of a trained SSD, keep what it learned."""

import dataclasses
import re

from keras_ssd.model import build_ssd, ssd_config_of

# The class-score predictors `conf_0` .. `conf_k`, whose outputs depend on the classes
# (SSDLite's `conf_k_depthwise` convs before them do not).
_CLASS_HEAD = re.compile(r"conf_\d+")


def with_num_classes(model, num_classes, class_names=None):
    """A copy of `model` for `num_classes` classes: same backbone and box heads,
    new class heads.

    Every weight is copied except the class-score predictors `conf_k`, whose
    output size depends on the classes; they get a fresh initialisation (as in
    `build_ssd`). SSDLite's depthwise convs before them (`conf_k_depthwise`)
    are kept. Use it to fine-tune a detector trained on other data (e.g.
    the converted torchvision COCO model) on your own classes:

        coco = keras.models.load_model("ssd300_coco.keras")
        model = keras_ssd.with_num_classes(coco, 3, ["cat", "dog", "bird"])
        model.compile(optimizer=..., loss=keras_ssd.SSDLoss())

    Args:
        model: an `SSD` model (from `build_ssd`, `keras.models.load_model`, or
            `keras_ssd.convert.convert_torchvision_ssd300`).
        num_classes: object classes of the new model, background excluded.
        class_names: optional names of the `num_classes` classes.

    Returns:
        A new, uncompiled `SSD` whose config is `model.ssd_config` with
        `num_classes` replaced (default boxes, preprocessing and
        post-processing settings are kept).

    Raises:
        ValueError: if `model` is not an SSD model, or `class_names` does not
            have `num_classes` names.
    """
    cfg = ssd_config_of(model, "with_num_classes")
    new = build_ssd(dataclasses.replace(cfg, num_classes=num_classes), class_names=class_names)
    for layer in new.layers:
        if layer.weights and not _CLASS_HEAD.fullmatch(layer.name):
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return new

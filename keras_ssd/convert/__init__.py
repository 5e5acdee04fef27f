"""Weights from other SSD implementations (torchvision's `ssd300_vgg16`)."""

from keras_ssd.convert.torchvision_ssd import (
    CHECKPOINT_URL,
    COCO_CLASS_NAMES,
    convert_torchvision_ssd300,
    load_torchvision_state_dict,
    torchvision_ssd300_config,
    weight_map,
)

__all__ = [
    "CHECKPOINT_URL",
    "COCO_CLASS_NAMES",
    "convert_torchvision_ssd300",
    "load_torchvision_state_dict",
    "torchvision_ssd300_config",
    "weight_map",
]

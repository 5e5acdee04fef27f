"""Datasets and input pipelines for keras_ssd.

Boxes are float32, normalised `[ymin, xmin, ymax, xmax]` everywhere. Example
dicts: `{"image": uint8[H,W,3], "boxes": float32[M,4], "labels": int32[M],
"difficult": bool[M], "image_id": string}` (COCO sources add
`"is_crowd": bool[M]`).
"""

from keras_ssd.data.augment import AugmentOptions, augment_example
from keras_ssd.data.image_files import ImageFileError, read_image
from keras_ssd.data.pipelines import eval_pipeline, train_pipeline
from keras_ssd.data.reporting import BadInputWarning
from keras_ssd.data.sources import class_names, load

__all__ = [
    "AugmentOptions",
    "BadInputWarning",
    "ImageFileError",
    "augment_example",
    "class_names",
    "eval_pipeline",
    "load",
    "read_image",
    "train_pipeline",
]

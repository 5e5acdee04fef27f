"""SavedModel export for TF Serving, one signature per input type (Model Garden style).

Signatures (inputs -> the same four outputs):

* `serving_default`: `images` uint8 `[B, H, W, 3]` RGB, any H and W (every
  image of a batch has the same size); resized to the network input inside.
* `serve_image_bytes`: `image_bytes` string `[B]`, encoded JPEG/PNG/GIF/BMP
  files of any sizes (what TF Serving's REST API delivers from
  `{"b64": ...}`), decoded and resized inside.

Outputs (the TF Object Detection API's names, `keras_ssd.build_detector`'s
values): `detection_boxes` float32 `[B, K, 4]` normalised
`[ymin, xmin, ymax, xmax]`, `detection_scores` float32 `[B, K]`,
`detection_classes` int32 `[B, K]` (0-based object class; the OD API's are
1-based floats), `num_detections` int32 `[B]`; entries past `num_detections`
are zero. K = `max_detections`.

The model is written to `<export_dir>/<name>/<version>/` (see `versioning.py`)
with its class names in `assets.extra/labels.txt`.

`precision="mixed_bfloat16"` writes a variant whose network computes in
bfloat16 (variables, inputs and outputs as in float32): for serving on CPUs
with AVX512_BF16 or AMX, where oneDNN's bf16 kernels run it ~2-3x faster. It
is an ordinary SavedModel (TF Serving and `tf.saved_model.load` need no
setting); elsewhere it still runs, no faster than float32.
"""

import os

import keras
import tensorflow as tf

from keras_ssd.detections import DETECTION_KEYS
from keras_ssd.detector import build_detector
from keras_ssd.export import labels, versioning
from keras_ssd.export.images import decode_images, resize_images
from keras_ssd.model import ssd_config_of
from keras_ssd.precision import POLICIES, with_precision

SIGNATURES = ("serving_default", "serve_image_bytes")
OUTPUT_KEYS = DETECTION_KEYS


def export_saved_model(model, export_dir, *, name=None, version=None, precision="float32", verbose=False,
                       **postprocess):
    """Exports an SSD model as a versioned SavedModel for TF Serving.

    Args:
        model: an `SSD` model (`keras_ssd.build_ssd` or a loaded `.keras` file).
        export_dir: the base directory TF Serving's `--model_base_path` parent
            points to; the model lands in `<export_dir>/<name>/<version>/`.
        name: the model's serving name; default `model.name` (the preset name).
        version: a positive int; default one more than the highest existing
            version. An existing version is never overwritten.
        precision: the network's policy, one of `keras_ssd.precision.POLICIES`:
            "float32" (default: every machine) or "mixed_bfloat16" (CPUs
            with AVX512_BF16 or AMX).
        verbose: print Keras' export summary.
        **postprocess: `build_detector` overrides (`score_threshold`,
            `nms_iou_threshold`, `pre_nms_top_k`, `max_detections`).

    Returns:
        The path of the written version directory.

    Raises:
        FileExistsError: `version` names an existing directory.
        ValueError: `model` is not an SSD model, or a bad override, version or precision.
    """
    cfg = ssd_config_of(model, "export_saved_model")
    if precision not in POLICIES:
        raise ValueError(f"precision must be one of {POLICIES}, got {precision!r}")
    model = with_precision(model, precision)
    name = name or model.name
    if not name or os.sep in name or name.isdigit():
        raise ValueError(f"name must be a non-numeric directory name, got {name!r}")
    path = versioning.resolve_version(os.path.join(export_dir, name), version)
    detector = build_detector(model, **postprocess)
    size = cfg.image_size

    def serve_images(images):
        return detector(resize_images(images, size), training=False)

    def serve_image_bytes(image_bytes):
        return detector(decode_images(image_bytes, size), training=False)

    archive = keras.export.ExportArchive()
    archive.track(detector)
    archive.add_endpoint(
        "serving_default",
        serve_images,
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")],
    )
    archive.add_endpoint(
        "serve_image_bytes",
        serve_image_bytes,
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
    )
    with versioning.atomic_directory(path) as tmp:
        archive.write_out(tmp, verbose=verbose)
        labels.write_labels(os.path.join(tmp, labels.SAVED_MODEL_LABELS), labels.model_class_names(model))
    return path

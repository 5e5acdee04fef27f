"""TFLite export: float32, dynamic-range, float16 and full-integer int8 `.tflite` files.

The `.tflite` graph takes uint8 `[1, S, S, 3]` RGB (0..255, already resized to
the network input, as a camera frame is after scaling) and ends in
`TFLite_Detection_PostProcess` ops (see `tflite_postprocess.py`), whose four
float32 outputs are the model's, named in its `serving_default` signature and
in this subgraph order: `detection_boxes` `[1, K, 4]` normalised
`[ymin, xmin, ymax, xmax]`, `detection_classes` `[1, K]` (0-based object
class), `detection_scores` `[1, K]`, `num_detections` `[1]`. Every file
carries TFLite model metadata with the class names (`tflite_metadata.py`), so
MediaPipe's `ObjectDetector` and the task library load it as it is; the names
are also written beside it as `<stem>.labels.txt`.

Quantisation (`quantize=`):

* `"none"`: float32 weights and activations.
* `"dynamic"`: int8 weights, float activations (about 4x smaller).
* `"float16"`: float16 weights (about 2x smaller; GPU delegates run it in fp16).
* `"int8"`: int8 weights and activations, calibrated on representative images
  from the training data (`calibration_images`). Box offsets and class logits
  are taken before `y_pred`'s concatenation so each has its own quantisation
  scale; the post-processing decodes their dequantised values in float32, so
  int8 boxes are as fine as float ones. On the demo model int8 and float32
  VOC07 mAP are within 1 point.

Conversion goes Keras -> SavedModel (Keras' `ExportArchive`, which freezes the
variables) -> `tf.lite.TFLiteConverter.from_saved_model`, with builtin ops and
the one custom op only (no Flex/TF Select ops).
"""

import re
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf
from tensorflow.lite.tools import flatbuffer_utils

from keras_ssd.detector import build_detector
from keras_ssd.export import labels, versioning
from keras_ssd.export.images import resize_images
from keras_ssd.export.tflite_metadata import add_detection_metadata
from keras_ssd.export.tflite_postprocess import FLOAT_SCOPE, detection_postprocess
from keras_ssd.model import ssd_config_of
from keras_ssd.precision import with_precision
from keras_ssd.version import __version__

QUANTIZATIONS = ("none", "dynamic", "float16", "int8")
# The TF Object Detection API's output order, which readers that go by position use.
OUTPUT_ORDER = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")


def calibration_images(dataset, image_size, num_images=100):
    """Representative images for int8 calibration, from a detection dataset.

    Args:
        dataset: a `tf.data.Dataset` of example dicts (`keras_ssd.data.load`)
            with `"image"` uint8 `[H, W, 3]`; use training data.
        image_size: side S of the network input.
        num_images: images to take.

    Returns:
        uint8 numpy `[num_images, S, S, 3]`, resized as the exported models
        resize (bilinear), rounded.

    Raises:
        ValueError: the dataset has fewer than one image.
    """
    images = []
    for example in dataset.take(num_images):
        resized = resize_images(example["image"][None], image_size)[0]
        images.append(np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8))
    if not images:
        raise ValueError("calibration dataset yielded no images")
    return np.stack(images)


def _heads(model):
    """`model` with two outputs: box offsets `[B, N, 4]` and class logits `[B, N, C + 1]`.

    `y_pred` concatenates the two, and an int8 tensor has one scale: offsets
    (a few units) would share the range of the logits (tens of units) and lose
    most of their resolution. Taking them before `build_ssd`'s "box_offsets" /
    "class_logits" concatenation gives each its own scale.
    """
    return keras.Model(
        model.inputs,
        [model.get_layer("box_offsets").output, model.get_layer("class_logits").output],
        name=f"{model.name}_heads",
    )


def _tflite_graph(heads, decoder, size, use_regular_nms):
    """The function the converter sees: uint8 image -> the post-processing's four outputs."""

    def serve(images):
        offsets, logits = heads(tf.cast(images, tf.float32), training=False)
        boxes, classes, scores, count = detection_postprocess(
            tf.cast(offsets, tf.float32), tf.cast(logits, tf.float32), decoder, use_regular_nms=use_regular_nms
        )
        return {
            "detection_boxes": boxes,
            "detection_classes": classes,
            "detection_scores": scores,
            "num_detections": count,
        }

    return serve, [tf.TensorSpec([1, size, size, 3], tf.uint8, name="images")]


def _representative(images, verbose):
    def generate():
        for i, image in enumerate(images, start=1):
            if verbose and (i % 10 == 0 or i == len(images)):
                print(f"int8 calibration: {i}/{len(images)} images", file=sys.stderr, flush=True)
            yield [image[None]]

    return generate


def _float_node_names(flatbuffer):
    """Output tensor names of the ops in `FLOAT_SCOPE` (or a uniquified `FLOAT_SCOPE_k`)."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    in_scope = re.compile(rf"{FLOAT_SCOPE}(_\d+)?/")
    names = (t.name.decode() for t in model.subgraphs[0].tensors)
    # A fused op's name joins its parts with ";".
    return sorted({name for name in names if any(in_scope.match(part) for part in name.split(";"))})


def _quantize_int8_keeping_postprocess_float(converter, representative):
    """Full-integer quantisation of the network; the post-processing stays float32.

    The ops in `tflite_postprocess.FLOAT_SCOPE` (softmax, score columns,
    the merge's inputs) carry scores and decoded boxes between the
    post-processing ops; quantised, the boxes would fall on a 1/255 grid. The
    converter's selective quantisation (`QuantizationDebugger` with
    `denylisted_nodes`, the documented way) keeps them in float32; their
    names are read from a float conversion of the same graph.
    """
    optimizations, supported_ops = converter.optimizations, converter.target_spec.supported_ops
    converter.optimizations, converter.target_spec.supported_ops = [], [tf.lite.OpsSet.TFLITE_BUILTINS]
    float_nodes = _float_node_names(converter.convert())
    converter.optimizations, converter.target_spec.supported_ops = optimizations, supported_ops
    converter.representative_dataset = representative
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_nodes or None)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=representative, debug_options=options
    )
    return debugger.get_nondebug_quantized_model()


def convert_to_tflite(model, *, quantize="none", calibration=None, use_regular_nms=True, verbose=True,
                      **postprocess):
    """Converts an SSD model to `.tflite` bytes with embedded metadata.

    Args:
        model: an `SSD` model (`keras_ssd.build_ssd` or a loaded `.keras` file), in any
            precision: the file is converted from its float32 twin.
        quantize: one of `QUANTIZATIONS`.
        calibration: for `"int8"`, uint8 `[M, S, S, 3]` representative images
            (`calibration_images` of the training data); ignored otherwise.
        use_regular_nms: per-class NMS, as the Keras detector (default), or
            the op's fast mode (one NMS over each box's best class; faster
            with many classes, the TF OD API's mobile default).
        verbose: print calibration progress to stderr.
        **postprocess: `build_detector` overrides (`score_threshold`, in
            (0, 1); `nms_iou_threshold`; `max_detections`; `pre_nms_top_k`
            has no effect in TFLite).

    Returns:
        The `.tflite` flatbuffer as bytes.

    Raises:
        ValueError: unknown `quantize`, missing or mis-shaped calibration
            images, a score threshold outside (0, 1), or a model that is not
            an SSD model.
    """
    cfg = ssd_config_of(model, "convert_to_tflite")
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"Unknown quantize {quantize!r}; valid: {QUANTIZATIONS}")
    model = with_precision(model, "float32")  # a model trained in bf16 converts from its float32 twin
    # The TFLite ops take their settings from the Keras detector's own decoder.
    decoder = build_detector(model, **postprocess).get_layer("detection_decoder")
    if quantize == "int8":
        expected = (cfg.image_size, cfg.image_size, 3)
        if calibration is None or np.ndim(calibration) != 4 or tuple(np.shape(calibration)[1:]) != expected:
            raise ValueError(
                f"int8 needs calibration images uint8 [M, {expected[0]}, {expected[1]}, 3], got "
                f"{None if calibration is None else np.shape(calibration)}"
            )
    heads = _heads(model)
    serve, signature = _tflite_graph(heads, decoder, cfg.image_size, use_regular_nms)
    with tempfile.TemporaryDirectory() as tmp:
        archive = keras.export.ExportArchive()
        archive.track(heads)
        archive.add_endpoint("serving_default", serve, input_signature=signature)
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.allow_custom_ops = True  # TFLite_Detection_PostProcess only
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            flatbuffer = _quantize_int8_keeping_postprocess_float(
                converter, _representative(np.asarray(calibration, np.uint8), verbose)
            )
        else:
            flatbuffer = converter.convert()
    nms = "per-class" if use_regular_nms else "fast (class-agnostic)"
    return add_detection_metadata(
        standard_output_order(flatbuffer),
        labels.model_class_names(model),
        name=model.name,
        description=(
            f"SSD object detector ({cfg.image_size}x{cfg.image_size} RGB uint8 input, "
            f"{cfg.num_classes} classes, {quantize} quantisation, {nms} NMS, "
            f"score threshold {decoder.score_threshold}, up to {decoder.max_detections} detections)"
        ),
        version=__version__,
    )


def standard_output_order(flatbuffer):
    """Orders the model's outputs as `OUTPUT_ORDER` (boxes, classes, scores, count).

    The converter orders a SavedModel's outputs by its own rules; MediaPipe,
    the task library and the Android samples read them by position (the
    metadata describes them in that position), so the subgraph's output list
    is rewritten in the standard order, the order of the op's own outputs. The
    signature maps names to tensors and is unchanged.

    Args:
        flatbuffer: `.tflite` bytes whose `serving_default` signature has the
            four outputs of `OUTPUT_ORDER`.

    Returns:
        The rewritten `.tflite` bytes.
    """
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    (signature,) = model.signatureDefs
    by_name = {t.name.decode(): t.tensorIndex for t in signature.outputs}
    model.subgraphs[signature.subgraphIndex].outputs = [by_name[name] for name in OUTPUT_ORDER]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def export_tflite(model, path, *, quantize="none", calibration=None, use_regular_nms=True, overwrite=False,
                  verbose=True, **postprocess):
    """Writes `convert_to_tflite(...)` to `path` and the class names beside it.

    Args:
        model, quantize, calibration, use_regular_nms, verbose, **postprocess:
            as for `convert_to_tflite`.
        path: the `.tflite` file to write; `<stem>.labels.txt` is written
            beside it (one class name per line, line k = class k).
        overwrite: replace an existing file; by default an existing file is
            an error, so a user's earlier export is never lost.

    Returns:
        `path`.

    Raises:
        FileExistsError: `path` exists and `overwrite` is False.
        ValueError: `path` does not end in `.tflite`, or as `convert_to_tflite`.
    """
    if not str(path).endswith(".tflite"):
        raise ValueError(f"TFLite path must end in .tflite, got {path!r}")
    versioning.refuse_existing(path, overwrite)
    flatbuffer = convert_to_tflite(
        model, quantize=quantize, calibration=calibration, use_regular_nms=use_regular_nms,
        verbose=verbose, **postprocess,
    )
    versioning.write_atomically(path, flatbuffer)
    labels.write_labels(labels.labels_path_beside(path), labels.model_class_names(model))
    return path

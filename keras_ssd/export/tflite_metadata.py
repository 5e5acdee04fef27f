"""TFLite model metadata for detection `.tflite` files, as MediaPipe and the task library read it.

MediaPipe Tasks' `ObjectDetector` (Android, iOS, web, Python) and the TFLite
task library load a detection model only with TFLite model metadata: a
`ModelMetadata` flatbuffer (file identifier "M001") stored in the model's
`metadata` list under the name "TFLITE_METADATA", and the label map packed as
an associated file in a zip archive appended to the model (readers open the
`.tflite` file as a zip). For models with post-processing inside, the metadata
describes one RGB image input and the four outputs in the subgraph's order:
"location" (bounding boxes, `[ymin, xmin, ymax, xmax]` as ratios of the image),
"category" (class indices, with the label map), "score" and "number of
detections".

The metadata is built with the generated classes of the TFLite metadata schema
that the `mediapipe` wheel ships (`mediapipe.tasks.metadata`). MediaPipe's own
writer (`metadata_writers.object_detector`) is not used: in the 1.2.x wheels
its `metadata` module imports a compiled extension (`_pywrap_metadata_version`)
that the wheel lacks, and it names the outputs by ascending tensor index, not
by the subgraph's output order. The one thing that extension computes, the
minimum parser version, is fixed here by the schema members this writer uses.
"""

import importlib
import io
import zipfile

from tensorflow.lite.tools import flatbuffer_utils

from keras_ssd.export import labels as label_map

METADATA_NAME = b"TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
LABELS_FILE = "labels.txt"
# The newest schema member written here is SubGraphMetadata.output_tensor_groups (1.2.0).
MIN_PARSER_VERSION = "1.2.0"
OUTPUT_NAMES = ("location", "category", "score", "number of detections")


def _schema():
    """The TFLite metadata schema's generated Python classes (from the mediapipe wheel)."""
    try:
        return importlib.import_module("mediapipe.tasks.metadata.metadata_schema_py_generated")
    except ImportError as error:
        raise ImportError(
            "Writing TFLite metadata needs the mediapipe package: pip install mediapipe"
        ) from error


def _tensor(fb, name, description, properties=None, properties_type=None, value_range=None):
    tensor = fb.TensorMetadataT()
    tensor.name, tensor.description = name, description
    if properties is not None:
        tensor.content = fb.ContentT()
        tensor.content.contentProperties = properties
        tensor.content.contentPropertiesType = properties_type
        if value_range is not None:
            tensor.content.range = fb.ValueRangeT()
            tensor.content.range.min = tensor.content.range.max = value_range
    return tensor


def _detection_metadata(fb, *, name, description, version, author, license_text, num_detections):
    """The `ModelMetadataT` of an SSD with post-processing, uint8 RGB input."""
    image_properties = fb.ImagePropertiesT()
    image_properties.colorSpace = fb.ColorSpaceType.RGB
    image = _tensor(fb, "image", "RGB image, uint8 0..255, resized to the model's input size",
                    image_properties, fb.ContentProperties.ImageProperties)
    image.stats = fb.StatsT()
    image.stats.min, image.stats.max = [0.0], [255.0]

    box_properties = fb.BoundingBoxPropertiesT()
    box_properties.index = [1, 0, 3, 2]  # the schema's order is left, top, right, bottom
    box_properties.type = fb.BoundingBoxType.BOUNDARIES
    box_properties.coordinateType = fb.CoordinateType.RATIO
    # content.range (2, 2), the coordinates' dimension of [1, K, 4], is what
    # MediaPipe's and the task library's readers expect on all three outputs.
    location = _tensor(fb, OUTPUT_NAMES[0], "Detected boxes, [ymin, xmin, ymax, xmax] ratios of the image",
                       box_properties, fb.ContentProperties.BoundingBoxProperties, value_range=2)
    category = _tensor(fb, OUTPUT_NAMES[1], "0-based class of each box (line k of labels.txt)",
                       fb.FeaturePropertiesT(), fb.ContentProperties.FeatureProperties, value_range=2)
    labels = fb.AssociatedFileT()
    labels.name, labels.description = LABELS_FILE, "Class names, line k naming class k"
    labels.type = fb.AssociatedFileType.TENSOR_VALUE_LABELS
    category.associatedFiles = [labels]
    score = _tensor(fb, OUTPUT_NAMES[2], "Score of each box (softmax probability of its class)",
                    fb.FeaturePropertiesT(), fb.ContentProperties.FeatureProperties, value_range=2)
    count = _tensor(fb, OUTPUT_NAMES[3], f"Number of valid boxes, at most {num_detections}")

    group = fb.TensorGroupT()
    group.name = "detection_result"
    group.tensorNames = list(OUTPUT_NAMES[:3])
    subgraph = fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [image]
    subgraph.outputTensorMetadata = [location, category, score, count]
    subgraph.outputTensorGroups = [group]

    model = fb.ModelMetadataT()
    model.name, model.description, model.version = name, description, version
    model.author, model.license = author, license_text
    model.subgraphMetadata = [subgraph]
    model.minParserVersion = MIN_PARSER_VERSION
    return model


def add_detection_metadata(flatbuffer, class_names, *, name, description, version,
                           author="keras_ssd", license_text="Apache-2.0"):
    """Embeds detection metadata and the label map in a `.tflite` flatbuffer.

    Args:
        flatbuffer: `.tflite` bytes with one uint8 `[1, S, S, 3]` input and
            the four post-processing outputs in the order boxes, classes,
            scores, count.
        class_names: class k's name at index k; written as `labels.txt`.
        name, description, version, author, license_text: the model's
            general information.

    Returns:
        The `.tflite` bytes with metadata and the appended `labels.txt`.

    Raises:
        ValueError: a model without exactly one input and four outputs, or a
            class name with a line break.
    """
    import flatbuffers

    fb = _schema()
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    subgraph = model.subgraphs[0]
    if len(subgraph.inputs) != 1 or len(subgraph.outputs) != 4:
        raise ValueError(
            f"detection metadata needs 1 input and 4 outputs, the model has "
            f"{len(subgraph.inputs)} and {len(subgraph.outputs)}"
        )
    text = label_map.labels_text(class_names)
    num_detections = int(subgraph.tensors[subgraph.outputs[1]].shape[-1])
    metadata = _detection_metadata(
        fb, name=name, description=description, version=version, author=author,
        license_text=license_text, num_detections=num_detections,
    )
    builder = flatbuffers.Builder(0)
    builder.Finish(metadata.Pack(builder), METADATA_IDENTIFIER)

    buffer = flatbuffer_utils.schema_fb.BufferT()
    buffer.data = bytes(builder.Output())
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_NAME]
    model.buffers.append(buffer)
    entry = flatbuffer_utils.schema_fb.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata.append(entry)

    packed = io.BytesIO(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    packed.seek(0, io.SEEK_END)
    with zipfile.ZipFile(packed, "a") as archive:
        archive.writestr(LABELS_FILE, text)
    return packed.getvalue()


def read_detection_metadata(path_or_bytes):
    """The embedded metadata of a `.tflite` file, for checks and tools.

    Args:
        path_or_bytes: a `.tflite` path or its bytes.

    Returns:
        dict: `name`, `description`, `version`, `min_parser_version`,
        `output_names` (subgraph order) and `class_names` (from the packed
        `labels.txt`); None when the file has no TFLite metadata.
    """
    data = path_or_bytes
    if not isinstance(data, (bytes, bytearray)):
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    fb = _schema()
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    entries = [m for m in (model.metadata or []) if m.name == METADATA_NAME]
    if not entries:
        return None
    raw = bytes(model.buffers[entries[0].buffer].data)
    metadata = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAsModelMetadata(raw, 0))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        class_names = archive.read(LABELS_FILE).decode("utf-8").splitlines()
    decode = lambda s: s.decode() if isinstance(s, bytes) else s  # noqa: E731
    return {
        "name": decode(metadata.name),
        "description": decode(metadata.description),
        "version": decode(metadata.version),
        "min_parser_version": decode(metadata.minParserVersion),
        "output_names": [decode(t.name) for t in metadata.subgraphMetadata[0].outputTensorMetadata],
        "class_names": class_names,
    }

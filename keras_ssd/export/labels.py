"""Class-name files written beside exported models.

One name per line, line k naming the 0-based class k that exported models
output (`detection_classes`), the label-map format of the TFLite task library
and Android samples. A SavedModel keeps it in `<version>/assets.extra/labels.txt`
(the folder TF Serving leaves alone); a `.tflite` or `.onnx` file keeps it
beside itself as `<stem>.labels.txt`.
"""

import os

SAVED_MODEL_LABELS = os.path.join("assets.extra", "labels.txt")


def default_class_names(num_classes):
    """`["class_0", ..., "class_{C-1}"]`, for models saved without names."""
    return [f"class_{k}" for k in range(num_classes)]


def model_class_names(model):
    """The class names stored in an `SSD` model, or `default_class_names`."""
    names = getattr(model, "class_names", None)
    return list(names) if names else default_class_names(model.ssd_config.num_classes)


def labels_path_beside(model_path):
    """`dir/model.tflite` (or `.onnx`) -> `dir/model.labels.txt`."""
    return os.path.splitext(model_path)[0] + ".labels.txt"


def labels_text(class_names):
    """The label-map text: one name per line; names may not contain line breaks."""
    for name in class_names:
        if "\n" in name or "\r" in name:
            raise ValueError(f"class name {name!r} contains a line break")
    return "".join(f"{name}\n" for name in class_names)


def write_labels(path, class_names):
    """Writes `labels_text(class_names)` to `path`."""
    text = labels_text(class_names)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def parse_labels(text):
    """The class names of a label-map text, one per line (`labels_text`'s inverse)."""
    names = text.split("\n")
    if names[-1] == "":
        names.pop()
    return names


def read_labels(path):
    """Reads a labels file written by `write_labels`; None if it does not exist."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return parse_labels(f.read())

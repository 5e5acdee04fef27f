"""torchvision's `ssd300_vgg16` state dict -> an identical keras_ssd `SSD`.

torchvision's SSD300 (`torchvision/models/detection/ssd.py`) is the paper's
network: ceil-mode pool3, pool5 3x3/s1, fc6 3x3 dilated 6, 1x1 fc7, L2Norm(20)
on conv4_3, the same four extra blocks and 3x3 heads. Its COCO checkpoint
(`ssd300_vgg16_coco-b556d3b4.pth`, 25.1 COCO mAP) differs from our
`ssd300_vgg16` preset only in numbers the config holds:

- input: RGB in 0..1, then `(x - image_mean) / (1/255)` with
  `image_mean = (0.48235, 0.45882, 0.40784)`, i.e. `pixel_255 - 255 * mean` in
  RGB order. Our preprocessing flips RGB to BGR and subtracts
  `cfg.pixel_mean_bgr`, so conv1_1's input channels are reversed and the
  config gets torchvision's mean.
- default boxes: scales 0.07 .. 1.05 (min/max sizes 21 .. 315 px) and
  `clip=True`, which clips in the centre form: each (w, h) pair is clamped to
  [0, 1] before conversion to corners, centres are kept (the last column of
  the 10x10 map, step 32, is centred at x = 1.013): `clip_boxes="center"`.
- box regression: torchvision's `BoxCoder(weights=(10, 10, 5, 5))` emits
  `(dx, dy, dw, dh)` per anchor; ours is `[ty, tx, th, tw]` with variances
  (0.1, 0.1, 0.2, 0.2), the same numbers in another order, so each anchor's
  four output channels of the regression head are permuted (1, 0, 3, 2).
- both heads are anchor-major (`view(N, A, K, H, W)` there, `Reshape` of
  `[H, W, A * K]` here) with the same box order per location and the same
  row-major locations; class 0 is background in both. No other reordering.

Torch conv weights `[out, in, kh, kw]` become Keras kernels `[kh, kw, in, out]`.
"""

import dataclasses

import numpy as np

from keras_ssd.config import SSDConfig
from keras_ssd.model import build_ssd

CHECKPOINT_URL = "https://download.pytorch.org/models/ssd300_vgg16_coco-b556d3b4.pth"

# torchvision.models._meta._COCO_CATEGORIES without "__background__": logit k + 1
# <-> name k. The "N/A" entries are the 11 COCO ids that have no category; the
# checkpoint keeps logits for them (never trained as positives).
COCO_CLASS_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter", "bench", "bird",
    "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "N/A",
    "backpack", "umbrella", "N/A", "N/A", "handbag", "tie", "suitcase", "frisbee", "skis",
    "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard",
    "surfboard", "tennis racket", "bottle", "N/A", "wine glass", "cup", "fork", "knife",
    "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog",
    "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "N/A", "dining table",
    "N/A", "N/A", "toilet", "N/A", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "N/A", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# torchvision's SSD300 normalisation: image_mean (RGB, 0..1) and image_std 1/255.
TORCHVISION_IMAGE_MEAN_RGB = (0.48235, 0.45882, 0.40784)
_SCALES = (0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05)

# Indices of the VGG16 convs in torchvision's `vgg16().features` (ReLUs and
# pools in between); `backbone.features` keeps them up to conv4_3.
_FEATURES = {0: "block1_conv1", 2: "block1_conv2", 5: "block2_conv1", 7: "block2_conv2",
             10: "block3_conv1", 12: "block3_conv2", 14: "block3_conv3",
             17: "block4_conv1", 19: "block4_conv2", 21: "block4_conv3"}  # fmt: skip
# `backbone.extra.0` = pool4, conv5_1, relu, conv5_2, relu, conv5_3, relu,
# Sequential(pool5, fc6, relu, fc7, relu).
_EXTRA0 = {"1": "block5_conv1", "3": "block5_conv2", "5": "block5_conv3",
           "7.1": "fc6", "7.3": "fc7"}  # fmt: skip

# (x, y, w, h) -> (y, x, h, w): torchvision's (dx, dy, dw, dh) as our [ty, tx, th, tw].
_REGRESSION_ORDER = (1, 0, 3, 2)


def torchvision_ssd300_config(num_classes=90, **overrides):
    """The `SSDConfig` of torchvision's `ssd300_vgg16`.

    Args:
        num_classes: object classes, background excluded (the COCO checkpoint
            has 91 logits: background + 90 ids, 10 of them "N/A").
        **overrides: further `SSDConfig` fields.

    Returns:
        `ssd300_vgg16` with torchvision's default boxes (scales 0.07..1.05,
        centre-form clipping) and input mean; post-processing as torchvision's
        (score > 0.01, top 400 per class, NMS 0.45, 200 per image).
    """
    sizes = tuple(round(s * 300, 6) for s in _SCALES)
    fields = {
        "name": "ssd300_vgg16_torchvision",
        "num_classes": num_classes,
        "min_sizes": sizes[:-1],
        "max_sizes": sizes[1:],
        "clip_boxes": "center",
        "pixel_mean_bgr": tuple(255.0 * m for m in reversed(TORCHVISION_IMAGE_MEAN_RGB)),
        "score_threshold": 0.01,
        "nms_iou_threshold": 0.45,
        "pre_nms_top_k": 400,
        "max_detections": 200,
    }
    fields.update(overrides)
    return dataclasses.replace(SSDConfig.from_preset("ssd300_vgg16"), **fields)


def _conv(torch_weight, reverse_inputs=False, output_order=None):
    """`[out, in, kh, kw]` -> `[kh, kw, in, out]`, optionally reordering channels."""
    kernel = np.transpose(torch_weight, (2, 3, 1, 0))
    if reverse_inputs:
        kernel = kernel[:, :, ::-1, :]
    if output_order is not None:
        kernel = kernel[..., output_order]
    return kernel


def _regression_order(boxes_per_location):
    """Output-channel permutation of a regression head: ours[i] = theirs[order[i]]."""
    return np.array(
        [4 * a + p for a in range(boxes_per_location) for p in _REGRESSION_ORDER], np.int64
    )


def weight_map(cfg):
    """How each tensor of torchvision's `ssd300_vgg16` state dict maps onto our model.

    Args:
        cfg: the target config (from `torchvision_ssd300_config`).

    Returns:
        A list of `(torch_key, layer_name, weight_index, to_keras)`, one per
        tensor of the state dict (71 for SSD300), where `to_keras(array)` turns
        the torch tensor into the layer's weight `layer.weights[weight_index]`.
    """
    entries = [("backbone.scale_weight", "conv4_3_norm", 0, lambda w: w)]

    def conv(prefix, layer, **reorder):
        entries.append((f"{prefix}.weight", layer, 0, lambda w: _conv(w, **reorder)))
        order = reorder.get("output_order")
        entries.append((f"{prefix}.bias", layer, 1, lambda b: b if order is None else b[order]))

    for index, layer in _FEATURES.items():
        conv(f"backbone.features.{index}", layer, reverse_inputs=index == 0)
    for index, layer in _EXTRA0.items():
        conv(f"backbone.extra.0.{index}", layer)
    for block in range(1, len(cfg.extra_blocks) + 1):
        conv(f"backbone.extra.{block}.0", f"conv{block + 5}_1")
        conv(f"backbone.extra.{block}.2", f"conv{block + 5}_2")
    for k in range(len(cfg.boxes_per_location)):
        conv(f"head.classification_head.module_list.{k}", f"conf_{k}")
    for k, boxes in enumerate(cfg.boxes_per_location):
        conv(
            f"head.regression_head.module_list.{k}",
            f"loc_{k}",
            output_order=_regression_order(boxes),
        )
    return entries


def _num_classes(state_dict, cfg):
    """Object classes of the checkpoint, from the first classification head."""
    key = "head.classification_head.module_list.0.weight"
    outputs = np.shape(state_dict[key])[0]
    boxes = cfg.boxes_per_location[0]
    if outputs % boxes or outputs // boxes < 2:
        raise ValueError(
            f"{key} has {outputs} output channels; expected {boxes} boxes x (classes + background)"
        )
    return outputs // boxes - 1


def _check_architecture(state_dict, cfg):
    """Raises a readable error unless `state_dict` has exactly the SSD300 keys."""
    expected = [key for key, *_ in weight_map(cfg)]
    present = set(state_dict)
    missing = [key for key in expected if key not in present]
    extra = sorted(present - set(expected))
    if len(missing) > len(expected) // 2:
        raise ValueError(
            f"This is not a torchvision ssd300_vgg16 state dict: {len(missing)} of its "
            f"{len(expected)} tensors are missing (e.g. {missing[:3]}); the file has "
            f"{len(present)} tensors such as {sorted(present)[:5]}"
        )
    if missing or extra:
        raise ValueError(
            "State dict does not match torchvision's ssd300_vgg16: "
            f"missing keys {missing}, unexpected keys {extra}"
        )


def convert_torchvision_ssd300(state_dict, class_names=None):
    """Builds our SSD with the weights of torchvision's `ssd300_vgg16`.

    Args:
        state_dict: mapping key -> array (numpy or anything `np.asarray`
            takes), with torchvision's key names, e.g. from
            `load_torchvision_state_dict` or `{k: v.numpy() for k, v in
            model.state_dict().items()}`.
        class_names: names of the object classes (background excluded). Default:
            torchvision's COCO names ("N/A" placeholders included) when the
            checkpoint has 91 logits, otherwise None.

    Returns:
        An `SSD` model built from `torchvision_ssd300_config(num_classes)` whose
        outputs equal torchvision's head outputs (regression reordered to
        `[ty, tx, th, tw]`) on the same image.

    Raises:
        ValueError: for a state dict of another architecture, a missing or
            unexpected key, or a tensor of the wrong shape; the message names them.
    """
    state_dict = dict(state_dict)
    cfg = torchvision_ssd300_config()
    _check_architecture(state_dict, cfg)
    cfg = dataclasses.replace(cfg, num_classes=_num_classes(state_dict, cfg))
    if class_names is None and cfg.num_classes == len(COCO_CLASS_NAMES):
        class_names = list(COCO_CLASS_NAMES)
    model = build_ssd(cfg, class_names=class_names)

    used = set()
    for key, layer_name, index, to_keras in weight_map(cfg):
        if key in used:
            raise RuntimeError(f"weight_map uses {key} twice")
        used.add(key)
        variable = model.get_layer(layer_name).weights[index]
        value = np.asarray(state_dict[key], dtype=np.float32)
        shape = tuple(variable.shape)
        torch_shape = (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else shape
        if value.shape != torch_shape:
            raise ValueError(
                f"{key} has shape {value.shape}, expected {torch_shape} (for {layer_name} "
                f"{variable.name} {shape} of {cfg.name} with {cfg.num_classes} classes)"
            )
        variable.assign(np.ascontiguousarray(to_keras(value)))
    if used != set(state_dict):
        raise RuntimeError(f"unused tensors: {sorted(set(state_dict) - used)}")
    return model


def load_torchvision_state_dict(path):
    """Reads a torchvision `.pth` checkpoint into `{key: np.float32 array}`.

    Needs PyTorch (`pip install torch`; the CPU build is enough, torchvision is
    not needed). The file is read with `torch.load(map_location="cpu",
    weights_only=True)`, so no code in it runs. A training checkpoint of
    torchvision's reference scripts (`{"model": state_dict, ...}`) also works.

    Args:
        path: path of the `.pth` file.

    Returns:
        dict key -> numpy float32 array.
    """
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            "Reading a torchvision checkpoint needs PyTorch: pip install 'keras_ssd[torch]' "
            "(or pip install torch; the CPU build is enough)"
        ) from error
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, ...
        raise ValueError(
            f"Could not read {path!s} as a PyTorch state dict ({type(error).__name__}: {error}). "
            "Save model.state_dict(), not the whole model."
        ) from error
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        checkpoint = checkpoint["model"]
    if not isinstance(checkpoint, dict) or not all(
        isinstance(v, torch.Tensor) for v in checkpoint.values()
    ):
        raise ValueError(f"{path!s} does not hold a state dict (a dict of tensors)")
    return {key: value.detach().float().cpu().numpy() for key, value in checkpoint.items()}

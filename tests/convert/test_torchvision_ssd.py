"""torchvision ssd300_vgg16 state dict -> keras_ssd, without torch.

The state dict is built here in numpy with torchvision's key names and shapes
(written out from torchvision 0.29's `ssd300_vgg16(num_classes=91).state_dict()`,
not taken from the converter's own table), filled with distinct random values
so that any wrong transpose, channel order or key swap shows.
"""

import math
import sys

import keras
import numpy as np
import pytest

import keras_ssd
from keras_ssd.convert import (
    COCO_CLASS_NAMES,
    convert_torchvision_ssd300,
    load_torchvision_state_dict,
    torchvision_ssd300_config,
    weight_map,
)
from training import convert_weights

pytestmark = pytest.mark.full_size

# torchvision `vgg16().features` conv indices and (out, in) channels.
_FEATURES = [(0, 64, 3), (2, 64, 64), (5, 128, 64), (7, 128, 128), (10, 256, 128),
             (12, 256, 256), (14, 256, 256), (17, 512, 256), (19, 512, 512), (21, 512, 512)]  # fmt: skip
_KERAS_FEATURES = ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1",
                   "block3_conv2", "block3_conv3", "block4_conv1", "block4_conv2", "block4_conv3"]  # fmt: skip
_SOURCES = [512, 1024, 512, 256, 256, 256]
_ANCHORS = [4, 6, 6, 6, 4, 4]


def torchvision_shapes(num_classes=91):
    """{key: shape} of torchvision's ssd300_vgg16 state dict (num_classes with background)."""
    shapes = {"backbone.scale_weight": (512,)}

    def conv(prefix, out, inp, k):
        shapes[f"{prefix}.weight"] = (out, inp, k, k)
        shapes[f"{prefix}.bias"] = (out,)

    for index, out, inp in _FEATURES:
        conv(f"backbone.features.{index}", out, inp, 3)
    for index in (1, 3, 5):
        conv(f"backbone.extra.0.{index}", 512, 512, 3)
    conv("backbone.extra.0.7.1", 1024, 512, 3)
    conv("backbone.extra.0.7.3", 1024, 1024, 1)
    for block, (inp, mid, out) in enumerate(
        [(1024, 256, 512), (512, 128, 256), (256, 128, 256), (256, 128, 256)], start=1
    ):
        conv(f"backbone.extra.{block}.0", mid, inp, 1)
        conv(f"backbone.extra.{block}.2", out, mid, 3)
    for k, (channels, anchors) in enumerate(zip(_SOURCES, _ANCHORS)):
        conv(f"head.classification_head.module_list.{k}", num_classes * anchors, channels, 3)
    for k, (channels, anchors) in enumerate(zip(_SOURCES, _ANCHORS)):
        conv(f"head.regression_head.module_list.{k}", 4 * anchors, channels, 3)
    return shapes


def fake_state_dict(num_classes=91, seed=0):
    rng = np.random.default_rng(seed)
    return {
        key: rng.standard_normal(shape).astype(np.float32)
        for key, shape in torchvision_shapes(num_classes).items()
    }


@pytest.fixture(scope="module")
def state_dict():
    return fake_state_dict()


@pytest.fixture(scope="module")
def converted(state_dict):
    return convert_torchvision_ssd300(state_dict)


def _kernel(model, name):
    return np.asarray(model.get_layer(name).weights[0])


def _bias(model, name):
    return np.asarray(model.get_layer(name).weights[1])


def test_state_dict_has_torchvisions_71_tensors(state_dict):
    assert len(state_dict) == 71
    assert sum(v.size for v in state_dict.values()) == 35_641_826  # torchvision's num_params


def test_every_tensor_is_used_exactly_once():
    keys = [key for key, *_ in weight_map(torchvision_ssd300_config())]
    assert len(keys) == len(set(keys)) == 71
    assert set(keys) == set(torchvision_shapes())


def test_every_keras_weight_comes_from_the_state_dict(converted, state_dict):
    targets = [(layer, index) for _, layer, index, _ in weight_map(converted.ssd_config)]
    assert len(targets) == len(set(targets)) == len(converted.weights) == 71
    assert converted.count_params() == sum(v.size for v in state_dict.values())


def test_model_config_and_class_names(converted):
    cfg = converted.ssd_config
    assert cfg.num_classes == 90 and converted.output_shape == (None, 8732, 95)
    assert converted.class_names == list(COCO_CLASS_NAMES)
    assert len(COCO_CLASS_NAMES) == 90 and COCO_CLASS_NAMES.count("N/A") == 10
    assert COCO_CLASS_NAMES[0] == "person" and COCO_CLASS_NAMES[-1] == "toothbrush"
    assert cfg.min_sizes == (21, 45, 99, 153, 207, 261)
    assert cfg.max_sizes == (45, 99, 153, 207, 261, 315)
    np.testing.assert_allclose(cfg.pixel_mean_bgr, (103.9992, 116.9991, 122.99925), atol=1e-9)
    assert cfg.clip_boxes == "center" and cfg.variances == (0.1, 0.1, 0.2, 0.2)
    assert (cfg.score_threshold, cfg.nms_iou_threshold) == (0.01, 0.45)
    assert (cfg.pre_nms_top_k, cfg.max_detections) == (400, 200)
    np.testing.assert_allclose(
        converted.get_layer("preprocessing").mean, cfg.pixel_mean_bgr, atol=1e-9
    )


def test_vgg_and_extra_convs_are_transposed(converted, state_dict):
    pairs = [
        (f"backbone.features.{i}", name) for (i, _, _), name in zip(_FEATURES, _KERAS_FEATURES)
    ]
    pairs += [("backbone.extra.0.1", "block5_conv1"), ("backbone.extra.0.3", "block5_conv2"),
              ("backbone.extra.0.5", "block5_conv3"), ("backbone.extra.0.7.1", "fc6"),
              ("backbone.extra.0.7.3", "fc7")]  # fmt: skip
    for block in range(1, 5):
        pairs += [(f"backbone.extra.{block}.0", f"conv{block + 5}_1"),
                  (f"backbone.extra.{block}.2", f"conv{block + 5}_2")]  # fmt: skip
    pairs += [(f"head.classification_head.module_list.{k}", f"conf_{k}") for k in range(6)]
    for key, name in pairs:
        w = state_dict[f"{key}.weight"]
        kernel = _kernel(converted, name)
        if key == "backbone.features.0":  # RGB in torchvision, BGR after our preprocessing
            w = w[:, ::-1]
        # Keras [kh, kw, in, out][i, j, c, o] == torch [out, in, kh, kw][o, c, i, j].
        assert kernel.shape == (w.shape[2], w.shape[3], w.shape[1], w.shape[0]), key
        np.testing.assert_array_equal(kernel, np.einsum("ocij->ijco", w), err_msg=key)
        np.testing.assert_array_equal(
            _bias(converted, name), state_dict[f"{key}.bias"], err_msg=key
        )
    np.testing.assert_array_equal(
        np.asarray(converted.get_layer("conv4_3_norm").scale), state_dict["backbone.scale_weight"]
    )


def test_conv1_1_input_channels_are_reversed(converted, state_dict):
    w = state_dict["backbone.features.0.weight"]  # [64, 3 (R, G, B), 3, 3]
    kernel = _kernel(converted, "block1_conv1")  # [3, 3, 3 (B, G, R), 64]
    for o, i, j in [(0, 0, 0), (5, 1, 2), (63, 2, 1)]:
        assert kernel[i, j, 0, o] == w[o, 2, i, j]  # blue
        assert kernel[i, j, 1, o] == w[o, 1, i, j]  # green
        assert kernel[i, j, 2, o] == w[o, 0, i, j]  # red


def test_regression_heads_are_reordered_to_ty_tx_th_tw(converted, state_dict):
    for k, anchors in enumerate(_ANCHORS):
        w = state_dict[f"head.regression_head.module_list.{k}.weight"]
        b = state_dict[f"head.regression_head.module_list.{k}.bias"]
        kernel, bias = _kernel(converted, f"loc_{k}"), _bias(converted, f"loc_{k}")
        for a in range(anchors):
            # torchvision's anchor a: channels 4a.. = (dx, dy, dw, dh); ours (ty, tx, th, tw).
            for ours, theirs in zip(range(4), (1, 0, 3, 2)):
                np.testing.assert_array_equal(
                    kernel[..., 4 * a + ours], np.einsum("cij->ijc", w[4 * a + theirs])
                )
                assert bias[4 * a + ours] == b[4 * a + theirs]


def test_first_conv_sees_torchvisions_normalised_input(converted, state_dict):
    """Our preprocessing + block1_conv1 == torchvision's normalisation + features[0]."""
    image = np.random.default_rng(3).integers(0, 256, (1, 300, 300, 3)).astype(np.uint8)
    submodel = keras.Model(converted.input, converted.get_layer("block1_conv1").output)
    ours = np.asarray(submodel(image))[0]
    mean, std = np.array([0.48235, 0.45882, 0.40784]), np.full(3, 1 / 255)
    x = (image[0] / 255.0 - mean) / std  # torchvision's GeneralizedRCNNTransform, HWC RGB
    x = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    w = state_dict["backbone.features.0.weight"].astype(np.float64)
    b = state_dict["backbone.features.0.bias"]
    for y, xx in [(0, 0), (10, 200), (299, 150), (299, 299)]:
        patch = x[y : y + 3, xx : xx + 3]  # [kh, kw, c]
        theirs = np.maximum(np.einsum("ijc,ocij->o", patch, w) + b, 0.0)
        np.testing.assert_allclose(ours[y, xx], theirs, rtol=1e-4, atol=1e-3)


def _torchvision_default_boxes():
    """torchvision's DefaultBoxGenerator(clip=True) for SSD300, as yxyx in [0, 1]."""
    scales = [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]
    ratios = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
    steps, maps = [8, 16, 32, 64, 100, 300], [38, 19, 10, 5, 3, 1]
    boxes = []
    for k, f in enumerate(maps):
        wh = [(scales[k], scales[k])] + [(math.sqrt(scales[k] * scales[k + 1]),) * 2]
        for r in ratios[k]:
            wh += [(scales[k] * math.sqrt(r), scales[k] / math.sqrt(r))]
            wh += [(scales[k] / math.sqrt(r), scales[k] * math.sqrt(r))]
        wh = np.clip(np.array(wh), 0, 1)  # clip=True: clamps the (w, h) pairs only
        for i in range(f):
            for j in range(f):
                cx, cy = (j + 0.5) / (300 / steps[k]), (i + 0.5) / (300 / steps[k])
                for w, h in wh:
                    boxes.append([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2])
    return np.array(boxes)


def test_default_boxes_are_torchvisions():
    boxes = keras_ssd.default_boxes(torchvision_ssd300_config())
    expected = _torchvision_default_boxes()
    assert boxes.shape == expected.shape == (8732, 4)
    np.testing.assert_allclose(boxes, expected, atol=1e-7)
    # Centre clamping keeps boxes centred: they may reach past the image.
    assert boxes.min() < -0.3 and boxes.max() > 1.3
    # The 10x10 map (step 32) overshoots: its last column is centred at 9.5 * 32 / 300.
    first = 38 * 38 * 4 + 19 * 19 * 6
    last_column = boxes[first + 9 * 6 : first + 10 * 6]
    np.testing.assert_allclose((last_column[:, 1] + last_column[:, 3]) / 2, 9.5 * 32 / 300)


def test_fine_tuned_torchvision_model_with_other_classes():
    model = convert_torchvision_ssd300(fake_state_dict(num_classes=4, seed=1))
    assert model.ssd_config.num_classes == 3 and model.class_names is None
    assert model.output_shape == (None, 8732, 8)
    named = convert_torchvision_ssd300(fake_state_dict(4, 1), class_names=["a", "b", "c"])
    assert named.class_names == ["a", "b", "c"]


def test_missing_key_is_named(state_dict):
    broken = dict(state_dict)
    del broken["backbone.extra.2.2.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['backbone.extra.2.2.bias'\]"):
        convert_torchvision_ssd300(broken)


def test_extra_key_is_named(state_dict):
    broken = dict(state_dict, **{"backbone.extra.5.0.weight": np.zeros((128, 256, 1, 1))})
    with pytest.raises(ValueError, match=r"unexpected keys \['backbone.extra.5.0.weight'\]"):
        convert_torchvision_ssd300(broken)


def test_shape_mismatch_is_named(state_dict):
    broken = dict(state_dict)
    broken["backbone.extra.1.2.weight"] = np.zeros((512, 256, 1, 1), np.float32)
    with pytest.raises(ValueError, match=r"backbone.extra.1.2.weight has shape \(512, 256, 1, 1\), "
                       r"expected \(512, 256, 3, 3\)"):  # fmt: skip
        convert_torchvision_ssd300(broken)


def test_inconsistent_class_heads_are_a_shape_error(state_dict):
    broken = dict(state_dict)
    broken["head.classification_head.module_list.3.weight"] = np.zeros((6 * 21, 256, 3, 3))
    broken["head.classification_head.module_list.3.bias"] = np.zeros((6 * 21,))
    with pytest.raises(ValueError, match="module_list.3.weight has shape"):
        convert_torchvision_ssd300(broken)


def test_other_architecture_is_recognised():
    # Keys of torchvision's ssdlite320_mobilenet_v3_large / a ResNet classifier.
    other = {
        "backbone.features.0.0.0.weight": np.zeros((16, 3, 3, 3)),
        "backbone.features.0.0.1.weight": np.zeros((16,)),
        "head.classification_head.module_list.0.0.0.weight": np.zeros((672, 1, 3, 3)),
        "conv1.weight": np.zeros((64, 3, 7, 7)),
        "fc.weight": np.zeros((1000, 2048)),
    }
    with pytest.raises(ValueError, match="not a torchvision ssd300_vgg16 state dict"):
        convert_torchvision_ssd300(other)


def test_loader_without_torch_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ImportError, match=r"pip install 'keras_ssd\[torch\]'"):
        load_torchvision_state_dict(tmp_path / "model.pth")


def test_cli_converts_saves_and_changes_classes(monkeypatch, tmp_path, state_dict, capsys):
    monkeypatch.setattr(convert_weights, "load_torchvision_state_dict", lambda path: state_dict)
    output = str(tmp_path / "pets.keras")
    argv = ["--from", "torchvision", "fake.pth", "--output", output, "--class-names", "cat,dog"]
    assert convert_weights.main(argv) == 0
    assert "2 classes" in capsys.readouterr().out
    model = keras.models.load_model(output)
    assert model.class_names == ["cat", "dog"] and model.output_shape == (None, 8732, 7)
    assert model.ssd_config.clip_boxes == "center"
    np.testing.assert_array_equal(
        _kernel(model, "block1_conv1"),
        np.einsum("ocij->ijco", state_dict["backbone.features.0.weight"][:, ::-1]),
    )
    assert convert_weights.main(argv) == 2  # exists, no --overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_cli_rejects_unknown_format(tmp_path, capsys):
    argv = ["--from", "caffe", "x.caffemodel", "--output", str(tmp_path / "m.keras")]
    assert convert_weights.main(argv) == 2
    assert "Unknown --from format 'caffe'" in capsys.readouterr().err

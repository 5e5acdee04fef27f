import dataclasses

import keras
import numpy as np
import pytest

import keras_ssd
from keras_ssd import SSDConfig
from keras_ssd.model_stats import count_macs


def _source_sizes(model):
    names = ["conv4_3_norm", "fc7"] + [
        layer.name for layer in model.layers if layer.name.startswith("conv") and layer.name.endswith("_2")
    ]
    return tuple(int(model.get_layer(n).output.shape[1]) for n in names)


@pytest.mark.full_size
@pytest.mark.parametrize(
    "preset, params, maps, gmacs",
    [
        ("ssd300_vgg16", 26_285_486, (38, 19, 10, 5, 3, 1), 31.4),
        ("ssd512_vgg16", 27_188_676, (64, 32, 16, 8, 4, 2, 1), 90.2),
    ],
)
def test_paper_networks(preset, params, maps, gmacs):
    cfg = SSDConfig.from_preset(preset)
    model = keras_ssd.build_ssd(cfg)
    assert model.count_params() == params
    assert _source_sizes(model) == maps
    assert count_macs(model) / 1e9 == pytest.approx(gmacs, abs=0.05)
    assert model.output_shape == (None, cfg.num_boxes, 25)


@pytest.mark.full_size
def test_ssd300_one_forward_pass_is_finite():
    model = keras_ssd.build_ssd(SSDConfig.from_preset("ssd300_vgg16"))
    images = np.random.default_rng(0).integers(0, 256, (1, 300, 300, 3)).astype(np.uint8)
    y_pred = model.predict(images, verbose=0)
    assert y_pred.shape == (1, 8732, 25) and np.isfinite(y_pred).all()


def test_tiny_is_small_and_has_the_same_design(tiny_cfg):
    model = keras_ssd.build_ssd(tiny_cfg)
    assert count_macs(model) <= 1.5e9
    assert _source_sizes(model) == (20, 10, 5, 3, 1)
    assert model.get_layer("fc6").dilation_rate == (3, 3)
    assert isinstance(model.get_layer("conv4_3_norm"), keras_ssd.L2Normalization)
    assert model.output_shape == (None, 2390, 4 + 3 + 1)


def test_num_classes_sets_head_width():
    cfg = SSDConfig.from_preset("ssd_tiny", num_classes=7)
    model = keras_ssd.build_ssd(cfg)
    assert model.output_shape == (None, cfg.num_boxes, 12)
    assert model.get_layer("conf_1").filters == 6 * 8


def test_wrong_image_size_for_the_maps_is_a_clear_error():
    # A hand-made config whose maps do not fit its size (from_preset(image_size=...) rescales them).
    cfg = dataclasses.replace(SSDConfig.from_preset("ssd300_vgg16"), image_size=320)
    with pytest.raises(ValueError, match=r"expects source maps \(38, 19, 10, 5, 3, 1\).*\(40, 20"):
        keras_ssd.build_ssd(cfg)


def test_class_names_are_kept_and_checked(tiny_cfg):
    model = keras_ssd.build_ssd(tiny_cfg, class_names=["a", "b", "c"])
    assert model.class_names == ["a", "b", "c"]
    with pytest.raises(ValueError, match="2 names but num_classes is 3"):
        keras_ssd.build_ssd(tiny_cfg, class_names=["a", "b"])


def test_mixed_precision_output_stays_float32(tiny_cfg):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras_ssd.build_ssd(tiny_cfg)
        assert model.get_layer("fc7").compute_dtype == "float16"
        y_pred = model(np.zeros((1, 160, 160, 3), np.float32))
        assert y_pred.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")

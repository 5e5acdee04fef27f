"""ssdlite320_mobilenetv2: sizes and counts derived by hand, preprocessing, weights, saving.

The figures below are derived from the architecture, not read off the model:

* MobileNetV2 (Sandler et al. 2018, Table 2) at width 1.0 without its top:
  2,257,984 parameters, 611.2 M MACs at 320 px (Keras' documented
  no-top count is 2,257,984 too).
* Source maps at 320 px: 320 / 16 = 20 (block 13's expansion, 576 channels),
  320 / 32 = 10 (final conv, 1280), then ceil halving by the extras'
  3x3 stride-2 depthwise convs with 1 px padding: 5, 3, 2, 1 (512, 256, 256, 128).
* Default boxes: 6 per location, 6 * (400 + 100 + 25 + 9 + 4 + 1) = 3234.
* Extras (1x1 bottleneck, 3x3 depthwise, 1x1; no biases, BN 4 weights per
  channel): 661,568. Predictors at 20 classes (3x3 depthwise + BN, 1x1 with
  bias, for 6 * 4 offsets and 6 * 21 logits): 530,308. In all 3,449,860.
"""

import math

import keras
import numpy as np
import pytest
from round_trips import check_keras_file_round_trip

import keras_ssd
from keras_ssd import SSDConfig
from keras_ssd.model_stats import count_macs

PRESET = "ssdlite320_mobilenetv2"
# MobileNetV2 bottleneck stages (expansion t, channels c, repeats n, stride s), paper Table 2.
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
BATCH_NORM_MOMENTUM = 0.97  # torchvision's ssdlite320 (PyTorch momentum 0.03)
SOURCE_SIDES = (20, 10, 5, 3, 2, 1)
SOURCE_DEPTHS = (576, 1280, 512, 256, 256, 128)
BACKBONE_PARAMS, EXTRA_PARAMS, PREDICTOR_PARAMS = 2_257_984, 661_568, 530_308
TOTAL_PARAMS = 3_449_860


def _bn(channels):
    return 4 * channels  # gamma, beta, moving mean, moving variance


def _mobilenet_v2_params_and_macs(size=320):
    """MobileNetV2 without its top, from Table 2: (parameters, MACs per image)."""
    side = math.ceil(size / 2)
    params, macs = 3 * 3 * 3 * 32 + _bn(32), side * side * 3 * 3 * 3 * 32  # Conv1, stride 2
    c_in = 32
    for t, c, n, s in STAGES:
        for i in range(n):
            hidden, out = c_in * t, math.ceil(side / (s if i == 0 else 1))
            if t != 1:  # 1x1 expansion
                params, macs = params + c_in * hidden + _bn(hidden), macs + side * side * c_in * hidden
            params, macs = params + 9 * hidden + _bn(hidden), macs + out * out * 9 * hidden  # depthwise
            params, macs = params + hidden * c + _bn(c), macs + out * out * hidden * c  # projection
            c_in, side = c, out
    return params + 320 * 1280 + _bn(1280), macs + side * side * 320 * 1280  # final 1x1 conv


def _extras_params_and_macs(cfg):
    params = macs = 0
    c_in, side = SOURCE_DEPTHS[1], SOURCE_SIDES[1]
    for block, out in zip(cfg.extra_blocks, SOURCE_SIDES[2:]):
        b, f = block.bottleneck_filters, block.filters
        params += c_in * b + _bn(b) + 9 * b + _bn(b) + b * f + _bn(f)
        macs += side * side * c_in * b + out * out * (9 * b + b * f)
        c_in, side = f, out
    return params, macs


def _predictor_params_and_macs(cfg):
    params = macs = 0
    for c, side, boxes in zip(SOURCE_DEPTHS, SOURCE_SIDES, cfg.boxes_per_location):
        for out in (boxes * 4, boxes * (cfg.num_classes + 1)):
            params += 9 * c + _bn(c) + c * out + out
            macs += side * side * (9 * c + c * out)
    return params, macs


@pytest.fixture(scope="module")
def cfg():
    return SSDConfig.from_preset(PRESET, num_classes=20)


@pytest.fixture(scope="module")
def model(cfg):
    return keras_ssd.build_ssd(cfg)


def test_derived_figures():
    cfg = SSDConfig.from_preset(PRESET, num_classes=20)
    assert _mobilenet_v2_params_and_macs()[0] == BACKBONE_PARAMS
    assert _extras_params_and_macs(cfg)[0] == EXTRA_PARAMS
    assert _predictor_params_and_macs(cfg)[0] == PREDICTOR_PARAMS
    assert BACKBONE_PARAMS + EXTRA_PARAMS + PREDICTOR_PARAMS == TOTAL_PARAMS


def test_config_boxes_and_scales(cfg):
    assert cfg.feature_map_sizes == SOURCE_SIDES
    assert cfg.boxes_per_location == (6,) * 6 and cfg.num_boxes == 3234
    assert cfg.min_sizes == (32, 64, 112, 160, 208, 256)
    assert cfg.max_sizes == (64, 112, 160, 208, 256, 304)
    assert cfg.steps == pytest.approx((16, 32, 64, 320 / 3, 160, 320))
    assert cfg.batch_norm_momentum == BATCH_NORM_MOMENTUM
    assert keras_ssd.default_boxes(cfg).shape == (3234, 4)


def test_parameter_counts_per_part(model):
    assert model.count_params() == TOTAL_PARAMS
    assert model.get_layer("mobilenet_v2").count_params() == BACKBONE_PARAMS
    extras = [layer for layer in model.layers if layer.name.startswith("conv")]
    predictors = [layer for layer in model.layers if layer.name.startswith(("loc_", "conf_"))]
    assert sum(layer.count_params() for layer in extras) == EXTRA_PARAMS
    assert sum(layer.count_params() for layer in predictors) == PREDICTOR_PARAMS


def test_source_maps_and_macs(model, cfg):
    sources = [tuple(model.get_layer(f"loc_{k}_depthwise").input.shape[1:]) for k in range(6)]
    assert sources == [(s, s, d) for s, d in zip(SOURCE_SIDES, SOURCE_DEPTHS)]
    assert model.output_shape == (None, 3234, 4 + 20 + 1)
    macs = sum(part(cfg)[1] for part in (_extras_params_and_macs, _predictor_params_and_macs))
    assert count_macs(model) == _mobilenet_v2_params_and_macs()[1] + macs  # 0.713 G at 20 classes


def test_ssdlite_layers_are_separable_with_bn_and_relu6(model):
    depthwise = model.get_layer("conv6_2_depthwise")
    assert isinstance(depthwise, keras.layers.DepthwiseConv2D) and depthwise.strides == (2, 2)
    assert model.get_layer("conv6_2").kernel.shape == (1, 1, 256, 512)
    assert model.get_layer("conf_0_depthwise").kernel.shape == (3, 3, 576, 1)
    assert model.get_layer("conf_0").kernel.shape == (1, 1, 576, 6 * 21)
    for name in ("conv6_1", "conv6_2_depthwise", "conv9_2", "loc_3_depthwise", "conf_5_depthwise"):
        assert model.get_layer(f"{name}_relu").max_value == 6.0
        assert model.get_layer(f"{name}_bn").momentum == BATCH_NORM_MOMENTUM
    backbone_bns = [
        layer for layer in model.get_layer("mobilenet_v2").layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(backbone_bns) == 52 and {bn.momentum for bn in backbone_bns} == {BATCH_NORM_MOMENTUM}


@pytest.mark.numerics
def test_preprocessing_matches_keras_mobilenet_v2(model):
    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    expected = keras.applications.mobilenet_v2.preprocess_input(images.copy())
    actual = np.asarray(model.get_layer("preprocessing")(images))
    np.testing.assert_allclose(actual, expected, atol=1e-6)
    assert actual.min() >= -1 and actual.max() <= 1


def test_encoder_targets_and_loss_fit_the_model(model, cfg):
    example = next(iter(keras_ssd.data.load("shapes", "train", num_examples=1, image_size=320)))
    y_true = keras_ssd.TargetEncoder(cfg)(example["boxes"], example["labels"])
    assert y_true.shape == (3234, 5) and (np.asarray(y_true)[:, 4] > 0).any()
    y_pred = model(np.asarray(example["image"])[None].astype(np.float32))
    loss = keras_ssd.SSDLoss()(np.asarray(y_true)[None], y_pred)
    assert np.isfinite(float(loss)) and float(loss) > 0


def test_keras_round_trip(model, tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (1, 320, 320, 3)).astype(np.float32)
    loaded = check_keras_file_round_trip(model, images, str(tmp_path / "ssdlite.keras"), atol=1e-5)
    assert loaded.ssd_config == model.ssd_config
    assert loaded.get_layer("mobilenet_v2").get_layer("bn_Conv1").momentum == BATCH_NORM_MOMENTUM


@pytest.mark.parametrize("include_top", [True, False])
def test_weights_file_fills_the_backbone(tmp_path, include_top):
    reference = keras.applications.MobileNetV2(weights=None, include_top=include_top)
    path = str(tmp_path / "mobilenet_v2.weights.h5")
    reference.save_weights(path)
    model = keras_ssd.build_ssd(SSDConfig.from_preset(PRESET, num_classes=3), backbone_weights=path)
    backbone = model.get_layer("mobilenet_v2")
    for name in ("Conv1", "block_13_expand", "block_16_project", "Conv_1", "Conv_1_bn"):
        for ours, theirs in zip(backbone.get_layer(name).get_weights(), reference.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    assert backbone.get_layer("Conv_1_bn").momentum == BATCH_NORM_MOMENTUM


def test_imagenet_weights_use_keras_download_path(monkeypatch):
    """`backbone_weights="imagenet"` asks Keras for the no-top ImageNet file (offline
    here, so the constructor is replaced by one that records its arguments)."""
    calls = []
    real = keras.applications.MobileNetV2

    def recording(**kwargs):
        calls.append(kwargs)
        return real(**{**kwargs, "weights": None})

    monkeypatch.setattr(keras.applications, "MobileNetV2", recording)
    keras_ssd.build_ssd(SSDConfig.from_preset(PRESET, num_classes=3), backbone_weights="imagenet")
    assert {"include_top": False, "weights": "imagenet"} in calls


def test_bad_weights_file_and_config_are_clear_errors(tmp_path):
    bad = tmp_path / "not_mobilenet.weights.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(bad)
    cfg = SSDConfig.from_preset(PRESET, num_classes=3)
    with pytest.raises(ValueError, match="not_mobilenet.weights.h5.*MobileNetV2"):
        keras_ssd.build_ssd(cfg, backbone_weights=str(bad))
    with pytest.raises(ValueError, match="batch_norm must be True"):
        SSDConfig.from_preset(PRESET, batch_norm=False)
    with pytest.raises(ValueError, match=r"Unknown head 'lite'.*'ssd', 'ssdlite'"):
        SSDConfig.from_preset(PRESET, head="lite")
    with pytest.raises(ValueError, match=r"Unknown backbone 'resnet50'.*'vgg16', 'mobilenet_v2'"):
        SSDConfig.from_preset(PRESET, backbone="resnet50")


def test_with_num_classes_keeps_the_backbone(model):
    new = keras_ssd.with_num_classes(model, 3)
    assert new.output_shape == (None, 3234, 4 + 3 + 1)
    # Only the 1x1 class predictors are new; their depthwise convs (random, so equal only
    # if copied) are kept.
    np.testing.assert_array_equal(
        new.get_layer("conf_2_depthwise").kernel, model.get_layer("conf_2_depthwise").kernel
    )
    assert new.get_layer("conf_2").kernel.shape[-1] == 6 * 4 != model.get_layer("conf_2").kernel.shape[-1]
    np.testing.assert_array_equal(
        new.get_layer("mobilenet_v2").get_layer("Conv1").kernel, model.get_layer("mobilenet_v2").get_layer("Conv1").kernel
    )
    np.testing.assert_array_equal(new.get_layer("loc_0").kernel, model.get_layer("loc_0").kernel)

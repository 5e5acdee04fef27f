"""VGG16 base: map sizes and weight loading from a locally saved Keras VGG16."""

import keras
import numpy as np
import pytest

import keras_ssd
from keras_ssd import SSDConfig
from keras_ssd.backbones.vgg16 import subsample_fc


def test_pool3_rounds_up_and_pool5_keeps_size():
    model = keras_ssd.build_ssd(SSDConfig.from_preset("ssd300_vgg16"))
    assert model.get_layer("block3_conv3").output.shape[1] == 75
    assert model.get_layer("block4_conv3").output.shape[1] == 38  # ceil(75 / 2)
    assert model.get_layer("block5_pool").output.shape[1] == 19
    assert model.get_layer("fc6").dilation_rate == (6, 6)
    assert model.get_layer("fc6").kernel.shape == (3, 3, 512, 1024)
    assert model.get_layer("fc7").kernel.shape == (1, 1, 1024, 1024)


def test_subsample_fc_picks_every_third_tap_and_fourth_unit():
    rng = np.random.default_rng(0)
    fc1 = rng.normal(size=(7 * 7 * 512, 4096)).astype(np.float32)
    fc2 = rng.normal(size=(4096, 4096)).astype(np.float32)
    b1, b2 = np.arange(4096.0), -np.arange(4096.0)
    k6, bias6, k7, bias7 = subsample_fc(fc1, b1, fc2, b2)
    assert k6.shape == (3, 3, 512, 1024) and k7.shape == (1, 1, 1024, 1024)
    # Tap (i, j) of fc6 is VGG's (3i, 3j); flatten order of Keras' fc1 is (h, w, c).
    i, j, c, out = 2, 1, 17, 5
    assert k6[i, j, c, out] == fc1[(3 * i * 7 + 3 * j) * 512 + c, 4 * out]
    assert k7[0, 0, 10, 3] == fc2[40, 12]
    assert bias6[5] == 20.0 and bias7[5] == -20.0


@pytest.mark.full_size
def test_weights_file_with_top_fills_convs_and_fc6_fc7(tmp_path):
    vgg = keras.applications.VGG16(weights=None, include_top=True)
    path = str(tmp_path / "vgg16.weights.h5")
    vgg.save_weights(path)
    model = keras_ssd.build_ssd(SSDConfig.from_preset("ssd300_vgg16"), backbone_weights=path)
    for name in ("block1_conv1", "block3_conv2", "block5_conv3"):
        for ours, theirs in zip(model.get_layer(name).get_weights(), vgg.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    expected = subsample_fc(*vgg.get_layer("fc1").get_weights(), *vgg.get_layer("fc2").get_weights())
    actual = model.get_layer("fc6").get_weights() + model.get_layer("fc7").get_weights()
    for ours, theirs in zip(actual, expected):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.full_size
def test_weights_file_without_top_leaves_fc6_random(tmp_path):
    vgg = keras.applications.VGG16(weights=None, include_top=False)
    path = str(tmp_path / "vgg16_notop.weights.h5")
    vgg.save_weights(path)
    model = keras_ssd.build_ssd(SSDConfig.from_preset("ssd300_vgg16"), backbone_weights=path)
    np.testing.assert_array_equal(
        model.get_layer("block4_conv1").get_weights()[0], vgg.get_layer("block4_conv1").get_weights()[0]
    )
    assert model.get_layer("fc6").kernel.shape == (3, 3, 512, 1024)


def test_bad_weights_file_and_wrong_widths_are_clear_errors(tmp_path, tiny_cfg):
    bad = tmp_path / "not_vgg.weights.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(bad)
    with pytest.raises(ValueError, match="not_vgg.weights.h5"):
        keras_ssd.build_ssd(SSDConfig.from_preset("ssd300_vgg16"), backbone_weights=str(bad))
    with pytest.raises(ValueError, match="needs VGG16 widths.*ssd_tiny"):
        keras_ssd.build_ssd(tiny_cfg, backbone_weights="imagenet")

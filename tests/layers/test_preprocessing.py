import keras
import numpy as np
import tensorflow as tf
from round_trips import check_config_round_trip

from keras_ssd import precision
from keras_ssd.layers.preprocessing import VGG_BGR_MEAN, VGGPreprocessing


def test_rgb_becomes_bgr_minus_mean_like_keras_vgg16():
    rgb = np.random.default_rng(0).integers(0, 256, (2, 5, 5, 3)).astype(np.uint8)
    ours = np.asarray(VGGPreprocessing()(rgb))
    theirs = keras.applications.vgg16.preprocess_input(rgb.astype(np.float32))
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    np.testing.assert_allclose(ours[0, 0, 0], rgb[0, 0, 0, ::-1] - np.array(VGG_BGR_MEAN), atol=1e-4)


def test_config_round_trip():
    layer = VGGPreprocessing(mean=(1.0, 2.0, 3.0))
    rgb = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3)).astype(np.float32)
    clone = check_config_round_trip(layer, rgb)
    assert clone.mean == (1.0, 2.0, 3.0)


def test_bit_for_bit_the_channel_swap_and_subtraction_in_float32_and_bf16():
    rgb = np.random.default_rng(1).integers(0, 256, (2, 7, 6, 3)).astype(np.uint8)
    mean = np.asarray(VGG_BGR_MEAN, np.float32)
    np.testing.assert_array_equal(np.asarray(VGGPreprocessing()(rgb)), rgb[..., ::-1].astype(np.float32) - mean)
    with precision.global_policy("mixed_bfloat16"):
        got = VGGPreprocessing()(rgb.astype(np.float32))
    assert got.dtype == "bfloat16"
    bgr, mean_bf16 = tf.constant(rgb[..., ::-1], tf.bfloat16), tf.constant(mean, tf.bfloat16)
    np.testing.assert_array_equal(tf.cast(got, tf.float32).numpy(), tf.cast(bgr - mean_bf16, tf.float32).numpy())

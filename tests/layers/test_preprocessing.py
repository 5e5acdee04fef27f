import keras
import numpy as np
from round_trips import check_config_round_trip

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

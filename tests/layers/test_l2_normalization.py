import numpy as np
from round_trips import check_config_round_trip

from keras_ssd import L2Normalization


def test_output_has_norm_equal_to_scale():
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 8)).astype(np.float32) * 50
    layer = L2Normalization()
    y = np.asarray(layer(x))
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), 20.0, rtol=1e-5)
    assert layer.scale.shape == (8,) and layer.trainable_weights


def test_per_channel_scale_is_learned_and_config_round_trips():
    layer = L2Normalization(scale_init=5.0, name="norm")
    x = np.array([[[[3.0, 4.0]]]], np.float32)
    np.testing.assert_allclose(np.asarray(layer(x)), [[[[3.0, 4.0]]]], rtol=1e-6)
    layer.scale.assign([1.0, 2.0])
    np.testing.assert_allclose(np.asarray(layer(x)), [[[[0.6, 1.6]]]], rtol=1e-6)
    clone = check_config_round_trip(layer, x)  # learned scale copied, same output
    assert clone.scale_init == 5.0 and clone.name == "norm"

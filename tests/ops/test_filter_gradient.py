"""The per-tap filter gradient against a hand computation and TensorFlow's own gradients."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ssd import cpu
from keras_ssd.ops.filter_gradient import conv2d_tap_gradient, tap_filter_gradient

# (batch, height, width, in, out, kernel, dilation): odd and non-square maps, a 1x1 and a
# 5x5 kernel, fc6's dilation 6, and a dilation wider than the map (taps that see only padding).
CASES = [
    (2, 7, 9, 3, 4, 3, 1),
    (3, 5, 6, 4, 2, 3, 2),
    (1, 19, 19, 6, 5, 3, 6),
    (2, 4, 5, 3, 3, 3, 6),
    (2, 6, 6, 5, 7, 1, 1),
    (1, 8, 7, 2, 3, 5, 1),
]


def _by_hand(x, dy, k, d):
    """dW[i, j] = sum over batch and positions of x_pad[b, h + i*d, w + j*d, :]^T dy[b, h, w, :]."""
    _, height, width, _ = x.shape
    p = d * (k - 1) // 2
    padded = np.pad(x, [(0, 0), (p, p), (p, p), (0, 0)]).astype(np.float64)
    dw = np.zeros((k, k, x.shape[-1], dy.shape[-1]))
    for i in range(k):
        for j in range(k):
            window = padded[:, i * d:i * d + height, j * d:j * d + width, :]
            dw[i, j] = np.einsum("bhwc,bhwo->co", window, dy)
    return dw


def _arrays(case, seed=0):
    b, h, w, cin, cout, k, _ = case
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(b, h, w, cin)).astype(np.float32), rng.normal(size=(b, h, w, cout)).astype(np.float32),
            rng.normal(size=(k, k, cin, cout)).astype(np.float32))


@pytest.mark.parametrize("case", CASES)
def test_tap_filter_gradient_equals_the_hand_computed_sum(case):
    x, dy, _ = _arrays(case)
    k, d = case[5], case[6]
    got = tap_filter_gradient(tf.constant(x), tf.constant(dy), k, d).numpy()
    np.testing.assert_allclose(got, _by_hand(x, dy, k, d), rtol=1e-5, atol=1e-4)


def test_tap_filter_gradient_in_bf16_is_within_bf16_rounding():
    case = (2, 9, 9, 16, 24, 3, 1)
    x, dy, _ = _arrays(case)
    got = tap_filter_gradient(tf.constant(x, tf.bfloat16), tf.constant(dy, tf.bfloat16), 3, 1)
    expected = _by_hand(tf.cast(tf.constant(x, tf.bfloat16), tf.float32).numpy(),
                        tf.cast(tf.constant(dy, tf.bfloat16), tf.float32).numpy(), 3, 1)
    assert got.dtype == tf.bfloat16
    # One bf16 rounding of each sum (8 mantissa bits: relative 2^-8).
    np.testing.assert_allclose(tf.cast(got, tf.float32).numpy(), expected, rtol=2**-7, atol=np.abs(expected).max() * 2**-8)


@pytest.mark.numerics
@pytest.mark.parametrize("case", CASES)
def test_convolution_outputs_and_gradients_equal_tensorflows(case):
    x, dy, kernel = _arrays(case, seed=1)
    d = case[6]
    if d > 1 and not cpu.onednn_enabled():
        pytest.skip("TensorFlow's CPU kernels without oneDNN have no dilated Conv2D gradient (the layer keeps Keras' path)")
    x, kernel = tf.constant(x), tf.Variable(kernel)
    results = []
    for convolve in (lambda: tf.nn.convolution(x, kernel, padding="SAME", dilations=d),
                     lambda: conv2d_tap_gradient(x, kernel, d)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = convolve()
            loss = tf.reduce_sum(y * dy)
        results.append([y, *tape.gradient(loss, [x, kernel])])
    for got, expected in zip(results[1], results[0]):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-4)


def test_even_kernel_is_refused():
    with pytest.raises(ValueError, match="odd"):
        tap_filter_gradient(tf.zeros((1, 4, 4, 2)), tf.zeros((1, 4, 4, 2)), 2)


def test_one_trace_serves_every_batch_size():
    convolve = tf.function(lambda x, k: conv2d_tap_gradient(x, k, 1),
                           input_signature=[tf.TensorSpec([None, 6, 7, 3]), tf.TensorSpec([3, 3, 3, 4])])
    _, _, kernel = _arrays((1, 6, 7, 3, 4, 3, 1))
    kernel = tf.constant(kernel)
    for batch in (1, 3):
        x, dy, _ = _arrays((batch, 6, 7, 3, 4, 3, 1), seed=batch)
        with tf.GradientTape() as tape:
            tape.watch(kernel)
            loss = tf.reduce_sum(convolve(tf.constant(x), kernel) * dy)
        np.testing.assert_allclose(tape.gradient(loss, kernel).numpy(), _by_hand(x, dy, 3, 1), rtol=1e-5, atol=1e-4)
    assert len(convolve._list_all_concrete_functions()) == 1

"""keras_ssd's Conv2D: Keras' layer, with a dilated convolution run as one op where oneDNN is on."""

import io
import os
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssd import cpu, precision
from keras_ssd.layers import Conv2D
from keras_ssd.layers import conv2d as conv2d_module
from keras_ssd.model import load_ssd
from tests.round_trips import check_config_round_trip

DEMO_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "saved_models", "ssd_tiny.keras")


def _pair(**kwargs):
    """Keras' layer and ours, built alike with the same random weights."""
    ours, theirs = Conv2D(**kwargs), keras.layers.Conv2D(**kwargs)
    rng = np.random.default_rng(0)
    for layer in (ours, theirs):
        layer.build((None, 11, 13, 5))
    weights = [rng.normal(0.0, 0.3, w.shape).astype(np.float32) for w in theirs.get_weights()]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    return ours, theirs


def _step(layer, x):
    """Output, and the gradients of a position-weighted sum w.r.t. the input and every weight."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.cast(layer(x, training=True), tf.float32)
        weights = tf.reshape(tf.sin(tf.range(tf.size(y), dtype=tf.float32) / 7.0), tf.shape(y))
        loss = tf.reduce_sum(y * weights)
    return [y, *tape.gradient(loss, [x, *layer.trainable_weights])]


def _op_types(layer, x):
    """The ops of `layer`'s traced call on `x`."""
    graph = tf.function(lambda v: layer(v, training=True)).get_concrete_function(x).graph
    return graph.get_operations()


def _gradient_op_types(layer, x, training=True):
    """The op types of a traced step: `layer`'s call on `x` and the gradient of its sum."""

    def step(v):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.cast(layer(v, training=training), "float32"))
        return tape.gradient(loss, layer.trainable_weights)

    return {op.type for op in tf.function(step).get_concrete_function(x).graph.get_operations()}


@pytest.mark.numerics
@pytest.mark.parametrize("dilation, padding, bias", [(3, "same", True), (6, "same", False), (2, "valid", True)])
def test_outputs_and_gradients_match_keras_conv2d(dilation, padding, bias):
    x = tf.constant(np.random.default_rng(1).normal(0.0, 1.0, (2, 11, 13, 5)).astype(np.float32))
    kwargs = dict(filters=4, kernel_size=3, padding=padding, dilation_rate=dilation, use_bias=bias,
                  activation="relu")
    ours, theirs = _pair(**kwargs)
    for got, expected in zip(_step(ours, x), _step(theirs, x)):
        # float32 rounding: the two paths sum the same products in another order.
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.numerics
def test_dilated_conv_is_one_op_where_onednn_is_on_and_keras_path_where_off():
    x = tf.zeros((2, 11, 13, 5))
    ours, theirs = _pair(filters=4, kernel_size=3, padding="same", dilation_rate=3)
    ops = _op_types(ours, x)
    types = {op.type for op in ops}
    if cpu.onednn_enabled():
        assert "SpaceToBatchND" not in types and "BatchToSpaceND" not in types
        [conv] = [op for op in ops if op.type == "Conv2D"]
        assert list(conv.get_attr("dilations")) == [1, 3, 3, 1]
    else:  # TensorFlow's CPU kernels without oneDNN have no gradient for a dilated Conv2D
        assert types == {op.type for op in _op_types(theirs, x)}
        assert "SpaceToBatchND" in types
    # Undilated: Keras' own call either way.
    plain_ours, plain_theirs = _pair(filters=4, kernel_size=3, padding="same")
    assert {op.type for op in _op_types(plain_ours, x)} == {op.type for op in _op_types(plain_theirs, x)}


@pytest.fixture
def bf16_cpu_without_amx(monkeypatch):
    """Any CPU reads as one with AVX512_BF16 and no AMX, and every channel count qualifies.

    Whether oneDNN is on stays this process's own: the per-tap filter gradient is
    taken only with it on.
    """
    monkeypatch.setattr(cpu, "kernel_flags", lambda: ("avx2", "avx512f", "avx512_bf16"))
    monkeypatch.setattr(conv2d_module, "TAP_GRADIENT_MIN_WEIGHTS", 1)
    conv2d_module._tap_gradient_machine.cache_clear()
    yield
    conv2d_module._tap_gradient_machine.cache_clear()


# bf16 runs on oneDNN's bf16 kernels here (read before any test changes the CPU's flags).
# Elsewhere TensorFlow's Eigen bf16 kernels compute Keras' filter gradient with errors of
# a few percent (2.5% seen with oneDNN off), too coarse to compare against.
NATIVE_BF16 = precision.auto_precision().value == "mixed_bfloat16"


@pytest.mark.numerics
@pytest.mark.skipif(not NATIVE_BF16, reason="no bf16 kernels on this CPU (or oneDNN off): Keras' bf16 path is Eigen's")
@pytest.mark.parametrize("dilation, bias", [(1, True), (6, False)])
def test_bf16_training_with_the_tap_gradient_matches_keras_conv2d(bf16_cpu_without_amx, dilation, bias):
    x = tf.constant(np.random.default_rng(3).normal(0.0, 1.0, (2, 11, 13, 5)).astype(np.float32))
    with precision.global_policy("mixed_bfloat16"):
        ours, theirs = _pair(filters=4, kernel_size=3, padding="same", dilation_rate=dilation, use_bias=bias,
                             activation="relu")
        assert "MatMul" in _gradient_op_types(ours, tf.cast(x, tf.bfloat16))
        assert "MatMul" not in _gradient_op_types(theirs, tf.cast(x, tf.bfloat16))
        got, expected = _step(ours, x), _step(theirs, x)
    # Forward and input gradient are the same ops; the kernel's gradient is summed in
    # another order and rounded to bf16 once (relative 2^-8 of the largest entry).
    for mine, keras_value in zip(got, expected):
        scale = np.abs(keras_value.numpy()).max()
        np.testing.assert_allclose(mine.numpy(), keras_value.numpy(), rtol=0, atol=scale * 2**-7)


def test_tap_gradient_only_for_bf16_stride_1_same_odd_kernels_in_training_with_onednn(bf16_cpu_without_amx):
    def uses_taps(policy="mixed_bfloat16", training=True, **kwargs):
        with precision.global_policy(policy):
            layer = Conv2D(**{"filters": 4, "kernel_size": 3, "padding": "same", **kwargs})
            return "MatMul" in _gradient_op_types(layer, tf.zeros((2, 12, 12, 5), layer.compute_dtype), training)

    assert uses_taps() == cpu.onednn_enabled()
    assert uses_taps(kernel_size=1) == cpu.onednn_enabled()
    assert uses_taps(kernel_size=1, padding="valid") == cpu.onednn_enabled()  # the same convolution
    assert not uses_taps(training=False)  # inference keeps the fused forward untouched
    assert not uses_taps(policy="float32")
    assert not uses_taps(strides=2)
    assert not uses_taps(padding="valid")
    assert not uses_taps(kernel_size=2)
    assert not uses_taps(kernel_size=(3, 1))


def test_config_round_trips_and_keeps_keras_class_name():
    layer = Conv2D(8, 3, padding="same", dilation_rate=6, activation="relu", name="fc6")
    check_config_round_trip(layer, tf.ones((1, 19, 19, 4)), atol=1e-6)
    # The weight paths of a .keras file come from the snake-cased class name.
    assert keras.src.utils.naming.to_snake_case(type(layer).__name__) == "conv2d"


def _weights_file(path):
    """{h5 path: array} of the weights inside a `.keras` archive."""
    with zipfile.ZipFile(path) as archive:
        data = archive.read("model.weights.h5")
    arrays = {}
    with h5py.File(io.BytesIO(data), "r") as h5:
        h5.visititems(lambda name, item: arrays.update({name: item[()]}) if isinstance(item, h5py.Dataset) else None)
    return arrays


@pytest.mark.numerics
def test_the_shipped_demo_saved_with_keras_conv2d_loads_and_saves_the_same_weights(tmp_path):
    model = load_ssd(DEMO_MODEL)
    assert type(model.get_layer("fc6")) is Conv2D  # an SSD is rebuilt from its SSDConfig
    # Saved again, every weight sits at the same path with the same value.
    resaved = str(tmp_path / "resaved.keras")
    model.save(resaved)
    before, after = _weights_file(DEMO_MODEL), _weights_file(resaved)
    assert sorted(before) == sorted(after)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    # fc6 (dilation 3) gives Keras' layer's outputs on its real input.
    fc6 = model.get_layer("fc6")
    keras_fc6 = keras.layers.Conv2D.from_config(fc6.get_config())
    features = keras.Model(model.input, fc6.input)(np.random.default_rng(2).uniform(0, 255, (2, 160, 160, 3)))
    keras_fc6.build(features.shape)
    keras_fc6.set_weights(fc6.get_weights())
    np.testing.assert_allclose(fc6(features).numpy(), keras_fc6(features).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("flags", [("avx2",), ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")])
def test_no_tap_gradient_without_avx512_bf16_or_with_amx(monkeypatch, flags):
    # Measured faster only on AVX512_BF16 without AMX; AMX CPUs keep oneDNN's own kernels.
    monkeypatch.setattr(cpu, "kernel_flags", lambda: flags)
    conv2d_module._tap_gradient_machine.cache_clear()
    try:
        assert not conv2d_module._tap_gradient_machine()
    finally:
        conv2d_module._tap_gradient_machine.cache_clear()

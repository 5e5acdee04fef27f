"""FusedBatchNormalization trains as Keras' BatchNormalization does, through the fused kernel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_ssd
from keras_ssd import precision
from keras_ssd.layers import FusedBatchNormalization
from tests.round_trips import check_config_round_trip


def _pair(momentum=0.9):
    """Keras' layer and ours, built alike with the same non-trivial gamma and beta."""
    layers = keras.layers.BatchNormalization(momentum=momentum), FusedBatchNormalization(momentum=momentum)
    for layer in layers:
        layer.build((None, 5, 6, 7))
        layer.gamma.assign(np.linspace(0.5, 2.0, 7))
        layer.beta.assign(np.linspace(-1.0, 1.0, 7))
    return layers


def _step(layer, x):
    """Output, and the gradients of a channel-weighted sum w.r.t. the input, gamma and beta."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * tf.range(7, dtype=tf.float32))
    return [y, *tape.gradient(loss, [x, layer.gamma, layer.beta])]


@pytest.mark.numerics
def test_training_step_matches_keras_batch_norm():
    x = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, (4, 5, 6, 7)).astype(np.float32))
    keras_bn, fused = _pair()
    for ours, theirs, tol in zip(_step(fused, x), _step(keras_bn, x), (1e-5, 1e-5, 1e-4, 1e-4)):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=tol)
    # The moving averages: 0.9 * (0, 1) + 0.1 * (batch mean, biased batch variance).
    flat = x.numpy().reshape(-1, 7)
    np.testing.assert_allclose(fused.moving_mean.numpy(), 0.1 * flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), 0.9 + 0.1 * flat.var(0), rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), keras_bn.moving_variance.numpy(), rtol=1e-6)


def test_the_fused_kernel_runs_in_training_and_keras_graph_in_inference():
    x = tf.zeros((2, 4, 4, 7))
    _, fused = _pair()

    def op_types(training):
        graph = tf.function(lambda v: fused(v, training=training)).get_concrete_function(x).graph
        return {op.type for op in graph.get_operations()}

    training_ops, inference_ops = op_types(True), op_types(False)
    assert "FusedBatchNormV3" in training_ops
    assert "FusedBatchNormV3" not in inference_ops  # the exported graphs are Keras' own


def test_masked_or_non_4d_input_takes_keras_path_and_config_round_trips():
    fused = FusedBatchNormalization(momentum=0.8)
    y = fused(tf.ones((3, 7)) * tf.range(3, dtype=tf.float32)[:, None], training=True)
    assert y.shape == (3, 7) and np.isfinite(y.numpy()).all()
    check_config_round_trip(fused, tf.ones((3, 7)), atol=1e-6)


def test_ssd_tiny_builds_its_batch_norms_fused():
    model = keras_ssd.build_ssd(keras_ssd.SSDConfig.from_preset("ssd_tiny", num_classes=3))
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 15 and all(isinstance(layer, FusedBatchNormalization) for layer in norms)


@pytest.mark.numerics
def test_bf16_input_reaches_the_kernel_uncast_with_keras_results():
    x = tf.constant(np.random.default_rng(3).normal(2.0, 3.0, (4, 5, 6, 7)).astype(np.float32))
    with precision.global_policy("mixed_bfloat16"):
        keras_bn, fused = _pair()
        x16 = tf.cast(x, tf.bfloat16)
        graph = tf.function(lambda v: fused(v, training=True)).get_concrete_function(x16).graph
        [kernel] = [op for op in graph.get_operations() if op.type == "FusedBatchNormV3"]
        assert kernel.get_attr("T") == tf.bfloat16 and kernel.get_attr("U") == tf.float32
        assert not any(op.type == "Cast" and op.outputs[0].dtype == tf.float32 and op.inputs[0].dtype == tf.bfloat16
                       and op.outputs[0].shape.rank == 4 for op in graph.get_operations())

        def step(layer):
            with tf.GradientTape() as tape:
                tape.watch(x16)
                y = layer(x16, training=True)
                # Weighted by position: a per-channel weight would give a zero input gradient.
                weights = tf.reshape(tf.sin(tf.range(840, dtype=tf.float32) / 7.0), (4, 5, 6, 7))
                loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
            return [y, *tape.gradient(loss, [x16, layer.gamma, layer.beta])]

        ours, theirs = step(fused), step(keras_bn)
    assert ours[0].dtype == tf.bfloat16
    # Keras' layer normalises a float32 copy; both round to bf16 (8 bits of mantissa).
    for got, expected in zip(ours, theirs):
        expected = tf.cast(expected, tf.float32).numpy()
        np.testing.assert_allclose(tf.cast(got, tf.float32).numpy(), expected, rtol=2e-2,
                                   atol=2e-2 * np.abs(expected).max())
    np.testing.assert_allclose(fused.moving_mean.numpy(), keras_bn.moving_mean.numpy(), rtol=1e-2, atol=1e-3)
    np.testing.assert_allclose(fused.moving_variance.numpy(), keras_bn.moving_variance.numpy(), rtol=1e-2)

"""Learning-rate schedule and the two optimisers, against hand-computed values."""

import math

import keras
import numpy as np
import pytest
from round_trips import check_config_round_trip

from keras_ssd.optimizers import OPTIMIZERS, WarmUpDecay, build_adamw, build_sgd


def _lr(schedule, step):
    return float(schedule(step))


def test_warm_up_then_cosine():
    schedule = WarmUpDecay(0.1, total_steps=110, warmup_steps=10, warmup_factor=0.001)
    assert _lr(schedule, 0) == pytest.approx(0.1 * 0.001)
    # Halfway through the warm-up: 0.001 + 0.999 * 0.5 of the peak.
    assert _lr(schedule, 5) == pytest.approx(0.1 * (0.001 + 0.999 * 0.5))
    assert _lr(schedule, 10) == pytest.approx(0.1)
    # Cosine over the 100 steps after the warm-up: half at step 60, zero at 110.
    assert _lr(schedule, 60) == pytest.approx(0.05, abs=1e-7)
    assert _lr(schedule, 35) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.25)), rel=1e-6)
    assert _lr(schedule, 110) == pytest.approx(0.0, abs=1e-9)


def test_step_decay_at_two_thirds_and_five_sixths():
    schedule = WarmUpDecay(1.0, total_steps=120, warmup_steps=0, decay="step")
    assert [_lr(schedule, s) for s in (0, 79, 80, 99, 100, 119)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    )


def test_schedule_rejects_bad_arguments_and_round_trips():
    with pytest.raises(ValueError, match="decay must be 'cosine' or 'step', got 'linear'"):
        WarmUpDecay(0.1, 10, decay="linear")
    with pytest.raises(ValueError, match="warmup_steps=20, total_steps=10"):
        WarmUpDecay(0.1, 10, warmup_steps=20)
    schedule = WarmUpDecay(0.1, 100, 10, "step")
    check_config_round_trip(schedule, np.array(55.0, np.float32))


def test_sgd_scales_the_rate_with_batch_and_keeps_the_paper_weight_decay():
    optimizer = build_sgd(1e-3, batch_size=64, total_steps=100, warmup_steps=0, clip_norm=10.0)
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.learning_rate.numpy() == pytest.approx(2e-3)  # 1e-3 at batch 32, x 64/32
    assert optimizer.momentum == 0.9
    # Coupled 5e-4 under momentum 0.9 == decoupled 5e-4 / (1 - 0.9).
    assert optimizer.weight_decay == pytest.approx(5e-3)
    assert optimizer.global_clipnorm == 10.0


def test_adamw_uses_the_same_schedule_and_does_not_decay_biases():
    optimizer = build_adamw(2e-3, batch_size=16, total_steps=100, warmup_steps=0, weight_decay=0.01)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.learning_rate.numpy() == pytest.approx(1e-3)  # 2e-3 at batch 32, x 16/32
    assert optimizer.weight_decay == pytest.approx(0.01)
    assert set(OPTIMIZERS) == {"sgd", "adamw"}

    kernel = keras.Variable(np.ones(3, np.float32), name="kernel")
    bias = keras.Variable(np.ones(3, np.float32), name="bias")
    optimizer.apply_gradients([(np.zeros(3, np.float32), kernel), (np.zeros(3, np.float32), bias)])
    # Zero gradients: only the decoupled decay moves a weight, and not the bias.
    assert np.all(kernel.numpy() < 1.0)
    np.testing.assert_array_equal(bias.numpy(), np.ones(3))

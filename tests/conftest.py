"""Shared fixtures: small configs so the suite runs on 2 CPU cores."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

import keras_ssd  # noqa: E402


@pytest.fixture
def tiny_cfg():
    """`ssd_tiny` with 3 classes (160 px input, 2390 default boxes)."""
    return keras_ssd.SSDConfig.from_preset("ssd_tiny", num_classes=3)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)

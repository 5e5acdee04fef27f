"""Shared fixtures: small configs so the suite runs on 2 CPU cores.

The README runs the suite on two pytest-xdist workers (`-n 2`). The tests of
tests/export share costly session fixtures (exports, int8 calibration), so
`pytest_xdist_make_scheduler` keeps that folder on one worker; every other test
is balanced on its own. (`--dist loadgroup` would say the same with marks, but
under pytest 9.2 it groups nothing; NOTES.md has the upstream report.)
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

import keras_ssd  # noqa: E402


SHARED_FIXTURE_FOLDERS = ("tests/export/",)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's load balancing, with each folder of `SHARED_FIXTURE_FOLDERS` as one unit."""
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            folder = next((f for f in SHARED_FIXTURE_FOLDERS if nodeid.startswith(f)), None)
            return folder or nodeid

    return SharedFixtureScheduling(config, log)


def pytest_terminal_summary(terminalreporter):
    """Names the CPU and the oneDNN setting the run used, above pytest's closing line."""
    from keras_ssd import cpu

    terminalreporter.write_line(f"cpu: {cpu.describe()}")


@pytest.fixture
def tiny_cfg():
    """`ssd_tiny` with 3 classes (160 px input, 2390 default boxes)."""
    return keras_ssd.SSDConfig.from_preset("ssd_tiny", num_classes=3)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)

"""BackgroundSaver: its twin's file is the model's file, and it holds the state of the moment it was taken."""

import io
import threading
import zipfile

import h5py
import keras
import numpy as np
import pytest

import keras_ssd
from keras_ssd import precision, recipes
from keras_ssd.background_save import BackgroundSaver


def _contents(path):
    """`(config.json text, {dataset path: array})` of a `.keras` file."""
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json").decode()
        weights = io.BytesIO(archive.read("model.weights.h5"))
    arrays = {}
    with h5py.File(weights, "r") as f:
        f.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return config, arrays


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_twin_of_a_training_ssd_saves_the_same_file(tmp_path, policy):
    cfg = keras_ssd.SSDConfig.from_preset("ssd_tiny", num_classes=3)
    recipe = recipes.for_preset("ssd_tiny").replace(batch_size=2, precision=policy)
    examples = keras_ssd.data.load("shapes", "train", num_examples=2)
    images, targets = next(iter(keras_ssd.data.train_pipeline(examples, cfg, 2, augment=recipe.augment, seed=0)))
    with precision.global_policy(policy):
        model = keras_ssd.build_ssd(cfg)
        recipes.compile_for_training(model, recipe, steps_per_epoch=10)
        model.train_on_batch(images, targets)  # momenta and batch-norm statistics away from their start
        saver = BackgroundSaver(model)
    twin = saver.snapshot()
    assert precision.policy_of(twin) == policy
    saver.submit(lambda: twin.save(tmp_path / "twin.keras"))
    saver.close()
    model.save(tmp_path / "model.keras")

    twin_config, twin_arrays = _contents(tmp_path / "twin.keras")
    model_config, model_arrays = _contents(tmp_path / "model.keras")
    assert twin_config == model_config
    assert twin_arrays.keys() == model_arrays.keys()
    assert any("optimizer" in name for name in model_arrays)  # the SGD state is in the file
    for name, array in model_arrays.items():
        np.testing.assert_array_equal(twin_arrays[name], array, err_msg=name)


def _trained_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    model.fit(np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32), verbose=0)
    return model


def test_snapshot_holds_the_state_of_its_moment_while_the_model_trains_on(tmp_path):
    model = _trained_model()
    saver = BackgroundSaver(model)
    twin = saver.snapshot()
    expected = [v.numpy().copy() for v in [*model.variables, *model.optimizer.variables]]
    release = threading.Event()
    saver.submit(release.wait)  # the write below waits until the model has trained on
    saver.submit(lambda: twin.save(tmp_path / "snapshot.keras"))
    model.fit(np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32), verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 2
    release.set()
    saver.close()
    saved = keras.models.load_model(tmp_path / "snapshot.keras")
    assert int(saved.optimizer.iterations.numpy()) == 1
    for got, want in zip([*saved.variables, *saved.optimizer.variables], expected):
        np.testing.assert_array_equal(got.numpy(), want)


def test_a_failed_job_drops_the_jobs_behind_it_and_is_raised():
    saver = BackgroundSaver(_trained_model())
    ran = []

    def fail():
        raise OSError(28, "No space left on device")

    release = threading.Event()
    saver.submit(release.wait)  # both jobs queued before the first runs
    saver.submit(fail)
    saver.submit(lambda: ran.append("copy of the file that was not written"))
    release.set()
    with pytest.raises(OSError, match="No space left on device"):
        saver.wait()
    assert ran == []
    saver.submit(lambda: ran.append("next"))  # raised once: the saver goes on
    saver.close()
    assert ran == ["next"]


def test_a_failure_is_raised_by_the_next_call_after_it():
    saver = BackgroundSaver(_trained_model())

    def fail():
        raise OSError(28, "No space left on device")

    saver.submit(fail)
    with pytest.raises(OSError, match="No space left on device"):
        saver.snapshot()  # the next epoch's save waits for the job and raises its failure
    saver.close()


def test_a_model_without_a_built_optimizer_is_refused():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="no built optimizer"):
        BackgroundSaver(model)

"""Checkpoint and backup callbacks under the failures users hit: NaN, kills, resumes."""

import json

import keras
import numpy as np
import pytest

from keras_ssd.callbacks import LearningRateLog, ResumableBackup, SafeModelCheckpoint


def _model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_best_checkpoint_keeps_its_score_across_runs(tmp_path):
    path = tmp_path / "best.keras"
    first = SafeModelCheckpoint(path, monitor="score", verbose=0)
    first.set_model(_model())
    first.on_train_begin()
    first.on_epoch_end(0, {"loss": 1.0, "score": 0.7})
    assert json.loads((tmp_path / "best.keras.json").read_text())["score"] == 0.7
    saved = path.stat().st_mtime_ns

    resumed = SafeModelCheckpoint(path, monitor="score", verbose=0)
    resumed.set_model(_model())
    resumed.on_train_begin()
    resumed.on_epoch_end(1, {"loss": 1.0, "score": 0.5})  # worse: must not replace
    assert path.stat().st_mtime_ns == saved
    resumed.on_epoch_end(2, {"loss": 1.0, "score": 0.9})
    assert json.loads((tmp_path / "best.keras.json").read_text()) == {"score": 0.9, "epoch": 3}
    assert not list(tmp_path.glob("*.partial.keras"))


def _kernel(path):
    return float(keras.models.load_model(path).layers[0].kernel.numpy()[0, 0])


def test_best_checkpoint_copies_the_last_one_written_this_epoch(tmp_path):
    model = _model()
    last = SafeModelCheckpoint(tmp_path / "last.keras")
    best = SafeModelCheckpoint(tmp_path / "best.keras", monitor="score", verbose=0, copy_of=last)
    for callback in (last, best):
        callback.set_model(model)
        callback.on_train_begin()
    for epoch, score in enumerate([0.5, 0.4, 0.6]):
        model.layers[0].kernel.assign(np.full((2, 1), epoch + 1.0, np.float32))
        for callback in (last, best):
            callback.on_epoch_end(epoch, {"loss": 1.0, "score": score})
        if epoch != 1:  # epoch 1 did not improve: best.keras stays epoch 0's copy
            assert (tmp_path / "best.keras").read_bytes() == (tmp_path / "last.keras").read_bytes()
        assert _kernel(tmp_path / "best.keras") == {0: 1.0, 1: 1.0, 2: 3.0}[epoch]
    assert _kernel(tmp_path / "last.keras") == 3.0


def test_best_checkpoint_saves_the_model_when_its_copy_source_is_stale(tmp_path):
    last = SafeModelCheckpoint(tmp_path / "last.keras")
    last.set_model(_model())
    last.on_epoch_end(0, {"loss": 1.0})  # epoch 0's file; epoch 1 has not saved it yet
    model = _model()
    model.layers[0].kernel.assign(np.full((2, 1), 7.0, np.float32))
    best = SafeModelCheckpoint(tmp_path / "best.keras", monitor="score", verbose=0, copy_of=last)
    best.set_model(model)
    best.on_train_begin()
    best.on_epoch_end(1, {"loss": 1.0, "score": 0.5})
    assert _kernel(tmp_path / "best.keras") == 7.0


def test_nan_epoch_is_never_saved(tmp_path):
    callback = SafeModelCheckpoint(tmp_path / "last.keras")
    callback.set_model(_model())
    callback.on_epoch_end(0, {"loss": float("nan")})
    assert not (tmp_path / "last.keras").exists()
    callback.on_epoch_end(1, {"loss": 0.5})
    assert isinstance(keras.models.load_model(tmp_path / "last.keras"), keras.Sequential)


def test_unreadable_first_backup_restarts_instead_of_failing(tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "latest.weights.h5").write_bytes(b"\x89HDF\r\n half written")
    model = _model()
    x, y = np.ones((8, 2), np.float32), np.ones((8, 1), np.float32)
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[ResumableBackup(backup)])
    assert history.epoch == [0, 1]
    assert not backup.exists()  # removed once training finished


def test_learning_rate_log_records_the_schedules_rate_after_each_epoch():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([4, 8], [0.3, 0.2, 0.1])
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    x, y = np.ones((8, 2), np.float32), np.ones((8, 1), np.float32)
    # 2 steps per epoch: after epochs 1..5 the optimiser has taken 2, 4, 6, 8, 10 steps.
    history = model.fit(x, y, batch_size=4, epochs=5, verbose=0, callbacks=[LearningRateLog()])
    assert history.history["learning_rate"] == pytest.approx([0.3, 0.3, 0.2, 0.2, 0.1])

"""Checkpoint and backup callbacks under the failures users hit: NaN, kills, resumes."""

import json

import keras
import numpy as np

from keras_ssd.callbacks import ResumableBackup, SafeModelCheckpoint


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

"""Checkpoint, backup and CSV log callbacks under the failures users hit: NaN, kills, resumes."""

import json
import re

import keras
import numpy as np
import pytest

from keras_ssd.callbacks import LearningRateLog, ResumableBackup, SafeModelCheckpoint
from keras_ssd.run_log import CSVLog
from numeric_csv import read_numeric_csv


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


class _Killed(Exception):
    pass


class _CrashAfter(keras.callbacks.Callback):
    """Raises at the end of epoch `epoch` (after the callbacks before it), as a killed run stops."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Killed


def _momentum_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="mse")
    return model


def _fit_with_backup(model, tmp_path, epochs, crash_after=None, background=False):
    last = SafeModelCheckpoint(tmp_path / "last.keras", background=background)
    callbacks = [last, ResumableBackup(tmp_path / "backup", checkpoint=last)]
    callbacks += [_CrashAfter(crash_after)] if crash_after is not None else []
    x = np.arange(16, dtype=np.float32).reshape(8, 2) / 8
    try:
        return model.fit(x, x.sum(1, keepdims=True), batch_size=4, epochs=epochs, shuffle=False, verbose=0,
                         callbacks=callbacks)
    finally:
        last.wait()  # a crashed process's queued writes finish before it exits (the worker is joined)


@pytest.mark.parametrize("background", [False, True])
def test_backup_links_the_last_checkpoint_and_resumes_it_with_its_optimizer_state(tmp_path, background, capsys):
    crashed = _momentum_model()
    with pytest.raises(_Killed):
        _fit_with_backup(crashed, tmp_path, epochs=3, crash_after=1, background=background)
    backup = tmp_path / "backup" / "latest.keras"
    assert backup.samefile(tmp_path / "last.keras")  # one file on disk, not a second copy
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 2
    assert not list((tmp_path / "backup").glob("*.h5*")) and not list(tmp_path.rglob("*.partial"))

    resumed = _momentum_model()
    history = _fit_with_backup(resumed, tmp_path, epochs=3, background=background)
    assert history.epoch == [2]  # epochs 0 and 1 are not trained again
    assert int(resumed.optimizer.iterations.numpy()) == 3 * 2
    assert not (tmp_path / "backup").exists()  # removed once training finished
    assert "in the foreground" not in capsys.readouterr().out


@pytest.mark.parametrize("background", [False, True])
def test_resumed_run_equals_one_that_was_never_interrupted(tmp_path, background, capsys):
    keras.utils.set_random_seed(3)
    straight = _momentum_model()
    start = straight.get_weights()
    _fit_with_backup(straight, tmp_path / "straight", epochs=3)

    crashed = _momentum_model()
    crashed.set_weights(start)
    with pytest.raises(_Killed):
        _fit_with_backup(crashed, tmp_path / "crashed", epochs=3, crash_after=1, background=background)
    resumed = _momentum_model()  # other random weights: the backup must replace them, momentum included
    _fit_with_backup(resumed, tmp_path / "crashed", epochs=3, background=background)
    for got, want in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    # The last checkpoint written in the background is the finished model, optimizer state included.
    last = keras.models.load_model(tmp_path / "crashed" / "last.keras")
    for got, want in zip(last.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    for got, want in zip(last.optimizer.variables, straight.optimizer.variables):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    assert "in the foreground" not in capsys.readouterr().out


def test_background_checkpoints_write_what_foreground_ones_write(tmp_path, capsys):
    """last.keras, its copy as best.keras and the backup, in the background, hold the same as in the foreground."""
    files = {}
    for background in (False, True):
        keras.utils.set_random_seed(5)
        model = _momentum_model()
        folder = tmp_path / str(background)
        last = SafeModelCheckpoint(folder / "last.keras", background=background)
        best = SafeModelCheckpoint(folder / "best.keras", monitor="score", verbose=0, copy_of=last)
        scores = iter([0.5, 0.7, 0.6])

        class Score(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs["score"] = next(scores)

        x = np.arange(16, dtype=np.float32).reshape(8, 2) / 8
        model.fit(x, x.sum(1, keepdims=True), batch_size=4, epochs=3, shuffle=False, verbose=0,
                  callbacks=[Score(), last, best])
        files[background] = [keras.models.load_model(folder / name) for name in ("last.keras", "best.keras")]
        assert json.loads((folder / "best.keras.json").read_text()) == {"score": 0.7, "epoch": 2}
        assert not list(folder.glob("*.partial*"))
    for foreground, background in zip(files[False], files[True]):
        for got, want in zip([*background.weights, *background.optimizer.variables],
                             [*foreground.weights, *foreground.optimizer.variables]):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    last, best = files[True]
    assert int(last.optimizer.iterations.numpy()) == 6 and int(best.optimizer.iterations.numpy()) == 4
    assert "in the foreground" not in capsys.readouterr().out


class Misconfigured(keras.Model):
    """A model Keras saves but cannot rebuild: its config names an argument `__init__` does not take."""

    def __init__(self, units=1, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units)

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {**super().get_config(), "width": self.units}


def test_background_checkpoint_saves_in_the_foreground_a_model_it_cannot_copy(tmp_path, capsys):
    model = Misconfigured()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), verbose=0)
    last = SafeModelCheckpoint(tmp_path / "last.keras", background=True)
    last.set_model(model)
    last.on_epoch_end(0, {"loss": 1.0})
    out = capsys.readouterr().out
    assert f"Saving {tmp_path / 'last.keras'} in the foreground: the model cannot be rebuilt from its config " \
           "(ValueError: Unrecognized keyword arguments passed to Misconfigured: {'width': 1})" in out
    assert len(out.splitlines()) == 1
    assert (tmp_path / "last.keras").exists()  # written before on_epoch_end returned
    last.on_train_end()


def test_backup_stays_at_the_epoch_its_checkpoint_last_saved(tmp_path, capsys):
    model = _momentum_model()
    last = SafeModelCheckpoint(tmp_path / "last.keras")
    backup = ResumableBackup(tmp_path / "backup", checkpoint=last)
    for callback in (last, backup):
        callback.set_model(model)
    for callback in (last, backup):
        callback.on_epoch_end(0, {"loss": 1.0})
    for callback in (last, backup):
        callback.on_epoch_end(1, {"loss": float("nan")})  # last.keras not saved: nor is the backup
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    assert (tmp_path / "backup" / "latest.keras").samefile(tmp_path / "last.keras")
    assert "the backup stays at the epoch before" in capsys.readouterr().out


@pytest.mark.parametrize("checkpoint, why", [
    ({"monitor": "score"}, "is saved only when score improves"),
    ({"save": False}, "is saved never (save=False)"),
])
def test_backup_refuses_a_checkpoint_that_does_not_save_every_epoch(tmp_path, checkpoint, why):
    with pytest.raises(ValueError, match=f"must save the model every epoch; .*best.keras {re.escape(why)}"):
        ResumableBackup(tmp_path / "backup", checkpoint=SafeModelCheckpoint(tmp_path / "best.keras", **checkpoint))


def test_backup_copies_where_the_file_system_has_no_hard_links(tmp_path, monkeypatch):
    def no_links(source, destination):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr("os.link", no_links)
    model = _momentum_model()
    with pytest.raises(_Killed):
        _fit_with_backup(model, tmp_path, epochs=2, crash_after=0)
    backup = tmp_path / "backup" / "latest.keras"
    assert not backup.samefile(tmp_path / "last.keras")
    assert backup.read_bytes() == (tmp_path / "last.keras").read_bytes()


def test_backup_in_keras_format_from_an_older_version_still_resumes(tmp_path):
    x, y = np.ones((8, 2), np.float32), np.ones((8, 1), np.float32)
    older = _momentum_model()
    with pytest.raises(_Killed):
        older.fit(x, y, batch_size=4, epochs=3, verbose=0,
                  callbacks=[ResumableBackup(tmp_path / "backup"), _CrashAfter(0)])
    assert (tmp_path / "backup" / "latest.weights.h5").exists()
    resumed = _momentum_model()
    history = _fit_with_backup(resumed, tmp_path, epochs=3)
    assert history.epoch == [1, 2]
    assert int(resumed.optimizer.iterations.numpy()) == 3 * 2


def test_learning_rate_log_records_the_schedules_rate_after_each_epoch():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([4, 8], [0.3, 0.2, 0.1])
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    x, y = np.ones((8, 2), np.float32), np.ones((8, 1), np.float32)
    # 2 steps per epoch: after epochs 1..5 the optimiser has taken 2, 4, 6, 8, 10 steps.
    history = model.fit(x, y, batch_size=4, epochs=5, verbose=0, callbacks=[LearningRateLog()])
    assert history.history["learning_rate"] == pytest.approx([0.3, 0.3, 0.2, 0.2, 0.1])


def _log_epochs(path, epochs):
    """Runs a `CSVLog` over `{epoch: logs}` as a (resumed) `fit` would; returns the callback."""
    log = CSVLog(path)
    log.on_train_begin()
    for epoch, logs in epochs.items():
        log.on_epoch_end(epoch, dict(logs))
    return log


def test_csv_log_leaves_empty_cells_where_an_epoch_has_no_value(tmp_path):
    path = tmp_path / "log.csv"
    # The first epoch has no validation value (Keras' CSVLogger then invented a val_ twin of
    # every column, wrote NA in them and dropped val_mAP); the second a NaN loss.
    _log_epochs(path, {0: {"loss": 2.5, "minutes": 0.5}, 1: {"loss": float("nan"), "minutes": 1.0, "val_mAP": 0.25},
                       2: {"loss": 1.5, "minutes": 1.5, "note": "not a number"}})
    header, rows = read_numeric_csv(path)
    assert header == ["epoch", "loss", "minutes", "val_mAP"]
    assert [row["val_mAP"] for row in rows] == [None, 0.25, None]
    assert np.isnan(rows[1]["loss"]) and [row["epoch"] for row in rows] == [0, 1, 2]
    assert not list(tmp_path.glob("*.partial"))


def test_resumed_csv_log_appends_and_rewrites_with_the_union_header(tmp_path):
    path = tmp_path / "log.csv"
    _log_epochs(path, {0: {"loss": 3.0}, 1: {"loss": 2.0}})
    first = path.stat().st_ino
    _log_epochs(path, {2: {"loss": 1.5}})  # same columns: appended to the same file
    assert path.stat().st_ino == first
    _log_epochs(path, {3: {"loss": 1.0, "learning_rate": 1e-3}})  # a new column: rewritten, not appended
    header, rows = read_numeric_csv(path)
    assert header == ["epoch", "loss", "learning_rate"]
    assert [(row["epoch"], row["loss"], row["learning_rate"]) for row in rows] == [
        (0, 3.0, None), (1, 2.0, None), (2, 1.5, None), (3, 1.0, 1e-3)]
    assert not list(tmp_path.glob("*.partial")) and not (tmp_path / "log.csv.orig").exists()


def test_csv_rows_after_a_background_checkpoint_are_written_after_its_file_and_backup(tmp_path):
    model = _momentum_model()
    last = SafeModelCheckpoint(tmp_path / "last.keras", background=True)
    backup = ResumableBackup(tmp_path / "backup", checkpoint=last)
    log = CSVLog(tmp_path / "log.csv", after=last)
    seen = []

    class Observer(keras.callbacks.Callback):
        """What a kill at each moment would leave: the log's epochs, the backup's epoch."""

        def on_epoch_end(self, epoch, logs=None):
            last.after_save(lambda: seen.append((
                [row["epoch"] for row in read_numeric_csv(tmp_path / "log.csv")[1]] if epoch else [],
                json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"])))

    x = np.arange(16, dtype=np.float32).reshape(8, 2) / 8
    model.fit(x, x.sum(1, keepdims=True), batch_size=4, epochs=3, shuffle=False, verbose=0,
              callbacks=[last, backup, Observer(), log])
    # Queued after the backup and before the row: the backup is at the epoch, the log one behind.
    assert seen == [([], 1), ([0], 2), ([0, 1], 3)]
    assert [row["epoch"] for row in read_numeric_csv(tmp_path / "log.csv")[1]] == [0, 1, 2]


def test_resumed_csv_log_rewrites_a_keras_csv_logger_file_keeping_the_original(tmp_path, capsys):
    path = tmp_path / "log.csv"
    # As Keras' CSVLogger left it: NA cells, never-filled val_ twins, then a run resumed with
    # more columns appended rows longer than the header (their cells cannot be named).
    original = ("epoch,loss,minutes,val_loss,val_minutes\r\n0,30.5,0.5,NA,NA\r\n1,20.0,1.0,NA,NA\r\n"
                "2,9.0,1e-3,4.0,15.0,1.5\r\n")
    path.write_bytes(original.encode())
    _log_epochs(path, {3: {"learning_rate": 1e-3, "loss": 8.0, "minutes": 2.0}})
    header, rows = read_numeric_csv(path)
    assert header == ["epoch", "loss", "minutes", "learning_rate"]
    assert [(row["epoch"], row["loss"]) for row in rows] == [(0, 30.5), (1, 20.0), (2, None), (3, 8.0)]
    assert (tmp_path / "log.csv.orig").read_bytes() == original.encode()
    (line,) = capsys.readouterr().out.splitlines()
    assert "log.csv has 1 row(s) (line 4) with another number of cells" in line and "log.csv.orig" in line
    _log_epochs(path, {4: {"learning_rate": 1e-3, "loss": 7.0, "minutes": 2.5}})  # now clean: appended
    assert read_numeric_csv(path)[1][-1]["loss"] == 7.0 and not capsys.readouterr().out

"""Checkpointing and resuming that survive a run killed at any moment; elapsed time and learning rate in the logs."""

import json
import math
import os
import shutil
import time

import keras


class SafeModelCheckpoint(keras.callbacks.Callback):
    """Saves the model to `path` after each epoch, atomically.

    The model is written to a temporary file beside `path` and moved over it
    with `os.replace`, so a run killed while saving keeps the previous file.
    With `monitor`, only epochs that improve it are saved (best checkpoint);
    the best value is kept in `<path>.json`, so a resumed run does not replace
    a better checkpoint with a worse one. An epoch whose loss is NaN or Inf is
    never saved.

    Args:
        path: destination `.keras` file.
        monitor: log key to track, or None to save every epoch.
        mode: "max" or "min" for `monitor`.
        save: False on non-chief workers of a multi-worker run (they must not
            write the shared file).
        verbose: 1 prints a line when a best checkpoint is written.
        copy_of: the `SafeModelCheckpoint` of the same model that runs before
            this one and saves every epoch (`last.keras`): when it saved this
            epoch, its file is copied instead of serialising the model again;
            otherwise the model is saved.
    """

    def __init__(self, path, monitor=None, mode="max", save=True, verbose=1, copy_of=None):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.path = os.fspath(path)
        self.monitor = monitor
        self.mode = mode
        self.save = save
        self.verbose = verbose
        self.copy_of = copy_of
        self.best = -math.inf if mode == "max" else math.inf
        self.saved_epoch = None  # the last epoch this callback wrote `path`

    @property
    def _record(self):
        return f"{self.path}.json"

    def on_train_begin(self, logs=None):
        if self.monitor is not None and os.path.exists(self.path) and os.path.exists(self._record):
            with open(self._record) as f:
                self.best = json.load(f)[self.monitor]

    def _improved(self, value):
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Epoch {epoch + 1}: loss is {loss}; not saving {self.path}")
            return
        if self.monitor is not None:
            value = (logs or {}).get(self.monitor)
            if value is None or not math.isfinite(value) or not self._improved(value):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.4f} to "
                      f"{value:.4f}, saving {self.path}")
            self.best = value
        if not self.save:
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        temporary = f"{self.path}.partial.keras"
        if self.copy_of is not None and self.copy_of.saved_epoch == epoch:
            shutil.copyfile(self.copy_of.path, temporary)
        else:
            self.model.save(temporary)
        os.replace(temporary, self.path)
        self.saved_epoch = epoch
        if self.monitor is not None:
            with open(self._record, "w") as f:
                json.dump({self.monitor: self.best, "epoch": epoch + 1}, f)


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that survives a run killed while it was writing its backup.

    Keeps two backups (`double_checkpoint=True`): when the latest is half
    written, Keras restores the previous one. When there is no usable backup at
    all (the run was killed while writing its first one), training starts from
    the beginning with a warning instead of failing on every restart.

    Args:
        backup_dir: directory for the backup; removed when training finishes.
    """

    def __init__(self, backup_dir):
        super().__init__(backup_dir, double_checkpoint=True)
        self.backup_dir = os.fspath(backup_dir)

    def on_train_begin(self, logs=None):
        try:
            super().on_train_begin(logs)
        except OSError as error:
            print(f"Backup in {self.backup_dir} is unreadable ({error}); starting from epoch 1")
            shutil.rmtree(self.backup_dir, ignore_errors=True)


class ElapsedMinutes(keras.callbacks.Callback):
    """Adds `minutes`, the wall time since `start`, to each epoch's logs.

    Put it after the callbacks whose time it should count (e.g. the mAP
    evaluation) and before the ones that record the logs (`keras_ssd.run_log.CSVLog`).
    A resumed run counts from its own `start`.

    Args:
        start: `time.time()` at the start of the run.
    """

    def __init__(self, start):
        super().__init__()
        self.start = start

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["minutes"] = (time.time() - self.start) / 60


class LearningRateLog(keras.callbacks.Callback):
    """Adds `learning_rate`, the optimiser's rate after each epoch's last step, to the epoch's logs.

    With a schedule, that is the schedule's value at the optimiser's step count.
    Put it before the callbacks that record the logs (`keras_ssd.run_log.CSVLog`).
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

"""Checkpointing and resuming that survive a run killed at any moment; elapsed time and learning rate in the logs."""

import functools
import json
import math
import os
import shutil
import time

import keras

from keras_ssd.background_save import BackgroundSaver


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
        background: write the file in a worker thread while the next epoch
            trains (`keras_ssd.background_save.BackgroundSaver`: the model's
            state is copied at the epoch's end, in milliseconds, into a twin
            that the worker saves). The file is complete once the next
            epoch's save starts, and when training ends; `after_save` runs
            work that needs it. Falls back to saving in the foreground, with
            one line, for a model that cannot be rebuilt from its config.
            Not for a model under a distribution strategy (the twin's
            variables would be created on one worker only).
    """

    def __init__(self, path, monitor=None, mode="max", save=True, verbose=1, copy_of=None, background=False):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.path = os.fspath(path)
        self.monitor = monitor
        self.mode = mode
        self.save = save
        self.verbose = verbose
        self.copy_of = copy_of
        self.background = background
        self.best = -math.inf if mode == "max" else math.inf
        self.saved_epoch = None  # the last epoch this callback wrote (or queued) `path`
        self._saver = None

    @property
    def _record(self):
        return f"{self.path}.json"

    def on_train_begin(self, logs=None):
        if self.monitor is not None and os.path.exists(self.path) and os.path.exists(self._record):
            with open(self._record) as f:
                self.best = json.load(f)[self.monitor]

    def _background_saver(self):
        """The saver of a `background` checkpoint, made at its first save (the optimizer is built by then)."""
        if self._saver is None and self.background and self.save:
            try:
                self._saver = BackgroundSaver(self.model)
            except ValueError as error:
                print(f"Saving {self.path} in the foreground: {error}")
                self.background = False
        return self._saver

    def after_save(self, job):
        """Runs `job()` once the file this callback last saved is complete: now, or queued behind its write."""
        if self._saver is None:
            job()
        else:
            self._saver.submit(job)

    def wait(self):
        """Blocks until a background write is complete; raises its failure."""
        if self._saver is not None:
            self._saver.wait()

    def on_train_end(self, logs=None):
        if self._saver is not None:
            saver, self._saver = self._saver, None
            saver.close()

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
        record = None if self.monitor is None else {self.monitor: self.best, "epoch": epoch + 1}
        if self.copy_of is not None and self.copy_of.saved_epoch == epoch:
            copy = functools.partial(shutil.copyfile, self.copy_of.path)
            self.copy_of.after_save(lambda: self._write(copy, record))
        elif self._background_saver() is not None:
            twin = self._saver.snapshot()
            self._saver.submit(lambda: self._write(twin.save, record))
        else:
            self._write(self.model.save, record)
        self.saved_epoch = epoch

    def _write(self, write, record):
        """`write(temporary)`, then the temporary file moved over `path`, then the monitor's record."""
        temporary = f"{self.path}.partial.keras"
        write(temporary)
        os.replace(temporary, self.path)
        if record is not None:
            with open(self._record, "w") as f:
                json.dump(record, f)


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that survives a run killed while it was writing its backup.

    With `checkpoint`, the backup is the file that checkpoint wrote this epoch
    (`last.keras`: weights and optimizer state), hard-linked into `backup_dir`
    (copied where the file system has no hard links) instead of written a
    second time; an epoch the checkpoint did not save (a NaN loss) leaves the
    previous epoch's backup in place. The link and the epoch record are each
    replaced atomically, link first: a run killed between the two resumes with
    one epoch trained twice, never with one skipped. With a `background`
    checkpoint the link is queued behind the checkpoint's write, so a run
    killed before the write is complete resumes from the epoch before.

    Without `checkpoint`, Keras' own backup of the weights, kept twice
    (`double_checkpoint=True`): when the latest is half written, Keras restores
    the previous one. When there is no usable backup at all (the run was killed
    while writing its first one), training starts from the beginning with a
    warning instead of failing on every restart.

    Args:
        backup_dir: directory for the backup; removed when training finishes.
        checkpoint: a `SafeModelCheckpoint` without `monitor` (and with
            `save=True`) that runs before this callback, or None.
    """

    def __init__(self, backup_dir, checkpoint=None):
        super().__init__(backup_dir, double_checkpoint=True)
        if checkpoint is not None and (checkpoint.monitor is not None or not checkpoint.save):
            why = f"only when {checkpoint.monitor} improves" if checkpoint.save else "never (save=False)"
            raise ValueError(f"checkpoint must save the model every epoch; {checkpoint.path} is saved {why}")
        self.backup_dir = os.fspath(backup_dir)
        self.checkpoint = checkpoint
        self._model_path = os.path.join(self.backup_dir, "latest.keras")

    def on_train_begin(self, logs=None):
        try:
            super().on_train_begin(logs)
        except OSError as error:
            print(f"Backup in {self.backup_dir} is unreadable ({error}); starting from epoch 1")
            shutil.rmtree(self.backup_dir, ignore_errors=True)

    def _load_model(self):
        if not os.path.exists(self._model_path):
            super()._load_model()  # Keras' own backup, if any
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self._model_path)
        if os.path.exists(self._training_metadata_path):
            with open(self._training_metadata_path) as f:
                self.model._initial_epoch = json.load(f)["epoch"]  # what Keras' backup sets

    def _save_model(self):
        if self.checkpoint is None:
            super()._save_model()
            return
        if self.checkpoint.saved_epoch != self._current_epoch - 1:
            print(f"Epoch {self._current_epoch}: {self.checkpoint.path} was not saved; the backup stays "
                  "at the epoch before")
            return
        self.checkpoint.after_save(functools.partial(
            self._link, {"epoch": self._current_epoch, "batch": self._last_batch_seen}))

    def _link(self, metadata):
        os.makedirs(self.backup_dir, exist_ok=True)
        _link_or_copy(self.checkpoint.path, self._model_path)
        # A backup in Keras' format, left by an older version of this callback.
        for stale in (self._weights_path, self._prev_weights_path, self._prev_training_metadata_path):
            if os.path.exists(stale):
                os.remove(stale)
        temporary = f"{self._training_metadata_path}.partial"
        with open(temporary, "w") as f:
            json.dump(metadata, f)
        os.replace(temporary, self._training_metadata_path)

    def on_train_end(self, logs=None):
        if self.checkpoint is not None:
            self.checkpoint.wait()  # its queued links before the backup is removed
        super().on_train_end(logs)


def _link_or_copy(source, destination):
    """Puts the file `source` at `destination` atomically: a hard link, or a copy where links fail."""
    temporary = f"{destination}.partial"
    if os.path.exists(temporary):
        os.remove(temporary)
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)
    os.replace(temporary, destination)


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

"""`log.csv`, a training run's per-epoch log: written by `CSVLog`, read by `read_log`.

The file is plain CSV that any tool reads (the `csv` module, pandas, a
spreadsheet): one header naming every column, as many cells in every row,
numbers (`nan` for a NaN loss) or empty cells where an epoch has no value
(`val_mAP` between evaluations). `epoch` is the first column, 0-based.

Earlier versions wrote the file with Keras' `CSVLogger`, which differs in three
ways that `read_log` and a resumed `CSVLog` both handle: `NA` for a missing
value, a never-filled `val_` twin of every column when the first epoch had no
validation value (and then no `val_mAP` column at all), and, after a run
resumed with new columns, rows with more cells than the header, whose cells
cannot be named.
"""

import csv
import io
import os
import shutil
from typing import NamedTuple

import keras
import numpy as np

# Cell texts that hold no value: empty, or Keras' CSVLogger's marker.
_NO_VALUE = ("", "NA")


class RunLog(NamedTuple):
    """A run's per-epoch log, as `read_log` gives it.

    Attributes:
        columns: `{name: float64 [E]}` in the file's column order, `epoch`
            first; NaN where an epoch has no value (or a NaN one). Columns
            without any value are left out.
        notes: what could not be read, one sentence each (empty for a clean
            file).
    """

    columns: dict
    notes: tuple = ()

    @classmethod
    def from_history(cls, history):
        """The log of `model.fit(...).history` (`{name: [value per epoch]}`), epochs counted from 0."""
        columns = {name: np.asarray(values, np.float64) for name, values in history.items()}
        epochs = len(next(iter(columns.values()))) if columns else 0
        return cls({"epoch": np.arange(epochs, dtype=np.float64), **columns})


def number_ranges(numbers) -> str:
    """Ascending whole numbers as text with runs joined: `[2, 3, 4, 7]` -> `"2-4, 7"`."""
    ranges, start = [], None
    for index, number in enumerate(numbers):
        if start is None:
            start = number
        if index + 1 == len(numbers) or numbers[index + 1] != number + 1:
            ranges.append(str(start) if start == number else f"{start}-{number}")
            start = None
    return ", ".join(ranges)


def _read(path):
    """`(columns, rows, notes)` of the CSV file at `path`.

    Returns:
        columns: the header's names that hold at least one value, in order.
        rows: per data row, `{column: float}` of the cells that hold a value.
        notes: the cells that could not be read, one sentence per kind.
    """
    with open(path, newline="") as f:
        lines = [cells for cells in csv.reader(f) if cells]
    if not lines:
        return [], [], []
    header, rows, uneven, not_numbers = lines[0], [], [], []
    for line_number, cells in enumerate(lines[1:], start=2):
        if len(cells) != len(header):
            uneven.append(line_number)
            cells = cells[:1]  # the epoch: the first cell of every row this package wrote
        row = {}
        for name, text in zip(header, cells):
            if text.strip() in _NO_VALUE:
                continue
            try:
                row[name] = float(text)
            except ValueError:
                not_numbers.append(f"{text!r} in {name}")
        rows.append(row)
    name = os.path.basename(path)
    notes = []
    if uneven:
        notes.append(f"{name} has {len(uneven)} row(s) (line {number_ranges(uneven)}) with another number of "
                     f"cells than its {len(header)}-column header (a run resumed after its columns changed): "
                     "only their epoch is read")
    if not_numbers:
        notes.append(f"{name} has {len(not_numbers)} cell(s) that are not numbers, read as missing "
                     f"(first: {not_numbers[0]})")
    return [column for column in header if any(column in row for row in rows)], rows, notes


def read_log(path) -> RunLog:
    """Reads a `log.csv` this package wrote, in any of its versions: what can be read, and notes on the rest.

    When the file holds several runs (a finished run started again in the same
    folder: its epochs start again at 0), only the last one is read.

    Args:
        path: the `log.csv` file.

    Returns:
        A `RunLog` (empty, without notes, when `path` does not exist).
    """
    if not os.path.exists(path):
        return RunLog({})
    columns, rows, notes = _read(path)
    restarts = [index for index, row in enumerate(rows) if index and row.get("epoch") == 0]
    if restarts:
        notes.append(f"{os.path.basename(path)} holds {len(restarts) + 1} runs (the epochs start again at 0); "
                     "only the last is read")
        rows = rows[restarts[-1]:]
    columns = [column for column in columns if any(column in row for row in rows)]
    return RunLog({column: np.array([row.get(column, np.nan) for row in rows]) for column in columns}, tuple(notes))


def _cell(value) -> str:
    """A value's cell text: empty for None, whole numbers without a decimal point, else the float's repr."""
    if value is None:
        return ""
    return str(int(value)) if value.is_integer() else repr(value)


def _line(cells) -> str:
    """One CSV line of `cells` (texts), quoted where a cell needs it."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def _number(value):
    """`value` as a float, or None when it is not one number (the log holds numbers only)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class CSVLog(keras.callbacks.Callback):
    """Writes each epoch's logs as one row of a CSV file (`log.csv`), readable by any CSV tool.

    Columns: `epoch` (0-based), then the log keys in the order they first
    appear (sorted within an epoch). A key an epoch does not log (`val_mAP` between evaluations)
    gets an empty cell; a value that is not a number is left out. A run that
    resumes into an existing file appends to it; an epoch with a key the header
    lacks rewrites the file with the union header. Rewrites are atomic (a
    temporary file moved over `path`). The first row after resuming a file in
    another form (one of Keras' `CSVLogger`, see the module docstring) rewrites
    it in this form; when some of its cells cannot be named, the file as it was
    is first copied to `<path>.orig` and one line says so.

    Put it after the callbacks that add to the logs (the mAP callback,
    `ElapsedMinutes`, `LearningRateLog`).

    Args:
        path: the CSV file (created with its folder when missing).
        after: a `keras_ssd.callbacks.SafeModelCheckpoint` (with its
            `ResumableBackup`) whose writes each row waits for: with a
            `background` checkpoint the row is written once the epoch's
            checkpoint and backup are, so a logged epoch is a resumable one.
    """

    def __init__(self, path, after=None):
        super().__init__()
        self.path = os.fspath(path)
        self.after = after

    def on_train_begin(self, logs=None):
        exists = os.path.exists(self.path)
        columns, self._rows, self._notes = _read(self.path) if exists else ([], [], [])
        self._columns = ["epoch", *(column for column in columns if column != "epoch")]
        self._rewrite = False  # whether the next row must rewrite the file: it is in another form
        if exists:
            with open(self.path, newline="") as f:
                self._rewrite = f.read() != self._text(self._rows)

    def _row_line(self, row) -> str:
        return _line(_cell(row.get(column)) for column in self._columns)

    def _text(self, rows) -> str:
        return _line(self._columns) + "".join(self._row_line(row) for row in rows)

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": float(epoch)}
        for key in sorted(logs or {}):
            value = _number(logs[key])
            if value is not None:
                row[key] = value
        if self.after is None:
            self._add(row)
        else:
            self.after.after_save(lambda: self._add(row))

    def _add(self, row):
        new = [key for key in row if key not in self._columns]
        self._columns += new
        self._rows.append(row)
        if new or self._rewrite:
            self._write_all()
        else:
            with open(self.path, "a", newline="") as f:
                f.write(self._row_line(row))

    def _write_all(self):
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        if self._notes:
            shutil.copyfile(self.path, f"{self.path}.orig")
            print(f"{'; '.join(self._notes)}. {self.path} is rewritten with one header; the file as it was "
                  f"is kept in {self.path}.orig")
            self._notes = []
        temporary = f"{self.path}.partial"
        with open(temporary, "w", newline="") as f:
            f.write(self._text(self._rows))
        os.replace(temporary, self.path)
        self._rewrite = False

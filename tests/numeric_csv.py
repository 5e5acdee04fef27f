"""Reads a CSV file as a user's CSV tool would, failing a test on anything but a plain numeric table."""

import csv


def read_numeric_csv(path):
    """`(header, rows)` of the CSV file at `path`; each row `{column: float or None}` (None: an empty cell).

    Fails (AssertionError) when a row has another number of cells than the header
    or a non-empty cell is not a number (pandas would then read the column as text).
    """
    with open(path, newline="") as f:
        header, *lines = list(csv.reader(f))
    rows = []
    for number, cells in enumerate(lines, start=2):
        assert len(cells) == len(header), f"{path} line {number}: {len(cells)} cells, header {header}"
        row = {}
        for name, text in zip(header, cells):
            try:
                row[name] = float(text) if text else None
            except ValueError:
                raise AssertionError(f"{path} line {number}: {name} is {text!r}, not a number") from None
        rows.append(row)
    return header, rows

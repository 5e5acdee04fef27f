"""The versioned directory layout TF Serving loads, and exports written whole or not at all.

TF Serving watches `<base>/<name>` and serves the highest integer-named
subdirectory. A new export therefore takes the next integer, never touches an
existing version, and is written under a temporary name that TF Serving
ignores, then renamed into place, so the server never sees a half-written
model. Single-file exports (`.tflite`, `.onnx`) are written the same way
(`write_atomically`) and never replace a user's file unasked (`refuse_existing`).
"""

import os
import shutil
import uuid
from contextlib import contextmanager


def existing_versions(model_dir):
    """Integer versions present in `model_dir` (sorted), `[]` if it does not exist."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(entry) for entry in os.listdir(model_dir) if entry.isdigit())


def resolve_version(model_dir, version=None):
    """Picks the version directory of a new export.

    Args:
        model_dir: `<base>/<name>`, created if missing.
        version: a positive int, or None for one more than the highest present
            (1 for the first export).

    Returns:
        The path `<model_dir>/<version>`, which does not exist yet.

    Raises:
        ValueError: `version` is not a positive int.
        FileExistsError: `<model_dir>/<version>` already exists.
    """
    if version is None:
        version = (existing_versions(model_dir) or [0])[-1] + 1
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be a positive int, got {version!r}")
    path = os.path.join(model_dir, str(version))
    if os.path.exists(path):
        raise FileExistsError(
            f"{path} already exists; pass another version, or version=None for the next one "
            f"(present: {existing_versions(model_dir)})"
        )
    return path


@contextmanager
def atomic_directory(path):
    """Yields a temporary sibling of `path`, renamed to `path` on success.

    The temporary name starts with a dot and is not an integer, so TF Serving
    ignores it; on error it is removed and `path` is never created.
    """
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-{os.path.basename(path)}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        os.rename(tmp, path)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)


def refuse_existing(path, overwrite):
    """Raises FileExistsError if `path` exists and `overwrite` is False."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (--overwrite) to replace it")


def write_atomically(path, data):
    """Writes the bytes `data` to `path` through a temporary sibling, so a reader never sees half a file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = f"{path}.partial"
    with open(partial, "wb") as f:
        f.write(data)
    os.replace(partial, path)

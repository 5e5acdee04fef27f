"""What every `python -m training.*` entry point shares.

* `entry_point`: a user's mistake (a missing or wrong file, a bad option, a
  dataset that keeps no example) ends the run with one line on stderr,
  `error: <message>`, and exit status 2. Those are the `USER_ERRORS` the
  library raises with a message naming the file or value and what to do;
  every other exception is an internal error and keeps its traceback (set
  `KERAS_SSD_TRACEBACK=1` to see the traceback of a user error too).
* `output_folder`: a run's output folder does not outlive a run that failed
  before writing anything worth keeping, and a folder the user already had
  is never removed.
* `optional_step`: a step after the command's main result (the report after
  the checkpoints and metrics) that fails is one `warning:` line, and the
  command goes on and exits as it would have.
"""

import contextlib
import functools
import os
import shutil
import sys
import traceback

USER_ERRORS = (ValueError, OSError, ImportError)


def one_line(error: BaseException) -> str:
    """`error`'s message on one line (a multi-line message's lines joined by spaces)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines) or type(error).__name__


def entry_point(main):
    """Wraps `main(argv) -> int | None` so that `USER_ERRORS` become one stderr line.

    Args:
        main: an entry point's main function; returning None means exit 0.

    Returns:
        The wrapped function: `main`'s exit status, or 2 after printing
        `error: <message>` for a user error.
    """

    @functools.wraps(main)
    def wrapped(argv=None):
        try:
            return main(argv) or 0
        except USER_ERRORS as error:
            if os.environ.get("KERAS_SSD_TRACEBACK"):
                raise
            print(f"error: {one_line(error)}", file=sys.stderr)
            return 2

    return wrapped


def optional_step(step, failure: str, consequence: str):
    """Runs `step()`, whose failure must not cost the command what it already wrote.

    Any `Exception` from it becomes one line on stderr,
    `warning: <failure> (<type>: <message>); <consequence>` (set
    `KERAS_SSD_TRACEBACK=1` to see the traceback too).

    Args:
        step: a callable without arguments.
        failure: what did not happen, e.g. "the report could not be written".
        consequence: what the user has or gets instead, e.g. "checkpoints and
            metrics.json are in runs/x".

    Returns:
        `step()`'s value, or None when it raised.
    """
    try:
        return step()
    except Exception as error:
        if os.environ.get("KERAS_SSD_TRACEBACK"):
            traceback.print_exc()
        message = one_line(error)
        cause = message if message == type(error).__name__ else f"{type(error).__name__}: {message}"
        print(f"warning: {failure} ({cause}); {consequence}", file=sys.stderr)
        return None


def _first_missing(path: str) -> "str | None":
    """The outermost folder of `path` that does not exist yet, or None."""
    path, missing = os.path.abspath(path), None
    while not os.path.exists(path):
        missing, parent = path, os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


@contextlib.contextmanager
def output_folder(path: str, keep=lambda: False):
    """Creates the folder `path` for a run; removes it again if the run fails.

    Only what this call created is removed: `runs/new` when `runs/` existed,
    `runs/` itself when it did not. A folder that existed before is never
    touched.

    Args:
        path: the output folder (made with its missing parents).
        keep: called when the body raises; True keeps the folder (the run
            already wrote something worth keeping, such as a checkpoint).

    Yields:
        `path`.
    """
    created = _first_missing(path)
    os.makedirs(path, exist_ok=True)
    try:
        yield path
    except BaseException:
        if created is not None and not keep():
            shutil.rmtree(created, ignore_errors=True)
        raise

"""Skipping bad input: one warning per bad file or box, a count, or a raise.

Every file-based source (VOC directory, COCO json) checks its annotations and
images before it builds a `tf.data.Dataset`. A `SkipReport` collects what was
wrong: in the default mode each problem is skipped with one `BadInputWarning`
naming the file and the reason, and `summarize()` warns once more with the
totals; with `strict=True` the first problem raises a `ValueError` naming the
file instead. A source whose every example was skipped raises a `ValueError`
saying so rather than yielding an empty dataset.
"""

import dataclasses
import warnings


class BadInputWarning(UserWarning):
    """A bad example or box was skipped (file and reason in the message)."""


@dataclasses.dataclass
class SkipReport:
    """Records skipped examples and boxes of one `load` call.

    Attributes:
        source: name of the source being loaded (shown in messages).
        strict: raise `ValueError` on the first problem instead of skipping.
        skipped_examples: `(file, reason)` of every skipped example.
        skipped_boxes: `(file, reason)` of every skipped box.
        notes: `(file, message)` of problems that were fixed, not skipped.
    """

    source: str
    strict: bool = False
    skipped_examples: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    skipped_boxes: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    notes: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def skip_example(self, file: str, reason: str) -> None:
        """Skips a whole example (image plus its boxes), or raises if strict."""
        message = f"{file}: {reason}"
        if self.strict:
            raise ValueError(f"Bad example in {self.source}: {message}")
        self.skipped_examples.append((str(file), reason))
        warnings.warn(f"Skipping example {message}", BadInputWarning, stacklevel=2)

    def skip_box(self, file: str, reason: str) -> None:
        """Skips one box of an example, or raises if strict."""
        message = f"{file}: {reason}"
        if self.strict:
            raise ValueError(f"Bad box in {self.source}: {message}")
        self.skipped_boxes.append((str(file), reason))
        warnings.warn(f"Skipping box {message}", BadInputWarning, stacklevel=2)

    def note(self, file: str, message: str) -> None:
        """Warns about a problem that was repaired (never raises)."""
        self.notes.append((str(file), message))
        warnings.warn(f"{file}: {message}", BadInputWarning, stacklevel=2)

    def summarize(self, num_kept: int) -> None:
        """Warns once with the totals if anything was skipped.

        Args:
            num_kept: examples left after skipping.

        Raises:
            ValueError: every example was skipped, so the dataset would be
                empty (said before any batching hides the cause).
        """
        if num_kept == 0 and self.skipped_examples:
            raise ValueError(
                f"{self.source}: kept 0 of {len(self.skipped_examples)} examples: every "
                "annotation was skipped, see the warnings above"
            )
        if self.skipped_examples or self.skipped_boxes:
            warnings.warn(
                f"{self.source}: skipped {len(self.skipped_examples)} example(s) and "
                f"{len(self.skipped_boxes)} box(es); kept {num_kept} example(s)",
                BadInputWarning,
                stacklevel=2,
            )

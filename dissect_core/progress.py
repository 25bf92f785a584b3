"""The progress callback a dissection reports to: (stage, steps done, steps in the stage), the stages it reports in
order, and tqdm bars for it (one plain line per stage where the stream is not a terminal).

Every stage reports `(stage, 0, total)` when it starts, so a stage's label shows from its first step on.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

Progress = Callable[[str, int, int], None]

#: The stages a dissection reports, in the order it runs them (dissect_core.pipeline); "evaluate" is skipped when
#: the labels cannot be scored out of fold.
DISSECTION_STAGES: tuple[str, ...] = ("load", "embed concepts", "probe pass", "similarity", "evaluate")


def stage_position(stage: str, stages: tuple[str, ...] = DISSECTION_STAGES) -> int | None:
    """Return the 1-based position of `stage` in `stages`, or None for a stage not among them."""
    return stages.index(stage) + 1 if stage in stages else None


class StageBars:
    """Progress reporter for `run_dissection`: one tqdm bar per stage, the previous one closed when a stage ends.

    Where the stream is no terminal or notebook (a pipe, a log file), a bar's redraws would each add a copy of it:
    each stage prints one line instead, when it ends, with its steps and seconds.
    """

    def __init__(self, disable: bool = False, stream: TextIO | None = None) -> None:
        self.disable = disable
        self.stream = stream if stream is not None else sys.stderr
        self.stage: str | None = None
        self.bar: Any = None
        self.line: _StageLine | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        """Show `done` of `total` steps of `stage`, opening its bar when the stage starts."""
        if self.disable:
            return
        if not _redraws(self.stream):
            if self.line is None or self.line.stage != stage:
                self.close()
                self.stage = stage
                self.line = _StageLine(stage, time.monotonic())
            self.line.done, self.line.total = done, total
            return
        if stage != self.stage:
            # Imported here: whoever only reads the Progress type need not load tqdm.
            from tqdm.auto import tqdm

            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=f"{stage:>14}", leave=True, file=self.stream)
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        """Close the current bar, or print the current stage's line."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.line is not None:
            self.stream.write(self.line.text() + "\n")
            self.stream.flush()
            self.line = None


def _redraws(stream: TextIO) -> bool:
    """Return whether a bar can redraw itself on the stream: a terminal, or a notebook (tqdm.auto draws a widget)."""
    return stream.isatty() or "ipykernel" in sys.modules


class _StageLine:
    """A stage shown as one line where bars cannot redraw: its name, steps and the seconds since it started."""

    def __init__(self, stage: str, started: float) -> None:
        self.stage, self.started = stage, started
        self.done = self.total = 0

    def text(self) -> str:
        """Return the stage's line: `    probe pass: 12/12 in 18.0 s`."""
        return f"{self.stage:>14}: {self.done}/{self.total} in {time.monotonic() - self.started:.1f} s"

"""A tqdm progress bar per pipeline stage, for the command line."""

from __future__ import annotations

import sys

from tqdm import tqdm


class StageBars:
    """Progress reporter for `run_dissection`: one bar per stage, the previous one closed when a stage ends."""

    def __init__(self, disable: bool = False) -> None:
        self.disable = disable
        self.stage: str | None = None
        self.bar: tqdm | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=f"{stage:>14}", leave=True, file=sys.stderr, disable=self.disable)
        assert self.bar is not None
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        """Close the current bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

"""The progress callback a dissection reports to: (stage, steps done, steps in the stage)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]

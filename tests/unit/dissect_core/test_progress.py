"""Progress reporting: the stage list's positions and the bars' one line per stage where nothing redraws."""

from __future__ import annotations

import io

from dissect_core.progress import DISSECTION_STAGES, StageBars, stage_position


class Pipe(io.StringIO):
    """A stream that is no terminal, like a pipe or a log file."""

    def isatty(self) -> bool:
        return False


def test_stage_positions_follow_the_list() -> None:
    assert stage_position("load") == 1
    assert stage_position("probe pass") == DISSECTION_STAGES.index("probe pass") + 1
    assert stage_position("evaluate") == len(DISSECTION_STAGES)
    assert stage_position("store") is None
    assert stage_position("store", ("media", "store")) == 2


def test_piped_bars_print_each_stage_once_on_its_own_line() -> None:
    pipe = Pipe()
    bars = StageBars(stream=pipe)
    for done in range(4):
        bars("embed concepts", min(done, 1), 1)
    for done in range(13):
        bars("probe pass", done, 12)
    bars.close()
    lines = pipe.getvalue().splitlines()
    assert "\r" not in pipe.getvalue()
    assert len(lines) == 2
    assert lines[0].startswith("embed concepts: 1/1 in ") and lines[0].endswith(" s")
    assert lines[1].strip().startswith("probe pass: 12/12 in ")
    bars.close()
    assert len(pipe.getvalue().splitlines()) == 2  # a second close prints nothing


def test_quiet_bars_print_nothing() -> None:
    pipe = Pipe()
    bars = StageBars(disable=True, stream=pipe)
    bars("load", 0, 4)
    bars.close()
    assert pipe.getvalue() == ""

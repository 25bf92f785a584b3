"""What a sweep's unit list and a job's kind read as, before anything runs (app.jobs.interventions, kinds)."""

from __future__ import annotations

import pytest

from app.jobs.interventions import (
    INTERVENTION_JOB,
    MAX_SWEEP_UNITS,
    SWEEP_JOB,
    parse_units,
    run_intervention_job,
    run_sweep_job,
)
from app.jobs.queue.kinds import handler_for
from dissect_core.errors import DissectError


def test_unit_lists_read_numbers_and_ranges_sorted_once() -> None:
    assert parse_units("1,2,5-9") == [1, 2, 5, 6, 7, 8, 9]
    assert parse_units(" 7 , 3-4,3 ") == [3, 4, 7]


@pytest.mark.parametrize("text", ["", "a", "1,,2", "3-1", "-2", "1.5", f"0-{MAX_SWEEP_UNITS}"])
def test_unreadable_unit_lists_are_refused_naming_the_form(text: str) -> None:
    with pytest.raises(DissectError, match=r"1,2,5-9|split it"):
        parse_units(text)


def test_each_job_kind_has_its_handler_and_an_unknown_one_is_named() -> None:
    assert handler_for(INTERVENTION_JOB) is run_intervention_job
    assert handler_for(SWEEP_JOB) is run_sweep_job
    with pytest.raises(DissectError, match=r"does not know job kind 'teleport'.*dissect, intervention, sweep"):
        handler_for("teleport")

"""The config's execution settings: they round-trip, are checked with the fix named, and change no identity."""

import dataclasses

import pytest

from dissect_core.config import EXECUTION_SETTINGS, DissectConfig
from dissect_core.errors import DissectError
from dissect_core.run_record import RunRecord

BASE = {"model": "resnet18", "layers": ("layer4",), "probe": "cifar100"}


def test_execution_settings_round_trip_and_default_to_local():
    config = DissectConfig(**BASE, executor="ray", ray_address="ray://head:10001", actors=4, gpus_per_actor=0.5)
    assert DissectConfig.from_dict(config.to_dict()) == config
    assert DissectConfig(**BASE).executor == "local"
    assert set(EXECUTION_SETTINGS) <= set(config.to_dict())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"executor": "dask"}, "unknown executor 'dask'; use one of local, ray"),
        ({"actors": 0}, "actors must be a whole number of at least 1"),
        ({"gpus_per_actor": -1}, "gpus_per_actor must be a number of at least 0"),
        ({"gpus_per_actor": True}, "gpus_per_actor must be a number"),
        ({"ray_address": " "}, "ray_address must be a Ray address"),
    ],
)
def test_bad_execution_settings_are_refused_with_the_fix(changes, message):
    with pytest.raises(DissectError, match=message):
        DissectConfig(**BASE, **changes).validate()


def test_a_stored_record_says_which_executor_ran_it():
    record = RunRecord(config=DissectConfig(**BASE))
    record = dataclasses.replace(record, facts=dataclasses.replace(record.facts, executor="ray: 2 actors on 2 nodes"))
    assert RunRecord.from_json(record.to_json()).facts.executor == "ray: 2 actors on 2 nodes"

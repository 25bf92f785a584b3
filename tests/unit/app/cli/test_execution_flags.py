"""`--executor ray` and its flags on `dissect` and `worker`: into the config, out of the job's identity, and a
missing Ray answered with the install command."""

import sys

import pytest

from app.cli.main import build_parser
from app.core.errors import AtlasError
from app.jobs.dissections import config_to_params
from dissect_core.config import EXECUTION_SETTINGS, DissectConfig

DISSECT = ["dissect", "--model", "resnet18", "--layers", "layer4", "--probe", "cifar100"]


def test_dissect_flags_fill_the_config():
    from app.cli.commands.dissect import config_from_args

    args = build_parser().parse_args(
        [*DISSECT, "--executor", "ray", "--ray-address", "auto", "--actors", "3", "--gpus-per-actor", "0.5"]
    )
    config = config_from_args(args)
    assert (config.executor, config.ray_address, config.actors, config.gpus_per_actor) == ("ray", "auto", 3, 0.5)
    assert config_from_args(build_parser().parse_args(DISSECT)).executor == "local"


def test_without_ray_the_flag_says_how_to_install_it(monkeypatch):
    from app.cli.commands.execution import execution_from_args

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    args = build_parser().parse_args(["worker", "--executor", "ray"])
    with pytest.raises(AtlasError, match=r"pip install 'neuron-atlas\[ray\]'"):
        execution_from_args(args)


def test_the_executor_enters_no_job_identity():
    base = {"model": "resnet18", "layers": ("layer4",), "probe": "cifar100"}
    local = config_to_params(DissectConfig(**base))
    distributed = config_to_params(DissectConfig(**base, executor="ray", actors=8, gpus_per_actor=1))
    assert local == distributed and not set(EXECUTION_SETTINGS) & set(local)

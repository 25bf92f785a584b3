"""`neuron-atlas --help`, `users`, `tokens` and `migrate` build their parser without torch or SQLAlchemy: a
command that needs them imports them inside its function, so help and account chores answer in well under a
second (building the parser once imported torch through the similarity module's names, 1.8 s of 3.7 s)."""

import subprocess
import sys

import pytest

from dissect_core.names import SIMILARITY_NAMES
from dissect_core.similarity.functions import SIMILARITY_FUNCTIONS

#: Top-level packages that building the parser must not import (each costs a second or more on a cold start).
HEAVY_PACKAGES = ("torch", "sqlalchemy")


def imported_packages(argv: list[str]) -> set[str]:
    """Return the top-level packages `python -X importtime -m app.cli.main ARGV` imports."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "app.cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "usage: neuron-atlas" in completed.stdout
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in completed.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["users", "--help"], ["users", "list", "--help"], ["tokens", "--help"], ["migrate", "--help"]],
    ids=" ".join,
)
def test_help_imports_neither_torch_nor_sqlalchemy(argv):
    packages = imported_packages(argv)
    assert "app" in packages  # the listing is read right: the command line itself shows up
    assert packages.isdisjoint(HEAVY_PACKAGES), sorted(packages & set(HEAVY_PACKAGES))


def test_the_torch_free_similarity_names_are_the_functions_names():
    assert tuple(SIMILARITY_FUNCTIONS) == SIMILARITY_NAMES

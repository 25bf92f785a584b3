"""`neuron-atlas layers`: every layer with its output shape and unit count, the main stages starred and listed as
the `--layers` value a first dissection would pass; a first listing on a fresh install reads the package's shipped
table, and a second listing of an architecture without one reads the kept table, both without torch (#26)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli.commands.layers import layer_table
from app.cli.main import main
from dissect_core.api import LayerInfo
from dissect_core.cache_dir import CACHE_DIR_ENV
from dissect_core.models import layer_tables
from dissect_core.models.layer_tables import SHIPPED_DIR, SUBFOLDER

#: Top-level packages a listing from the kept table must not import (each costs a second or more on a cold start).
HEAVY_PACKAGES = ("torch", "torchvision", "timm", "open_clip", "pandas", "sqlalchemy")
#: `neuron-atlas layers ARGS` with the shipped tables read from the folder given first (a child process's own).
LISTING = (
    "import sys; from pathlib import Path; from dissect_core.models import layer_tables; "
    "layer_tables.SHIPPED_DIR = Path(sys.argv[1]); from app.cli.main import main; sys.exit(main(sys.argv[2:]))"
)


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    """Keep the layer tables these tests write in a folder of their own, with none shipped in this process."""
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(layer_tables, "SHIPPED_DIR", tmp_path / "shipped")


def listing_in_a_child(cache_dir: Path, shipped_dir: Path) -> tuple[str, set[str]]:
    """Return what `neuron-atlas layers --model resnet18` prints in a fresh process, and the top-level packages it
    imported (`-X importtime`)."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", LISTING, str(shipped_dir), "layers", "--model", "resnet18"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, CACHE_DIR_ENV: str(cache_dir)},
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in completed.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "dissect_core" in imported  # the listing is read right: the library itself shows up
    return completed.stdout, imported


def test_resnet18_lists_units_and_stars_the_main_stages(capsys):
    assert main(["layers", "--model", "resnet18"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["layer", "type", "output", "units", "main"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:-1]}
    assert len(rows) == 67
    assert rows["fc"] == ["Linear", "1000", "1000", "*"]
    assert rows["layer4"] == ["Sequential", "512x7x7", "512", "*"]
    assert rows["layer4.1"] == ["BasicBlock", "512x7x7", "512"]
    assert lines[-1] == "* main stages: --layers conv1,layer1,layer2,layer3,layer4,fc"


def test_a_layer_the_trace_did_not_reach_shows_dashes():
    layers = [LayerInfo("head.drop", "Dropout", None, None, False), LayerInfo("fc", "Linear", (10,), 10, True)]
    rows = [line.split() for line in layer_table(layers)[1:]]
    assert rows == [["head.drop", "Dropout", "-", "-"], ["fc", "Linear", "10", "10", "*"]]


def test_a_second_listing_reads_the_kept_table_without_importing_torch(capsys, tmp_path):
    assert main(["layers", "--model", "resnet18"]) == 0  # traced on the meta device, its table kept
    traced = capsys.readouterr().out
    assert len(list((tmp_path / "cache" / SUBFOLDER).glob("*.json"))) == 1
    output, imported = listing_in_a_child(tmp_path / "cache", tmp_path / "shipped")
    assert output == traced  # the same table, read back
    assert imported.isdisjoint(HEAVY_PACKAGES), sorted(imported & set(HEAVY_PACKAGES))


def test_a_first_listing_on_a_fresh_install_reads_the_shipped_table_without_importing_torch(capsys, tmp_path):
    assert main(["layers", "--model", "resnet18"]) == 0  # traced here: this process ships no tables
    traced = capsys.readouterr().out
    output, imported = listing_in_a_child(tmp_path / "fresh cache", SHIPPED_DIR)
    assert output == traced
    assert imported.isdisjoint(HEAVY_PACKAGES), sorted(imported & set(HEAVY_PACKAGES))
    assert not (tmp_path / "fresh cache").exists()  # the package's table answered: nothing traced or kept


def test_an_unreadable_table_is_traced_again(capsys, tmp_path):
    assert main(["layers", "--model", "resnet18"]) == 0
    traced = capsys.readouterr().out
    (kept,) = (tmp_path / "cache" / SUBFOLDER).glob("*.json")
    kept.write_text("{not json")
    assert main(["layers", "--model", "resnet18"]) == 0
    assert capsys.readouterr().out == traced

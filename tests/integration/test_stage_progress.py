"""A real dissection's progress reports: every stage reports (stage, 0, total) when it starts, in the order
dissect_core.progress.DISSECTION_STAGES lists them, so a job page or bar shows a stage from its first step."""

from __future__ import annotations

from pathlib import Path

import pytest

from dissect_core.config import DissectConfig
from dissect_core.pipeline import run_dissection
from dissect_core.progress import DISSECTION_STAGES
from tests.conftest import TINY_CLIP, make_probe_folder

pytestmark = pytest.mark.usefixtures("tiny_clip")


def test_each_stage_reports_its_start_in_the_listed_order(tmp_path: Path) -> None:
    concepts = tmp_path / "concepts.txt"
    concepts.write_text("dots\nstripes\ncat\ndog\ncar\nsky\n")
    config = DissectConfig(
        model="resnet18",
        weights="none",
        layers=("layer2", "layer3"),
        probe=str(make_probe_folder(tmp_path / "probe", n_images=20)),
        concepts=str(concepts),
        encoder=TINY_CLIP,
        similarity_params={"top_k": 4},
        n_folds=2,
        n_top_images=5,
        batch_size=8,
    )
    reports: list[tuple[str, int, int]] = []
    run_dissection(config, cache_dir=tmp_path / "cache", progress=lambda *report: reports.append(report))
    stages = list(dict.fromkeys(stage for stage, _done, _total in reports))
    assert stages == list(DISSECTION_STAGES)
    for stage in stages:
        first = next(report for report in reports if report[0] == stage)
        last = [report for report in reports if report[0] == stage][-1]
        assert first[1] == 0, first  # the label switches when the stage starts
        assert last[1] == last[2] > 0, last
    probe_pass = [report for report in reports if report[0] == "probe pass"]
    assert [done for _stage, done, _total in probe_pass] == [0, 1, 2, 3] and probe_pass[0][2] == 3

"""`neuron-atlas push`: the token comes from --token or NEURON_ATLAS_TOKEN, and without one nothing is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli.main import main


def test_a_push_without_a_token_says_where_to_put_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NEURON_ATLAS_TOKEN", raising=False)
    (tmp_path / "manifest.json").write_text("{}")

    exit_code = main(["push", str(tmp_path), "--server", "http://127.0.0.1:9"])  # nothing listens there

    assert exit_code == 2
    error = capsys.readouterr().err
    assert "--token" in error and "NEURON_ATLAS_TOKEN" in error

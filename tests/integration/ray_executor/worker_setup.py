"""Runs in every Ray worker process of the test session: registers the tiny random open_clip architecture there,
as the `tiny_clip` fixture does in the test process."""

from __future__ import annotations

from tests.conftest import FIXTURES


def register_tiny_clip() -> None:
    """Register tests/fixtures/tiny_clip.json with open_clip in this worker."""
    import open_clip

    open_clip.add_model_config(str(FIXTURES / "tiny_clip.json"))

"""Media paths: only stored files inside the media folder are served."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.errors import NotFound
from app.web.routes.media import resolve_media_path


@pytest.mark.parametrize(
    "relative", ["../atlas.db", "ab/../../atlas.db", "/etc/passwd", "ab\\..\\x", "ab/.tmp-1.jpg", "", "a\x00b"]
)
def test_media_paths_outside_the_media_dir_are_refused(tmp_path: Path, relative: str) -> None:
    (tmp_path / "media" / "ab").mkdir(parents=True)
    (tmp_path / "atlas.db").write_text("secret")
    with pytest.raises(NotFound):
        resolve_media_path(tmp_path / "media", relative)


def test_media_path_of_a_stored_file(tmp_path: Path) -> None:
    (tmp_path / "ab").mkdir()
    (tmp_path / "ab" / "abc.jpg").write_bytes(b"x")
    assert resolve_media_path(tmp_path, "ab/abc.jpg") == (tmp_path / "ab" / "abc.jpg").resolve()

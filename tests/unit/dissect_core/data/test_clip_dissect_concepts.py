"""The paper's concept list: fetched once into the cache, checked against its pinned sha256, cleaned like any file."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request

import pytest

from dissect_core.data.concepts import (
    BUILT_IN_CONCEPT_SETS,
    CLIP_DISSECT_20K,
    fetch_clip_dissect_20k,
    load_concepts,
    read_concept_file,
)
from dissect_core.errors import DissectError

FAKE_LIST = b"the\nof\n\nand\nof\n  to  \n"


@pytest.fixture
def served(tmp_path):
    """A small stand-in for data/20k.txt on disk, and its file:// URL and sha256."""
    path = tmp_path / "served" / "20k.txt"
    path.parent.mkdir()
    path.write_bytes(FAKE_LIST)
    return path.as_uri(), hashlib.sha256(FAKE_LIST).hexdigest()


def refuse(url: str):
    raise AssertionError(f"{url} was fetched again")


def test_the_list_is_fetched_once_checked_and_cleaned(tmp_path, served):
    url, sha256 = served
    path = fetch_clip_dissect_20k(tmp_path / "cache", url=url, sha256=sha256)
    assert path.read_bytes() == FAKE_LIST and path.is_relative_to(tmp_path / "cache")
    assert fetch_clip_dissect_20k(tmp_path / "cache", url=url, sha256=sha256, opener=refuse) == path
    concepts = read_concept_file(path, CLIP_DISSECT_20K)
    assert concepts.name == CLIP_DISSECT_20K and concepts.concepts == ["the", "of", "and", "to"]


def test_a_file_with_another_hash_is_refused_and_not_kept(tmp_path, served):
    url, _ = served
    with pytest.raises(DissectError, match=r"not the pinned one.*--concepts path/to/20k\.txt"):
        fetch_clip_dissect_20k(tmp_path / "cache", url=url, sha256="0" * 64)
    assert not any(path.is_file() for path in (tmp_path / "cache").rglob("*"))


def test_offline_the_error_names_the_fix(tmp_path, monkeypatch):
    def offline(url: str, timeout: float):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DissectError, match=r"could not download.*pass it as --concepts path/to/20k\.txt"):
        load_concepts(CLIP_DISSECT_20K, cache_dir=tmp_path)


def test_wordfreq_20k_is_the_default_20k_under_its_own_name():
    assert {"20k", "wordfreq-20k", CLIP_DISSECT_20K} <= set(BUILT_IN_CONCEPT_SETS)
    explicit = load_concepts("wordfreq-20k")
    assert explicit.name == "wordfreq-20k" and explicit.content_hash == load_concepts("20k").content_hash

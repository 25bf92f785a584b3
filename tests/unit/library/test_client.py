"""The client against a mock server: paging walked, older envelopes read, a push's request, errors that say why."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import httpx
import pytest

from dissect_core.client import Client
from dissect_core.errors import DissectError

N_UNITS = 1280


def neurons_page(request: httpx.Request) -> httpx.Response:
    """Answer a layer's neurons in the one envelope, `next` carrying the query on."""
    offset = int(request.url.params.get("offset", 0))
    limit = int(request.url.params["limit"])
    units = range(offset, min(offset + limit, N_UNITS))
    following = offset + limit
    next_url = None
    if following < N_UNITS:
        next_url = str(request.url.copy_merge_params({"offset": following}))
    body = {
        "items": [{"unit": unit, "label": f"c{unit}"} for unit in units],
        "total": N_UNITS,
        "offset": offset,
        "limit": limit,
        "next": next_url,
    }
    return httpx.Response(200, json=body)


def test_neurons_walks_every_page_of_a_wide_layer() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return neurons_page(request)

    frame = Client("http://atlas.test", transport=httpx.MockTransport(handler)).neurons(3, "conv_head")
    assert frame["unit"].tolist() == list(range(N_UNITS))
    assert len(seen) == 3
    assert seen[0] == "/api/v1/runs/3/layers/conv_head/neurons"


def test_older_envelopes_are_read_as_one_page() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/runs":
            return httpx.Response(200, json=[{"id": 1}, {"id": 2}])
        return httpx.Response(200, json={"hits": [{"unit": 4, "score": 0.5}], "run_id": 1})

    client = Client("http://atlas.test/", transport=httpx.MockTransport(handler))
    assert client.runs()["id"].tolist() == [1, 2]
    assert client.rank_concept(1, "dog", layer="fc")["unit"].tolist() == [4]


def test_rank_concept_falls_back_to_the_per_layer_search_on_an_older_server() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path.endswith("/runs/1/concepts"):
            return httpx.Response(404, json={"detail": "Not Found"})
        assert request.url.params["q"] == "dog"
        return httpx.Response(200, json={"hits": [{"unit": 2}]})

    client = Client("http://atlas.test", transport=httpx.MockTransport(handler))
    assert client.rank_concept(1, "dog", layer="layer4.1")["unit"].tolist() == [2]
    assert paths == ["/api/v1/runs/1/concepts", "/api/v1/runs/1/layers/layer4.1/concepts"]
    with pytest.raises(DissectError, match=r"no cross-layer concept ranking; upgrade the server or pass layer="):
        client.rank_concept(1, "dog")


def test_push_uploads_the_folders_files_as_one_archive_with_the_token(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    (folder / "images").mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    (folder / "images" / "0.jpg").write_bytes(b"jpeg")
    received: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        received["auth"] = request.headers["authorization"]
        received["path"] = request.url.path
        body = request.read()
        boundary = request.headers["content-type"].split("boundary=")[1].encode()
        part = next(chunk for chunk in body.split(b"--" + boundary) if b'name="archive"' in chunk)
        archive = part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            received["members"] = sorted(tar.getnames())
        return httpx.Response(
            201, json={"run_id": 7, "url": "http://atlas.test/runs/7", "api_url": "http://atlas.test/api/v1/runs/7"}
        )

    client = Client("http://atlas.test", token="secret", transport=httpx.MockTransport(handler))
    assert client.push(folder) == "http://atlas.test/runs/7"
    assert received == {
        "auth": "Bearer secret",
        "path": "/api/v1/runs",
        "members": ["images/0.jpg", "manifest.json"],
    }


def test_push_takes_the_token_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEURON_ATLAS_TOKEN", "from-env")
    assert Client("http://atlas.test").token == "from-env"
    monkeypatch.delenv("NEURON_ATLAS_TOKEN")
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(DissectError, match=r"needs an editor's API token.*NEURON_ATLAS_TOKEN"):
        Client("http://atlas.test").push(tmp_path)


def test_a_refused_push_says_the_servers_reason(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{}")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"detail": "viewers cannot push runs"})

    client = Client("http://atlas.test", token="t", transport=httpx.MockTransport(handler))
    with pytest.raises(DissectError, match=r"403 viewers cannot push runs .*editors and admins push"):
        client.push(tmp_path)


def test_push_refuses_a_folder_that_is_no_saved_run(tmp_path: Path) -> None:
    with pytest.raises(DissectError, match=r"not a saved run.*result.save"):
        Client("http://atlas.test", token="t").push(tmp_path)


def test_neuron_returns_the_evidence_and_names_a_missing_one() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/neurons/5"):
            return httpx.Response(200, json={"unit": 5, "label": "dog", "top_images": []})
        return httpx.Response(404, json={"detail": "no unit 6 in fc"})

    client = Client("http://atlas.test", transport=httpx.MockTransport(handler))
    assert client.neuron(1, "fc", 5)["label"] == "dog"
    with pytest.raises(DissectError, match=r"no unit 6 in fc"):
        client.neuron(1, "fc", 6)


def test_result_push_saves_to_a_scratch_folder_and_pushes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.unit.library.saved_helpers import full_result

    pushed: list[tuple[str, str | None, list[str]]] = []

    def push(self: Client, folder: Path) -> str:
        pushed.append((self.url, self.token, sorted(path.name for path in Path(folder).iterdir())))
        return "http://atlas.test/runs/9"

    monkeypatch.setattr(Client, "push", push)
    assert full_result(tmp_path / "probe").push("http://atlas.test/", token="t") == "http://atlas.test/runs/9"
    assert pushed[0][:2] == ("http://atlas.test", "t")
    assert "manifest.json" in pushed[0][2] and "tensors.safetensors" in pushed[0][2]

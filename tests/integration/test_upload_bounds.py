"""Issue #27, item 6, against the real server (`neuron-atlas serve`): a safetensors header over the limit is refused
from its length, a file whose offsets overlap (or leave gaps) is refused at upload instead of failing in the worker,
and one client address cannot hold every connection."""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cli.commands.serve import DEFAULT_LIMIT_PER_CLIENT
from app.persistence.db import create_db_engine
from app.persistence.models import Job
from tests.support.dashboard_seed import build_dashboard
from tests.support.served import ServedChild, served

MiB = 2**20
#: The upload fields naming a real architecture (resnet18, built on the meta device) and the built-in sets.
FIELDS = {"architecture": "resnet18", "layers": "fc", "probe": "cifar100", "concepts": "20k"}


@dataclass
class Served:
    """The real server on a seeded data folder, and the seeded admin's headers."""

    server: ServedChild
    database_url: str
    checkpoints: Path
    admin: dict[str, str]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("upload-bounds")
    seeded = build_dashboard(folder / "data")
    seeded.engine.dispose()
    env = {"NEURON_ATLAS_DATA_DIR": str(seeded.settings.data_dir)}
    with served(env, folder / "server.log") as server:
        server.wait_until_up(90)
        warm = httpx.get(f"{server.url}/api/v1/architectures/resnet18/layers", headers=seeded.admin_headers, timeout=60)
        assert warm.status_code == 200, warm.text
        checkpoints = seeded.settings.data_dir / "checkpoints"
        yield Served(server, seeded.settings.database_url, checkpoints, seeded.admin_headers)


def safetensors_bytes(header: bytes, data_bytes: int) -> bytes:
    return struct.pack("<Q", len(header)) + header + bytes(data_bytes)


def huge_header(megabytes: int) -> tuple[bytes, int]:
    """Return a valid safetensors header of about `megabytes` MB (one-byte tensors, tiling the data) and its data."""
    entries: list[str] = []
    size = 0
    while size < megabytes * MiB:
        index = len(entries)
        entry = f'"t{index}":{{"dtype":"U8","shape":[1],"data_offsets":[{index},{index + 1}]}}'
        entries.append(entry)
        size += len(entry) + 1
    return ("{" + ",".join(entries) + "}").encode(), len(entries)


def send(lab: Served, content: bytes) -> tuple[httpx.Response, float]:
    files = {"checkpoint": ("model.safetensors", content)}
    started = time.perf_counter()
    answer = httpx.post(f"{lab.server.url}/api/v1/uploads", data=FIELDS, files=files, headers=lab.admin, timeout=120)
    return answer, time.perf_counter() - started


def jobs(lab: Served) -> int:
    engine = create_db_engine(lab.database_url)
    try:
        with Session(engine) as session:
            return session.scalar(select(func.count(Job.id))) or 0
    finally:
        engine.dispose()


def test_a_30_mb_safetensors_header_is_refused_from_its_length(lab: Served) -> None:
    header, data_bytes = huge_header(30)
    before = jobs(lab)
    answer, elapsed = send(lab, safetensors_bytes(header, data_bytes))
    print(f"30 MB header: {answer.status_code} in {elapsed:.2f} s (the upload's transfer included)")
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert f"safetensors header of {len(header):,} bytes, over the limit of 1,048,576" in detail
    assert "NEURON_ATLAS_CHECKPOINT_MAX_HEADER_KB" in detail and "'model.safetensors'" in detail
    assert jobs(lab) == before and not any(path.is_file() for path in lab.checkpoints.rglob("*"))


@pytest.mark.parametrize(
    ("offsets", "data_bytes", "words"),
    [
        ([[0, 4], [2, 6]], 8, "overlaps the tensor before it"),  # within the data, adding up to it: once accepted
        ([[0, 4], [8, 12]], 12, "leaves bytes 4–8 unused"),
    ],
    ids=["overlapping", "gap"],
)
def test_offsets_the_worker_could_not_load_are_refused_at_upload(
    lab: Served, offsets: list[list[int]], data_bytes: int, words: str
) -> None:
    spans = dict(zip("ab", offsets, strict=True))
    header = {name: {"dtype": "F32", "shape": [1], "data_offsets": span} for name, span in spans.items()}
    before = jobs(lab)
    answer, _ = send(lab, safetensors_bytes(json.dumps(header).encode(), data_bytes))
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["detail"] and "not a readable safetensors file" in answer.json()["detail"]
    assert jobs(lab) == before  # nothing queued: the worker never meets it


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


def status_of(connection: socket.socket) -> int:
    """Return the status of the first answer on the connection (0 if it closed without one)."""
    data = b""
    while b"\r\n" not in data:
        chunk = connection.recv(4096)
        if not chunk:
            return 0
        data += chunk
    return int(data.split(b" ", 2)[1])


def get_healthz(port: int, source: str) -> int:
    with closing(connect(port, source)) as connection:
        connection.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        return status_of(connection)


def test_one_client_holding_its_share_of_connections_leaves_the_others_served(lab: Served) -> None:
    port = lab.server.port
    with ExitStack() as held:
        idle = [held.enter_context(closing(connect(port))) for _ in range(DEFAULT_LIMIT_PER_CLIENT)]
        assert get_healthz(port, "127.0.0.2") == 200  # another client address still gets in
        over = held.enter_context(closing(connect(port)))
        answer = over.recv(4096)
        assert answer.startswith(b"HTTP/1.1 429 ") and b"Retry-After: " in answer, answer
        assert b"the limit per client" in answer
        assert len(idle) == DEFAULT_LIMIT_PER_CLIENT
    deadline = time.monotonic() + 10
    while get_healthz(port, "127.0.0.1") != 200:  # once the idle ones are closed, the client is served again
        assert time.monotonic() < deadline, "the client was still refused after closing its connections"
        time.sleep(0.1)

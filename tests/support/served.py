"""The real server (`neuron-atlas serve`) in a child process, and what Linux's /proc says of it while it answers:
resident memory and its peak, and the bytes it holds on disk (deleted temporary files included)."""

from __future__ import annotations

import http.client
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
_SERVE = "import sys; from app.cli.main import main; sys.exit(main(sys.argv[1:]))"


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on now."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def status_bytes(pid: int, name: str) -> int:
    """Return a size field of /proc/PID/status (VmRSS, VmHWM, ...) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(f"/proc/{pid}/status has no {name}")


def reset_peak(pid: int) -> bool:
    """Reset the process's peak resident size (VmHWM) to its current one; return False where Linux refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def tree_bytes(folder: Path) -> int:
    """Return the bytes of every file under a folder (files vanishing meanwhile count nothing)."""
    total = 0
    for path in folder.rglob("*"):
        try:
            total += path.stat().st_size if path.is_file() else 0
        except OSError:
            continue
    return total


def deleted_open_bytes(pid: int) -> int:
    """Return the bytes of the deleted files the process still holds open (unnamed temporary files)."""
    total = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).endswith(" (deleted)"):
                total += fd.stat().st_size
        except OSError:
            continue
    return total


@dataclass
class DiskWatch:
    """Polls what a process holds on disk (its folders and its deleted open files) and keeps the largest sum."""

    pid: int
    folders: tuple[Path, ...]
    interval_s: float = 0.02
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def held(self) -> int:
        """Return the bytes the process holds on disk now."""
        return sum(tree_bytes(folder) for folder in self.folders) + deleted_open_bytes(self.pid)

    @contextmanager
    def watching(self) -> Iterator[DiskWatch]:
        """Poll in a thread while the block runs; `peak` is then the largest sum seen."""
        self.peak = self.held()
        self._stop.clear()
        thread = threading.Thread(target=self._poll, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.peak = max(self.peak, self.held())

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, self.held())


@dataclass
class ServedChild:
    """A server child process on a loopback port."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        """Return the server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def wait_until_up(self, timeout_s: float, while_waiting: Callable[[], object] | None = None) -> None:
        """Return once /healthz answers (running `while_waiting` first); raise with the log if it never does."""
        if while_waiting is not None:
            while_waiting()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not come up in {timeout_s} s: {self.log.read_text()[-3000:]}")


@contextmanager
def served(
    env: dict[str, str], log: Path, options: tuple[str, ...] = (), prefix: tuple[str, ...] = ()
) -> Iterator[ServedChild]:
    """Start `neuron-atlas serve` on a free loopback port with `env` added (and `options`, e.g.
    `("--proxy-headers",)`; run through `prefix`, a command that ends by executing its arguments, e.g. one that
    mounts a read-only folder first); stop it afterwards."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*prefix, sys.executable, "-c", _SERVE, "serve", "--host", "127.0.0.1", "--port", str(port), *options],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield ServedChild(process, port, log)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(20)


@dataclass(frozen=True)
class ChunkedAnswer:
    """What a chunked upload got: the answer's status and body, and how many body bytes went out before it."""

    status: int
    body: bytes
    sent_bytes: int


def post_chunked(
    port: int, path: str, headers: dict[str, str], head: bytes, total_bytes: int, chunk_bytes: int = 1 << 20
) -> ChunkedAnswer:
    """POST `head` then zeros up to `total_bytes` as a chunked body (no Content-Length); stop sending once an
    answer starts arriving or the server closes, and return the answer."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Transfer-Encoding: chunked"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    with closing(sock):
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sent, chunk = 0, bytes(chunk_bytes)
        try:
            for part in (head, *[chunk] * (total_bytes // chunk_bytes)):
                if select.select([sock], [], [], 0)[0]:
                    break
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                sent += len(part)
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return ChunkedAnswer(answer.status, answer.read(), sent)

"""Peak anonymous memory and time of storing a run's target outputs and of loading a cached probe pass, before and
after they were made to stream (issue #28: a Ray run's matrices are mapped from files; storing or reloading them
must not copy them whole into memory).

    .venv/bin/python -m bench.bench_store_memory [--images 200000] [--dir DIR]

Row files of float32 logits [N, 1000] and classifier inputs [N, 2048] are written first (not timed), as the Ray
executor leaves them. Each case runs in a fresh process that maps them (`torch.from_file`, as the result does);
this process samples the child's RssAnon from /proc/<pid>/status every 2 ms and prints its peak above the child's
own RssAnon just before the case, with the case's seconds:

- outputs, old: `safetensors.torch.save_file` of float16 copies (what `save_outputs` did);
- outputs, new: `save_outputs` (`dissect_core.tensor_files.save_safetensors`, 64 MB parts); the two files must hold
  the same tensors and metadata, and their data bytes must be identical;
- cache load, old: `torch.load` of a cached activations entry [N, 2048] float32, then a sum over it;
- cache load, new: `TensorCache.load` (`mmap=True`), then the same sum.
"""

from __future__ import annotations

import argparse
import hashlib
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

CLASSES, FEATURES = 1000, 2048


def _rss_anon(pid: int | str = "self") -> int:
    """Return the process's RssAnon in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/<pid>/status; run this on Linux")


def _write_rows(path: Path, n_rows: int, width: int, seed: int) -> None:
    """Write a random float32 [n_rows, width] matrix to `path` a part at a time."""
    generator = torch.Generator().manual_seed(seed)
    with path.open("wb") as handle:
        for start in range(0, n_rows, 10_000):
            handle.write(torch.randn(min(10_000, n_rows - start), width, generator=generator).numpy().tobytes())


def _mapped(path: Path, n_rows: int, width: int) -> torch.Tensor:
    return torch.from_file(str(path), shared=False, size=n_rows * width, dtype=torch.float32).view(n_rows, width)


def _child(case: str, folder: Path, n_images: int) -> None:
    """Run one case in this process: print the RssAnon before it, then wait for the parent's go, then its seconds."""
    from safetensors.torch import save_file

    from app.persistence.store.analysis_files import save_outputs
    from app.persistence.store.layout import ArtifactsLayout
    from dissect_core.analysis.outputs import ModelOutputs
    from dissect_core.data.cache import TensorCache

    logits = _mapped(folder / "logits.f32", n_images, CLASSES)
    inputs = _mapped(folder / "inputs.f32", n_images, FEATURES)
    metadata = {"classifier_layer": "fc", "feeding_layer": "avgpool"}
    print(_rss_anon(), flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    if case == "outputs-old":
        tensors = {
            "logits": logits.detach().cpu().to(torch.float16).contiguous().clone(),
            "classifier_inputs": inputs.detach().cpu().to(torch.float16).contiguous().clone(),
        }
        save_file(tensors, str(folder / "old" / "outputs.safetensors"), metadata=metadata)
    elif case == "outputs-new":
        save_outputs(ArtifactsLayout(folder / "new"), ModelOutputs(logits, "fc", inputs, feeding_layer="avgpool"))
    elif case == "cache-old":
        path = folder / "cache" / "activations" / "key.pt"
        float(torch.load(path, map_location="cpu", weights_only=True)["activations"].sum())
    elif case == "cache-new":
        loaded = TensorCache(folder / "cache").load("activations", "key")
        assert loaded is not None
        float(loaded["activations"].sum())
    print(f"{time.perf_counter() - started:.2f}", flush=True)


def _run(case: str, folder: Path, n_images: int) -> tuple[float, float]:
    """Return (peak RssAnon above the start in GiB, seconds) of one case run in a fresh process."""
    command = [sys.executable, "-m", "bench.bench_store_memory", "--child", case, "--dir", str(folder)]
    child = subprocess.Popen(
        [*command, "--images", str(n_images)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    before = int(child.stdout.readline())
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                peak = max(peak, _rss_anon(child.pid))
            except (FileNotFoundError, ProcessLookupError, RuntimeError):
                return
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    child.stdin.write("go\n")
    child.stdin.flush()
    seconds = float(child.stdout.readline())
    done.set()
    sampler.join()
    if child.wait() != 0:
        raise RuntimeError(f"case {case} failed")
    return (peak - before) / (1 << 30), seconds


def _data_digest(path: Path) -> tuple[bytes, str]:
    """Return a safetensors file's header bytes and the sha256 of its data bytes, read a part at a time."""
    with path.open("rb") as handle:
        length = struct.unpack("<Q", handle.read(8))[0]
        header = handle.read(length)
        digest = hashlib.sha256()
        while part := handle.read(64 << 20):
            digest.update(part)
    return header, digest.hexdigest()


def main() -> None:
    """Write the row files, run the four cases, print their peaks and seconds and check the files agree."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.dir, args.images)
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as temporary:
        folder = Path(temporary)
        (folder / "old").mkdir()
        _write_rows(folder / "logits.f32", args.images, CLASSES, 0)
        _write_rows(folder / "inputs.f32", args.images, FEATURES, 1)
        (folder / "cache" / "activations").mkdir(parents=True)
        activations = _mapped(folder / "inputs.f32", args.images, FEATURES)
        torch.save({"activations": activations, "kind": "conv"}, folder / "cache" / "activations" / "key.pt")
        del activations
        print(f"N = {args.images:,}: logits [N, {CLASSES}] and classifier inputs [N, {FEATURES}] float32 mapped rows")
        for case in ("outputs-old", "outputs-new", "cache-old", "cache-new"):
            peak, seconds = _run(case, folder, args.images)
            print(f"{case:12s} peak RssAnon above start {peak:6.2f} GiB  {seconds:6.2f} s")
        (old_header, old_data), (new_header, new_data) = (
            _data_digest(folder / name / "outputs.safetensors") for name in ("old", "new")
        )
        from safetensors import safe_open

        with (
            safe_open(str(folder / "old" / "outputs.safetensors"), "pt") as old,
            safe_open(str(folder / "new" / "outputs.safetensors"), "pt") as new,
        ):
            same_metadata = old.metadata() == new.metadata()
            same_keys = sorted(old.keys()) == sorted(new.keys())
        print(
            f"outputs files: data bytes identical {old_data == new_data}, header bytes identical "
            f"{old_header == new_header} (safetensors orders metadata keys by hash), same metadata {same_metadata}, "
            f"same tensors {same_keys}"
        )


if __name__ == "__main__":
    main()

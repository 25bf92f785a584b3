"""Which weights a run used (#26): named, random with its seed, a checkpoint or TorchScript file with its sha256, or
an in-memory network's state dict, and the one-line label pages show."""

from __future__ import annotations

from typing import Any

from app.read.runs.provenance import weights_label, weights_view
from dissect_core.run_record import RunRecord

SHA = "ab" * 32


def record(**settings: Any) -> RunRecord:
    """Return the record of a run of resnet18's fc with the given settings (facts under `facts`)."""
    facts = settings.pop("facts", None)
    base = {"model": "resnet18", "layers": ["fc"], "probe": "p", "concepts": "c", **settings}
    data = RunRecord.from_json(base).to_json()
    if facts is not None:
        data["facts"] = {**data.get("facts", {}), **facts}
    return RunRecord.from_json(data)


def test_named_weights() -> None:
    view = weights_view(record(weights="DEFAULT"), "resnet18")
    assert (view.kind, view.name, view.sha256) == ("pretrained", "DEFAULT", None)
    assert weights_label(view) == "DEFAULT weights"


def test_random_weights_name_their_seed() -> None:
    view = weights_view(record(weights="none@7"), "resnet18")
    assert (view.kind, view.seed) == ("random", 7)
    assert weights_label(view) == "random (none@7)"
    assert weights_view(record(weights="none"), "resnet18").seed == 0


def test_a_checkpoint_shows_its_file_name_and_sha256_never_its_folder() -> None:
    view = weights_view(
        record(weights="none", checkpoint="/srv/atlas/models/lite0-perturbed.pt", facts={"weights": f"sha256:{SHA}"}),
        "lite0-perturbed",
    )
    assert view.model_dump() == {
        "kind": "checkpoint",
        "name": "lite0-perturbed",
        "seed": None,
        "sha256": SHA,
        "file_name": "lite0-perturbed.pt",
    }
    assert weights_label(view) == f"checkpoint lite0-perturbed.pt · sha256 {SHA[:12]}…"
    unhashed = weights_view(record(checkpoint="old.pt"), "old")
    assert unhashed.sha256 is None and weights_label(unhashed) == "checkpoint old.pt · sha256 not recorded"


def test_a_torchscript_file() -> None:
    view = weights_view(record(model="/models/net.ts", facts={"weights": f"sha256:{SHA}"}), "net")
    assert (view.kind, view.file_name, view.sha256) == ("torchscript", "net.ts", SHA)


def test_a_notebook_run_shows_its_state_dict_identity() -> None:
    view = weights_view(record(model="module:TinyNet", weights=f"sha256:{SHA}"), "TinyNet")
    assert (view.kind, view.name, view.sha256) == ("in_memory", "TinyNet", SHA)
    assert weights_label(view) == f"in-memory TinyNet · state dict sha256 {SHA[:12]}…"

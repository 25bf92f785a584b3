"""`RunRecord`: the typed record of a run round-trips through JSON, and reads every older run's flat settings."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dissect_core.config import DissectConfig
from dissect_core.data.concepts import ConceptSet, concept_set_hash, concepts_text
from dissect_core.run_record import InputIdentities, ResolvedSettings, RunFacts, RunRecord, weights_provenance

words = st.text(min_size=1, max_size=12)
maybe_words = st.none() | words
numbers = st.integers(-5, 10_000) | st.floats(allow_nan=False, allow_infinity=False, width=32)
counts = st.none() | st.integers(0, 10**6)
channels = st.tuples(*[st.floats(0.0, 1.0)] * 3)

configs = st.builds(
    DissectConfig,
    model=words,
    layers=st.lists(words, min_size=1, max_size=3).map(tuple),
    probe=words,
    concepts=words,
    encoder=words,
    similarity=words,
    similarity_params=st.dictionaries(words, numbers, max_size=3),
    preprocessing=st.fixed_dictionaries({}, optional={"resize": st.integers(1, 512), "mean": channels}),
    weights=maybe_words,
    checkpoint=maybe_words,
    pool=words,
    prompt_template=maybe_words,
    n_top_images=st.integers(1, 50),
    batch_size=st.integers(1, 512),
    max_images=counts,
    device=maybe_words,
    labels_file=maybe_words,
    model_name=maybe_words,
    n_folds=st.integers(0, 10),
    false_discovery_rate=st.floats(0.001, 0.5),
    simulation=words,
)
records = st.builds(
    RunRecord,
    config=configs,
    resolved=st.builds(
        ResolvedSettings,
        device=maybe_words,
        preprocessing=st.fixed_dictionaries(
            {"resize": st.integers(1, 512), "mean": channels, "antialias": st.booleans()}
        ),
        similarity_params=st.dictionaries(words, numbers, max_size=3),
        concept_search=st.dictionaries(words, numbers, max_size=3),
        view=st.none() | st.tuples(st.integers(1, 512), st.integers(1, 512)),
        evaluation_skipped=maybe_words,
    ),
    identities=st.builds(
        InputIdentities,
        probe_hash=maybe_words,
        concept_hash=maybe_words,
        concept_set_name=maybe_words,
        target=maybe_words,
        encoder=maybe_words,
        class_names=st.none() | st.lists(words, max_size=4).map(tuple),
        code_version=maybe_words,
        sampled_from=counts,
        sample_seed=counts,
    ),
    facts=st.builds(
        RunFacts,
        n_images=counts,
        n_concepts=counts,
        skipped_images=st.lists(words, max_size=3).map(tuple),
        timings_s=st.dictionaries(words, st.floats(0, 1e4), max_size=3),
        weights=maybe_words,
    ),
)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(records)
def test_a_record_survives_a_json_round_trip(record: RunRecord) -> None:
    stored = json.loads(json.dumps(record.to_json()))
    assert RunRecord.from_json(stored) == record
    assert RunRecord.from_json(stored).to_json() == stored


#: What `pin_settings` stored before the record: config, resolved values and identities in one flat dict.
FLAT_SETTINGS = {
    "model": "resnet18",
    "layers": ["layer4", "fc"],
    "probe": "probe-sets/ab12",
    "concepts": "concepts/words.txt",
    "encoder": "ViT-B-16:openai",
    "similarity": "soft_wpmi",
    "similarity_params": {"top_k": 12, "a": 10.0, "lam": 1.0},
    "preprocessing": {"resize": 256, "crop": 224, "interpolation": "bilinear", "mean": [0.485, 0.456, 0.406]},
    "weights": "none",
    "checkpoint": "checkpoints/0123/my.pt",
    "device": "cuda:0",
    "max_images": 200,
    "concept_search": {"a": 10.0, "lam": 1.0, "top_k": 12},
    "view": {"resize": 256, "crop": 224},
    "n_images": 199,
    "n_concepts": 5,
    "probe_hash": "old-probe",
    "probe_set_hash": "probe-set",
    "concepts_hash": "joined",
    "concept_set_hash": "one-per-line",
    "concept_set_name": "words",
    "target_identity": "torchvision:resnet18:checkpoint-sha256:ff",
    "encoder_identity": "open_clip:ViT-B-16:openai",
    "code_version": "0.0.9",
    "class_names": None,
    "evaluation_skipped": "n_folds is 0",
    "checkpoint_sha256": "ff",
    "skipped_images": ["/data/probe/broken.png"],
    "timings_s": {"load": 1.5},
    "a_key_no_one_knows": 1,
}


def test_an_older_runs_flat_settings_are_read_into_the_record() -> None:
    record = RunRecord.from_json(FLAT_SETTINGS)
    assert record.config.device is None and record.resolved.device == "cuda:0"  # resolved, never asked for again
    assert record.config.layers == ("layer4", "fc") and record.config.checkpoint == "checkpoints/0123/my.pt"
    assert record.config.similarity_params == record.resolved.similarity_params == {"top_k": 12, "a": 10.0, "lam": 1.0}
    assert record.resolved.preprocessing["mean"] == (0.485, 0.456, 0.406) and record.resolved.view == (256, 224)
    assert record.resolved.concept_search == {"a": 10.0, "lam": 1.0, "top_k": 12}
    assert record.resolved.evaluation_skipped == "n_folds is 0"
    assert record.identities == InputIdentities(
        probe_hash="probe-set",
        concept_hash="one-per-line",
        concept_set_name="words",
        target="torchvision:resnet18:checkpoint-sha256:ff",
        encoder="open_clip:ViT-B-16:openai",
        code_version="0.0.9",
    )
    skipped = ("/data/probe/broken.png",)
    assert record.facts == RunFacts(199, 5, skipped, timings_s={"load": 1.5}, weights="sha256:ff")
    assert record.facts.checkpoint_sha256 == "ff"
    assert RunRecord.from_json(json.loads(json.dumps(record.to_json()))) == record


def test_older_keys_are_read_under_either_name() -> None:
    older = {key: value for key, value in FLAT_SETTINGS.items() if key not in ("probe_set_hash", "concept_set_hash")}
    older = {**older, "pooling": "max", "checkpoint": None, "checkpoint_sha256": None, "weights": "none@2"}
    record = RunRecord.from_json(older)
    assert (record.identities.probe_hash, record.identities.concept_hash) == ("old-probe", "joined")
    assert record.config.pool == "max" and record.facts.weights == "none@2"
    assert RunRecord.from_json({**older, "pool": "avg"}).config.pool == "avg"


def test_a_stored_record_is_read_never_refused() -> None:
    assert RunRecord.from_json(None).config == DissectConfig(model="", layers=(), probe="")
    bare = RunRecord.from_json({"model": "emptynet", "layers": [], "unknown": 1, "resolved": None})
    assert (bare.config.model, bare.config.layers, bare.config.probe) == ("emptynet", (), "")


def test_a_stored_record_keeps_its_config_at_the_top_and_nothing_resolved_there() -> None:
    config = DissectConfig(model="resnet18", layers=("fc",), probe="/data/probe", checkpoint="/data/my.pt")
    data = RunRecord(config, ResolvedSettings(device="cuda:0", similarity_params={"top_k": 5})).to_json()
    assert data["probe"] == "/data/probe" and data["checkpoint"] == "/data/my.pt"  # where paths are made relative
    assert data["device"] is None and data["similarity_params"] == {}
    assert data["resolved"]["device"] == "cuda:0" and data["resolved"]["similarity_params"] == {"top_k": 5}
    assert set(data) == set(config.to_dict()) | {"resolved", "identities", "facts"}


def test_weights_provenance_names_where_the_weights_come_from(tmp_path: Path) -> None:
    checkpoint = tmp_path / "my.pt"
    checkpoint.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    config = DissectConfig(model="resnet18", layers=("fc",), probe="cifar100")
    assert weights_provenance(config) == "DEFAULT"
    assert weights_provenance(replace(config, weights="none")) == "none@0"
    assert weights_provenance(replace(config, weights="none@3")) == "none@3"
    assert weights_provenance(replace(config, weights=None)) is None
    assert weights_provenance(replace(config, weights="none", checkpoint=str(checkpoint))) == f"sha256:{digest}"
    assert RunFacts(weights=f"sha256:{digest}").checkpoint_sha256 == digest
    assert RunFacts(weights="DEFAULT").checkpoint_sha256 is None


def test_a_concept_set_has_one_hash_that_of_its_stored_text() -> None:
    concepts = ["cat", "striped dog"]
    assert concepts_text(concepts) == "cat\nstriped dog\n"
    stored = hashlib.sha256(concepts_text(concepts).encode()).hexdigest()
    assert ConceptSet("words", concepts).content_hash == concept_set_hash(concepts) == stored


def test_the_record_imports_without_torch() -> None:
    code = "import sys, dissect_core.run_record; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"

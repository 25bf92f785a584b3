"""The typed record of one run: what was asked (its config), what the run resolved, the identities of its inputs
and the facts it found. Stored as JSON with every run; `RunRecord.from_json` also reads older runs' flat settings.

The JSON is the config's own dict (`DissectConfig.to_dict`) with three sections beside it: `resolved`,
`identities` and `facts`. So a stored record still names its probe, concepts and checkpoint at the top, where the
app makes paths relative and redacts them, and nothing resolved can ever be read back as a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dissect_core.config import DissectConfig
from dissect_core.data.hashing import file_sha256
from dissect_core.names import is_torchscript_name, random_init_seed

#: The JSON sections beside the config's settings.
SECTIONS = ("resolved", "identities", "facts")
#: How `RunFacts.weights` names weights held in a file (a checkpoint, a TorchScript file).
SHA256_PREFIX = "sha256:"


@dataclass(frozen=True)
class ResolvedSettings:
    """What the run resolved from its config and inputs; never read back as a request.

    `device`: the device it ran on (`cpu`, `cuda:0`). `preprocessing`: the target's view of an image as applied
    (resize, crop, interpolation, mean, std, antialias). `similarity_params`: the similarity function's parameters
    as used (defaults and the adaptive top_k filled in). `concept_search`: the soft-WPMI parameters concepts typed
    later are scored with (they match the stored log-normalisers). `view`: the (resize, crop) of the probe views
    the boxes refer to. `evaluation_skipped`: why labels were not scored on held-out images (None when they were).
    """

    device: str | None = None
    preprocessing: dict[str, Any] = field(default_factory=dict)
    similarity_params: dict[str, Any] = field(default_factory=dict)
    concept_search: dict[str, Any] = field(default_factory=dict)
    view: tuple[int, int] | None = None
    evaluation_skipped: str | None = None


@dataclass(frozen=True)
class InputIdentities:
    """What the run's inputs were, by content: the probe set's and concept set's hashes (`ProbeSet.content_hash`,
    `ConceptSet.content_hash`), the concept set's name, the target's and encoder's identities, the class names the
    target's weights define, the library's version, and for a probe set sampled from a larger folder the folder's
    size (`sampled_from`) and the sample's seed."""

    probe_hash: str | None = None
    concept_hash: str | None = None
    concept_set_name: str | None = None
    target: str | None = None
    encoder: str | None = None
    class_names: tuple[str, ...] | None = None
    code_version: str | None = None
    sampled_from: int | None = None
    sample_seed: int | None = None


@dataclass(frozen=True)
class RunFacts:
    """What the run found: readable probe images and concepts counted, the unreadable images skipped, seconds per
    stage, where the target's weights came from (`weights_provenance`; None when a stored run did not say), and
    which executor ran it (`local`, or `ray` with its actors and nodes, e.g. `ray: 2 actors on 2 nodes`; None
    when a stored run did not say)."""

    n_images: int | None = None
    n_concepts: int | None = None
    skipped_images: tuple[str, ...] = ()
    timings_s: dict[str, float] = field(default_factory=dict)
    weights: str | None = None
    executor: str | None = None

    @property
    def checkpoint_sha256(self) -> str | None:
        """Return the sha256 hex digest of the file that held the weights, or None for named or random weights."""
        if self.weights is None or not self.weights.startswith(SHA256_PREFIX):
            return None
        return self.weights[len(SHA256_PREFIX) :]


@dataclass(frozen=True)
class RunRecord:
    """One run's record: `config` as asked, `resolved` as run, `identities` of its inputs, `facts` found."""

    config: DissectConfig
    resolved: ResolvedSettings = field(default_factory=ResolvedSettings)
    identities: InputIdentities = field(default_factory=InputIdentities)
    facts: RunFacts = field(default_factory=RunFacts)

    def to_json(self) -> dict[str, Any]:
        """Return the record as plain JSON: the config's settings with the `resolved`, `identities` and `facts`
        sections beside them."""
        resolved = asdict(self.resolved)
        resolved["preprocessing"] = _listed(self.resolved.preprocessing)
        view = self.resolved.view
        resolved["view"] = None if view is None else {"resize": view[0], "crop": view[1]}
        identities = asdict(self.identities)
        identities["class_names"] = None if self.identities.class_names is None else list(self.identities.class_names)
        facts = asdict(self.facts)
        facts["skipped_images"] = list(self.facts.skipped_images)
        return {**self.config.to_dict(), "resolved": resolved, "identities": identities, "facts": facts}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RunRecord:
        """Return the record of a run's stored JSON: `to_json`'s, or the flat settings older runs kept.

        Keys neither knows are ignored. In the flat settings the config and what the run resolved shared keys: the
        resolved preprocessing and similarity parameters are taken as the config's too (that reproduces the run),
        but the device is only ever the resolved one (a relabel on another worker picks its own).
        """
        data = data or {}
        if all(isinstance(data.get(section), Mapping) for section in SECTIONS):
            config = DissectConfig.from_dict(data, stored=True)
            return cls(
                config=config,
                resolved=_resolved(data["resolved"]),
                identities=_identities(data["identities"]),
                facts=_facts(data["facts"]),
            )
        return _from_flat_settings(data)


def weights_provenance(config: DissectConfig) -> str | None:
    """Return where the target's weights come from: `sha256:<hex>` of the checkpoint (or TorchScript file) holding
    them, `none@SEED` for a seeded random initialisation, else the weights' name (`DEFAULT`, an enum member); None
    when the config leaves them to the loader."""
    weights_file = config.checkpoint or (config.model if is_torchscript_name(config.model) else None)
    if weights_file:
        return SHA256_PREFIX + file_sha256(Path(weights_file).expanduser())
    if not config.weights:
        return None
    seed = random_init_seed(config.weights)
    return config.weights if seed is None else f"none@{seed}"


def _resolved(data: Mapping[str, Any]) -> ResolvedSettings:
    view = data.get("view")
    return ResolvedSettings(
        device=data.get("device"),
        preprocessing=_tupled(data.get("preprocessing") or {}),
        similarity_params=dict(data.get("similarity_params") or {}),
        concept_search=dict(data.get("concept_search") or {}),
        view=(int(view["resize"]), int(view["crop"])) if isinstance(view, Mapping) else None,
        evaluation_skipped=data.get("evaluation_skipped"),
    )


def _identities(data: Mapping[str, Any]) -> InputIdentities:
    class_names = data.get("class_names")
    return InputIdentities(
        **{spec.name: data.get(spec.name) for spec in fields(InputIdentities) if spec.name != "class_names"},
        class_names=tuple(str(name) for name in class_names) if isinstance(class_names, list | tuple) else None,
    )


def _facts(data: Mapping[str, Any]) -> RunFacts:
    return RunFacts(
        n_images=data.get("n_images"),
        n_concepts=data.get("n_concepts"),
        skipped_images=tuple(data.get("skipped_images") or ()),
        timings_s=dict(data.get("timings_s") or {}),
        weights=data.get("weights"),
        executor=data.get("executor"),
    )


def _from_flat_settings(data: Mapping[str, Any]) -> RunRecord:
    """Return the record of the flat settings runs stored before the record: one dict of the config, what the run
    resolved (under the config's own keys) and its inputs' identities, some facts under two names."""
    settings = {key: value for key, value in data.items() if key != "device"}  # the device it resolved, not asked
    if "pool" not in settings and "pooling" in data:
        settings["pool"] = data["pooling"]
    config = DissectConfig.from_dict(settings, stored=True)
    checkpoint_sha256 = data.get("checkpoint_sha256")
    has_weights_file = bool(config.checkpoint) or is_torchscript_name(config.model)
    if checkpoint_sha256:
        weights: str | None = SHA256_PREFIX + str(checkpoint_sha256)
    else:  # a weights file whose hash was not kept is not hashed now: it may have changed since
        weights = None if has_weights_file else weights_provenance(config)
    identities = {
        **data,
        "probe_hash": data.get("probe_set_hash") or data.get("probe_hash"),
        "concept_hash": data.get("concept_set_hash") or data.get("concepts_hash"),
        "target": data.get("target_identity"),
        "encoder": data.get("encoder_identity"),
    }
    return RunRecord(
        config=config,
        resolved=_resolved(data),
        identities=_identities(identities),
        facts=_facts({**data, "weights": weights}),
    )


def _listed(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return `values` with tuples as lists (as JSON has them)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}


def _tupled(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return `values` with lists as tuples (as the dataclasses hold them)."""
    return {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}

"""Seed a dashboard database with ORM rows, media files and concept-search artifacts, plus a fake encoder.

Image i points along direction i % DIMENSIONS; a neuron's top images mostly share its unit's direction,
and the fake encoder maps each word of DIRECTION_WORDS onto one direction, so "striped" ranks unit 3
(direction 3, no off-direction images) first in every layer.

An `evaluated` run also has evaluations and verdicts (`seeded_evaluation`): a label is significant when its r
reaches SIGNIFICANT_MIN_R and explains its neuron (the top grade, `reliable`) when its r reaches RELIABLE_MIN_R;
between the two it is weak, below both it is no label. Every tenth label (units 9, 19, ...) is the generic word
"photo". Its neurons have the label-free scores of their seeded top images.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import torch
from fastapi import FastAPI
from PIL import Image, ImageDraw
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session
from torch import nn

from app.core.config import Settings
from app.jobs.uploads.architectures import ArchitectureCatalog
from app.persistence.db import upgrade_database, write_session
from app.persistence.models import ConceptSet, Layer, Neuron, ProbeImage, ProbeSet, Run, TargetModel, TopImage
from app.persistence.store.artifacts import save_concepts, save_layer, save_run_tensors, save_settings
from app.persistence.store.layout import ArtifactsLayout
from app.web.main import create_app
from dissect_core.analysis.coverage import BLIND_SHARE, MIN_REFERENCE, Coverage
from dissect_core.analysis.label_free import LabelFreeScores, layer_label_free_scores
from dissect_core.evaluation.verdict import VerdictRules, grade_label
from dissect_core.neuron_rows import GRADE_FIELDS, neuron_fields
from dissect_core.results import EVALUATION_FIELDS, NeuronEvaluation, NeuronLabel, WeightedConcept

DIMENSIONS = 8
DIRECTION_WORDS = ("grass", "sky", "fur", "striped", "wheel", "dotted", "water", "brick")
N_IMAGES = DIMENSIONS * 12
TOP_K = 10
SOFTMAX_A = 10.0
N_RUNNERS_UP = 4
GRID_IMAGES = 5
#: An evaluated run's null (N_IMAGES images), the smallest significant r (one-sided p about 0.05), the smallest r
#: of the top grade and the folds of its stability.
NULL_SD = 1 / math.sqrt(N_IMAGES - 1)
SIGNIFICANT_MIN_R = 0.17
RELIABLE_MIN_R = 0.25
N_FOLDS = 5
#: TestClient's host and the loopback names the browser tests use.
TEST_HOSTS = ("testserver", "127.0.0.1", "localhost")


@dataclass(frozen=True)
class LayerSpec:
    """One layer to seed."""

    name: str
    kind: str
    n_units: int


DEFAULT_LAYERS = (LayerSpec("conv1", "conv", 64), LayerSpec("blocks.3", "vit", 2048), LayerSpec("fc", "linear", 10))


@dataclass
class SeededRun:
    """What `seed_run` stored."""

    run_id: int
    model_name: str
    layers: tuple[LayerSpec, ...]
    artifacts_dir: Path
    media_files: list[str] = field(default_factory=list)


def direction(index: int) -> torch.Tensor:
    """Return the unit vector of one of the DIMENSIONS directions."""
    vector = torch.zeros(DIMENSIONS)
    vector[index % DIMENSIONS] = 1.0
    return vector


def image_embeddings() -> torch.Tensor:
    """Return [N_IMAGES, DIMENSIONS] unit embeddings: image i along direction i % DIMENSIONS, slightly tilted."""
    generator = torch.Generator().manual_seed(0)
    rows = torch.stack([direction(i) for i in range(N_IMAGES)]) + 0.15 * torch.rand(
        N_IMAGES, DIMENSIONS, generator=generator
    )
    return torch.nn.functional.normalize(rows, dim=1)


def top_indices(n_units: int) -> torch.Tensor:
    """Return [n_units, TOP_K] image indices: unit k's top images share its direction, except the last
    min(k // DIMENSIONS, TOP_K // 2), which point the opposite way; so unit 3 fits "striped" best."""
    rows = []
    for unit in range(n_units):
        own = unit % DIMENSIONS
        off = min(TOP_K // 2, unit // DIMENSIONS)
        on_direction = [own + DIMENSIONS * j for j in range(TOP_K - off)]
        opposite = [(own + DIMENSIONS // 2) % DIMENSIONS + DIMENSIONS * j for j in range(off)]
        rows.append(on_direction + opposite)
    return torch.tensor(rows, dtype=torch.long)


class FakeEncoder:
    """Embeds DIRECTION_WORDS onto their directions and any other text onto a fixed pseudo-random vector."""

    identity = "fake-encoder"
    preprocess_identity = "fake"
    device = torch.device("cpu")

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def image_transform(self, image: Image.Image) -> torch.Tensor:
        """Unused by the dashboard."""
        raise NotImplementedError

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Unused by the dashboard."""
        raise NotImplementedError

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Return unit embeddings [T, DIMENSIONS] of the texts."""
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            if text in DIRECTION_WORDS:
                rows.append(direction(DIRECTION_WORDS.index(text)))
            else:
                seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
                rows.append(torch.rand(DIMENSIONS, generator=torch.Generator().manual_seed(seed)) - 0.5)
        return torch.nn.functional.normalize(torch.stack(rows), dim=1)


def fake_encoder_loader(encoder: FakeEncoder | None = None) -> Callable[[str, str], FakeEncoder]:
    """Return an encoder loader for `create_app` that always hands out the given (or a new) FakeEncoder."""
    shared = encoder or FakeEncoder()

    def load(_spec: str, _device: str) -> FakeEncoder:
        return shared

    return load


def _jpeg(color: tuple[int, int, int], size: int, stripe: int) -> bytes:
    image = Image.new("RGB", (size, size), color)
    draw = ImageDraw.Draw(image)
    for x in range(0, size, max(2, stripe)):
        draw.line([(x, 0), (x, size)], fill=tuple(channel // 2 for channel in color), width=1)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _put_media(media_dir: Path, data: bytes, suffix: str) -> str:
    digest = hashlib.sha256(data).hexdigest()
    relative = f"{digest[:2]}/{digest}{suffix}"
    path = media_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(data)
    return relative


def _image_media(media_dir: Path) -> list[tuple[str, str, str]]:
    """Return (view, crop, heatmap) media paths for every probe image."""
    palette = [(200, 80, 60), (70, 130, 200), (90, 170, 90), (210, 180, 60), (150, 90, 190), (60, 170, 170)]
    files = []
    for index in range(N_IMAGES):
        color = palette[index % len(palette)]
        stripe = 3 + index % 7
        view = _put_media(media_dir, _jpeg(color, 96, stripe), ".jpg")
        crop = _put_media(media_dir, _jpeg(color, 48, stripe), ".jpg")
        heatmap = _put_media(media_dir, _jpeg((255, 120 + index % 100, 0), 96, 50), ".jpg")
        files.append((view, crop, heatmap))
    return files


def write_artifacts(folder: Path, layers: Sequence[LayerSpec], settings: dict[str, object]) -> None:
    """Store, through the store's own writer, what concept search reads: image embeddings, log normalisers, top
    indices per layer, the concepts and the settings (no activations: tests that need them add them)."""
    layout = ArtifactsLayout(folder)
    embeddings = image_embeddings()
    vocabulary = torch.nn.functional.normalize(
        torch.rand(20, DIMENSIONS, generator=torch.Generator().manual_seed(1)) - 0.5, dim=1
    )
    normalisers = torch.logsumexp(SOFTMAX_A * embeddings @ vocabulary.T, dim=1)
    save_run_tensors(layout, image_embeddings=embeddings, log_normalisers=normalisers)
    for layer in layers:
        save_layer(layout, layer.name, top_indices=top_indices(layer.n_units))
    save_concepts(layout, DIRECTION_WORDS)
    save_settings(layout, settings)


def _score(layer_position: int, unit: int) -> float:
    # Deterministic and spread out, so sorting by score differs from sorting by unit.
    return round(0.2 + 1.8 * (0.5 + 0.5 * math.sin(unit * 1.7 + layer_position)), 4)


def seeded_r(layer_position: int, unit: int) -> float:
    """Return an evaluated neuron's explained_r: in [0.02, 0.62], in another order than the score's."""
    return round(0.02 + 0.6 * (0.5 + 0.5 * math.sin(unit * 0.9 + layer_position)), 4)


def seeded_label(unit: int, evaluated: bool) -> str:
    """Return a seeded neuron's label: its direction's word, or for an evaluated run every tenth one "photo"."""
    return "photo" if evaluated and unit % 10 == 9 else DIRECTION_WORDS[unit % DIMENSIONS]


def seeded_evaluation(layer_position: int, unit: int, kind: str) -> dict[str, object]:
    """Return an evaluated neuron's evaluation and verdict columns (significant when r >= SIGNIFICANT_MIN_R, the
    top grade when r >= RELIABLE_MIN_R, graded by the real rules with that floor; ground truth for fc)."""
    r = seeded_r(layer_position, unit)
    label = seeded_label(unit, True)
    evaluation = NeuronEvaluation(
        explained_r=r,
        p_value=0.5 * math.erfc(r / NULL_SD / math.sqrt(2)),
        significant=r >= SIGNIFICANT_MIN_R,
        stability=(4 if r >= RELIABLE_MIN_R else 2) / N_FOLDS,
        explanation=tuple(
            WeightedConcept(word, weight)
            for word, weight in zip(
                [label, *(DIRECTION_WORDS[(unit + step) % DIMENSIONS] for step in (1, 2))], (0.8, 0.3, 0.1), strict=True
            )
        ),
        explanation_r=round(min(0.95, r + 0.12), 4),
        ground_truth_r=round(r - 0.03, 4) if kind == "linear" else None,
    )
    n_carrying = N_IMAGES // DIMENSIONS
    coverage = Coverage(n_carrying, "encoder", True, False, f"{n_carrying} probe images carry '{label}'")
    # One floor, RELIABLE_MIN_R: the seed knows no ceiling, so the share of a ceiling plays no part.
    rules = VerdictRules(min_r=RELIABLE_MIN_R, min_ceiling_share=0.0)
    verdict = grade_label(evaluation, coverage, rules, n_folds=N_FOLDS, concept=label)
    row = neuron_fields(NeuronLabel(unit, label, 0.0, (), evaluation, coverage, verdict))
    return {name: row[name] for name in (*EVALUATION_FIELDS, *GRADE_FIELDS) if name not in LABEL_FREE_COLUMNS}


#: The label-free columns, which an evaluated run's neurons take from their seeded top images.
LABEL_FREE_COLUMNS = ("clarity", "polysemanticity", "redundancy")


def seeded_label_free(scores: LabelFreeScores, unit: int) -> dict[str, float]:
    """Return a neuron's label-free columns from its layer's scores (`layer_label_free_scores` of the seed)."""
    return {name: float(getattr(scores, name)[unit]) for name in LABEL_FREE_COLUMNS}


def seeded_layer_evaluation(layer_position: int, n_units: int) -> dict[str, object]:
    """Return an evaluated layer's evaluation (a LayerEvaluation as a dict) matching `seeded_evaluation`."""
    rs = [seeded_r(layer_position, unit) for unit in range(n_units)]
    significant = [r for r in rs if r >= SIGNIFICANT_MIN_R]
    return {
        "n_folds": N_FOLDS,
        "simulation": "cosine",
        "false_discovery_rate": 0.05,
        "n_images": N_IMAGES,
        "null_sd": NULL_SD,
        "reliable_min_r": min(significant) if significant else None,
        "share_reliable": len(significant) / n_units if n_units else 0.0,
    }


def _get_or_add(session: Session, row: object, model: type, **match: object) -> object:
    existing = session.scalars(select(model).filter_by(**match)).first()
    if existing is not None:
        return existing
    session.add(row)
    session.flush()
    return row


def seed_run(
    engine: Engine,
    settings: Settings,
    *,
    model_name: str = "tinynet",
    layers: Sequence[LayerSpec] = DEFAULT_LAYERS,
    created_at: datetime | None = None,
    similarity: str = "soft_wpmi",
    evaluated: bool = False,
) -> SeededRun:
    """Store one run of `model_name` with the given layers: rows, media files and artifacts; return it.

    `evaluated` gives every layer and neuron an evaluation; without it the run is as stored before evaluations.
    """
    media = _image_media(settings.media_dir)
    created = created_at or datetime.now(UTC)
    with write_session(engine) as session:
        model = _get_or_add(
            session, TargetModel(name=model_name, architecture=model_name), TargetModel, name=model_name
        )
        probe = _get_or_add(
            session,
            ProbeSet(name="seed-probe", content_hash="p" * 64, n_images=N_IMAGES),
            ProbeSet,
            content_hash="p" * 64,
        )
        concepts = _get_or_add(
            session,
            ConceptSet(name="seed-words", content_hash="c" * 64, n_concepts=len(DIRECTION_WORDS), file="words.txt"),
            ConceptSet,
            content_hash="c" * 64,
        )
        pinned = {
            "model": model_name,
            "layers": [layer.name for layer in layers],
            "probe": str(settings.data_dir / "probe"),
            "concepts": "seed-words",
            "encoder": "fake:encoder",
            "similarity": similarity,
            "similarity_params": {"top_k": TOP_K, "a": SOFTMAX_A},
            "pool": "avg",
            "weights": "none",
            "n_top_images": GRID_IMAGES,
            "code_version": "0.1.0",
        }
        run = Run(
            model_id=model.id,
            probe_set_id=probe.id,
            concept_set_id=concepts.id,
            settings=pinned,
            artifacts_dir="",
            created_at=created,
        )
        session.add(run)
        session.flush()
        artifacts = settings.artifacts_dir / f"seed-run-{run.id}"
        run.artifacts_dir = str(artifacts)
        write_artifacts(artifacts, layers, pinned)
        session.execute(
            insert(ProbeImage),
            [
                {
                    "run_id": run.id,
                    "index": index,
                    "content_hash": f"{index:064d}",
                    "source_path": f"probe/{index}.jpg",
                    "view_file": media[index][0],
                }
                for index in range(N_IMAGES)
            ],
        )
        for position, spec in enumerate(layers):
            _seed_layer(session, run.id, position, spec, media, evaluated)
        run_id = run.id
    return SeededRun(
        run_id=run_id,
        model_name=model_name,
        layers=tuple(layers),
        artifacts_dir=artifacts,
        media_files=[path for triple in media for path in triple],
    )


def _seed_layer(
    session: Session,
    run_id: int,
    position: int,
    spec: LayerSpec,
    media: list[tuple[str, str, str]],
    evaluated: bool = False,
) -> None:
    layer = Layer(run_id=run_id, name=spec.name, position=position, kind=spec.kind, n_units=spec.n_units)
    if evaluated:
        layer.evaluation = seeded_layer_evaluation(position, spec.n_units)
    session.add(layer)
    session.flush()
    neuron_rows = []
    scores = layer_label_free_scores(image_embeddings(), top_indices(spec.n_units)) if evaluated else None
    for unit in range(spec.n_units):
        word = seeded_label(unit, evaluated)
        score = _score(position, unit)
        runners_up = [
            {"concept": DIRECTION_WORDS[(unit + step) % DIMENSIONS] + f" {step}", "score": round(score - 0.1 * step, 4)}
            for step in range(1, N_RUNNERS_UP + 1)
        ]
        neuron_rows.append(
            {
                "layer_id": layer.id,
                "unit": unit,
                "label": word,
                "score": score,
                "runners_up": runners_up,
                **(seeded_evaluation(position, unit, spec.kind) if evaluated else {}),
                **(seeded_label_free(scores, unit) if scores is not None else {}),
            }
        )
    session.execute(insert(Neuron), neuron_rows)
    ids = dict(session.execute(select(Neuron.unit, Neuron.id).where(Neuron.layer_id == layer.id)).tuples().all())
    indices = top_indices(spec.n_units)
    top_rows = []
    for unit in range(spec.n_units):
        for rank in range(GRID_IMAGES):
            image = int(indices[unit, rank])
            x0, y0 = (rank * 0.13) % 0.5, (unit % 5) * 0.1
            top_rows.append(
                {
                    "neuron_id": ids[unit],
                    "rank": rank,
                    "image_index": image,
                    "image_hash": f"{image:064d}",
                    "activation": round(10.0 - rank - unit * 0.001, 4),
                    "box_x0": x0,
                    "box_y0": y0,
                    "box_x1": x0 + 0.4,
                    "box_y1": y0 + 0.45,
                    "crop_file": media[image][1],
                    "view_file": media[image][0],
                    "heatmap_file": media[image][2] if spec.kind != "linear" else None,
                }
            )
    session.execute(insert(TopImage), top_rows)


def add_coverage_artifacts(seeded: SeededRun, blind_below: float = 0.35) -> None:
    """Store a run's carry bars (0.7 for every image: 12 images carry each direction word) and reference spreads
    that draw the encoder-blind line at spread `blind_below`: the fake encoder's "purple" (spread 0.20, close to
    every image alike) falls under it, "theatre curtain" (0.53, carried by no image) and the direction words (0.90)
    stay over it."""
    save_run_tensors(
        ArtifactsLayout(seeded.artifacts_dir),
        carry_cosines=torch.full((N_IMAGES,), 0.7),
        reference_spreads=torch.full((MIN_REFERENCE,), blind_below / BLIND_SHARE),
    )


def prepare_database(data_dir: Path) -> tuple[Settings, Engine]:
    """Return settings for a fresh data folder with a migrated SQLite database, and an engine on it."""
    from app.persistence.db import create_db_engine

    # No background preloading of concept search: tests that want it turn it on (tests/integration/test_preload.py).
    settings = Settings.for_data_dir(data_dir, allowed_hosts=TEST_HOSTS, preload_runs=0)
    settings.ensure_dirs()
    upgrade_database(settings)
    return settings, create_db_engine(settings.database_url)


def seed_two_runs(engine: Engine, settings: Settings) -> tuple[SeededRun, SeededRun]:
    """Seed an older and a newer run of the same model (for the latest-run redirect); return both."""
    older = seed_run(
        engine,
        settings,
        layers=(LayerSpec("conv1", "conv", 64), LayerSpec("fc", "linear", 10)),
        created_at=datetime.now(UTC) - timedelta(days=1),
    )
    newer = seed_run(engine, settings)
    return older, newer


class TinyNet(nn.Module):
    """A two-layer network standing in for an uploadable architecture."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, 3)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Return class logits."""
        return self.fc(self.pool(self.conv(pixels)).flatten(1))


def tiny_catalog() -> ArchitectureCatalog:
    """Return an architecture catalog offering only `tinynet` (TinyNet), so uploads need no torchvision model."""
    return ArchitectureCatalog(names=["tinynet"], build=lambda _name: TinyNet())


@dataclass
class Dashboard:
    """A seeded data folder and what tests need to drive an app on it."""

    settings: Settings
    engine: Engine
    older: SeededRun
    newer: SeededRun
    encoder: FakeEncoder
    #: An API token of the seeded admin (the seeded runs, stored without an owner, are theirs to change).
    admin_token: str

    @property
    def admin_headers(self) -> dict[str, str]:
        """Return the headers authenticating a client as the seeded admin."""
        return {"Authorization": f"Bearer {self.admin_token}"}

    def app(self) -> FastAPI:
        """Return a new app on the seeded data, with the fake encoder and the tiny catalog."""
        return create_app(self.settings, encoder_loader=fake_encoder_loader(self.encoder), catalog=tiny_catalog())


def add_account(engine: Engine, name: str, role: str, password: str | None = None) -> str:
    """Add a user and return a fresh API token of theirs."""
    from app.auth.tokens import create_api_token
    from app.auth.users import add_user

    with write_session(engine) as session:
        return create_api_token(session, add_user(session, name, role, password))[1]


def build_dashboard(data_dir: Path) -> Dashboard:
    """Return a migrated database in `data_dir` seeded with two runs of `tinynet` (the newer one has 2,048 units)."""
    settings, engine = prepare_database(data_dir)
    (settings.data_dir / "probe").mkdir(exist_ok=True)  # the runs' probe folder, so relabel jobs validate
    older, newer = seed_two_runs(engine, settings)
    admin_token = add_account(engine, "admin", "admin")
    return Dashboard(
        settings=settings, engine=engine, older=older, newer=newer, encoder=FakeEncoder(), admin_token=admin_token
    )

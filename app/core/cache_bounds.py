"""Every in-memory cache of the app and its bound, in one table; `create_app` builds each cache from it.

Each LRU (app.core.lru) is owned by one object per app, never a module global, and is bounded by a count and, where
values can be large, by bytes (or top images) as well; the newest value always stays. The fields of `CacheBounds`
below are the table, grouped by owner (its name on app.state in brackets). Held without a bound of their own:
rendered grid cards (app.web.views.cards.CardMemo) and layer comparisons (app.read.runs.compare), weakly keyed by the
layer indexes the read cache holds, so they go when it drops those; and `default_encoders`
(app.jobs.catalogue.sets) and `_library_architectures` (app.jobs.uploads.model_names), one value each per process.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.core.config import Settings

GIB = 1024**3


@dataclass(frozen=True)
class CacheBounds:
    """The bound of each in-memory cache, by owner."""

    # ReadCache [read_cache]: run details, and run overviews (`runs` each); layer facts; layer indexes (every neuron
    # of a layer: a few MB per 2,048-neuron layer), also weighed by top images held (about 1 KB each).
    runs: int = 64
    layer_facts: int = 512
    layer_indexes: int = 8
    index_top_images: int = 400_000
    # ArtifactsReader [artifacts_reader]: scoring artifacts (embeddings, normalisers, vocabulary), carry bars, model
    # outputs, connections, weight findings and label-free baselines (`artifact_runs` each); top image indices per
    # layer; float16 activation rows, one copy per layer per server.
    artifact_runs: int = 4
    top_indices_layers: int = 32
    activation_layers: int = 64
    activation_bytes: int = 2 * GIB
    # ConceptSearcher [concept_searcher]: text encoders; text embeddings; sets of texts embedded whole (a run's
    # labels, for the search box's near concepts: a few MB for 2,000 labels).
    encoders: int = 2
    text_embeddings: int = 2048
    text_sets: int = 8
    # NeuronDistributions [neuron_distributions]: standardised layers (a 4,000-unit layer over 50,000 images holds
    # 400 MB of float16 activations and a 64 MB sketch), and per layer its evidence, its similar-unit tables and
    # its labels (`standardised_layers` each); runs' artifacts folders; runs' probe-image view URLs.
    standardised_layers: int = 64
    standardised_bytes: int = GIB
    run_folders: int = 256
    view_url_runs: int = 16
    # ImageViews [image_views]: ranked layers (a standardiser and the units' labels).
    ranked_layers: int = 32
    ranked_bytes: int = GIB
    # ResponseCache [response_cache]: rendered bodies of immutable answers; their bytes are a deployment setting.
    response_bodies: int = 4096
    response_bytes: int = Settings.response_cache_bytes
    # ArchitectureCatalog [catalog]: architectures' layer lists and state-dict checks.
    architectures: int = 256
    # app.read.classes.names.comparable (process-wide): class names and labels as compared.
    compared_names: int = 8192

    @classmethod
    def from_settings(cls, settings: Settings) -> CacheBounds:
        """Return the bounds with the ones a deployment sets (the response cache's bytes) taken from `settings`."""
        return replace(cls(), response_bytes=settings.response_cache_bytes)

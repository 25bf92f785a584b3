"""`neuron-atlas demo`: dissect EfficientNet-Lite0 over real photographs offline, store the run, serve it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from app.jobs.uploads.defaults import DEMO_PROBE_SET
from dissect_core.progress import StageBars

if TYPE_CHECKING:
    from app.core.config import Settings

DEMO_MODEL = "efficientnet_lite0"
#: The stem, blocks from early to late, the head and the final classifier: 2,608 neurons.
DEMO_LAYERS = ("conv_stem", "blocks.1", "blocks.3", "blocks.5", "conv_head", "classifier")


def offer_demo_probe(settings: Settings, folder: Path) -> None:
    """Catalogue the demo's photographs as the built-in probe set `demo-photos` (brought up to date if there)."""
    from app.jobs.catalogue.sets import register_probe_folder
    from app.persistence.db import create_db_engine, upgrade_database, write_session
    from app.persistence.models import CatalogKind

    upgrade_database(settings)
    engine = create_db_engine(settings.database_url)
    try:
        with write_session(engine) as session:
            register_probe_folder(session, settings, DEMO_PROBE_SET, folder, kind=CatalogKind.BUILTIN)
    finally:
        engine.dispose()


def run(args: argparse.Namespace) -> int:
    """Build the demo probe set, dissect, store the run, print where the results are, then serve them."""
    from app.cli.demo_images import build_demo_probe
    from app.core.config import Settings
    from app.jobs.dissections import execute_dissection, validate_config
    from dissect_core.config import DissectConfig
    from dissect_core.saved import write_result_files

    settings = Settings.from_env()
    settings.ensure_dirs()
    probe = build_demo_probe(settings.data_dir / "demo-probe")
    offer_demo_probe(settings, probe)
    config = validate_config(
        DissectConfig(
            model=DEMO_MODEL,
            layers=tuple(args.layers.split(",")) if args.layers else DEMO_LAYERS,
            probe=str(probe),
            concepts=args.concepts,
            encoder=args.clip,
            max_images=args.max_images,
        )
    )
    print(f"neuron-atlas demo: dissecting {DEMO_MODEL} ({', '.join(config.layers)}) over {probe}")
    print(f"  encoder {config.encoder}, concepts {config.concepts}")
    bars = StageBars(disable=args.quiet)
    try:
        stored = execute_dissection(settings, config, progress=bars)
        run_id, result = stored.run_id, stored.result
    finally:
        bars.close()
    out = settings.data_dir / "demo-results"
    write_result_files(result, out, run_id)
    n_neurons = sum(layer.n_units for layer in result.layers)
    stages = ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in result.record.facts.timings_s.items())
    print(f"labelled {n_neurons} neurons over {len(result.image_ids)} images ({stages})")
    for layer in result.layers:
        best = sorted(layer.neurons, key=lambda neuron: -neuron.score)[:4]
        examples = ", ".join(f"#{neuron.unit} {neuron.label}" for neuron in best)
        print(f"  {layer.name:<12} {layer.n_units:>5} neurons; most confident: {examples}")
    print(f"results: {out}/results.csv, {out}/results.json; stored as run {run_id} in {settings.database_url}")
    if args.no_serve:
        print("browse them with: .venv/bin/neuron-atlas serve")
        return 0
    import uvicorn

    from app.cli.commands.serve import print_access, serving_settings
    from app.web.main import create_app

    page = f"/runs/{run_id}/layers/{result.layers[-1].name}"
    settings, link = serving_settings(args.host, args.port, page)
    print(f"dashboard: http://{args.host}:{args.port}{page}  (Ctrl-C stops)")
    print_access(settings, link)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register `neuron-atlas demo`."""
    from dissect_core.config import DEFAULT_OFFLINE_ENCODER, DissectConfig

    parser = subparsers.add_parser(
        "demo",
        help="offline demo: dissect EfficientNet-Lite0 over real photos, store the run, serve the dashboard",
        description=(
            "Dissects EfficientNet-Lite0 (stem, blocks, head, classifier) over ~340 real photographs (Tux Paint "
            "stamps on varied backgrounds, plus scikit-image's photos) with the 20k-word concept set. Offline the "
            "image–text model is ConSE over EfficientNet-Lite2 + MiniLM (it knows only the 1,000 ImageNet classes; "
            "never dissect a network with an encoder built on itself). Pass --clip ViT-B-16:openai for the "
            "paper's setting when online."
        ),
    )
    parser.add_argument("--clip", "--encoder", dest="clip", default=DEFAULT_OFFLINE_ENCODER)
    parser.add_argument("--concepts", default=DissectConfig.defaults()["concepts"])
    parser.add_argument("--layers", help=f"comma-separated layers (default: {','.join(DEMO_LAYERS)})")
    parser.add_argument("--max-images", type=int, help="use a seeded sample of N demo images spread over their folders")
    parser.add_argument("--no-serve", action="store_true", help="exit after storing instead of serving the dashboard")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)

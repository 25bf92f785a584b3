"""`neuron-atlas interventions sweep RUN --layer L [--units 1,2,5-9]`: zero each unit of a stored run's layer in
turn over its probe images (at most 2,000) and store each one's label–effect agreement (app.jobs.interventions);
the layer's units are swept at most 2,048 at a time. Nothing heavy is imported until the command runs."""

from __future__ import annotations

import argparse


def sweep(args: argparse.Namespace) -> int:
    """Sweep the layer, store the results and print each unit's agreement and the cost per unit."""
    from app.core.config import Settings
    from app.jobs.interventions import parse_units
    from app.jobs.interventions import sweep as sweep_units
    from app.persistence.db import create_db_engine, upgrade_database
    from dissect_core.progress import StageBars

    settings = Settings.from_env()
    units = parse_units(args.units) if args.units else None
    upgrade_database(settings)
    engine = create_db_engine(settings.database_url)
    bars = StageBars(disable=args.quiet)
    try:
        swept = sweep_units(engine, settings, args.run, args.layer, units, progress=bars)
    finally:
        bars.close()
        engine.dispose()
    print(f"run {args.run} · {args.layer}: {len(swept)} unit(s) swept (zeroed one at a time)")
    print(f"{'unit':>6}  {'z':>7}  {'p':>7}  {'cosine':>7}  {'changed':>7}  label")
    for unit in sorted(swept, key=lambda swept_unit: -swept_unit.result.agreement.z):
        agreement = unit.result.agreement
        print(
            f"{unit.unit:>6}  {agreement.z:>7.2f}  {agreement.p_value:>7.3f}  {agreement.cosine:>7.3f}  "
            f"{unit.result.predictions_changed:>7.1%}  {unit.label}"
        )
    seconds = swept[0].result.seconds if swept else 0.0
    print(f"cost: {seconds:.3f} s per unit, {seconds * len(swept):.1f} s in all")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register `neuron-atlas interventions` and its `sweep` subcommand."""
    parser = subparsers.add_parser("interventions", help="test labels by intervening on a stored run's units")
    commands = parser.add_subparsers(dest="intervention_command", required=True, metavar="COMMAND")
    sweeping = commands.add_parser(
        "sweep",
        help="zero each unit of a layer in turn and store its label–effect agreement (the layer page sorts by it)",
    )
    sweeping.add_argument("run", type=int, help="the run's number (as in /runs/N)")
    sweeping.add_argument("--layer", required=True, help="the dissected layer to sweep, e.g. conv_head")
    sweeping.add_argument(
        "--units", help="the units to sweep, e.g. 1,2,5-9 (default: every unit of the layer; at most 2,048)"
    )
    sweeping.add_argument("--quiet", action="store_true", help="no progress bars")
    sweeping.set_defaults(func=sweep)

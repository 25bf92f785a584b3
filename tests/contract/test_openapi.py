"""Every operation of /openapi.json, fuzzed by schemathesis against a seeded app with an admin's bearer token, with
every check on: no server errors, documented status codes, content types, headers and bodies, bad input refused.

Schemathesis's own pytest loader (`schemathesis.pytest.from_fixture`) does not run under pytest 9, so the test
drives its engine (what `schemathesis run` uses) over ASGI and fails with every failure it found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from schemathesis import engine
from schemathesis.engine import Status, events

from tests.support.dashboard_seed import Dashboard, build_dashboard

#: Examples per operation and phase: enough to reach each parameter's bounds, few enough for about a minute in all.
MAX_EXAMPLES = 20
#: The phases run (stateful needs links between operations, which the schema does not declare).
PHASES = ("examples", "coverage", "fuzzing")
#: The operations whose schema-valid requests may still be refused with 400 or 422, and why: a schema cannot say
#: what makes a file usable (a checkpoint that loads into the architecture, an archive of images or of a saved
#: run, UTF-8 lines), nor that a relabel needs concepts kept for the run first, nor which layers and units a run
#: has (an intervention, a sweep), nor that an uploaded file is a whole image, nor which architectures the server
#: builds. Only `positive_data_acceptance` learns of this.
CONTENT_CHECKED = (
    r"^/api/v1/(uploads|probe-sets|concept-sets|runs|runs/\{run_id\}/(relabel|interventions|sweeps|images)"
    r"|architectures/\{architecture\}/layers)$"
)
#: The operations taking typed text (a run's name and notes, typed concepts), which refuse what the text rule does
#: (app.core.text: control, format, unassigned characters...) with 422: a schema pattern cannot name Unicode
#: categories, so a schema-valid string may hold them.
TEXT_CHECKED = (
    r"^/api/v1/runs/\{run_id\}"
    r"(/typed-concepts|/concepts|/layers/\{layer\}/concepts|/layers/\{layer\}/neurons/\{unit\}/concept(-evidence)?)?$"
)


@pytest.fixture(scope="module")
def contract_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """The seeded dashboard the contract is checked against."""
    from app.jobs.catalogue.sets import default_encoders

    # Listed once per process on first use, after importing open_clip: seconds, and over schemathesis's 10 s
    # request timeout on a loaded machine. The contract is about answers, not a cold start's import.
    default_encoders()
    seeded = build_dashboard(tmp_path_factory.mktemp("contract") / "data")
    yield seeded
    seeded.engine.dispose()


def contract_config(dashboard: Dashboard) -> schemathesis.Config:
    """Return a run of every check and phase, a few examples each, as the seeded admin on an allowed host."""
    return schemathesis.Config.from_dict(
        {
            "seed": 11,
            # No cache of earlier findings: every run is the same seeded run, and nothing is written into the repo.
            "cache": {"enabled": False},
            "checks": {"enabled": True},
            "generation": {"max-examples": MAX_EXAMPLES},
            "phases": {name: {"enabled": name in PHASES} for name in (*PHASES, "stateful")},
            "headers": dashboard.admin_headers,
            "operations": [
                {
                    "include-path-regex": CONTENT_CHECKED,
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "422"]}
                    },
                },
                {
                    "include-path-regex": TEXT_CHECKED,
                    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "422"]}},
                },
            ],
        }
    )


def test_every_operation_keeps_its_contract(contract_dashboard: Dashboard) -> None:
    """Every generated request gets an answer the schema documents, passing every check."""
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", contract_dashboard.app(), config=contract_config(contract_dashboard)
    )
    cases = 0
    checks: Counter[str] = Counter()
    by_check: Counter[str] = Counter()
    failures: dict[str, str] = {}
    errors: list[str] = []
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            cases += len(event.recorder.cases)
            for nodes in event.recorder.checks.values():
                for node in nodes:
                    checks[node.status] += 1
                    by_check[node.name] += 1
                    if node.failure_info is not None:
                        failure = node.failure_info.failure
                        failures.setdefault(f"{event.label}: {failure.title}", node.failure_info.code_sample)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(str(getattr(event, "info", event)))
    print(
        f"\nschemathesis: {cases} cases, {sum(checks.values())} checks ({checks[Status.SUCCESS]} passed, "
        f"{checks[Status.FAILURE]} failed), {len(failures)} distinct failures, {len(errors)} errors"
    )
    print("checks run:", ", ".join(f"{name} {count}" for name, count in sorted(by_check.items())))
    for title, sample in failures.items():
        print(f"- {title}\n  {sample}")
    assert not errors, errors
    assert not failures, "\n".join(failures)
    # Without a declared scheme, ignored_auth and missing_required_header run but have no token to take away.
    assert schema.raw_schema["components"]["securitySchemes"], "the schema declares no API token"

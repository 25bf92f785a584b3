#!/usr/bin/env bash
# Run the checks and the whole test suite: ruff (lint and format), mypy, then unit, integration (SQLite and a
# throwaway PostgreSQL) and headless-browser tests with a coverage report. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/python ]] || bash scripts/install.sh

pg_dir=""
if [[ -z "${NEURON_ATLAS_TEST_POSTGRES_URL:-}" ]]; then
    if url="$(bash scripts/start_postgres.sh 2>/tmp/neuron-atlas-pg.log)"; then
        export NEURON_ATLAS_TEST_POSTGRES_URL="$url"
        pg_dir="$(grep -o '/tmp/atlas-pg\.[A-Za-z0-9]*' /tmp/neuron-atlas-pg.log | head -n 1)"
    else
        echo "test: PostgreSQL could not be started (see /tmp/neuron-atlas-pg.log); its tests will skip" >&2
    fi
fi
cleanup() { [[ -n "$pg_dir" && -x "$pg_dir/stop" ]] && "$pg_dir/stop" || true; }
trap cleanup EXIT

bash scripts/lint.sh
.venv/bin/python -m pytest --cov=app --cov=dissect_core --cov-report=term:skip-covered "$@"

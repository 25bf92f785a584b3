#!/usr/bin/env bash
# Run the whole test suite: unit, integration (SQLite and a throwaway PostgreSQL) and headless-browser tests.
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

.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Static checks: ruff's lint rules, ruff's formatting (checked, not applied) and mypy over app/ and dissect_core/.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

#!/usr/bin/env bash
# Set up .venv with test dependencies, lint (ruff), type-check src (mypy), then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy src
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Set up .venv with test dependencies, build the real Kubernetes binaries into their cache (a no-op when built;
# tests/master/test_real_master.py runs against them), lint (ruff), type-check src (mypy), then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
bash scripts/kube-binaries.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy src
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Set up .venv and run kubemark's main job on the embedded default: `kubemark run` starts a master on etcd
# and 10 hollow nodes, runs the density test (30 pods per node), judges the SLOs and writes the report to
# ./kubemark-runs/<test>-<time>/ (report.html, summary.json, PerfData, junit.xml). Extra arguments go to
# `kubemark run`, e.g. `bash scripts/quickstart.sh --nodes 100`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/kubemark run "$@"

#!/usr/bin/env bash
# Set up .venv and run kubemark's main job on the embedded default control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/kubemark --version
exec .venv/bin/kubemark --help

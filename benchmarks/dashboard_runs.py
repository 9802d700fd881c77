"""How fast `kubemark dashboard` renders the runs table of a directory of 500 runs.

Target (issue 18): opening a directory of 500 runs renders the runs table in under 1 s.

Writes N run directories into a temp dir with kubemark's own writers (`write_run_dir`, `write_summaries`,
`write_junit`: summary.json, the sample CSVs, PerfData, junit.xml), a few clusterloader2-shaped directories
(summary files only) and a few broken ones (summary.json cut short); then serves them on 127.0.0.1 and times
`GET /` cold (a new server: every summary.json parsed) and warm (the per-directory cache hit), and, when
/usr/bin/chromium is there, the page load in headless Chromium (navigation start to load event). The trend
page (every run's PerfData read) is timed too.

    .venv/bin/python benchmarks/dashboard_runs.py [--runs 500] [--repeat 5] [--no-browser]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from kubemark import codec
from kubemark.measure.results import ApiCall, PodTimeline, StepResult, UsageSample
from kubemark.measure.slo import SLOThresholds, check_api_latency, check_pod_startup
from kubemark.report.dashboard import DashboardServer
from kubemark.report.junit import write_junit
from kubemark.report.model import RunResult, write_run_dir
from kubemark.report.perfdata import write_summaries

CHROMIUM = Path("/usr/bin/chromium")
T0 = 1_767_571_200.0


def synthetic_run(i: int, rng: random.Random) -> RunResult:
    start = T0 + i * 3600.0
    test, nodes = ("density", 100) if i % 5 else ("load", 100 if i % 2 else 50)
    slow = rng.uniform(0.9, 1.2)
    pods = []
    for p in range(60):
        created = start + p * 0.1
        scheduled = created + rng.uniform(0.01, 0.05) * slow
        running = scheduled + rng.uniform(0.2, 0.8) * slow
        pods.append(PodTimeline(f"pod-{p}", created, scheduled, running, running + 0.02, "PodStartupLatency"))
    calls = [
        ApiCall(start + c, verb, res, "", scope, 200, rng.uniform(0.005, 0.05) * slow)
        for c in range(30)
        for verb, res, scope in (("POST", "pods", "namespace"), ("LIST", "pods", "namespace"))
    ]
    result = RunResult(
        test=test,
        start=start,
        end=start + 95.0 * slow,
        parameters={"nodes": nodes, "test": test, "cluster": "embedded (etcd)", "git": f"{i:07x}"},
        steps=[StepResult("Create pods", start, start + 60)],
        pods=pods,
        api_calls=calls,
        throughput=[(start + 5 * k, rng.uniform(30, 40)) for k in range(6)],
        usage=[UsageSample(start + 5 * k, "apiserver", rng.uniform(0.2, 0.4), 2e8) for k in range(6)],
    )
    thresholds = SLOThresholds()
    result.verdicts = [
        check_pod_startup([p.watched - p.created for p in pods if p.watched and p.created], thresholds),
        *check_api_latency(result.api_samples(), thresholds),
    ]
    return result


def write_runs(root: Path, n: int) -> dict[str, int]:
    rng = random.Random(1)
    kinds = {"kubemark": 0, "clusterloader2": 0, "broken": 0}
    for i in range(n):
        result = synthetic_run(i, rng)
        d = root / f"{result.test}-{datetime.fromtimestamp(result.start, UTC):%Y%m%dT%H%M%SZ}"
        if i % 50 == 7:  # clusterloader2-shaped: summary files only
            write_summaries(result, d)
            kinds["clusterloader2"] += 1
            continue
        write_run_dir(result, d)
        write_summaries(result, d)
        write_junit(result, d / "junit.xml")
        if i % 50 == 13:  # killed while writing summary.json
            data = (d / "summary.json").read_bytes()
            (d / "summary.json").write_bytes(data[: len(data) // 3])
            kinds["broken"] += 1
        else:
            kinds["kubemark"] += 1
    return kinds


async def timed_get(session: aiohttp.ClientSession, url: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    async with session.get(url) as response:
        body = await response.read()
        assert response.status == 200, response.status
    return (time.perf_counter() - t0) * 1000.0, len(body)


async def browser_load_ms(url: str, repeat: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        loads = []
        for _ in range(repeat):
            await page.goto(url, wait_until="load")
            timing = await page.evaluate(
                "() => { const t = performance.getEntriesByType('navigation')[0];"
                " return [t.responseEnd - t.startTime, t.domContentLoadedEventEnd - t.startTime,"
                " t.loadEventEnd - t.startTime]; }"
            )
            rows = await page.locator("#runs tr.run").count()
            loads.append({"response_ms": timing[0], "dom_ready_ms": timing[1], "load_ms": timing[2], "rows": rows})
        await browser.close()
    return {
        "first": loads[0],
        "median_load_ms": statistics.median(x["load_ms"] for x in loads),
        "rows": loads[-1]["rows"],
    }


async def measure(root: Path, repeat: int, browser: str) -> dict[str, Any]:
    """`browser`: "yes", "no" or "missing" (asked for, but there is no Chromium)."""
    out: dict[str, Any] = {}
    server = DashboardServer([root])
    url = await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            cold, size = await timed_get(session, url + "/")
            warm = [(await timed_get(session, url + "/"))[0] for _ in range(repeat)]
            filtered = [(await timed_get(session, url + "/?test=load&sort=wall"))[0] for _ in range(repeat)]
            trend_cold, _ = await timed_get(session, url + "/trend")
            trend_warm = [(await timed_get(session, url + "/trend"))[0] for _ in range(repeat)]
        out["server"] = {
            "runs_table_cold_ms": round(cold, 1),
            "runs_table_warm_ms_median": round(statistics.median(warm), 1),
            "runs_table_filtered_sorted_ms_median": round(statistics.median(filtered), 1),
            "runs_table_html_bytes": size,
            "trend_cold_ms": round(trend_cold, 1),
            "trend_warm_ms_median": round(statistics.median(trend_warm), 1),
        }
        if browser == "yes":
            fresh = DashboardServer([root])  # a cold cache for the browser's first load too
            fresh_url = await fresh.start()
            try:
                out["browser"] = await browser_load_ms(fresh_url + "/", repeat)
            finally:
                await fresh.stop()
        elif browser == "missing":
            out["browser"] = {"skipped": f"no {CHROMIUM}"}
    finally:
        await server.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Runs-table render time of kubemark dashboard")
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "kubemark-runs"
        root.mkdir()
        t0 = time.perf_counter()
        kinds = write_runs(root, args.runs)
        written = time.perf_counter() - t0
        browser = "no" if args.no_browser else "yes" if CHROMIUM.is_file() else "missing"
        result = asyncio.run(measure(root, args.repeat, browser))
    report = {"benchmark": "dashboard_runs", "runs": args.runs, "kinds": kinds, "write_s": round(written, 1), **result}
    sys.stdout.write(codec.dumps_pretty(report).decode() + "\n")
    s = result["server"]
    line = (
        f"dashboard_runs: {args.runs} runs, runs table {s['runs_table_cold_ms']:.0f} ms cold / "
        f"{s['runs_table_warm_ms_median']:.0f} ms warm server-side"
    )
    b = result.get("browser", {})
    if "first" in b:
        line += f", {b['first']['load_ms']:.0f} ms cold / {b['median_load_ms']:.0f} ms to load in Chromium"
    line += (
        f" (target < 1000 ms); trend page {s['trend_cold_ms']:.0f} ms cold / {s['trend_warm_ms_median']:.0f} ms warm"
    )
    print(line)


if __name__ == "__main__":
    main()

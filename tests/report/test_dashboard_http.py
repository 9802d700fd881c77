"""The dashboard over HTTP (no browser): pages render, files are served read-only and never from outside a run
directory, the JSON API answers. The server listens on 127.0.0.1, port 0, in the test's event loop."""

from __future__ import annotations

import asyncio
import html
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from tests.report.dashboard.fixtures import FixtureRun, make_runs_dir, write_fixture_run

from kubemark import codec
from kubemark.report.dashboard import DashboardServer


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_runs_dir(tmp_path_factory.mktemp("dashboard") / "runs")


@pytest.fixture
async def url(runs_dir: Path) -> AsyncIterator[str]:
    server = DashboardServer([runs_dir], host="127.0.0.1", port=0)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


async def raw_get(url: str, target: str) -> tuple[int, bytes]:
    """GET `target` exactly as written (no client-side normalisation of `..` or %-escapes)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def get(url: str, path: str) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(url + path) as response:
        return response.status, await response.text(), dict(response.headers)


async def test_pages_render(url: str) -> None:
    status, text, headers = await get(url, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "density-05" in text and "cl2-density" in text and "summary.json: invalid JSON" in text
    assert "script-src 'unsafe-inline'" in headers["Content-Security-Policy"]
    status, text, _ = await get(url, "/trend")
    assert status == 200 and text.count('<circle class="point') == 5
    status, text, _ = await get(url, "/compare?a=0/density-04&b=0/density-05")
    assert status == 200 and 'class="delta regression"' in text
    status, text, _ = await get(url, "/compare")  # default: newest run against the one before it of its group
    assert status == 200 and "density-05" in text and "density-04" in text
    status, text, _ = await get(url, "/run/0/cl2-density")
    assert status == 200 and "PodStartupLatency_PodStartupLatency_density" in text
    status, text, _ = await get(url, "/run/0/corrupt-run")
    assert status == 200 and "Broken run" in text


async def test_report_html_is_served_without_scripts(url: str, runs_dir: Path) -> None:
    status, text, headers = await get(url, "/run/0/density-01/report.html")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert text == (runs_dir / "density-01" / "report.html").read_text()
    assert "sandbox" in headers["Content-Security-Policy"] and "script-src" not in headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "target",
    [
        "/run/0/density-01/../density-02/report.html",
        "/run/0/density-01/../../../../../../etc/passwd",
        "/run/0/density-01/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/run/0/density-01/..%2f..%2f..%2fetc%2fpasswd",
        "/run/0/density-01//etc/passwd",
        "/run/0/density-01/%2Fetc%2Fpasswd",
        "/run/0/..%2f..%2f..%2fetc/passwd",
        "/run/0/%2e%2e/report.html",
        "/run/1/density-01/report.html",
        "/run/0/density-01/leak.txt",
        "/run/0/escape/secret.txt",
    ],
)
async def test_no_path_leads_out_of_a_run(url: str, runs_dir: Path, tmp_path: Path, target: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, runs_dir / "density-01" / "leak.txt")
    os.symlink(tmp_path, runs_dir / "escape")
    try:
        status, body = await raw_get(url, target)
    finally:
        (runs_dir / "density-01" / "leak.txt").unlink()
        (runs_dir / "escape").unlink()
    assert status in (400, 404), (status, body[:200])
    assert b"top secret" not in body and b"root:" not in body


async def test_read_only(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            async with session.request(method, url + "/run/0/density-01/report.html") as response:
                assert response.status == 405


async def test_json_api(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/api/runs", params={"status": "broken"}) as response:
            runs = codec.loads(await response.read())["runs"]
        assert {r["name"]: r["error"][:20] for r in runs} == {
            "corrupt-run": "summary.json: invali",
            "half-written": "half-written: sample",
        }
        async with session.get(url + "/api/trend", params={"mix": "1"}) as response:
            trend = codec.loads(await response.read())
        assert trend["metric"] == "pod_startup/PodStartupLatency/pod_startup/p99" and len(trend["points"]) == 8
        params = {"a": "0/density-04", "b": "0/density-05", "threshold": "10"}
        async with session.get(url + "/api/compare", params=params) as response:
            cmp = codec.loads(await response.read())
        assert "pod_startup/pod_startup/p99" in cmp["regressions"]
        async with session.get(url + "/api/compare", params={"a": "0/nope", "b": "0/density-05"}) as response:
            assert response.status == 404
        async with session.get(url + "/compare", params={**params, "threshold": "lots"}) as response:
            assert response.status == 400


async def test_a_new_run_appears_without_a_restart(url: str, runs_dir: Path) -> None:
    _, before, _ = await get(url, "/")
    assert "density 06" not in before
    run = write_fixture_run(runs_dir, FixtureRun("density 06 #ü?", day=6))
    try:
        _, after, _ = await get(url, "/")
        assert 'data-run="0/density 06 #ü?"' in after
        href = re.search(r'<a href="(/run/0/density[^"]*/report.html)"', after)
        assert href is not None and "%23" in href.group(1)
        status, report, _ = await get(url, html.unescape(href.group(1)))
        assert status == 200 and "SLO verdicts" in report
    finally:
        shutil.rmtree(run)

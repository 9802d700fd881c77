"""`kubemark dashboard` from the command line: serves until SIGTERM, refuses a missing directory."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
from tests.report.dashboard.fixtures import FixtureRun, write_fixture_run
from typer.testing import CliRunner

from kubemark.cli import app


def test_a_missing_runs_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dashboard", str(tmp_path / "nope"), "--port", "0"])
    assert result.exit_code == 2
    assert "not a directory" in result.output


async def test_serves_until_sigterm(tmp_path: Path) -> None:
    write_fixture_run(tmp_path, FixtureRun("density-01"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kubemark",
        "dashboard",
        str(tmp_path),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line.startswith("dashboard: http://127.0.0.1:"), line
        url = line.split()[1]
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            assert "density-01" in await response.text()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

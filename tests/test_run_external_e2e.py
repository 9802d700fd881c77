"""`kubemark run --kubeconfig` against a master it did not start (the external-cluster path), playing the
built-in `load` (Deployments, Services, ConfigMaps, Secrets and Jobs), `api` and `fill` tests from a few nodes.

The master is `kubemark master start` in its own process, as a user's existing cluster would be; `--nodes N`
makes the run bring N hollow nodes of its own to that cluster, and delete them afterwards.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubemark import codec

KUBEMARK = [sys.executable, "-m", "kubemark"]
NODES = 3

pytestmark = pytest.mark.timeout(420)


def _wait_ready(proc: subprocess.Popen[str], timeout: float) -> None:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline and sel.select(timeout=max(0.0, deadline - time.monotonic())):
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if re.search(r"ready at https://", line):
            return
    raise AssertionError("the master did not become ready:\n" + "".join(seen))


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data = tmp_path_factory.mktemp("external-master")
    master = subprocess.Popen(
        [*KUBEMARK, "master", "start", "--data-dir", str(data), "--port", "0", "--storage", "memory"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_ready(master, 60)
        yield data / "admin.kubeconfig"
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(30)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()


def _run(kubeconfig: Path, out: Path, test: str, *sets: str) -> dict:
    args = ["run", "--kubeconfig", str(kubeconfig), "--nodes", str(NODES), "--test", test, "--out", str(out)]
    for s in sets:
        args += ["--set", s]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([*KUBEMARK, *args, "--no-progress"], capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    summary = codec.loads((out / "summary.json").read_bytes())
    assert {s["error"] for s in summary["steps"]} == {""}, summary["steps"]
    assert proc.returncode == (0 if all(v["passed"] for v in summary["verdicts"]) else 1)
    return summary


def _admin_get(kubeconfig: Path, path: str) -> dict:
    import asyncio

    from kubemark.client import RestClient, load_kubeconfig

    async def get() -> dict:
        client = RestClient(load_kubeconfig(str(kubeconfig)))
        try:
            return await client.get(path)
        finally:
            await client.close()

    return asyncio.run(get())


def test_load_with_jobs_against_an_external_master(kubeconfig: Path, tmp_path: Path) -> None:
    summary = _run(kubeconfig, tmp_path / "load", "load", "JOB_SLEEP_SECONDS=2")
    steps = [s["name"] for s in summary["steps"]]
    assert "Waiting for jobs to finish" in steps
    assert steps.index("Waiting for jobs to finish") < steps.index("Deleting objects")
    # The Jobs' pods ran and were counted with the rest: 30 pods per node in deployments plus 5 per small Job.
    rows = (tmp_path / "load" / "pod_startup.csv").read_text().splitlines()[1:]
    assert len(rows) >= NODES * 30 + 5
    # Everything the test made is gone, including the hollow nodes it brought (the cluster is not ours).
    assert _admin_get(kubeconfig, "/apis/batch/v1/jobs")["items"] == []
    assert _admin_get(kubeconfig, "/apis/apps/v1/deployments")["items"] == []
    assert _admin_get(kubeconfig, "/api/v1/nodes")["items"] == []


def test_api_and_fill_against_an_external_master(kubeconfig: Path, tmp_path: Path) -> None:
    api = _run(kubeconfig, tmp_path / "api", "api")
    assert any(v["name"].startswith("api_call_latency") for v in api["verdicts"])
    fill = _run(kubeconfig, tmp_path / "fill", "fill")
    # The classic table: pod startup judged at each fill level of the cluster's capacity.
    names = {v["name"] for v in fill["verdicts"]}
    assert {f"pod_startup_latency PodStartupLatency{level}" for level in (10, 25, 50, 90, 100)} <= names, names

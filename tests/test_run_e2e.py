"""`kubemark run` end to end in a subprocess, exactly as CI's acceptance run: `kubemark run --nodes 20 --test
density` (embedded master on etcd, 20 hollow nodes, 30 pods per node, 200 latency pods)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kubemark import codec
from kubemark.report.perfdata import validate_perfdata

pytestmark = pytest.mark.etcd

# density's defaults at 20 nodes: 30 pods per node, latency pods = max(nodes, min(500, 10 x nodes)).
NODES, PODS_PER_NODE, LATENCY_PODS = 20, 30, 200


def _kubemark(*args: str, timeout: float = 290) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "kubemark", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.mark.timeout(320)
def test_density_run_writes_a_consistent_report(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _kubemark("run", "--nodes", str(NODES), "--test", "density", "--out", str(out), "--no-progress")
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    summary = codec.loads((out / "summary.json").read_bytes())
    verdicts = summary["verdicts"]
    assert {s["error"] for s in summary["steps"]} == {""}, summary["steps"]
    assert proc.returncode == (0 if all(v["passed"] for v in verdicts) else 1)
    names = {v["name"] for v in verdicts}
    assert {"node_startup_latency", "pod_startup_latency", "pod_startup_latency SaturationPodStartupLatency"} <= names
    assert any(n.startswith("api_call_latency POST") for n in names)
    # The embedded master admits with priority and fairness: kubelets on system / node-high, the scheduler and
    # controller manager on workload-high, the player (an admin) exempt.
    levels = {level["priority_level"]: level for level in summary["flowcontrol"]}
    assert {"system", "node-high", "workload-high", "exempt"} <= set(levels), levels
    assert all(level["dispatched"] > 0 for level in levels.values())
    # The terminal shows the result tables, as `kubemark report` does.
    for title in ("pod startup latency", "API priority and fairness", "SLO verdicts"):
        assert title in proc.stdout, proc.stdout[-3000:]

    # Every pod the test created is counted: saturation + latency pods.
    with (out / "pod_startup.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == NODES * PODS_PER_NODE + LATENCY_PODS
    assert all(r["watched"] for r in rows)
    for r in rows:
        assert float(r["created"]) <= float(r["scheduled"]) <= float(r["running"]) <= float(r["watched"])

    perfdata = sorted(out.glob("PodStartupLatency_*.json")) + sorted(out.glob("APIResponsiveness*.json"))
    assert len(perfdata) >= 3
    for path in perfdata:
        data = codec.loads(path.read_bytes())
        assert validate_perfdata(data) == [], path
        for item in data["dataItems"]:
            d = item["data"]
            assert d["Perc50"] <= d["Perc90"] <= d["Perc99"], (path.name, item)
    pod_startup = codec.loads(next(out.glob("PodStartupLatency_PodStartupLatency_*.json")).read_bytes())
    assert {i["labels"]["Metric"] for i in pod_startup["dataItems"]} >= {"pod_startup", "create_to_schedule"}
    # That file is the PodStartupLatency measurement's (the latency pods), the same figure as its SLO verdict.
    startup_p99 = next(i["data"]["Perc99"] for i in pod_startup["dataItems"] if i["labels"]["Metric"] == "pod_startup")
    slo = next(v for v in verdicts if v["name"] == "pod_startup_latency")
    assert startup_p99 == pytest.approx(slo["measured"] * 1000, abs=1)

    suite = ET.parse(out / "junit.xml").getroot()
    assert suite.get("name") == "ClusterLoaderV2"
    cases = [c.get("name") for c in suite.iter("testcase")]
    assert "density: [step: 01] Starting hollow nodes" in cases
    assert any("Waiting for latency pods to be running" in c for c in cases)
    assert sum("[SLO]" in c for c in cases) == len(verdicts)
    assert int(suite.get("failures")) == sum(not v["passed"] for v in verdicts)

    html = (out / "report.html").read_text()
    assert html.count("<svg") >= 2
    assert "pod_startup" in html
    assert (out / "config.yaml").is_file()
    with (out / "scheduling_throughput.csv").open() as f:
        assert len(list(csv.DictReader(f))) >= 1


def test_bad_set_and_unknown_test_exit_2(tmp_path: Path) -> None:
    bad_set = _kubemark("run", "--set", "novalue", "--out", str(tmp_path / "a"), timeout=60)
    assert bad_set.returncode == 2
    assert "expected key=value" in bad_set.stderr
    unknown = _kubemark("run", "--test", "nosuchtest", "--out", str(tmp_path / "b"), timeout=60)
    assert unknown.returncode == 2
    assert "neither a built-in test" in unknown.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.timeout(120)
def test_ctrl_c_tears_down_and_keeps_a_partial_report(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = ["run", "--nodes", "2", "--set", "PODS_PER_NODE=2", "--set", "LATENCY_PODS=400", "--set", "LATENCY_QPS=2"]
    proc = subprocess.Popen(
        # --keep puts the cluster's data dir (and so etcd's command line) under tmp_path, for the check below.
        [sys.executable, "-m", "kubemark", *args, "--out", str(out), "--no-progress", "--keep"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # progress lines: interrupt once latency pods are being created
            if "Creating latency pods" in line:
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, rest[-2000:]
    assert "torn down" in rest
    summary = codec.loads((out / "summary.json").read_bytes())
    assert summary["steps"][-1]["error"] == "interrupted"
    assert (out / "report.html").is_file()
    # The embedded etcd went with the run.
    assert (out / "cluster" / "etcd").is_dir()
    leftovers = subprocess.run(["pgrep", "-f", f"etcd.*{tmp_path}"], capture_output=True, text=True).stdout
    assert leftovers == ""


@pytest.mark.timeout(200)
def test_api_run_on_two_api_server_processes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _kubemark(
        "run", "--nodes", "2", "--test", "api", "--apiserver-workers", "2", "--out", str(out), "--no-progress"
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = codec.loads((out / "summary.json").read_bytes())
    assert summary["verdicts"] and all(v["passed"] for v in summary["verdicts"])
    with (out / "resource_usage.csv").open() as f:
        components = {row["component"] for row in csv.DictReader(f)}
    assert {"kube-apiserver", "etcd"} <= components
    mixed = _kubemark("run", "--storage", "memory", "--apiserver-workers", "2", "--out", str(tmp_path / "m"))
    assert mixed.returncode == 2 and "--apiserver-workers" in mixed.stderr

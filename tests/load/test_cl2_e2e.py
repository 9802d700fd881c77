"""`kubemark run --nodes 3 --test <file>` on a test written in clusterloader2's format: a module used twice with
params, namespace options, two tuning sets, a CL2_* environment parameter and an override file (embedded master)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubemark import codec

pytestmark = pytest.mark.etcd

CONFIG = """\
{{$namespaces := DefaultParam .CL2_NAMESPACES 1}}
{{$replicas := DefaultParam .REPLICAS 1}}
name: cl2-format
namespace:
  number: {{$namespaces}}
  prefix: cl2e2e
  deleteStaleNamespaces: true
  enableExistingNamespaces: false
tuningSets:
- name: Uniform20qps
  qpsLoad:
    qps: 20
- name: Shared
  GlobalQPSLoad:
    qps: 20
    burst: 2
steps:
- module:
    path: /modules/deployments.yaml
    params:
      actionName: create
      namespaces: {{$namespaces}}
      replicas: {{$replicas}}
      tuningSet: Uniform20qps
- module:
    path: modules/deployments.yaml
    params:
      actionName: delete
      namespaces: {{$namespaces}}
      replicas: 0
      tuningSet: Shared
"""

MODULE = """\
steps:
- name: Start waiting ({{.actionName}})
  measurements:
  - Identifier: WaitForDeployments
    Method: WaitForControlledPodsRunning
    Params:
      action: start
      apiVersion: apps/v1
      kind: Deployment
      labelSelector: group = cl2e2e
      operationTimeout: 2m
- name: {{.actionName}} deployments
  phases:
  - namespaceRange:
      min: 1
      max: {{.namespaces}}
    replicasPerNamespace: {{.replicas}}
    tuningSet: {{.tuningSet}}
    objectBundle:
    - basename: dep
      objectTemplatePath: deployment.yaml
      templateFillMap:
        Replicas: 2
- name: Wait ({{.actionName}})
  measurements:
  - Identifier: WaitForDeployments
    Method: WaitForControlledPodsRunning
    Params:
      action: gather
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{.Name}}
  labels: {group: cl2e2e}
spec:
  replicas: {{.Replicas}}
  selector: {matchLabels: {name: {{.Name}}}}
  template:
    metadata:
      labels: {name: {{.Name}}, group: cl2e2e}
    spec:
      containers:
      - name: pause
        image: registry.k8s.io/pause:3.9
        resources: {requests: {cpu: 10m, memory: 10M}}
"""


@pytest.mark.timeout(300)
def test_cl2_format_test_with_modules_namespace_options_and_tuning_sets(tmp_path: Path) -> None:
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "deployments.yaml").write_text(MODULE)
    (tmp_path / "deployment.yaml").write_text(DEPLOYMENT)
    (tmp_path / "config.yaml").write_text(CONFIG)
    (tmp_path / "overrides.yaml").write_text("REPLICAS: 3\n")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CL2_NAMESPACES": "2"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubemark",
            "run",
            "--nodes",
            "3",
            "--storage",
            "memory",
            "--test",
            str(tmp_path / "config.yaml"),
            "--testoverrides",
            str(tmp_path / "overrides.yaml"),
            "--out",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=280,
        env=env,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    summary = codec.loads((out / "summary.json").read_bytes())
    steps = {s["name"]: s["error"] for s in summary["steps"]}
    assert {"create deployments", "delete deployments", "Wait (create)", "Wait (delete)"} <= set(steps), steps
    assert set(steps.values()) == {""}, steps
    # CL2_NAMESPACES=2 from the environment, REPLICAS=3 from the override file: 2 x 3 deployments, created and
    # deleted by the player, in the two automanaged namespaces it created.
    with (out / "api_calls.csv").open() as f:
        calls = [(r["verb"], r["resource"]) for r in csv.DictReader(f)]
    assert calls.count(("POST", "deployments")) == 6 and calls.count(("DELETE", "deployments")) == 6
    assert calls.count(("POST", "namespaces")) == 2
    # Each tuning set paced its phase: qpsLoad sleeps 1/qps after each of the 6 starts (0.3 s); globalQPSLoad
    # with burst 2 starts 2 at once and the other 4 at 1/qps (0.2 s).
    took = {s["name"]: s["finished"] - s["started"] for s in summary["steps"]}
    assert took["create deployments"] >= 0.3 - 0.01
    assert took["delete deployments"] >= 0.2 - 0.01
    effective = (out / "config.yaml").read_text()
    assert "prefix: cl2e2e" in effective and "deleteStaleNamespaces: true" in effective


def test_bad_environment_parameter_or_override_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(CONFIG)

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kubemark", "run", "--test", str(tmp_path / "config.yaml"), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
        )

    bad_env = run(CL2_BROKEN="a=b")
    assert bad_env.returncode == 2 and "CL2_BROKEN" in bad_env.stderr, bad_env.stderr
    missing = run("--testoverrides", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "cannot read override file" in missing.stderr, missing.stderr


CHAOS = """\
name: chaos
namespace: {number: 1, prefix: chaos}
tuningSets:
- {name: Q, qpsLoad: {qps: 10}}
chaosMonkey:
  nodeFailure: {failureRate: 0.34, interval: 2s, jitterFactor: 0.0, simulatedDowntime: 3s}
  excludedNodes: [hollow-node-1]
steps:
- name: sleep through node failures
  measurements:
  - {Identifier: S, Method: Sleep, Params: {duration: 9s}}
"""


@pytest.mark.timeout(200)
def test_chaos_monkey_stops_and_restarts_hollow_nodes_of_the_run(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(CHAOS)
    args = ["--test", str(tmp_path / "config.yaml"), "--out", str(tmp_path / "run"), "--no-progress"]
    proc = subprocess.run(
        [sys.executable, "-m", "kubemark", "-v", "run", "--nodes", "3", "--storage", "memory", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    failed = [line.rsplit(" ", 1)[1] for line in lines if "stopServices happened for node" in line]
    repaired = [line.rsplit(" ", 1)[1] for line in lines if "rebootNode happened for node" in line]
    # ceil(0.34 x candidates) = 1 node a round; hollow-node-1 is excluded; a failed node is never failed again;
    # every failed node is started again (at the latest when the steps end).
    assert failed and len(failed) == len(set(failed)) and set(failed) <= {"hollow-node-0", "hollow-node-2"}
    assert sorted(repaired) == sorted(failed)

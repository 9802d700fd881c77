"""clusterloader2 test suites (`kubemark run --testsuite`): parsing and path rules, then two scenarios of one
config with different override files run end to end on the embedded master."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kubemark import codec
from kubemark.load.config import ConfigError
from kubemark.load.suite import load_test_suite

CONFIG = """\
{{$replicas := DefaultParam .REPLICAS 1}}
name: suite-test
namespace: {number: 1, prefix: suite}
tuningSets: [{name: Qps, qpsLoad: {qps: 20}}]
steps:
- name: Start
  measurements:
  - Identifier: PodStartupLatency
    Method: PodStartupLatency
    Params: {action: start, labelSelector: group = suite, threshold: 30s}
  - Identifier: Wait
    Method: WaitForControlledPodsRunning
    Params: {action: start, apiVersion: apps/v1, kind: Deployment, labelSelector: group = suite, operationTimeout: 1m}
- name: Create
  phases:
  - namespaceRange: {min: 1, max: 1}
    replicasPerNamespace: 1
    tuningSet: Qps
    objectBundle: [{basename: dep, objectTemplatePath: deployment.yaml, templateFillMap: {Replicas: {{$replicas}}}}]
- name: Wait
  measurements:
  - {Identifier: Wait, Method: WaitForControlledPodsRunning, Params: {action: gather}}
- name: Gather
  measurements:
  - {Identifier: PodStartupLatency, Method: PodStartupLatency, Params: {action: gather}}
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: {{.Name}}, labels: {group: suite}}
spec:
  replicas: {{.Replicas}}
  selector: {matchLabels: {name: {{.Name}}}}
  template:
    metadata: {labels: {name: {{.Name}}, group: suite}}
    spec:
      containers: [{name: pause, image: registry.k8s.io/pause:3.9}]
"""


def _tree(root: Path) -> Path:
    """clusterloader2's layout: the suite names paths relative to the checkout (testing/...)."""
    test_dir = root / "testing" / "suite"
    (test_dir / "two").mkdir(parents=True)
    (test_dir / "config.yaml").write_text(CONFIG)
    (test_dir / "deployment.yaml").write_text(DEPLOYMENT)
    (test_dir / "two" / "overrides.yaml").write_text("REPLICAS: 2\n")
    suite = test_dir / "suite.yaml"
    suite.write_text(
        "- identifier: one\n  configPath: testing/suite/config.yaml\n  overridePaths: []\n"
        "- identifier: two\n  configPath: testing/suite/config.yaml\n"
        "  overridePaths: [testing/suite/two/overrides.yaml]\n"
    )
    return suite


def test_paths_resolve_from_the_checkout_above_the_suite(tmp_path: Path) -> None:
    scenarios = load_test_suite(_tree(tmp_path))
    assert [s.identifier for s in scenarios] == ["one", "two"]
    assert scenarios[0].config_path == tmp_path / "testing" / "suite" / "config.yaml"
    assert scenarios[1].override_paths == (tmp_path / "testing" / "suite" / "two" / "overrides.yaml",)


def test_every_problem_is_named_by_scenario_and_field(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "- identifier: a\n  configPath: missing.yaml\n"
        "- identifier: a\n  configPath: suite.yaml\n  overridePaths: [nope.yaml]\n"
        "- {identifier: 'bad/name', configPath: suite.yaml}\n"
        "- {identifier: c, configPth: suite.yaml}\n"
        "- just a string\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_test_suite(suite)
    problems = dict(caught.value.problems)
    assert problems["[0].configPath"] == "file not found: missing.yaml"
    assert problems["[1].identifier"] == "duplicate of [0]"
    assert problems["[1].overridePaths[0]"] == "file not found: nope.yaml"
    assert "directory" in problems["[2].identifier"]
    assert "configPath" in problems["[3].configPath"] or "Field required" in problems["[3].configPath"]
    assert "Extra inputs" in problems["[3].configPth"]
    assert problems["[4]"] == "a scenario must be a map, not str"
    suite.write_text("name: not-a-suite\n")
    with pytest.raises(ConfigError, match="non-empty YAML list"):
        load_test_suite(suite)


def _kubemark(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubemark", *args],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.etcd
@pytest.mark.timeout(300)
def test_a_suite_runs_each_scenario_with_its_overrides(tmp_path: Path) -> None:
    suite = _tree(tmp_path)
    out = tmp_path / "runs"
    common = ["--nodes", "2", "--storage", "memory", "--out", str(out), "--no-progress"]
    proc = _kubemark("run", "--testsuite", str(suite), *common, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "PASSED: 2/2 scenarios passed" in proc.stdout
    rows = {r["scenario"]: r for r in codec.loads((out / "suite.json").read_bytes())["scenarios"]}
    assert set(rows) == {"one", "two"} and all(r["passed"] for r in rows.values())
    for name, replicas in (("one", 1), ("two", 2)):
        run_dir = out / name
        summary = codec.loads((run_dir / "summary.json").read_bytes())
        assert summary["test"] == f"suite-test_{name}"
        # The scenario's own override file, and the pods it made.
        assert summary["parameters"]["overrides"] == ({"REPLICAS": 2} if name == "two" else {})
        with (run_dir / "pod_startup.csv").open() as f:
            assert len(list(csv.DictReader(f))) == replicas
        # clusterloader2's names: <summary>_<test name>_<identifier>_<time>.json
        names = [p.name for p in run_dir.iterdir()]
        pattern = rf"PodStartupLatency_PodStartupLatency_suite-test_{name}_\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.json"
        assert any(re.fullmatch(pattern, n) for n in names), names


def test_a_bad_scenario_stops_the_suite_before_anything_runs(tmp_path: Path) -> None:
    suite = _tree(tmp_path)
    (tmp_path / "testing" / "suite" / "broken.yaml").write_text("name: broken\nsteps: [{name: x, phases: oops}]\n")
    suite.write_text(suite.read_text() + "- identifier: three\n  configPath: testing/suite/broken.yaml\n")
    out = tmp_path / "runs"
    proc = _kubemark("run", "--testsuite", str(suite), "--nodes", "2", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "broken.yaml" in proc.stderr and "steps[0].phases" in proc.stderr
    assert not out.exists()  # no scenario started
    proc = _kubemark("run", "--testsuite", str(suite), "--test", "density", cwd=tmp_path)
    assert proc.returncode == 2 and "not both" in proc.stderr

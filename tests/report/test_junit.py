"""junit.xml: suite ClusterLoaderV2, a testcase per step and per verdict, failures with their message."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from kubemark.report.junit import write_junit
from kubemark.report.model import read_run_dir


def test_junit_counts_and_failures(tmp_path: Path, make_run_dir: Callable[..., Path]) -> None:
    path = write_junit(read_run_dir(make_run_dir()), tmp_path / "junit.xml")
    suite = ET.parse(path).getroot()
    assert suite.tag == "testsuite"
    assert suite.get("name") == "ClusterLoaderV2"
    cases = suite.findall("testcase")
    assert len(cases) == 4 and suite.get("tests") == "4"
    assert suite.get("failures") == "2"
    assert float(suite.get("time") or 0) == 60.0
    names = [c.get("name") for c in cases]
    assert names == [
        "density: [step: 01] Start measurements",
        "density: [step: 02] Create pods",
        "density: [SLO] pod_startup_latency",
        "density: [SLO] api_call_latency PUT nodes/status resource",
    ]
    failed = {c.get("name"): c.find("failure") for c in cases}
    assert failed["density: [step: 01] Start measurements"] is None
    step_failure = failed["density: [step: 02] Create pods"]
    assert step_failure is not None and "pod-a (Pending: no nodes)" in (step_failure.get("message") or "")
    slo_failure = failed["density: [SLO] api_call_latency PUT nodes/status resource"]
    assert slo_failure is not None and "expected perc99 <= 1s" in (slo_failure.text or "")
    assert cases[1].get("time") == "39.000"

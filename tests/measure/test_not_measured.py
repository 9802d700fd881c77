"""The not-measured-here path end to end: a density config's InClusterNetworkLatency and DnsLookupLatency are
accepted, produce no number and no verdict, and say so in the terminal (log and table), summary.json and
report.html."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from rich.console import Console

from kubemark.client import RestClient
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet
from kubemark.measure.api_responsiveness import ApiCallRecorder
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.results import MeasurementWarning, SummaryFile
from kubemark.measure.slo import SLOThresholds
from kubemark.measure.watch import ObjectWatch
from kubemark.report.html import render_report
from kubemark.report.junit import junit_xml
from kubemark.report.model import RunResult, read_run_dir, write_run_dir
from kubemark.report.perfdata import write_summaries
from kubemark.report.table import not_measured_table


def step(identifier: str, method: str, **params: object) -> MeasurementStep:
    return MeasurementStep(Identifier=identifier, Method=method, Params=params)


async def test_probe_measurements_warn_everywhere_and_measure_nothing(
    admin: RestClient, pod_watch: ObjectWatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = MeasureContext(client=admin, pods=pod_watch, thresholds=SLOThresholds(), recorder=ApiCallRecorder())
    mset = MeasurementSet(ctx)
    params = {"checkProbesReadyTimeout": "5m", "replicasPerProbe": 2}
    with caplog.at_level(logging.WARNING):
        await mset.execute_all(
            [
                step("InClusterNetworkLatency", "InClusterNetworkLatency", action="start", **params),
                step("DnsLookupLatency", "DnsLookupLatency", action="start", **params),
            ]
        )
        await mset.execute(step("InClusterNetworkLatency", "InClusterNetworkLatency", action="gather"))
        await mset.finish()  # DnsLookupLatency never gathered: finish() still reports it
    assert mset.result.verdicts == [] and mset.result.summaries == [] and mset.result.pods == {}
    assert [(w.identifier, w.method) for w in mset.result.warnings] == [
        ("InClusterNetworkLatency", "InClusterNetworkLatency"),
        ("DnsLookupLatency", "DnsLookupLatency"),
    ]
    assert mset.result.warnings[0].reason.startswith("needs real pod networking")
    terminal = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "InClusterNetworkLatency (InClusterNetworkLatency): not measured here: needs real pod networking" in (
        "\n".join(terminal)
    )
    assert sum("DnsLookupLatency (DnsLookupLatency): not measured here" in t for t in terminal) == 1

    result = RunResult("density", 1.0, 2.0)
    result.merge(mset.result)
    run_dir = write_run_dir(result, tmp_path / "run")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [w["method"] for w in summary["warnings"]] == ["InClusterNetworkLatency", "DnsLookupLatency"]
    assert summary["warnings"][1]["reason"].startswith("needs real pod networking and cluster DNS")
    assert summary["verdicts"] == []

    reread = read_run_dir(run_dir)
    assert reread.warnings == result.warnings
    page = render_report(run_dir).read_text()
    assert "<h2>Not measured here</h2>" in page
    assert "failed steps, 2 measurement(s) not measured here</div>" in page  # in the run's headline too
    assert "2 measurement(s) the test names were not measured" in page
    assert "needs real pod networking and cluster DNS" in page

    junit = junit_xml(reread)
    assert '<skipped message="not measured here: needs real pod networking and cluster DNS' in junit
    assert 'name="density: [not measured] DnsLookupLatency (DnsLookupLatency)"' in junit
    assert 'skipped="2"' in junit and 'failures="0"' in junit

    console = Console(record=True, width=200)
    table = not_measured_table(reread)
    assert table is not None
    console.print(table)
    text = console.export_text()
    assert "Not measured here" in text and "DnsLookupLatency" in text and "needs real pod networking" in text


def test_a_run_without_warnings_has_no_section_and_no_table(tmp_path: Path) -> None:
    run_dir = write_run_dir(RunResult("t", 1.0, 2.0), tmp_path / "run")
    assert json.loads((run_dir / "summary.json").read_text())["warnings"] == []
    assert "Not measured here" not in render_report(run_dir).read_text()
    assert not_measured_table(read_run_dir(run_dir)) is None


def test_summaries_are_written_under_clusterloader2_names(tmp_path: Path) -> None:
    result = RunResult("density", 1_700_000_000.0, 1_700_000_060.0)
    result.summaries = [SummaryFile("EtcdMetrics", {"maxDatabaseSize": 1.0}), SummaryFile("JobLifecycleLatency_J", [])]
    result.warnings = [MeasurementWarning("TestMetrics", "CPUProfile", "why")]
    paths = write_summaries(result, tmp_path)
    assert sorted(p.name for p in paths) == [
        "EtcdMetrics_density_2023-11-14T22:14:20Z.json",
        "JobLifecycleLatency_J_density_2023-11-14T22:14:20Z.json",
    ]
    contents = {p.name.split("_density_")[0]: json.loads(p.read_text()) for p in paths}
    assert contents == {"EtcdMetrics": {"maxDatabaseSize": 1.0}, "JobLifecycleLatency_J": []}


async def test_a_not_measured_method_gathered_without_a_start_still_warns(
    admin: RestClient, pod_watch: ObjectWatch
) -> None:
    ctx = MeasureContext(client=admin, pods=pod_watch, thresholds=SLOThresholds(), recorder=ApiCallRecorder())
    mset = MeasurementSet(ctx)
    await mset.execute(step("Probes", "DnsLookupLatency", action="gather"))
    assert [str(w) for w in mset.result.warnings] == [
        "Probes (DnsLookupLatency): not measured here: needs real pod networking and cluster DNS "
        "(DNS probe pods, read through Prometheus)"
    ]

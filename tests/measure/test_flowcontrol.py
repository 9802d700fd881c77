"""Priority-and-fairness figures of a measurement window: parsed from /metrics, differenced, reported."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kubemark.master.apiserver.flowcontrol import PriorityAndFairness
from kubemark.master.apiserver.metrics import APIServerMetrics
from kubemark.master.apiserver.request_info import UserInfo, parse_request_info
from kubemark.measure.flowcontrol import flowcontrol_delta, parse_flowcontrol
from kubemark.measure.results import PriorityLevelStats
from kubemark.report.html import render_html
from kubemark.report.model import RunResult, read_run_dir, write_run_dir
from kubemark.report.table import flowcontrol_table

NODE = UserInfo("system:node:n1", ("system:nodes", "system:authenticated"))
POD_STATUS = parse_request_info("PATCH", "/api/v1/namespaces/ns/pods/p/status")


def test_wait_and_counts_between_two_scrapes_of_a_real_exposition() -> None:
    metrics = APIServerMetrics(process_metrics=False)
    before = parse_flowcontrol(metrics.render()[0].decode())
    metrics.flowcontrol_dispatched("system-nodes", "system")
    metrics.flowcontrol_wait("system-nodes", "system", 0.0, executed=True)
    for _ in range(99):
        metrics.flowcontrol_dispatched("system-nodes", "system")
        metrics.flowcontrol_wait("system-nodes", "system", 3.0, executed=True)  # in the (2, 5] bucket
    metrics.flowcontrol_rejected("system-nodes", "system", "time-out")
    metrics.flowcontrol_wait("system-nodes", "system", 15.0, executed=False)  # rejected: not a dispatch wait
    metrics.flowcontrol_dispatched("exempt", "exempt")
    metrics.flowcontrol_wait("exempt", "exempt", 0.0, executed=True)
    after = parse_flowcontrol(metrics.render()[0].decode())

    stats = {s.priority_level: s for s in flowcontrol_delta(after, before)}
    assert set(stats) == {"system", "exempt"}
    system = stats["system"]
    assert (system.dispatched, system.rejected) == (100, 1)
    assert 2.0 < system.wait_p50 <= 5.0 and 2.0 < system.wait_p99 <= 5.0
    assert stats["exempt"].wait_p99 == 0.0
    # A second window without traffic reports nothing.
    assert flowcontrol_delta(after, after) == []


async def test_a_real_queue_shows_up_as_wait() -> None:
    metrics = APIServerMetrics(process_metrics=False)
    apf = PriorityAndFairness(1, metrics=metrics)
    before = parse_flowcontrol(metrics.render()[0].decode())
    first = await apf.admit(NODE, POD_STATUS)
    queued = asyncio.create_task(apf.admit(NODE, POD_STATUS))
    while apf.waiting("system") == 0:
        await asyncio.sleep(0)
    apf.finish(first)
    apf.finish(await queued)
    [system] = flowcontrol_delta(parse_flowcontrol(metrics.render()[0].decode()), before)
    assert system.priority_level == "system" and system.dispatched == 2 and system.rejected == 0
    assert system.wait_p99 > 0


def test_servers_without_priority_and_fairness_report_nothing() -> None:
    assert parse_flowcontrol('apiserver_request_total{verb="GET",code="200"} 3\n') == {}


def test_run_directory_keeps_the_figures_and_the_report_shows_them(tmp_path: Path) -> None:
    result = RunResult("density", 1.0, 2.0, flowcontrol=[PriorityLevelStats("system", 100, 2, 0.25, 3.5)])
    write_run_dir(result, tmp_path)
    again = read_run_dir(tmp_path)
    assert again.flowcontrol == result.flowcontrol
    html = render_html(again)
    assert "API priority and fairness" in html and "3500.0" in html
    table = flowcontrol_table(again)
    assert table is not None and table.row_count == 1
    assert flowcontrol_table(RunResult("t", 1.0, 2.0)) is None


@pytest.mark.parametrize("field", ["dispatched", "wait_p99"])
def test_a_malformed_entry_is_a_run_dir_error(tmp_path: Path, field: str) -> None:
    from kubemark import codec
    from kubemark.report.model import RunDirError

    write_run_dir(RunResult("t", 1.0, 2.0, flowcontrol=[PriorityLevelStats("system", 1, 0, 0.0, 0.0)]), tmp_path)
    summary = codec.loads((tmp_path / "summary.json").read_bytes())
    summary["flowcontrol"][0][field] = "lots"
    (tmp_path / "summary.json").write_bytes(codec.dumps(summary))
    with pytest.raises(RunDirError, match=r"summary\.json"):
        read_run_dir(tmp_path)

"""compare_runs flags regressions beyond the threshold and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from kubemark.report.compare import compare_runs
from kubemark.report.table import comparison_table, pod_startup_table, verdict_table


def test_same_run_is_not_a_regression(make_run_dir: Callable[..., Path]) -> None:
    a = make_run_dir("a")
    b = make_run_dir("b")
    cmp = compare_runs(a, b)
    assert cmp.deltas
    assert not cmp.has_regression
    assert all(d.change_pct == 0 for d in cmp.deltas if d.change_pct is not None)


def test_slower_run_regresses(make_run_dir: Callable[..., Path]) -> None:
    cmp = compare_runs(make_run_dir("a"), make_run_dir("b", slowdown=1.5))
    names = {d.metric for d in cmp.regressions}
    assert "pod_startup/pod_startup/p99" in names
    assert "api/PUT nodes/status resource/p99" in names
    assert not any(n.startswith("scheduling_throughput") for n in names)


def test_small_change_within_threshold_is_not_a_regression(make_run_dir: Callable[..., Path]) -> None:
    cmp = compare_runs(make_run_dir("a"), make_run_dir("b", slowdown=1.05), threshold_pct=10)
    assert not cmp.has_regression
    assert any(d.change_pct and d.change_pct > 4 for d in cmp.deltas)


def test_throughput_drop_regresses_and_rise_does_not(make_run_dir: Callable[..., Path]) -> None:
    base = make_run_dir("a")
    down = compare_runs(base, make_run_dir("b", throughput=50.0))
    assert {d.metric for d in down.regressions} == {"scheduling_throughput/p50", "scheduling_throughput/max"}
    up = compare_runs(base, make_run_dir("c", throughput=200.0))
    assert not up.has_regression
    faster = compare_runs(make_run_dir("d", slowdown=2.0), base)
    assert not faster.has_regression


def test_tables_render(make_run_dir: Callable[..., Path]) -> None:
    from kubemark.report.model import read_run_dir

    result = read_run_dir(make_run_dir("a"))
    console = Console(width=200, record=True, color_system=None)
    console.print(verdict_table(result.verdicts))
    console.print(pod_startup_table(result))
    console.print(comparison_table(compare_runs(make_run_dir("x"), make_run_dir("y", slowdown=1.5))))
    out = console.export_text()
    assert "pod_startup_latency" in out and "PASS" in out and "FAIL" in out
    assert "create_to_schedule" in out
    assert "REGRESSION" in out

"""Rich tables for the terminal: SLO verdicts, a run's headline figures, and a run comparison."""

from __future__ import annotations

from rich.table import Table

from kubemark.measure.percentiles import POD_STARTUP_TRANSITIONS, by_measurement, pod_startup_series
from kubemark.measure.results import Verdict
from kubemark.report.compare import Comparison
from kubemark.report.model import RunResult

__all__ = ["comparison_table", "flowcontrol_table", "not_measured_table", "pod_startup_table", "verdict_table"]


def verdict_table(verdicts: list[Verdict]) -> Table:
    table = Table(title="SLO verdicts")
    for col in ("SLO", "measured", "threshold", "unit", "verdict"):
        table.add_column(col, justify="left" if col in ("SLO", "unit", "verdict") else "right")
    for v in verdicts:
        mark = "[green]PASS[/green]" if v.passed else "[red]FAIL[/red]"
        table.add_row(v.name, f"{v.measured:.4g}", f"{v.threshold:.4g}", v.unit, mark)
    return table


def not_measured_table(result: RunResult) -> Table | None:
    """The measurements the test named that were not measured here, and why (None when there are none)."""
    if not result.warnings:
        return None
    table = Table(title="[yellow]Not measured here[/yellow]", caption="no numbers and no verdicts for these")
    for column in ("identifier", "method", "why"):
        table.add_column(column)
    for w in result.warnings:
        table.add_row(w.identifier, w.method, w.reason)
    return table


def pod_startup_table(result: RunResult) -> Table:
    """Transitions per PodStartupLatency measurement (e.g. density's saturation and latency pods apart)."""
    table = Table(title=f"{result.test}: pod startup latency (ms)")
    groups = by_measurement(result.pods)
    named = len(groups) > 1 or any(groups)
    if named:
        table.add_column("measurement")
    table.add_column("transition")
    for col in ("count", "p50", "p90", "p99", "max"):
        table.add_column(col, justify="right")
    for measurement, pods in groups.items():
        series = pod_startup_series(pods)
        for i, name in enumerate(POD_STARTUP_TRANSITIONS):
            s = series[name].summary()
            cells = [name, str(int(s["count"])), *(f"{s[k] * 1000:.1f}" for k in ("Perc50", "Perc90", "Perc99", "max"))]
            if named:
                cells.insert(0, measurement if i == 0 else "")
            table.add_row(*cells, end_section=i == len(POD_STARTUP_TRANSITIONS) - 1)
    return table


def flowcontrol_table(result: RunResult) -> Table | None:
    """Requests per API priority level and their queue wait (None when the server reported none)."""
    if not result.flowcontrol:
        return None
    table = Table(title="API priority and fairness", caption="queue wait is not part of the API-latency SLI")
    for column in ("priority level", "dispatched", "rejected (429)", "wait p50 (ms)", "wait p99 (ms)"):
        table.add_column(column, justify="left" if column == "priority level" else "right")
    for level in result.flowcontrol:
        table.add_row(
            level.priority_level,
            str(level.dispatched),
            str(level.rejected),
            f"{level.wait_p50 * 1000:.1f}",
            f"{level.wait_p99 * 1000:.1f}",
        )
    return table


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1000:.1f} ms"
    if unit == "bytes":
        return f"{value / 2**20:.1f} MiB"
    return f"{value:.3g} {unit}"


def comparison_table(cmp: Comparison, *, only_changed: bool = False) -> Table:
    table = Table(title=f"{cmp.run_b} vs {cmp.run_a} (regression threshold {cmp.threshold_pct:g}%)")
    table.add_column("metric")
    for col in ("A", "B", "change"):
        table.add_column(col, justify="right")
    table.add_column("")
    for d in cmp.deltas:
        if only_changed and not d.regression and (d.change_pct is None or abs(d.change_pct) < cmp.threshold_pct):
            continue
        change = "-" if d.change_pct is None else f"{d.change_pct:+.1f}%"
        flag = "[red]REGRESSION[/red]" if d.regression else ""
        table.add_row(d.metric, _fmt(d.a, d.unit), _fmt(d.b, d.unit), change, flag)
    return table

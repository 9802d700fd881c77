"""`kubemark report` and `kubemark compare` from the command line: outputs and exit codes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from kubemark.cli import app
from kubemark.report.model import RunResult

runner = CliRunner()


def test_report_renders_html_and_tables(make_run_dir: Callable[..., Path]) -> None:
    run = make_run_dir("run")
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "SLO verdicts" in result.output
    html = (run / "report.html").read_text()
    assert "<svg" in html


def test_pod_startup_is_tabled_per_measurement(make_run: Callable[..., RunResult]) -> None:
    from rich.console import Console

    from kubemark.report.table import pod_startup_table

    console = Console(width=200, record=True)
    console.print(pod_startup_table(make_run()))
    text = console.export_text()
    # Saturation pods (150) and latency pods (50) apart, each with its own pod_startup count; the stuck pod
    # (no measurement) in a third block.
    rows = [line for line in text.splitlines() if "pod_startup" in line and "create" not in line]
    assert len(rows) == 3, text
    assert "SaturationPodStartupLatency" in text and " 150 " in rows[0]
    assert " 50 " in rows[1]


def test_report_of_a_directory_that_is_not_a_run_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "summary.json" in result.output


def test_compare_exit_codes(make_run_dir: Callable[..., Path]) -> None:
    base = make_run_dir("a")
    same = make_run_dir("b")
    slower = make_run_dir("c", slowdown=1.5)
    assert runner.invoke(app, ["compare", str(base), str(same)]).exit_code == 0
    regressed = runner.invoke(app, ["compare", str(base), str(slower)])
    assert regressed.exit_code == 1
    assert "regressions:" in regressed.output

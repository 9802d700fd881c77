"""The run directory round-trips and reports malformed files by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kubemark.report.model import RunDirError, RunResult, read_run_dir


def test_round_trip(make_run_dir: Callable[..., Path], make_run: Callable[..., RunResult]) -> None:
    d = make_run_dir()
    back = read_run_dir(d)
    original = make_run()
    assert back.test == "density" and back.start == original.start and back.end == original.end
    assert back.parameters == original.parameters
    assert back.steps == original.steps
    assert back.verdicts == original.verdicts
    assert back.pods == original.pods
    assert back.api_calls == original.api_calls
    assert back.throughput == original.throughput
    assert back.usage == original.usage
    assert back.fill_levels == original.fill_levels
    assert not back.passed


def test_missing_and_malformed(tmp_path: Path, make_run_dir: Callable[..., Path]) -> None:
    with pytest.raises(RunDirError, match=r"summary\.json"):
        read_run_dir(tmp_path / "nothing")
    d = make_run_dir()
    (d / "api_calls.csv").write_text(
        "started_at,verb,resource,subresource,scope,status,seconds\nx,GET,pods,,resource,200,0.1\n"
    )
    with pytest.raises(RunDirError, match=r"api_calls\.csv: malformed"):
        read_run_dir(d)


def test_labels_round_trip_and_reach_the_dashboard(tmp_path: Path, make_run: Callable[..., RunResult]) -> None:
    """summary.json `labels` (what `kubemark run` records) come back, and the dashboard lists them."""
    from kubemark.report.dashboard.runs import RunIndex
    from kubemark.report.model import write_run_dir

    run = make_run()
    run.labels = {"kubemark": "0.1.0", "git": "abc123", "branch": "my-change"}
    d = write_run_dir(run, tmp_path / "runs" / "r1")
    assert read_run_dir(d).labels == run.labels
    [listed] = RunIndex([tmp_path / "runs"]).scan()
    assert listed.labels["branch"] == "my-change" and listed.labels["git"] == "abc123"

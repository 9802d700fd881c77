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

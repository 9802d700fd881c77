"""A run's results as plain data, and the run directory they live in (so reports can be re-rendered).

Layout of a run directory (written by the player, read by `kubemark report` and `kubemark compare`):

    summary.json               test, start/end (unix s), parameters, steps, verdicts, clock_skew, flowcontrol,
                               warnings (measurements not measured here: identifier, method, reason)
    pod_startup.csv            pod,created,scheduled,running,watched      (unix s; empty = never)
    api_calls.csv              started_at,verb,resource,subresource,scope,status,seconds
    scheduling_throughput.csv  time,pods_per_second
    resource_usage.csv         time,component,cpu_cores,memory_bytes
    fill_levels.csv            fill_pct,pod_startup_seconds               (one row per sample)

Every CSV is optional; a missing file is an empty series.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kubemark import codec
from kubemark.measure.results import (
    ApiCall,
    ApiCallKey,
    MeasurementResult,
    MeasurementWarning,
    PodTimeline,
    PriorityLevelStats,
    StepResult,
    SummaryFile,
    UsageSample,
    Verdict,
)

__all__ = ["RunDirError", "RunResult", "read_run_dir", "write_run_dir"]

SUMMARY = "summary.json"
POD_STARTUP_CSV = "pod_startup.csv"
API_CALLS_CSV = "api_calls.csv"
THROUGHPUT_CSV = "scheduling_throughput.csv"
USAGE_CSV = "resource_usage.csv"
FILL_CSV = "fill_levels.csv"


@dataclass
class RunResult:
    test: str
    start: float
    end: float
    parameters: dict[str, Any] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    clock_skew: dict[str, Any] | None = None
    pods: list[PodTimeline] = field(default_factory=list)
    api_calls: list[ApiCall] = field(default_factory=list)
    throughput: list[tuple[float, float]] = field(default_factory=list)  # (unix s, pods/s)
    usage: list[UsageSample] = field(default_factory=list)
    fill_levels: dict[float, list[float]] = field(default_factory=dict)  # fill % -> pod startup samples (s)
    # API Priority and Fairness per priority level over the APIResponsiveness window (empty without APF).
    flowcontrol: list[PriorityLevelStats] = field(default_factory=list)
    # What the run was of (kubemark version, git commit, master kind, the user's --label k=v): the dashboard
    # filters and groups runs by them.
    labels: dict[str, str] = field(default_factory=dict)
    # Measurements the test asked for that this run did not measure, and why (never a silent pass).
    warnings: list[MeasurementWarning] = field(default_factory=list)
    # clusterloader2 summary files the measurements produced (written next to the run directory's files by
    # report.perfdata.write_summaries; not read back: they are files of their own).
    summaries: list[SummaryFile] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts) and not any(s.error for s in self.steps)

    def merge(self, measured: MeasurementResult) -> None:
        """Fold in what a test's measurements produced: each pod once, under the first measurement (Identifier)
        that tracked it; verdicts, throughput, usage and fill levels appended; the last priority-and-fairness
        window."""
        seen = {p.name for p in self.pods}
        for identifier, timelines in measured.pods.items():
            for t in timelines:
                if t.name not in seen:
                    seen.add(t.name)
                    self.pods.append(replace(t, measurement=identifier))
        self.verdicts.extend(measured.verdicts)
        self.throughput.extend(measured.throughput)
        self.usage.extend(measured.usage)
        for pct, samples in measured.fill_levels.items():
            self.fill_levels.setdefault(pct, []).extend(samples)
        if measured.flowcontrol:
            self.flowcontrol = list(measured.flowcontrol)
        for warning in measured.warnings:
            if warning not in self.warnings:
                self.warnings.append(warning)
        self.summaries.extend(measured.summaries)

    def api_samples(self) -> dict[ApiCallKey, list[float]]:
        """Latencies of answered calls grouped by (verb, resource, subresource, scope)."""
        out: dict[ApiCallKey, list[float]] = defaultdict(list)
        for call in self.api_calls:
            if call.status is not None:
                out[call.key].append(call.seconds)
        return dict(out)


# -- writing ----------------------------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _write_csv(path: Path, header: list[str], rows: Iterable[Iterable[Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write_run_dir(result: RunResult, run_dir: str | Path) -> Path:
    """Write `result` in the run-directory layout; returns the directory."""
    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    summary = {
        "test": result.test,
        "start": result.start,
        "end": result.end,
        "parameters": result.parameters,
        "steps": [
            {"name": s.name, "started": s.started, "finished": s.finished, "error": s.error} for s in result.steps
        ],
        "verdicts": [v.as_dict() for v in result.verdicts],
        "clock_skew": result.clock_skew,
        "flowcontrol": [level.as_dict() for level in result.flowcontrol],
        "warnings": [w.as_dict() for w in result.warnings],
        "labels": dict(result.labels),
    }
    (d / SUMMARY).write_bytes(codec.dumps_pretty(summary))
    _write_csv(
        d / POD_STARTUP_CSV,
        ["pod", "created", "scheduled", "running", "watched", "measurement"],
        (
            [p.name, _num(p.created), _num(p.scheduled), _num(p.running), _num(p.watched), p.measurement]
            for p in result.pods
        ),
    )
    _write_csv(
        d / API_CALLS_CSV,
        ["started_at", "verb", "resource", "subresource", "scope", "status", "seconds"],
        (
            [
                _num(c.started_at),
                c.verb,
                c.resource,
                c.subresource,
                c.scope,
                "" if c.status is None else c.status,
                _num(c.seconds),
            ]
            for c in result.api_calls
        ),
    )
    _write_csv(d / THROUGHPUT_CSV, ["time", "pods_per_second"], ([_num(t), _num(v)] for t, v in result.throughput))
    _write_csv(
        d / USAGE_CSV,
        ["time", "component", "cpu_cores", "memory_bytes"],
        ([_num(u.time), u.component, _num(u.cpu_cores), _num(u.memory_bytes)] for u in result.usage),
    )
    _write_csv(
        d / FILL_CSV,
        ["fill_pct", "pod_startup_seconds"],
        ([_num(pct), _num(s)] for pct, samples in sorted(result.fill_levels.items()) for s in samples),
    )
    return d


# -- reading ----------------------------------------------------------------------------------------------------


class RunDirError(ValueError):
    """A run directory that is missing or malformed; the message names the file."""


def _opt(value: str) -> float | None:
    return float(value) if value.strip() else None


def _rows(path: Path) -> Iterator[dict[str, str]]:
    if not path.is_file():
        return
    with path.open(newline="") as f:
        for lineno, row in enumerate(csv.DictReader(f), start=2):
            if None in row or any(v is None for v in row.values()):
                raise RunDirError(f"{path}:{lineno}: wrong number of columns")
            yield row


def read_run_dir(run_dir: str | Path) -> RunResult:
    """Load a run directory written by `write_run_dir` (or the player); raises RunDirError."""
    d = Path(run_dir)
    summary_path = d / SUMMARY
    try:
        summary = codec.loads(summary_path.read_bytes())
    except OSError as exc:
        raise RunDirError(f"{summary_path}: {exc.strerror or exc}") from None
    except codec.JSONDecodeError as exc:
        raise RunDirError(f"{summary_path}: invalid JSON: {exc}") from None
    current = summary_path  # the file being parsed, for error messages
    try:
        result = RunResult(
            test=str(summary["test"]),
            start=float(summary["start"]),
            end=float(summary["end"]),
            parameters=dict(summary.get("parameters") or {}),
            steps=[
                StepResult(str(s["name"]), float(s["started"]), float(s["finished"]), str(s.get("error") or ""))
                for s in summary.get("steps") or []
            ],
            verdicts=[Verdict.from_dict(v) for v in summary.get("verdicts") or []],
            clock_skew=summary.get("clock_skew"),
            flowcontrol=[PriorityLevelStats.from_dict(x) for x in summary.get("flowcontrol") or []],
            warnings=[MeasurementWarning.from_dict(w) for w in summary.get("warnings") or []],
            labels={str(k): str(v) for k, v in (summary.get("labels") or {}).items()},
        )
        current = d / POD_STARTUP_CSV
        result.pods = [
            PodTimeline(
                r["pod"],
                _opt(r["created"]),
                _opt(r["scheduled"]),
                _opt(r["running"]),
                _opt(r["watched"]),
                r.get("measurement") or "",  # absent in run directories written before it existed
            )
            for r in _rows(current)
        ]
        current = d / API_CALLS_CSV
        result.api_calls = [
            ApiCall(
                float(r["started_at"]),
                r["verb"],
                r["resource"],
                r["subresource"],
                r["scope"],
                int(r["status"]) if r["status"].strip() else None,
                float(r["seconds"]),
            )
            for r in _rows(current)
        ]
        current = d / THROUGHPUT_CSV
        result.throughput = [(float(r["time"]), float(r["pods_per_second"])) for r in _rows(current)]
        current = d / USAGE_CSV
        result.usage = [
            UsageSample(float(r["time"]), r["component"], float(r["cpu_cores"]), float(r["memory_bytes"]))
            for r in _rows(current)
        ]
        current = d / FILL_CSV
        fill: dict[float, list[float]] = defaultdict(list)
        for r in _rows(current):
            fill[float(r["fill_pct"])].append(float(r["pod_startup_seconds"]))
        result.fill_levels = dict(fill)
    except RunDirError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise RunDirError(f"{current}: malformed ({exc!r})") from None
    return result

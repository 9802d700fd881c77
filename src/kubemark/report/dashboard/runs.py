"""Finding runs: every sub-directory of the runs directories, read as a kubemark run, a clusterloader2 run, or
a broken one with the reason.

- kubemark run: has `summary.json` (written by `kubemark run`); the table reads only that file (and an optional
  `labels.json`), never the sample CSVs, so listing hundreds of runs stays fast.
- clusterloader2 run: no summary.json, but summary files named `<Summary>_<test>_<RFC3339>.json`; its SLO
  counts are the dashboard's own judgement of its figures against the default SLOs, its wall time junit.xml's.
- anything else (empty, half-written, unreadable, malformed, a symlink leading out of the runs directory) is
  listed as broken, with the reason.

`RunIndex` re-lists the directories on every call, so new runs appear without a restart; what it parsed is
cached per run directory and re-read when any file in it changes (name, size or mtime).
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from kubemark import codec
from kubemark.measure.results import Verdict
from kubemark.measure.slo import SLOThresholds
from kubemark.report.dashboard.metrics import MetricValue, metric_threshold, summary_metrics, verdict_name
from kubemark.report.dashboard.summary_files import SummaryFile, SummaryFileError, find_summary_files, load_summary

__all__ = ["RunIndex", "RunInfo", "RunKind", "RunMetrics"]

SUMMARY = "summary.json"
LABELS = "labels.json"
REPORT = "report.html"
JUNIT = "junit.xml"
# summary.json parameters shown as labels when present (a CI job can also drop a labels.json into the run).
LABEL_PARAMETERS = ("version", "kubemark_version", "git", "git_commit", "git_sha", "commit", "branch", "cluster")
_CSV_NAMES = ("pod_startup.csv", "api_calls.csv", "scheduling_throughput.csv", "resource_usage.csv")

Signature = tuple[tuple[str, int, int], ...]


class RunKind(StrEnum):
    KUBEMARK = "kubemark"
    CLUSTERLOADER2 = "clusterloader2"
    BROKEN = "broken"


@dataclass(frozen=True)
class RunInfo:
    """One row of the runs table."""

    root: int  # index of the runs directory it was found in
    name: str  # directory name inside it
    path: Path
    kind: RunKind
    test: str = ""
    nodes: int | None = None
    start: float | None = None  # unix s
    wall: float | None = None  # s
    slos_passed: int = 0
    slos_failed: int = 0
    failed_steps: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    error: str = ""  # why a broken run is broken
    warning: str = ""  # a problem that does not stop the run from being shown
    summary_files: tuple[SummaryFile, ...] = ()
    thresholds: Mapping[str, float] = field(default_factory=dict)  # SLO verdict name -> threshold the run used
    has_report: bool = False

    @property
    def id(self) -> str:
        return f"{self.root}/{self.name}"

    @property
    def group(self) -> tuple[str, int | None]:
        """Runs of one test at one size: the trend view plots one group unless asked to mix."""
        return (self.test, self.nodes)

    @property
    def passed(self) -> bool:
        return self.kind is not RunKind.BROKEN and self.slos_failed == 0 and self.failed_steps == 0


@dataclass(frozen=True)
class RunMetrics:
    """A run's figures from its summary files, and the files that could not be read."""

    values: Mapping[str, MetricValue]
    errors: tuple[str, ...] = ()


@dataclass
class _Entry:
    signature: Signature
    info: RunInfo
    metrics: RunMetrics | None = None


def _files(path: Path) -> dict[str, os.stat_result]:
    out = {}
    with os.scandir(path) as it:
        for entry in it:
            if entry.is_file():
                out[entry.name] = entry.stat()
    return out


def _labels(values: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for mapping in values:
        for key, value in mapping.items():
            if isinstance(value, str | int | float | bool):
                out[str(key)] = str(value)
    return out


def _labels_file(path: Path) -> tuple[dict[str, Any], str]:
    if not (path / LABELS).is_file():
        return {}, ""
    try:
        data = codec.loads((path / LABELS).read_bytes())
    except (OSError, codec.JSONDecodeError) as exc:
        return {}, f"{LABELS}: {exc}"
    if not isinstance(data, dict):
        return {}, f"{LABELS}: expected an object of strings"
    return data, ""


def _nodes(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _kubemark_run(root: int, name: str, path: Path, files: Mapping[str, os.stat_result]) -> RunInfo:
    try:
        summary = codec.loads((path / SUMMARY).read_bytes())
    except OSError as exc:
        return RunInfo(root, name, path, RunKind.BROKEN, error=f"{SUMMARY}: {exc.strerror or exc}")
    except codec.JSONDecodeError as exc:
        return RunInfo(root, name, path, RunKind.BROKEN, error=f"{SUMMARY}: invalid JSON (half-written?): {exc}")
    try:
        test = str(summary["test"])
        start, end = float(summary["start"]), float(summary["end"])
        parameters = dict(summary.get("parameters") or {})
        verdicts = [Verdict.from_dict(v) for v in summary.get("verdicts") or []]
        failed_steps = sum(1 for s in summary.get("steps") or [] if s.get("error"))
        labels = summary.get("labels") or {}
        if not isinstance(labels, dict):
            raise TypeError("labels: expected an object")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return RunInfo(root, name, path, RunKind.BROKEN, error=f"{SUMMARY}: malformed ({exc!r})")
    extra, warning = _labels_file(path)
    return RunInfo(
        root,
        name,
        path,
        RunKind.KUBEMARK,
        test=test,
        nodes=_nodes(parameters.get("nodes")),
        start=start,
        wall=max(0.0, end - start),
        slos_passed=sum(1 for v in verdicts if v.passed),
        slos_failed=sum(1 for v in verdicts if not v.passed),
        failed_steps=failed_steps,
        labels=_labels([labels, {k: parameters[k] for k in LABEL_PARAMETERS if k in parameters}, extra]),
        warning=warning,
        summary_files=tuple(find_summary_files(files, test)),
        thresholds={v.name: v.threshold for v in verdicts},
        has_report=REPORT in files,
    )


def _junit(path: Path) -> tuple[float | None, int]:
    """clusterloader2's junit.xml: the suite's time and the failed test cases (steps)."""
    try:
        suite = ET.parse(path / JUNIT).getroot()
    except (OSError, ET.ParseError):
        return None, 0
    inner = suite.find("testsuite") if suite.tag == "testsuites" else None
    if inner is not None:
        suite = inner
    try:
        wall = float(suite.get("time", ""))
    except ValueError:
        wall = None
    return wall, len(suite.findall(".//failure")) + len(suite.findall(".//error"))


def _read_metrics(path: Path, files: Iterable[SummaryFile]) -> tuple[RunMetrics, list[Mapping[str, Any]]]:
    values: dict[str, MetricValue] = {}
    errors: list[str] = []
    labels: list[Mapping[str, Any]] = []
    for f in files:
        try:
            content = load_summary(path / f.name)
        except SummaryFileError as exc:
            errors.append(str(exc))
            continue
        if isinstance(content, Mapping) and isinstance(content.get("labels"), Mapping):
            labels.append(content["labels"])
        values.update(summary_metrics(f.summary, content))
    return RunMetrics(values, tuple(errors)), labels


def _judge(metrics: Mapping[str, MetricValue], defaults: SLOThresholds) -> tuple[int, int]:
    """(passed, failed) of the default SLOs over a clusterloader2 run's figures, one per verdict name."""
    ok: dict[str, bool] = {}
    for name, m in metrics.items():
        verdict = verdict_name(name)
        threshold = metric_threshold(name, {}, defaults)
        if verdict is None or threshold is None or not math.isfinite(m.value):
            continue
        good = m.value <= threshold if m.better == "lower" else m.value >= threshold
        ok[verdict] = ok.get(verdict, True) and good
    return sum(ok.values()), sum(not v for v in ok.values())


def _cl2_run(
    root: int, name: str, path: Path, summaries: list[SummaryFile], defaults: SLOThresholds
) -> tuple[RunInfo, RunMetrics]:
    metrics, labels = _read_metrics(path, summaries)
    if len(metrics.errors) == len(summaries):
        info = RunInfo(root, name, path, RunKind.BROKEN, error="; ".join(metrics.errors))
        return info, metrics
    passed, failed = _judge(metrics.values, defaults)
    wall, failed_steps = _junit(path)
    extra, warning = _labels_file(path)
    info = RunInfo(
        root,
        name,
        path,
        RunKind.CLUSTERLOADER2,
        test=summaries[0].test,
        start=min(f.when for f in summaries).timestamp(),
        wall=wall,
        slos_passed=passed,
        slos_failed=failed,
        failed_steps=failed_steps,
        labels=_labels([*labels, extra]),
        warning="; ".join([*metrics.errors, warning] if warning else metrics.errors),
        summary_files=tuple(summaries),
        has_report=(path / REPORT).is_file(),
    )
    return info, metrics


def _not_a_run(files: Mapping[str, os.stat_result]) -> str:
    if not files:
        return "empty directory (a run still starting?)"
    if any(n in files for n in _CSV_NAMES):
        return f"half-written: sample files but no {SUMMARY} yet (a run in progress, or one that was killed)"
    return f"not a run: no {SUMMARY} and no clusterloader2 summary files (<Summary>_<test>_<RFC3339>.json)"


class RunIndex:
    """The runs under a fixed list of runs directories (read-only); one per dashboard application."""

    def __init__(self, roots: Sequence[str | Path], *, thresholds: SLOThresholds | None = None) -> None:
        self.roots: tuple[Path, ...] = tuple(Path(r).expanduser().resolve() for r in roots)
        self.thresholds = thresholds or SLOThresholds()
        self._cache: dict[Path, _Entry] = {}

    def problems(self) -> list[str]:
        """Runs directories that cannot be listed, or that look like one run rather than a directory of runs."""
        out = []
        for root in self.roots:
            if not root.is_dir():
                out.append(f"{root}: not a directory")
            elif (root / SUMMARY).is_file() or find_summary_files(p.name for p in root.glob("*.json")):
                out.append(f"{root} looks like a run directory itself: pass the directory that holds it")
        return out

    def scan(self) -> list[RunInfo]:
        """Every run directory under the roots, freshly listed (parsed files come from the cache when unchanged)."""
        runs: list[RunInfo] = []
        seen: set[Path] = set()
        for i, root in enumerate(self.roots):
            try:
                with os.scandir(root) as it:
                    names = sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir())
            except OSError:
                continue
            for name in names:
                path = root / name
                seen.add(path)
                runs.append(self._load(i, name, path).info)
        for stale in set(self._cache) - seen:
            del self._cache[stale]
        return runs

    def get(self, run_id: str) -> RunInfo | None:
        """The run of an id `<root>/<name>` as `RunInfo.id` gives it; None for anything else."""
        root_text, _, name = run_id.partition("/")
        if not root_text.isdigit() or int(root_text) >= len(self.roots):
            return None
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name or name.startswith("."):
            return None
        path = self.roots[int(root_text)] / name
        if not path.is_dir():
            return None
        return self._load(int(root_text), name, path).info

    def metrics(self, run: RunInfo) -> RunMetrics:
        """The run's figures from its summary files (cached until a file in the run directory changes)."""
        if run.kind is RunKind.BROKEN:
            return RunMetrics({}, (run.error,))
        entry = self._load(run.root, run.name, run.path)
        if entry.metrics is None:
            entry.metrics, _ = _read_metrics(entry.info.path, entry.info.summary_files)
        return entry.metrics

    def resolve_file(self, run: RunInfo, relative: str) -> Path | None:
        """A regular file inside the run directory (after resolving symlinks and `..`), else None."""
        if not relative or "\0" in relative:
            return None
        root = self.roots[run.root]
        base = run.path.resolve()
        try:
            candidate = (base / relative).resolve()
        except (OSError, RuntimeError):
            return None
        if not base.is_relative_to(root) or not candidate.is_relative_to(base) or not candidate.is_file():
            return None
        return candidate

    def _load(self, root: int, name: str, path: Path) -> _Entry:
        if not path.resolve().is_relative_to(self.roots[root]):
            info = RunInfo(root, name, path, RunKind.BROKEN, error="a symlink to outside the runs directory: not read")
            return _Entry((), info)
        try:
            files = _files(path)
        except OSError as exc:
            return _Entry((), RunInfo(root, name, path, RunKind.BROKEN, error=f"cannot list: {exc.strerror or exc}"))
        signature = tuple(sorted((n, s.st_mtime_ns, s.st_size) for n, s in files.items()))
        cached = self._cache.get(path)
        if cached is not None and cached.signature == signature and cached.info.root == root:
            return cached
        if SUMMARY in files:
            entry = _Entry(signature, _kubemark_run(root, name, path, files))
        elif summaries := find_summary_files(files):
            info, metrics = _cl2_run(root, name, path, summaries, self.thresholds)
            entry = _Entry(signature, info, metrics)
        else:
            entry = _Entry(signature, RunInfo(root, name, path, RunKind.BROKEN, error=_not_a_run(files)))
        self._cache[path] = entry
        return entry

"""Filtering and sorting the runs table, from the page's query string (so every view is a plain link).

Query parameters: `q` (text in the name, test, labels or error), `test`, `nodes` (a number or `-` for unknown),
`kind` (kubemark, clusterloader2, broken), `status` (pass, fail, broken), `sort` (one of SORT_KEYS) and
`desc` (1/0). Default: newest first. Runs without a value for the sort key come last either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kubemark.report.dashboard.runs import RunInfo, RunKind

__all__ = ["SORT_KEYS", "RunsQuery"]

_SORT: dict[str, Callable[[RunInfo], Any]] = {
    "name": lambda r: r.name,
    "kind": lambda r: r.kind.value,
    "test": lambda r: r.test or None,
    "nodes": lambda r: r.nodes,
    "start": lambda r: r.start,
    "wall": lambda r: r.wall,
    "slos": lambda r: None if r.kind is RunKind.BROKEN else (r.slos_failed + r.failed_steps, -r.slos_passed),
    "labels": lambda r: " ".join(f"{k}={v}" for k, v in sorted(r.labels.items())) or None,
}
SORT_KEYS = tuple(_SORT)


def _status(run: RunInfo) -> str:
    if run.kind is RunKind.BROKEN:
        return "broken"
    return "pass" if run.passed else "fail"


@dataclass(frozen=True)
class RunsQuery:
    text: str = ""
    test: str = ""
    nodes: str = ""
    kind: str = ""
    status: str = ""
    sort: str = "start"
    desc: bool = True

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> RunsQuery:
        sort = params.get("sort", "start")
        return cls(
            text=params.get("q", "").strip(),
            test=params.get("test", ""),
            nodes=params.get("nodes", ""),
            kind=params.get("kind", ""),
            status=params.get("status", ""),
            sort=sort if sort in _SORT else "start",
            desc=params.get("desc", "1") != "0",
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """The query string of this query with `changes` (only non-default values)."""
        q = replace(self, **changes)
        out = {"q": q.text, "test": q.test, "nodes": q.nodes, "kind": q.kind, "status": q.status}
        out = {k: v for k, v in out.items() if v}
        if q.sort != "start" or not q.desc:
            out["sort"] = q.sort
            out["desc"] = "1" if q.desc else "0"
        return out

    def matches(self, run: RunInfo) -> bool:
        if self.test and run.test != self.test:
            return False
        if self.nodes and ("-" if run.nodes is None else str(run.nodes)) != self.nodes:
            return False
        if self.kind and run.kind.value != self.kind:
            return False
        if self.status and _status(run) != self.status:
            return False
        if self.text:
            needle = self.text.lower()
            hay = [run.name, run.test, run.kind.value, run.error, *(f"{k}={v}" for k, v in run.labels.items())]
            return any(needle in h.lower() for h in hay)
        return True

    def apply(self, runs: Iterable[RunInfo]) -> list[RunInfo]:
        """The matching runs in the asked order (ties by name, so the order is stable)."""
        key = _SORT[self.sort]
        chosen = sorted((r for r in runs if self.matches(r)), key=lambda r: r.id)
        present = [r for r in chosen if key(r) is not None]
        missing = [r for r in chosen if key(r) is None]
        present.sort(key=key, reverse=self.desc)
        return present + missing

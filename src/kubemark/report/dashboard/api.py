"""The JSON forms of the dashboard's views (`/api/runs`, `/api/trend`, `/api/compare`), for scripts and CI."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from kubemark.report.dashboard.comparing import CompareOutcome
from kubemark.report.dashboard.runs import RunInfo
from kubemark.report.dashboard.trend import Trend, format_group

__all__ = ["compare_json", "run_json", "trend_json"]


def run_json(run: RunInfo) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "path": str(run.path),
        "kind": run.kind.value,
        "test": run.test,
        "nodes": run.nodes,
        "start": run.start,
        "wall_seconds": run.wall,
        "slos_passed": run.slos_passed,
        "slos_failed": run.slos_failed,
        "failed_steps": run.failed_steps,
        "passed": run.passed,
        "labels": dict(run.labels),
        "error": run.error,
        "warning": run.warning,
        "has_report": run.has_report,
    }


def trend_json(trend: Trend) -> dict[str, Any]:
    return {
        "metric": trend.metric,
        "unit": trend.unit,
        "better": trend.better,
        "group": format_group(trend.group) if trend.group else None,
        "groups": {format_group(g): n for g, n in trend.groups.items()},
        "metrics": trend.metrics,
        "points": [
            {"run": p.run.id, "start": p.run.start, "value": p.value, "threshold": p.threshold} for p in trend.points
        ],
        "skipped": [{"run": r.id, "reason": reason} for r, reason in trend.skipped],
    }


def compare_json(a: RunInfo, b: RunInfo, outcome: CompareOutcome) -> dict[str, Any]:
    cmp = outcome.comparison
    return {
        "a": a.id,
        "b": b.id,
        "error": outcome.error,
        "source": outcome.source,
        "threshold_pct": cmp.threshold_pct if cmp else None,
        "deltas": [asdict(d) for d in cmp.deltas] if cmp else [],
        "regressions": [d.metric for d in cmp.regressions] if cmp else [],
    }

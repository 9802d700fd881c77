"""APIResponsivenessPrometheus (alias APIResponsiveness): API-call latency SLIs over the measurement's window.

Server side when the API server's /metrics answers: the delta of its request-latency histograms between start and
gather (and, with priority and fairness, each level's dispatched/rejected requests and queue wait). Otherwise
client side: the calls the player made in the window, from the run's recorder.

As clusterloader2's measurement, each gather writes the PerfData summary `summaryName` (default
"APIResponsivenessPrometheus"; version "v1", one item per (verb, resource, subresource, scope) with Perc50/90/99
in ms and the labels Verb, Resource, Subresource, Scope, Count, SlowCount, highest Perc99 first), and judges the
calls only with `enableViolations: true` — clusterloader2 logs the violations of the others and passes, so a
config with two identifiers of this Method (density: APIResponsivenessPrometheus and
APIResponsivenessPrometheusSimple) gets verdicts from the one that enables them. A call passes when its perc99 is
within its threshold (`customThresholds` entries by resource/subresource/verb/scope, else the test's SLO), or when
`allowedSlowCalls` > 0 and no more than that many of its calls were slow (SlowCount: above 1 s, 5 s for
namespace/resource LISTs, 30 s for cluster LISTs). `useSimpleLatencyQuery` is accepted: kubemark's quantiles are
always over the whole window (clusterloader2's simple query), since it has no Prometheus recording rules.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import yaml

from kubemark.kube.durations import parse_duration
from kubemark.measure.api_responsiveness import (
    Histogram,
    fast_bound,
    histogram_delta,
    parse_request_histograms,
    scrape_text,
    slow_count,
    summarize_histograms,
)
from kubemark.measure.flowcontrol import flowcontrol_delta, parse_flowcontrol
from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.percentiles import percentile
from kubemark.measure.results import ApiCallKey, MeasurementResult, ServerLatency, SummaryFile, Verdict
from kubemark.measure.slo import EXCLUDED_SUBRESOURCES, api_threshold

__all__ = ["APICallLatency", "APIResponsiveness", "APIResponsivenessPrometheus", "parse_custom_thresholds"]

log = logging.getLogger(__name__)

SUMMARY = "APIResponsivenessPrometheus"
# Identifiers whose verdicts keep the plain names (kubemark's own configs); any other identifier is appended,
# so two identifiers that both enable violations never give two verdicts of one name.
_PLAIN_IDENTIFIERS = frozenset({"APIResponsiveness", "APIResponsivenessPrometheus"})


@dataclass(frozen=True)
class ApiCallMetric:
    """One (verb, resource, subresource, scope) over the window, as clusterloader2's apiCallMetric (seconds)."""

    key: ApiCallKey
    count: int
    p50: float
    p90: float
    p99: float
    slow: int


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"{name}: expected a bool, got {value!r}")


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"{name}: expected an integer, got {value!r}") from None


def parse_custom_thresholds(value: Any) -> dict[ApiCallKey, float]:
    """clusterloader2's `customThresholds`: a YAML list (usually a string, from YamlQuote) of {verb, resource,
    subresource, scope, threshold}; every threshold must be a positive duration."""
    if value is None or value == "":
        return {}
    entries = yaml.safe_load(value) if isinstance(value, str) else value
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise ValueError(f"customThresholds: expected a list of entries, got {entries!r}")
    out: dict[ApiCallKey, float] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise ValueError(f"customThresholds: expected an entry {{verb, resource, ...}}, got {entry!r}")
        raw = entry.get("threshold")
        threshold = parse_duration(raw) if raw not in (None, "", 0) else 0.0
        if threshold <= 0:
            raise ValueError("customThresholds: custom threshold must be set to a positive time duration")
        key = ApiCallKey(
            str(entry.get("verb") or ""),
            str(entry.get("resource") or ""),
            str(entry.get("subresource") or ""),
            str(entry.get("scope") or ""),
        )
        out[key] = threshold
    return out


def _server_metrics(deltas: Mapping[ApiCallKey, Histogram]) -> list[ApiCallMetric]:
    latencies: list[ServerLatency] = summarize_histograms(deltas)
    return [
        ApiCallMetric(lat.key, lat.count, lat.p50, lat.p90, lat.p99, slow_count(lat.key, deltas[lat.key]))
        for lat in latencies
    ]


def _client_metrics(calls: Mapping[ApiCallKey, Sequence[float]]) -> list[ApiCallMetric]:
    out = []
    for key, samples in sorted(calls.items()):
        if not key.resource or key.verb in ("WATCH", "CONNECT") or key.subresource in EXCLUDED_SUBRESOURCES:
            continue
        ordered = sorted(samples)
        slow = sum(1 for s in ordered if s > fast_bound(key))
        out.append(
            ApiCallMetric(
                key,
                len(ordered),
                percentile(ordered, 50, presorted=True),
                percentile(ordered, 90, presorted=True),
                percentile(ordered, 99, presorted=True),
                slow,
            )
        )
    return out


def perfdata(metrics: Sequence[ApiCallMetric]) -> dict[str, Any]:
    """clusterloader2's apiCallMetrics.ToPerfData: version v1, ms, highest perc99 first."""
    items = [
        {
            "data": {"Perc50": m.p50 * 1000, "Perc90": m.p90 * 1000, "Perc99": m.p99 * 1000},
            "unit": "ms",
            "labels": {
                "Verb": m.key.verb,
                "Resource": m.key.resource,
                "Subresource": m.key.subresource,
                "Scope": m.key.scope,
                "Count": str(m.count),
                "SlowCount": str(m.slow),
            },
        }
        for m in sorted(metrics, key=lambda m: -m.p99)
    ]
    return {"version": "v1", "dataItems": items}


class APIResponsivenessPrometheus(MeasurementBase):
    method: ClassVar[str] = "APIResponsivenessPrometheus"
    default_violations: ClassVar[bool] = False  # clusterloader2's enableViolations default
    default_summary: ClassVar[str] = SUMMARY

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self._before: str | None = None  # the /metrics text at start; None: client side only
        self._first_call = 0

    @classmethod
    def check_params(cls, action: str | None, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The gather's Params as clusterloader2 reads them, so a malformed one fails before the cluster starts."""
        problems = []
        for name, parse in (
            ("enableViolations", _bool),
            ("useSimpleLatencyQuery", _bool),
            ("allowedSlowCalls", _int),
        ):
            if name in params:
                try:
                    parse(params[name], name)
                except ValueError as exc:
                    problems.append((name, str(exc)))
        try:
            parse_custom_thresholds(params.get("customThresholds"))
        except (ValueError, yaml.YAMLError) as exc:
            problems.append(("customThresholds", str(exc)))
        return problems

    async def start(self, params: Mapping[str, Any]) -> None:
        try:
            self._before = await scrape_text(self.ctx.client)
        except Exception as exc:
            log.warning("cannot scrape the API server's /metrics (%s); using client-side latencies only", exc)
            self._before = None
        self._first_call = len(self.ctx.recorder)

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        enable_violations = _bool(params.get("enableViolations", self.default_violations), "enableViolations")
        allowed_slow = _int(params.get("allowedSlowCalls", 0), "allowedSlowCalls")
        custom = parse_custom_thresholds(params.get("customThresholds"))
        summary_name = str(params.get("summaryName") or self.default_summary)
        ctx, result = self.ctx, MeasurementResult()
        metrics: list[ApiCallMetric] = []
        if self._before is not None:
            try:
                after = await scrape_text(ctx.client)
                deltas = histogram_delta(parse_request_histograms(after), parse_request_histograms(self._before))
                result.server_latency = summarize_histograms(deltas)
                result.flowcontrol = flowcontrol_delta(parse_flowcontrol(after), parse_flowcontrol(self._before))
                metrics = _server_metrics(deltas)
            except Exception as exc:
                log.warning("cannot scrape the API server's /metrics at gather (%s)", exc)
        if not metrics:
            calls: dict[ApiCallKey, list[float]] = {}
            for call in ctx.recorder.calls[self._first_call :]:
                if call.status is not None:
                    calls.setdefault(call.key, []).append(call.seconds)
            metrics = _client_metrics(calls)
        result.summaries.append(self.summary(summary_name, metrics))
        seen = {m.key for m in metrics}
        for key in custom.keys() - seen:
            log.warning("%s: unrecognized custom threshold API call key: %s", self.identifier, key)
        verdicts = [v for m in metrics if (v := self._verdict(m, custom, allowed_slow)) is not None]
        for v in verdicts:
            if not v.passed:
                log.warning("%s: %s", self.identifier, v.detail)
        if enable_violations:
            result.verdicts = verdicts
        return result

    def summary(self, name: str, metrics: Sequence[ApiCallMetric]) -> SummaryFile:
        """The summary file of a gather (this Method's: PerfData)."""
        return SummaryFile(name, perfdata(metrics))

    def _verdict(self, m: ApiCallMetric, custom: Mapping[ApiCallKey, float], allowed_slow: int) -> Verdict | None:
        threshold = custom.get(m.key)
        if threshold is None:
            threshold = api_threshold(m.key, self.ctx.thresholds)
        if threshold is None:
            return None  # no SLO covers this verb
        k = m.key
        sub = f"/{k.subresource}" if k.subresource else ""
        name = f"api_call_latency {k.verb} {k.resource}{sub} {k.scope}"
        if self.identifier not in _PLAIN_IDENTIFIERS:
            name = f"{name} {self.identifier}"
        within_slow = allowed_slow > 0 and m.slow <= allowed_slow
        detail = (
            f"{k.verb} {k.resource}{sub} (scope {k.scope}): perc50 {m.p50 * 1000:.0f}ms, perc90 {m.p90 * 1000:.0f}ms, "
            f"perc99 {m.p99 * 1000:.0f}ms over {m.count} calls ({m.slow} slow); expected perc99 <= "
            f"{threshold * 1000:.0f}ms"
        )
        if allowed_slow > 0:
            detail += f" or at most {allowed_slow} slow calls"
        return Verdict(name, m.p99, threshold, "s", within_slow or m.p99 <= threshold, detail)


class APIResponsiveness(APIResponsivenessPrometheus):
    """clusterloader2's older API latency measurement, on the same figures: its window begins at `reset`
    (clusterloader2 resets the API server's metrics; kubemark takes the scrape it will subtract) or `start`; its
    gather always judges the calls (it had no `enableViolations`) and writes the summary "APIResponsiveness"."""

    method: ClassVar[str] = "APIResponsiveness"
    actions: ClassVar[frozenset[str] | None] = frozenset({"reset", "start", "gather"})
    default_violations: ClassVar[bool] = True
    default_summary: ClassVar[str] = "APIResponsiveness"

    async def act(self, action: str, params: Mapping[str, Any]) -> MeasurementResult | None:
        if action != "reset":
            return await super().act(action, params)
        await self.start(params)
        return None


class APICallLatency(APIResponsivenessPrometheus):
    """clusterloader2's first API latency measurement (2018), on the same figures: `reset` begins the window,
    `gather` (which needs `nodeCount`) writes the summary "APICallLatency" — {"apicalls": [{resource, subresource,
    verb, scope, latency: {Perc50, Perc90, Perc99} in nanoseconds, count}]}, highest perc99 first, events left
    out — and never fails the test: calls over 1 s (LISTs in clusters above 500 nodes: 5 s, cluster-scope ones
    10 s) are only logged, as clusterloader2 did."""

    method: ClassVar[str] = "APICallLatency"
    actions: ClassVar[frozenset[str] | None] = frozenset({"reset", "gather"})
    default_summary: ClassVar[str] = "APICallLatency"

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self._big_cluster = False  # nodeCount > 500: higher LIST thresholds for the log

    @classmethod
    def check_params(cls, action: str | None, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        if action != "gather":
            return []
        if "nodeCount" not in params:
            return [("nodeCount", "APICallLatency's gather needs nodeCount")]
        try:
            _int(params["nodeCount"], "nodeCount")
        except ValueError as exc:
            return [("nodeCount", str(exc))]
        return []

    async def act(self, action: str, params: Mapping[str, Any]) -> MeasurementResult | None:
        if action != "reset":
            return await super().act(action, params)
        await self.start(params)
        return None

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        node_count = _int(params.get("nodeCount"), "nodeCount")
        self._big_cluster = node_count > 500
        return await super().gather({**params, "enableViolations": False, "summaryName": self.default_summary})

    def summary(self, name: str, metrics: Sequence[ApiCallMetric]) -> SummaryFile:
        calls = []
        for m in sorted((m for m in metrics if m.key.resource != "events"), key=lambda m: -m.p99):
            threshold = 1.0
            if m.key.verb == "LIST" and self._big_cluster:
                threshold = 10.0 if m.key.scope == "cluster" else 5.0
            if m.p99 > threshold:
                log.warning("%s: WARNING Top latency metric: %s perc99 %.3fs", self.identifier, m.key, m.p99)
            calls.append(
                {
                    "resource": m.key.resource,
                    "subresource": m.key.subresource,
                    "verb": m.key.verb,
                    "scope": m.key.scope,
                    "latency": {f"Perc{p}": round(v * 1e9) for p, v in ((50, m.p50), (90, m.p90), (99, m.p99))},
                    "count": m.count,
                }
            )
        return SummaryFile(name, {"apicalls": calls})

"""APIResponsiveness: client-side latencies of the load generator's calls, and server-side latency histograms.

Client side: `ApiCallRecorder.on_request` is a RestClient `on_request` hook; it keeps every answered call.
Server side: the API server's /metrics is scraped at start and at gather; the delta of
`apiserver_request_sli_duration_seconds` (as clusterloader2: the latency without priority-and-fairness queue
wait and webhooks; `apiserver_request_duration_seconds` from servers that lack it) per (verb, resource,
subresource, scope) gives the calls made in between, and
percentiles are interpolated inside histogram buckets as Prometheus' histogram_quantile does. WATCH and CONNECT
calls and streaming subresources (proxy, log, exec, ...) are not API-call-latency SLIs and are left out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from kubemark.client import RequestRecord, RestClient
from kubemark.measure.results import ApiCall, ApiCallKey, ServerLatency, Verdict
from kubemark.measure.slo import EXCLUDED_SUBRESOURCES, SLOThresholds, api_threshold

__all__ = [
    "ApiCallRecorder",
    "Histogram",
    "fast_bound",
    "histogram_delta",
    "histogram_quantile",
    "parse_request_histograms",
    "server_verdicts",
    "slow_count",
]

DURATION_METRIC = "apiserver_request_duration_seconds"
SLI_METRIC = "apiserver_request_sli_duration_seconds"
EXCLUDED_VERBS = frozenset({"WATCH", "CONNECT"})


class ApiCallRecorder:
    """Collects `ApiCall`s from a RestClient's `on_request` hook (answered and unanswered)."""

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []

    def on_request(self, record: RequestRecord) -> None:
        self.calls.append(
            ApiCall(
                record.started_at,
                record.verb,
                record.resource,
                record.subresource,
                record.namespace_scope,
                record.status,
                record.seconds,
            )
        )

    def __len__(self) -> int:
        return len(self.calls)


@dataclass
class Histogram:
    """Cumulative bucket counts by upper bound (the last bound is +Inf), and the total count."""

    buckets: dict[float, float]
    count: float

    def minus(self, earlier: Histogram | None) -> Histogram:
        if earlier is None:
            return Histogram(dict(self.buckets), self.count)
        return Histogram(
            {le: n - earlier.buckets.get(le, 0.0) for le, n in self.buckets.items()}, self.count - earlier.count
        )


def parse_request_histograms(text: str, metric: str | None = None) -> dict[ApiCallKey, Histogram]:
    """Histograms of `metric` from a Prometheus text exposition, summed over labels other than the key's.

    Without `metric`: the SLI histogram when the server exposes it, else the request-duration one.
    """
    families = {f.name: f for f in text_string_to_metric_families(text) if f.name in (SLI_METRIC, DURATION_METRIC)}
    if metric is None:
        metric = SLI_METRIC if SLI_METRIC in families else DURATION_METRIC
    out: dict[ApiCallKey, Histogram] = {}
    for family in families.values():
        if family.name != metric:
            continue
        buckets: dict[ApiCallKey, dict[float, float]] = defaultdict(lambda: defaultdict(float))
        counts: dict[ApiCallKey, float] = defaultdict(float)
        for sample in family.samples:
            labels = sample.labels
            key = ApiCallKey(
                labels.get("verb", ""),
                labels.get("resource", ""),
                labels.get("subresource", ""),
                labels.get("scope", ""),
            )
            if sample.name.endswith("_bucket"):
                buckets[key][float(labels["le"])] += sample.value
            elif sample.name.endswith("_count"):
                counts[key] += sample.value
        for key, b in buckets.items():
            out[key] = Histogram(dict(b), counts.get(key, b.get(math.inf, 0.0)))
    return out


def histogram_delta(
    end: Mapping[ApiCallKey, Histogram], start: Mapping[ApiCallKey, Histogram]
) -> dict[ApiCallKey, Histogram]:
    """Per key, the calls observed between the two scrapes (keys with no new calls are dropped)."""
    out = {}
    for key, hist in end.items():
        delta = hist.minus(start.get(key))
        if delta.count > 0:
            out[key] = delta
    return out


def histogram_quantile(q: float, hist: Histogram) -> float:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding the q-th rank.

    A rank in the +Inf bucket returns the highest finite bound (the true value is only known to be above it).
    """
    if hist.count <= 0:
        return 0.0
    bounds = sorted(hist.buckets)
    rank = q * hist.count
    prev_bound, prev_count = 0.0, 0.0
    for le in bounds:
        count = hist.buckets[le]
        if count >= rank:
            if math.isinf(le):
                finite = [b for b in bounds if not math.isinf(b)]
                return finite[-1] if finite else 0.0
            if count == prev_count:
                return le
            return prev_bound + (le - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = le, count
    finite = [b for b in bounds if not math.isinf(b)]
    return finite[-1] if finite else 0.0


def _is_sli(key: ApiCallKey) -> bool:
    # Non-resource paths (/metrics, /healthz, /version) have no resource and are not API-call SLIs.
    return bool(key.resource) and key.verb not in EXCLUDED_VERBS and key.subresource not in EXCLUDED_SUBRESOURCES


def fast_bound(key: ApiCallKey) -> float:
    """The latency (s) under which clusterloader2 counts a call as fast for its SlowCount: 1 s for GETs and
    mutating calls, 5 s for LISTs at namespace or resource scope, 30 s for cluster-scope LISTs."""
    if key.verb == "LIST":
        return 30.0 if key.scope == "cluster" else 5.0
    return 1.0


def slow_count(key: ApiCallKey, hist: Histogram) -> int:
    """Calls above `fast_bound` (clusterloader2: count minus the increase of that bucket); 0 when the histogram
    has no bucket at that bound, as clusterloader2's query then finds no sample to subtract."""
    fast = hist.buckets.get(fast_bound(key))
    if fast is None:
        return 0
    return max(0, round(hist.count - fast))


def summarize_histograms(deltas: Mapping[ApiCallKey, Histogram]) -> list[ServerLatency]:
    return [
        ServerLatency(
            key,
            round(h.count),
            histogram_quantile(0.50, h),
            histogram_quantile(0.90, h),
            histogram_quantile(0.99, h),
        )
        for key, h in sorted(deltas.items())
        if _is_sli(key)
    ]


def server_verdicts(latencies: Iterable[ServerLatency], thresholds: SLOThresholds) -> list[Verdict]:
    """One verdict per SLI key, named as `check_api_latency`'s so a report reads the same either way."""
    verdicts = []
    for lat in latencies:
        threshold = api_threshold(lat.key, thresholds)
        if threshold is None:
            continue
        k = lat.key
        sub = f"/{k.subresource}" if k.subresource else ""
        detail = (
            f"{k.verb} {k.resource}{sub} (scope {k.scope}), server-side histogram: perc50 {lat.p50 * 1000:.0f}ms, "
            f"perc90 {lat.p90 * 1000:.0f}ms, perc99 {lat.p99 * 1000:.0f}ms over {lat.count} calls; "
            f"expected perc99 <= {threshold * 1000:.0f}ms"
        )
        verdicts.append(
            Verdict(
                f"api_call_latency {k.verb} {k.resource}{sub} {k.scope}",
                lat.p99,
                threshold,
                "s",
                lat.p99 <= threshold,
                detail,
            )
        )
    return verdicts


def server_perfdata(latencies: Sequence[ServerLatency]) -> dict[str, object]:
    """PerfData (ms) of the server-side percentiles, labelled like APIResponsivenessPrometheus."""
    items = [
        {
            "data": {"Perc50": lat.p50 * 1000, "Perc90": lat.p90 * 1000, "Perc99": lat.p99 * 1000},
            "unit": "ms",
            "labels": {
                "Count": str(lat.count),
                "Resource": lat.key.resource,
                "Scope": lat.key.scope,
                "Subresource": lat.key.subresource,
                "Verb": lat.key.verb,
            },
        }
        for lat in latencies
    ]
    return {"version": "1.0", "dataItems": items}


async def scrape_text(client: RestClient, path: str = "/metrics") -> str:
    """GET the API server's metrics (the Prometheus text exposition)."""
    text = await client.request("GET", path, rate_limited=False)
    if isinstance(text, bytes):
        text = text.decode()
    return str(text or "")


async def scrape(client: RestClient, path: str = "/metrics") -> dict[ApiCallKey, Histogram]:
    """GET the API server's metrics and parse the request-latency histograms."""
    return parse_request_histograms(await scrape_text(client, path))

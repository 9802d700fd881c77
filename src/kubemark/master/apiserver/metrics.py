"""kube-apiserver's Prometheus metrics, with upstream's names, labels, buckets and verb conventions.

clusterloader2 computes API responsiveness from `apiserver_request_sli_duration_seconds` (and
`apiserver_request_duration_seconds`) exactly as against a real apiserver, so the label values must match
upstream's `cleanVerb`: the HTTP method with GET split into GET/LIST/WATCH, PATCH with an apply body
reported as APPLY, and scope resource|namespace|cluster. Each instance owns its registry; observing a
request costs about a microsecond: the request series are plain counters rendered by a custom collector
(single event-loop thread, so no locks), not prometheus-client children.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

from kubemark.master.apiserver.request_info import RequestInfo

COMPONENT = "apiserver"

# k8s.io/apiserver/pkg/endpoints/metrics: apiserver_request_duration_seconds.
REQUEST_DURATION_BUCKETS = (
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60,
)  # fmt: skip
# apiserver_request_sli_duration_seconds starts at 50 ms upstream.
SLI_DURATION_BUCKETS = (
    0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60,
)  # fmt: skip
ETCD_DURATION_BUCKETS = REQUEST_DURATION_BUCKETS
# k8s.io/apiserver/pkg/util/flowcontrol/metrics: apiserver_flowcontrol_request_wait_duration_seconds.
FLOWCONTROL_WAIT_BUCKETS = (0, 0.005, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30)

READ_ONLY = "readOnly"
MUTATING = "mutating"

# RequestInfo verb → upstream metrics verb for resource requests (deletecollection is a DELETE upstream).
RESOURCE_METRIC_VERBS = {
    "get": "GET",
    "list": "LIST",
    "watch": "WATCH",
    "create": "POST",
    "update": "PUT",
    "patch": "PATCH",
    "delete": "DELETE",
    "deletecollection": "DELETE",
}
_VALID_METHOD_VERBS = frozenset(
    {"APPLY", "CONNECT", "CREATE", "DELETE", "DELETECOLLECTION", "GET", "LIST", "PATCH", "POST", "PROXY", "PUT"}
    | {"UPDATE", "WATCH", "WATCHLIST", "HEAD", "OPTIONS"}
)

_REQUEST_LABELS = ("verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component")
_SLI_LABELS = ("verb", "group", "version", "resource", "subresource", "scope", "component")


def metrics_verb(info: RequestInfo, *, apply: bool = False) -> str:
    """The `verb` label upstream would report for this request."""
    if info.is_resource_request:
        verb = RESOURCE_METRIC_VERBS.get(info.verb, "other")
        if apply and verb == "PATCH":
            return "APPLY"
        return verb
    verb = info.verb.upper()
    return verb if verb in _VALID_METHOD_VERBS else "other"


def request_kind(info: RequestInfo) -> str:
    """max-in-flight's split: get/list/watch (and non-resource GET/HEAD) are read-only."""
    return READ_ONLY if info.verb in ("get", "list", "watch", "head") else MUTATING


class _Series:
    """Counts by code and two latency histograms for one (verb, dry_run, group, version, resource,
    subresource, scope); bucket counts are per-bucket here and made cumulative when collected."""

    __slots__ = ("by_code", "duration_buckets", "duration_sum", "labels", "sli_buckets", "sli_count", "sli_sum")

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.labels = labels
        self.by_code: dict[int, int] = {}
        self.duration_buckets = [0] * (len(REQUEST_DURATION_BUCKETS) + 1)
        self.duration_sum = 0.0
        self.sli_buckets = [0] * (len(SLI_DURATION_BUCKETS) + 1)
        self.sli_sum = 0.0
        self.sli_count = 0


def _histogram_samples(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    samples: list[tuple[str, float]] = []
    total = 0
    for bound, n in zip(bounds, counts, strict=False):
        total += n
        samples.append((_le(bound), total))
    samples.append(("+Inf", total + counts[-1]))
    return samples


def _le(bound: float) -> str:
    # Match prometheus-client/Go formatting of le labels: "1.0", "0.005", "60.0".
    return repr(float(bound))


class _RequestCollector(Collector):
    """Renders apiserver_request_total, apiserver_request_duration_seconds and ..._sli_duration_seconds."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, ...], _Series] = {}

    def collect(self) -> Iterator[Metric]:
        total = CounterMetricFamily(
            "apiserver_request_total",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, "
            "scope, component, and HTTP response code.",
            labels=(*_REQUEST_LABELS, "code"),
        )
        duration = HistogramMetricFamily(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, "
            "subresource, scope and component.",
            labels=_REQUEST_LABELS,
        )
        sli = HistogramMetricFamily(
            "apiserver_request_sli_duration_seconds",
            "Response latency distribution (not counting webhook duration and priority & fairness queue wait "
            "times) in seconds for each verb, group, version, resource, subresource, scope and component.",
            labels=_SLI_LABELS,
        )
        for series in list(self.series.values()):
            labels = [*series.labels, COMPONENT]
            for code, n in series.by_code.items():
                total.add_metric([*labels, str(code)], n)
            if any(series.duration_buckets):
                duration.add_metric(
                    labels, _histogram_samples(REQUEST_DURATION_BUCKETS, series.duration_buckets), series.duration_sum
                )
            if series.sli_count:
                sli_labels = [labels[0], *labels[2:]]  # the SLI histogram has no dry_run label upstream
                sli.add_metric(sli_labels, _histogram_samples(SLI_DURATION_BUCKETS, series.sli_buckets), series.sli_sum)
        yield total
        yield duration
        yield sli


class APIServerMetrics:
    """Owns a CollectorRegistry with kube-apiserver's metrics; `render()` serves /metrics."""

    def __init__(self, *, process_metrics: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self._requests = _RequestCollector()
        r.register(self._requests)
        self.current_inflight = Gauge(
            "apiserver_current_inflight_requests",
            "Maximal number of currently used inflight request limit of this apiserver per request kind in "
            "last second.",
            ("request_kind",),
            registry=r,
        )
        self.longrunning = Gauge(
            "apiserver_longrunning_requests",
            "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, "
            "scope and component. Not all requests are tracked this way.",
            _SLI_LABELS,
            registry=r,
        )
        self.registered_watchers = Gauge(
            "apiserver_registered_watchers",
            "Number of currently registered watchers for a given resources",
            ("group", "version", "kind"),
            registry=r,
        )
        self.watch_events = Counter(
            "apiserver_watch_events",
            "Number of events sent in watch clients",
            ("group", "version", "kind"),
            registry=r,
        )
        self.terminated_watchers = Counter(
            "apiserver_terminated_watchers",
            "Counter of watchers closed due to unresponsiveness broken by resource type.",
            ("resource",),
            registry=r,
        )
        self.storage_objects = Gauge(
            "apiserver_storage_objects",
            "Number of stored objects at the time of last check split by kind.",
            ("resource",),
            registry=r,
        )
        self.etcd_request_duration = Histogram(
            "etcd_request_duration_seconds",
            "Etcd request latency in seconds for each operation and object type.",
            ("operation", "type"),
            buckets=ETCD_DURATION_BUCKETS,
            registry=r,
        )
        self.dropped_requests = Counter(
            "apiserver_dropped_requests",
            "Number of requests dropped with 'Try again later' response",
            ("request_kind",),
            registry=r,
        )
        fc = ("flow_schema", "priority_level")
        self.fc_nominal_limit = Gauge(
            "apiserver_flowcontrol_nominal_limit_seats",
            "Nominal number of execution seats configured for each priority level",
            ("priority_level",),
            registry=r,
        )
        self.fc_inqueue = Gauge(
            "apiserver_flowcontrol_current_inqueue_requests",
            "Number of requests currently pending in queues of the API Priority and Fairness subsystem",
            fc,
            registry=r,
        )
        self.fc_executing = Gauge(
            "apiserver_flowcontrol_current_executing_requests",
            "Number of requests in initial (for a WATCH) or any (for a non-WATCH) execution stage in the API "
            "Priority and Fairness subsystem",
            fc,
            registry=r,
        )
        self.fc_dispatched = Counter(
            "apiserver_flowcontrol_dispatched_requests",
            "Number of requests executed by API Priority and Fairness subsystem",
            fc,
            registry=r,
        )
        self.fc_rejected = Counter(
            "apiserver_flowcontrol_rejected_requests",
            "Number of requests rejected by API Priority and Fairness subsystem",
            (*fc, "reason"),
            registry=r,
        )
        self.fc_wait = Histogram(
            "apiserver_flowcontrol_request_wait_duration_seconds",
            "Length of time a request spent waiting in its queue",
            (*fc, "execute"),
            buckets=FLOWCONTROL_WAIT_BUCKETS,
            registry=r,
        )
        self._fc_children: dict[tuple[str, ...], Any] = {}
        # Children looked up once: labels() costs more than the set() it precedes, on every request.
        self._inflight_children = {kind: self.current_inflight.labels(kind) for kind in (READ_ONLY, MUTATING)}
        for child in self._inflight_children.values():
            child.set(0)
        if process_metrics:
            ProcessCollector(registry=r)
        self._watch_children: dict[tuple[str, str, str], tuple[Gauge, Counter]] = {}
        self._etcd_children: dict[tuple[str, str], Histogram] = {}
        self._dropped_children = {kind: self.dropped_requests.labels(kind) for kind in (READ_ONLY, MUTATING)}

    # -- requests ------------------------------------------------------------------------------------

    def _series_for(self, info: RequestInfo, dry_run: bool, apply: bool) -> _Series:
        verb = metrics_verb(info, apply=apply)
        scope = info.scope if info.is_resource_request else ""
        key = (verb, "All" if dry_run else "", info.group, info.version, info.resource, info.subresource, scope)
        series = self._requests.series.get(key)
        if series is None:
            series = self._requests.series[key] = _Series(key)
        return series

    def observe(
        self,
        info: RequestInfo,
        code: int,
        seconds: float,
        dry_run: bool = False,
        *,
        apply: bool = False,
        queued: float = 0.0,
    ) -> None:
        """Record a finished request: its count by code, its latency, and (unless long-running) the SLI.

        `queued` is the time the request waited in a priority-and-fairness queue: part of the latency, not of
        the SLI (upstream's apiserver_request_sli_duration_seconds leaves it out).
        """
        series = self._series_for(info, dry_run, apply)
        by_code = series.by_code
        by_code[code] = by_code.get(code, 0) + 1
        series.duration_buckets[bisect_left(REQUEST_DURATION_BUCKETS, seconds)] += 1
        series.duration_sum += seconds
        if not info.is_long_running:
            sli = seconds - queued
            series.sli_buckets[bisect_left(SLI_DURATION_BUCKETS, sli)] += 1
            series.sli_sum += sli
            series.sli_count += 1

    def count(self, info: RequestInfo, code: int, dry_run: bool = False, *, apply: bool = False) -> None:
        """Count a request without timing it (upstream does this for requests rejected before the handler)."""
        by_code = self._series_for(info, dry_run, apply).by_code
        by_code[code] = by_code.get(code, 0) + 1

    def dropped(self, info: RequestInfo) -> None:
        """A 429 from max-in-flight (apiserver_dropped_requests_total{request_kind})."""
        self._dropped_children[request_kind(info)].inc()

    def longrunning_started(self, info: RequestInfo) -> None:
        self._longrunning_child(info).inc()

    def longrunning_finished(self, info: RequestInfo) -> None:
        self._longrunning_child(info).dec()

    def _longrunning_child(self, info: RequestInfo) -> Gauge:
        return self.longrunning.labels(
            metrics_verb(info), info.group, info.version, info.resource, info.subresource, info.scope, COMPONENT
        )

    def set_inflight(self, kind: str, value: int) -> None:
        """Set apiserver_current_inflight_requests{request_kind} (readOnly or mutating)."""
        child = self._inflight_children.get(kind)
        if child is None:
            child = self._inflight_children[kind] = self.current_inflight.labels(kind)
        child.set(value)

    # -- priority and fairness ----------------------------------------------------------------------

    def _fc_child(self, metric: Any, *labels: str) -> Any:
        key = (str(id(metric)), *labels)
        child = self._fc_children.get(key)
        if child is None:
            child = self._fc_children[key] = metric.labels(*labels)
        return child

    def flowcontrol_nominal_limit(self, priority_level: str, seats: int) -> None:
        self.fc_nominal_limit.labels(priority_level).set(seats)

    def flowcontrol_inqueue(self, flow_schema: str, priority_level: str, delta: int) -> None:
        self._fc_child(self.fc_inqueue, flow_schema, priority_level).inc(delta)

    def flowcontrol_executing(self, flow_schema: str, priority_level: str, delta: int) -> None:
        self._fc_child(self.fc_executing, flow_schema, priority_level).inc(delta)

    def flowcontrol_dispatched(self, flow_schema: str, priority_level: str) -> None:
        self._fc_child(self.fc_dispatched, flow_schema, priority_level).inc()

    def flowcontrol_rejected(self, flow_schema: str, priority_level: str, reason: str) -> None:
        self._fc_child(self.fc_rejected, flow_schema, priority_level, reason).inc()

    def flowcontrol_wait(self, flow_schema: str, priority_level: str, seconds: float, *, executed: bool) -> None:
        execute = "true" if executed else "false"
        self._fc_child(self.fc_wait, flow_schema, priority_level, execute).observe(seconds)

    # -- watches -------------------------------------------------------------------------------------

    def _watch_pair(self, group: str, version: str, kind: str) -> tuple[Gauge, Counter]:
        key = (group, version, kind)
        pair = self._watch_children.get(key)
        if pair is None:
            pair = self._watch_children[key] = (
                self.registered_watchers.labels(group, version, kind),
                self.watch_events.labels(group, version, kind),
            )
        return pair

    def watcher_registered(self, group: str, version: str, kind: str) -> None:
        self._watch_pair(group, version, kind)[0].inc()

    def watcher_unregistered(self, group: str, version: str, kind: str) -> None:
        self._watch_pair(group, version, kind)[0].dec()

    def watch_event_sent(self, group: str, version: str, kind: str, n: int = 1) -> None:
        self._watch_pair(group, version, kind)[1].inc(n)

    def watcher_terminated(self, resource: str) -> None:
        """A watcher the cache closed because it fell too far behind (upstream labels by resource.group)."""
        self.terminated_watchers.labels(resource).inc()

    # -- storage -------------------------------------------------------------------------------------

    def set_storage_objects(self, resource: str, n: int) -> None:
        """apiserver_storage_objects{resource="pods"} etc.; upstream labels by resource.group ("pods")."""
        self.storage_objects.labels(resource).set(n)

    def observe_etcd(self, operation: str, type_: str, seconds: float) -> None:
        """etcd_request_duration_seconds{operation="get|list|create|update|delete|...", type="/pods"}."""
        key = (operation, type_)
        child = self._etcd_children.get(key)
        if child is None:
            child = self._etcd_children[key] = self.etcd_request_duration.labels(operation, type_)
        child.observe(seconds)

    # -- exposition ----------------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of every metric: (body, content type)."""
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4

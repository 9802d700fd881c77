"""APIServerMetrics: upstream names, labels, buckets and verb conventions, in a parseable exposition."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubemark.master.apiserver.metrics import (
    REQUEST_DURATION_BUCKETS,
    SLI_DURATION_BUCKETS,
    APIServerMetrics,
    metrics_verb,
)
from kubemark.master.apiserver.request_info import parse_request_info


def _samples(metrics: APIServerMetrics) -> dict[str, list[Any]]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def _one(samples: list[Any], **labels: str) -> Any:
    found = [s for s in samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (labels, found)
    return found[0]


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/namespaces/ns/pods/p", None, "GET"),
        ("GET", "/api/v1/namespaces/ns/pods", None, "LIST"),
        ("GET", "/api/v1/pods", {"watch": "true"}, "WATCH"),
        ("GET", "/api/v1/watch/pods", None, "WATCH"),
        ("POST", "/api/v1/namespaces/ns/pods", None, "POST"),
        ("PUT", "/api/v1/nodes/n1/status", None, "PUT"),
        ("PATCH", "/api/v1/nodes/n1", None, "PATCH"),
        ("DELETE", "/api/v1/namespaces/ns/pods/p", None, "DELETE"),
        ("DELETE", "/api/v1/namespaces/ns/pods", None, "DELETE"),
        ("GET", "/healthz", None, "GET"),
        ("BREW", "/healthz", None, "other"),
    ],
)
def test_verb_labels_follow_upstream(method: str, path: str, query: dict[str, str] | None, expected: str) -> None:
    assert metrics_verb(parse_request_info(method, path, query)) == expected


def test_apply_patch_is_reported_as_apply() -> None:
    assert metrics_verb(parse_request_info("PATCH", "/api/v1/nodes/n1"), apply=True) == "APPLY"


def test_request_series_labels_and_buckets() -> None:
    metrics = APIServerMetrics()
    get = parse_request_info("GET", "/api/v1/namespaces/ns/pods/p")
    metrics.observe(get, 200, 0.003)
    metrics.observe(get, 200, 0.07)
    metrics.observe(get, 404, 0.5)
    lst = parse_request_info("GET", "/apis/apps/v1/deployments")
    metrics.observe(lst, 200, 2.5, dry_run=False)
    create = parse_request_info("POST", "/api/v1/namespaces/ns/pods")
    metrics.observe(create, 201, 0.01, dry_run=True)
    own_node = parse_request_info("GET", "/api/v1/nodes", {"fieldSelector": "metadata.name=n1"})
    metrics.observe(own_node, 200, 0.01)
    pods = parse_request_info("GET", "/api/v1/namespaces/ns/pods", {"fieldSelector": "spec.nodeName=n1"})
    metrics.observe(pods, 200, 0.01)
    s = _samples(metrics)

    total = s["apiserver_request_total"]
    base = {"verb": "GET", "group": "", "version": "v1", "resource": "pods", "subresource": ""}
    assert _one(total, **base, scope="resource", code="200", component="apiserver", dry_run="").value == 2
    assert _one(total, **base, scope="resource", code="404").value == 1
    assert _one(total, verb="LIST", group="apps", resource="deployments", scope="cluster", code="200").value == 1
    # CleanScope: a create is "resource"; a list's exact metadata.name selector names it ("resource" too).
    assert _one(total, verb="POST", scope="resource", dry_run="All", code="201").value == 1
    assert _one(total, verb="LIST", resource="nodes", scope="resource").value == 1
    assert _one(total, verb="LIST", resource="pods", scope="namespace").value == 1

    buckets = s["apiserver_request_duration_seconds_bucket"]
    get_buckets = [b for b in buckets if b.labels["verb"] == "GET"]
    assert [float(b.labels["le"]) for b in get_buckets] == [*REQUEST_DURATION_BUCKETS, float("inf")]
    cumulative = {float(b.labels["le"]): b.value for b in get_buckets}
    assert cumulative[0.005] == 1
    assert cumulative[0.05] == 1
    assert cumulative[0.1] == 2
    assert cumulative[0.6] == 3
    assert cumulative[float("inf")] == 3
    assert _one(s["apiserver_request_duration_seconds_count"], verb="GET").value == 3
    assert _one(s["apiserver_request_duration_seconds_sum"], verb="GET").value == pytest.approx(0.573)

    sli = s["apiserver_request_sli_duration_seconds_bucket"]
    sli_get = [b for b in sli if b.labels["verb"] == "GET"]
    assert [float(b.labels["le"]) for b in sli_get] == [*SLI_DURATION_BUCKETS, float("inf")]
    assert "dry_run" not in sli_get[0].labels
    assert {float(b.labels["le"]): b.value for b in sli_get}[0.05] == 1


def test_long_running_requests_are_not_in_the_sli() -> None:
    metrics = APIServerMetrics()
    watch = parse_request_info("GET", "/api/v1/pods", {"watch": "1"})
    metrics.longrunning_started(watch)
    s = _samples(metrics)
    assert _one(s["apiserver_longrunning_requests"], verb="WATCH", resource="pods", scope="cluster").value == 1
    metrics.longrunning_finished(watch)
    metrics.observe(watch, 200, 300.0)
    s = _samples(metrics)
    assert _one(s["apiserver_longrunning_requests"], verb="WATCH").value == 0
    assert _one(s["apiserver_request_duration_seconds_count"], verb="WATCH").value == 1
    assert not [x for x in s.get("apiserver_request_sli_duration_seconds_count", []) if x.labels["verb"] == "WATCH"]


def test_count_without_timing() -> None:
    metrics = APIServerMetrics()
    info = parse_request_info("GET", "/api/v1/pods")
    metrics.count(info, 429)
    metrics.dropped(info)
    s = _samples(metrics)
    assert _one(s["apiserver_request_total"], verb="LIST", code="429").value == 1
    assert "apiserver_request_duration_seconds_count" not in s
    assert _one(s["apiserver_dropped_requests_total"], request_kind="readOnly").value == 1
    assert _one(s["apiserver_dropped_requests_total"], request_kind="mutating").value == 0


def test_storage_etcd_watch_and_inflight_series() -> None:
    metrics = APIServerMetrics()
    metrics.set_storage_objects("pods", 42)
    metrics.observe_etcd("get", "/pods", 0.002)
    metrics.observe_etcd("get", "/pods", 0.03)
    metrics.watcher_registered("", "v1", "Pod")
    metrics.watcher_registered("", "v1", "Pod")
    metrics.watcher_unregistered("", "v1", "Pod")
    metrics.watch_event_sent("", "v1", "Pod", 5)
    metrics.set_inflight("mutating", 7)
    metrics.watcher_terminated("pods")
    s = _samples(metrics)
    assert _one(s["apiserver_storage_objects"], resource="pods").value == 42
    assert _one(s["etcd_request_duration_seconds_count"], operation="get", type="/pods").value == 2
    assert _one(s["etcd_request_duration_seconds_bucket"], operation="get", le="0.005").value == 1
    assert _one(s["apiserver_registered_watchers"], group="", version="v1", kind="Pod").value == 1
    assert _one(s["apiserver_watch_events_total"], kind="Pod").value == 5
    assert _one(s["apiserver_terminated_watchers_total"], resource="pods").value == 1
    assert _one(s["apiserver_current_inflight_requests"], request_kind="mutating").value == 7
    assert _one(s["apiserver_current_inflight_requests"], request_kind="readOnly").value == 0


def test_process_metrics_and_separate_registries() -> None:
    first, second = APIServerMetrics(), APIServerMetrics()
    first.observe(parse_request_info("GET", "/api/v1/nodes/n1"), 200, 0.01)
    s = _samples(first)
    assert s["process_resident_memory_bytes"][0].value > 0
    assert "process_cpu_seconds_total" in s
    assert "apiserver_request_total" not in _samples(second)
    assert "process_cpu_seconds_total" not in _samples(APIServerMetrics(process_metrics=False))

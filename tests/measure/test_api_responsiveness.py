"""APIResponsiveness: histogram parsing, deltas and quantiles, and a real scrape of the embedded master."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubemark.client import RestClient, load_kubeconfig, resource_path
from kubemark.master.control_plane import ControlPlane, ControlPlaneConfig
from kubemark.measure.api_responsiveness import (
    ApiCallRecorder,
    Histogram,
    histogram_delta,
    histogram_quantile,
    parse_request_histograms,
    scrape,
    server_verdicts,
    summarize_histograms,
)
from kubemark.measure.results import ApiCallKey
from kubemark.measure.slo import SLOThresholds

TEXT = """# HELP apiserver_request_duration_seconds x
# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{verb="POST",resource="pods",subresource="",scope="namespace",component="apiserver",le="0.1"} 50.0
apiserver_request_duration_seconds_bucket{verb="POST",resource="pods",subresource="",scope="namespace",component="apiserver",le="0.2"} 90.0
apiserver_request_duration_seconds_bucket{verb="POST",resource="pods",subresource="",scope="namespace",component="apiserver",le="+Inf"} 100.0
apiserver_request_duration_seconds_count{verb="POST",resource="pods",subresource="",scope="namespace",component="apiserver"} 100.0
apiserver_request_duration_seconds_sum{verb="POST",resource="pods",subresource="",scope="namespace",component="apiserver"} 9.0
apiserver_request_duration_seconds_bucket{verb="WATCH",resource="pods",subresource="",scope="cluster",component="apiserver",le="+Inf"} 3.0
apiserver_request_duration_seconds_count{verb="WATCH",resource="pods",subresource="",scope="cluster",component="apiserver"} 3.0
apiserver_request_duration_seconds_sum{verb="WATCH",resource="pods",subresource="",scope="cluster",component="apiserver"} 300.0
"""

POST_PODS = ApiCallKey("POST", "pods", "", "namespace")


def test_parse_and_interpolate_like_histogram_quantile() -> None:
    hists = parse_request_histograms(TEXT)
    h = hists[POST_PODS]
    assert h.count == 100
    assert histogram_quantile(0.5, h) == pytest.approx(0.1)
    assert histogram_quantile(0.7, h) == pytest.approx(0.15)  # rank 70: halfway through (0.1, 0.2]
    assert histogram_quantile(0.99, h) == pytest.approx(0.2)  # in +Inf: the highest finite bound
    assert histogram_quantile(0.25, h) == pytest.approx(0.05)


SLI_TEXT = """# HELP apiserver_request_sli_duration_seconds x
# TYPE apiserver_request_sli_duration_seconds histogram
apiserver_request_sli_duration_seconds_bucket{verb="POST",resource="pods",subresource="",scope="namespace",component="apiserver",le="0.05"} 100.0
apiserver_request_sli_duration_seconds_bucket{verb="POST",resource="pods",subresource="",scope="namespace",component="apiserver",le="+Inf"} 100.0
apiserver_request_sli_duration_seconds_count{verb="POST",resource="pods",subresource="",scope="namespace",component="apiserver"} 100.0
apiserver_request_sli_duration_seconds_sum{verb="POST",resource="pods",subresource="",scope="namespace",component="apiserver"} 2.0
"""


def test_the_sli_histogram_is_preferred_when_the_server_has_it() -> None:
    # As clusterloader2: the SLI leaves out priority-and-fairness queue wait, the duration histogram does not.
    both = TEXT + SLI_TEXT
    assert histogram_quantile(0.99, parse_request_histograms(both)[POST_PODS]) == pytest.approx(0.0495)
    assert histogram_quantile(0.99, parse_request_histograms(TEXT)[POST_PODS]) == pytest.approx(0.2)
    duration = parse_request_histograms(both, "apiserver_request_duration_seconds")
    assert histogram_quantile(0.99, duration[POST_PODS]) == pytest.approx(0.2)


def test_delta_drops_idle_keys_and_watch_is_not_an_sli() -> None:
    start = parse_request_histograms(TEXT)
    end = {k: Histogram({le: n * 2 for le, n in h.buckets.items()}, h.count * 2) for k, h in start.items()}
    end[ApiCallKey("GET", "nodes", "", "resource")] = Histogram({0.1: 0.0, float("inf"): 0.0}, 0.0)
    delta = histogram_delta(end, start)
    assert set(delta) == set(start)
    assert delta[POST_PODS].count == 100
    latencies = summarize_histograms(delta)
    assert [lat.key for lat in latencies] == [POST_PODS]
    [verdict] = server_verdicts(latencies, SLOThresholds(mutating_p99=0.15))
    assert verdict.name == "api_call_latency POST pods namespace"
    assert not verdict.passed and verdict.measured == pytest.approx(0.2)


async def test_scrape_of_the_embedded_master_sees_our_calls(tmp_path: Path) -> None:
    plane = ControlPlane(ControlPlaneConfig(data_dir=tmp_path, storage="memory", port=0, insecure_http=True))
    await plane.start()
    recorder = ApiCallRecorder()
    try:
        client = RestClient(load_kubeconfig(plane.kubeconfig_path), qps=0, burst=1, on_request=recorder.on_request)
        async with client:
            before = await scrape(client)
            path = resource_path("", "v1", "configmaps", "default")
            for i in range(5):
                await client.create(path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}})
            after = await scrape(client)
    finally:
        await plane.stop()
    delta = histogram_delta(after, before)
    created = delta[ApiCallKey("POST", "configmaps", "", "resource")]  # CleanScope: a create is "resource"
    assert created.count == 5
    assert [c.verb for c in recorder.calls if c.resource == "configmaps"] == ["POST"] * 5
    assert all(c.status == 201 for c in recorder.calls if c.resource == "configmaps")

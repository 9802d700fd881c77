"""Endpoints and EndpointSlice controllers against the embedded API server, plus their pure helpers."""

from __future__ import annotations

import asyncio
from typing import Any

from kubemark.client import resource_path
from kubemark.kube.meta import parse_time
from kubemark.master.controllers.endpoints import (
    OVER_CAPACITY_ANNOTATION,
    TRIGGER_TIME_ANNOTATION,
    EndpointsController,
    TriggerTimeTracker,
    compute_subsets,
    find_port,
    format_rfc3339_nano,
)
from kubemark.master.controllers.endpointslice import (
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    EndpointSliceController,
    plan_slices,
)

PODS = resource_path("", "v1", "pods", "default")
SERVICES = resource_path("", "v1", "services", "default")
SLICES = resource_path("discovery.k8s.io", "v1", "endpointslices", "default")

Obj = dict[str, Any]


def pod(name: str, labels: dict[str, str], http_port: int | None = None) -> Obj:
    container: Obj = {"name": "c", "image": "registry.k8s.io/pause:3.9"}
    if http_port is not None:
        container["ports"] = [{"name": "http", "containerPort": http_port, "protocol": "TCP"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [container]},
    }


def service(name: str, selector: dict[str, str] | None, target: int | str = 8080, **spec: Any) -> Obj:
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"tier": "front"}},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": target}], **spec},
    }
    if selector is not None:
        body["spec"]["selector"] = selector
    return body


async def endpoints_of(cluster, name: str) -> Obj | None:
    return await cluster.get("", "v1", "endpoints", "default", name)


async def slices_of(cluster, name: str) -> list[Obj]:
    page = await cluster.client.list(SLICES, label_selector=f"{SERVICE_NAME_LABEL}={name}")
    return page["items"]


def ips(addresses: list[Obj] | None) -> list[str]:
    return sorted(a["ip"] for a in addresses or ())


def slice_states(slices: list[Obj]) -> dict[str, bool]:
    return {ep["addresses"][0]: ep["conditions"]["ready"] for s in slices for ep in s.get("endpoints") or ()}


# -- pure helpers -----------------------------------------------------------------------------------------------


def test_rfc3339_nano_trims_trailing_zeros() -> None:
    assert format_rfc3339_nano(0) == "1970-01-01T00:00:00Z"
    assert format_rfc3339_nano(1.5) == "1970-01-01T00:00:01.5Z"
    assert format_rfc3339_nano(2.000123) == "1970-01-01T00:00:02.000123Z"


def test_find_port_numeric_and_named() -> None:
    p = pod("a", {}, http_port=9090)
    assert find_port(p, {"port": 80, "targetPort": 8080}) == 8080
    assert find_port(p, {"port": 80, "targetPort": "http", "protocol": "TCP"}) == 9090
    assert find_port(p, {"port": 80, "targetPort": "http", "protocol": "UDP"}) is None
    assert find_port(p, {"port": 80, "targetPort": "metrics"}) is None


def _running(name: str, ip: str, ready: bool, http_port: int | None = None) -> Obj:
    p = pod(name, {"app": "x"}, http_port)
    p["metadata"].update(namespace="default", uid=f"uid-{name}")
    p["status"] = {
        "phase": "Running",
        "podIP": ip,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    return p


def test_compute_subsets_groups_by_resolved_ports() -> None:
    svc = service("s", {"app": "x"}, target="http")
    pods = [
        _running("a", "10.0.0.2", True, 8080),
        _running("b", "10.0.0.1", False, 8080),
        _running("c", "10.0.0.3", True, 9090),
        _running("no-port", "10.0.0.4", True),
        _running("no-ip", "", True, 8080),
    ]
    subsets, truncated = compute_subsets(svc, pods)
    assert not truncated
    assert len(subsets) == 2
    by_port = {s["ports"][0]["port"]: s for s in subsets}
    assert ips(by_port[8080]["addresses"]) == ["10.0.0.2"]
    assert ips(by_port[8080]["notReadyAddresses"]) == ["10.0.0.1"]
    assert ips(by_port[9090]["addresses"]) == ["10.0.0.3"]
    assert by_port[9090]["ports"] == [{"port": 9090, "protocol": "TCP", "name": "http"}]


def test_compute_subsets_truncates_to_capacity_keeping_ready_first() -> None:
    svc = service("s", {"app": "x"})
    pods = [_running(f"r{i}", f"10.1.{i // 250}.{i % 250}", True) for i in range(990)]
    pods += [_running(f"n{i}", f"10.2.0.{i}", False) for i in range(20)]
    subsets, truncated = compute_subsets(svc, pods)
    assert truncated
    assert len(subsets[0]["addresses"]) == 990
    assert len(subsets[0]["notReadyAddresses"]) == 10


def test_trigger_time_is_earliest_change_since_last_sync() -> None:
    tracker = TriggerTimeTracker()
    svc = {"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"}}

    def ready_at(name: str, stamp: str) -> Obj:
        return {"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "lastTransitionTime": stamp}]}}

    first = tracker.compute("ns/s", svc, [ready_at("a", "2024-01-01T00:00:05Z")])
    assert first == parse_time("2024-01-01T00:00:00Z")
    assert tracker.compute("ns/s", svc, [ready_at("a", "2024-01-01T00:00:05Z")]) is None
    later = [ready_at("a", "2024-01-01T00:00:09Z"), ready_at("b", "2024-01-01T00:00:07Z")]
    assert tracker.compute("ns/s", svc, later) == parse_time("2024-01-01T00:00:07Z")


def _ep(uid: str, ready: bool = True) -> Obj:
    return {"addresses": [uid], "conditions": {"ready": ready}, "targetRef": {"uid": uid}}


def test_plan_slices_updates_in_place_and_fills_before_creating() -> None:
    ports = (("http", 8080, "TCP", ""),)
    port_list = [{"name": "http", "port": 8080, "protocol": "TCP"}]
    labels = {"l": "v"}
    full = {"metadata": {"name": "s-a", "labels": labels}, "addressType": "IPv4", "ports": port_list}
    full["endpoints"] = [_ep(f"u{i}") for i in range(3)]
    other = {"metadata": {"name": "s-b", "labels": labels}, "addressType": "IPv4", "ports": port_list}
    other["endpoints"] = [_ep("u0")]  # a duplicate of one kept in s-a
    desired = {ports: {f"u{i}": _ep(f"u{i}", ready=i != 1) for i in range(7)}}
    plan = plan_slices([full, other], desired, labels, max_per_slice=4)
    updated = {s["metadata"]["name"]: eps for s, eps in plan.update}
    assert [e["targetRef"]["uid"] for e in updated["s-a"]] == ["u0", "u1", "u2", "u3"]
    assert updated["s-a"][1]["conditions"]["ready"] is False
    # s-b lost its duplicate, so it is rewritten with new endpoints rather than deleted.
    assert [e["targetRef"]["uid"] for e in updated["s-b"]] == ["u4", "u5", "u6"]
    assert plan.create == [] and plan.delete == []


def test_plan_slices_placeholder_for_no_endpoints() -> None:
    labels = {"l": "v"}
    stale = {"metadata": {"name": "s-a", "labels": labels}, "addressType": "IPv4", "ports": [], "endpoints": [_ep("u")]}
    plan = plan_slices([stale], {}, labels, 100)
    assert plan.create == [([], ())]
    assert plan.delete == [stale]
    placeholder = {"metadata": {"name": "s-p", "labels": labels}, "addressType": "IPv4", "ports": [], "endpoints": []}
    plan = plan_slices([placeholder], {}, labels, 100)
    assert (plan.create, plan.update, plan.delete) == ([], [], [])


# -- against the API server -------------------------------------------------------------------------------------


async def test_endpoints_and_slices_follow_pod_readiness(cluster) -> None:
    await cluster.run(
        EndpointsController(cluster.client, cluster.informers),
        EndpointSliceController(cluster.client, cluster.informers),
    )
    svc = await cluster.client.create(SERVICES, service("web", {"app": "web"}))
    p1 = await cluster.client.create(PODS, pod("web-1", {"app": "web"}))
    p2 = await cluster.client.create(PODS, pod("web-2", {"app": "web"}))
    await cluster.client.create(PODS, pod("other", {"app": "other"}))
    await cluster.set_pod_status(p1, ready=True, ip="10.0.0.1")
    await cluster.set_pod_status(p2, ready=False, ip="10.0.0.2")
    other = await cluster.client.get(resource_path("", "v1", "pods", "default", "other"))
    await cluster.set_pod_status(other, ready=True, ip="10.0.0.9")

    async def ep_state() -> Obj | None:
        ep = await endpoints_of(cluster, "web")
        subsets = (ep or {}).get("subsets") or []
        if (
            len(subsets) == 1
            and ips(subsets[0].get("addresses")) == ["10.0.0.1"]
            and ips(subsets[0].get("notReadyAddresses")) == ["10.0.0.2"]
        ):
            return ep
        return None

    ep = await cluster.wait_until(ep_state, what="endpoints with one ready and one not-ready address")
    (subset,) = ep["subsets"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert subset["addresses"][0]["targetRef"] == {
        "kind": "Pod",
        "namespace": "default",
        "name": "web-1",
        "uid": p1["metadata"]["uid"],
    }
    assert ep["metadata"]["labels"]["tier"] == "front"
    parse_time(ep["metadata"]["annotations"][TRIGGER_TIME_ANNOTATION])
    assert OVER_CAPACITY_ANNOTATION not in ep["metadata"]["annotations"]

    async def slices_state(want: dict[str, bool]):
        async def check() -> list[Obj] | None:
            slices = await slices_of(cluster, "web")
            return slices if len(slices) == 1 and slice_states(slices) == want else None

        return await cluster.wait_until(check, what=f"slice states {want}")

    (sl,) = await slices_state({"10.0.0.1": True, "10.0.0.2": False})
    assert sl["metadata"]["name"].startswith("web-") and len(sl["metadata"]["name"]) == len("web-") + 5
    assert sl["metadata"]["labels"][MANAGED_BY_LABEL] == "endpointslice-controller.k8s.io"
    assert sl["metadata"]["labels"]["tier"] == "front"
    assert sl["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "name": "web",
            "uid": svc["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert sl["addressType"] == "IPv4"
    assert sl["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    not_ready = next(e for e in sl["endpoints"] if e["addresses"] == ["10.0.0.2"])
    assert not_ready["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert not_ready["targetRef"]["name"] == "web-2"
    slice_name = sl["metadata"]["name"]

    await cluster.set_pod_status(p2, ready=True, ip="10.0.0.2")

    async def both_ready() -> bool:
        ep = await endpoints_of(cluster, "web")
        subsets = (ep or {}).get("subsets") or []
        return (
            len(subsets) == 1
            and ips(subsets[0].get("addresses")) == ["10.0.0.1", "10.0.0.2"]
            and not subsets[0].get("notReadyAddresses")
        )

    await cluster.wait_until(both_ready, what="both addresses ready")
    (sl,) = await slices_state({"10.0.0.1": True, "10.0.0.2": True})
    assert sl["metadata"]["name"] == slice_name  # updated in place

    await cluster.client.delete(resource_path("", "v1", "pods", "default", "web-1"))

    async def one_left() -> bool:
        ep = await endpoints_of(cluster, "web")
        subsets = (ep or {}).get("subsets") or []
        return len(subsets) == 1 and ips(subsets[0].get("addresses")) == ["10.0.0.2"]

    await cluster.wait_until(one_left, what="deleted pod gone from endpoints")
    await slices_state({"10.0.0.2": True})

    await cluster.client.delete(resource_path("", "v1", "services", "default", "web"))

    async def all_gone() -> bool:
        return await endpoints_of(cluster, "web") is None and not await slices_of(cluster, "web")

    await cluster.wait_until(all_gone, what="endpoints and slices removed with the service")


async def test_named_target_port_splits_subsets_and_slices(cluster) -> None:
    await cluster.run(
        EndpointsController(cluster.client, cluster.informers),
        EndpointSliceController(cluster.client, cluster.informers),
    )
    await cluster.client.create(SERVICES, service("api", {"app": "api"}, target="http"))
    for name, port, ip in (("api-a", 8080, "10.0.1.1"), ("api-b", 9090, "10.0.1.2")):
        created = await cluster.client.create(PODS, pod(name, {"app": "api"}, http_port=port))
        await cluster.set_pod_status(created, ip=ip)

    async def two_subsets() -> list[Obj] | None:
        ep = await endpoints_of(cluster, "api")
        subsets = (ep or {}).get("subsets") or []
        return subsets if len(subsets) == 2 else None

    subsets = await cluster.wait_until(two_subsets, what="two subsets")
    assert {s["ports"][0]["port"]: ips(s["addresses"]) for s in subsets} == {8080: ["10.0.1.1"], 9090: ["10.0.1.2"]}

    async def two_slices() -> list[Obj] | None:
        slices = await slices_of(cluster, "api")
        return slices if len(slices) == 2 and all(s.get("endpoints") for s in slices) else None

    slices = await cluster.wait_until(two_slices, what="two slices")
    assert {s["ports"][0]["port"]: s["endpoints"][0]["addresses"][0] for s in slices} == {
        8080: "10.0.1.1",
        9090: "10.0.1.2",
    }


async def test_headless_service_and_selector_removal(cluster) -> None:
    await cluster.run(
        EndpointsController(cluster.client, cluster.informers),
        EndpointSliceController(cluster.client, cluster.informers),
    )
    body = service("db", {"app": "db"}, clusterIP="None")
    body["spec"]["ports"] = []
    await cluster.client.create(SERVICES, body)
    created = await cluster.client.create(PODS, pod("db-0", {"app": "db"}))
    await cluster.set_pod_status(created, ip="10.0.2.1")

    async def headless_endpoints() -> Obj | None:
        ep = await endpoints_of(cluster, "db")
        subsets = (ep or {}).get("subsets") or []
        return ep if subsets and ips(subsets[0].get("addresses")) == ["10.0.2.1"] else None

    ep = await cluster.wait_until(headless_endpoints, what="headless endpoints")
    assert "ports" not in ep["subsets"][0]
    assert ep["metadata"]["labels"]["service.kubernetes.io/headless"] == ""

    async def headless_slice() -> list[Obj] | None:
        slices = await slices_of(cluster, "db")
        return slices if slice_states(slices) == {"10.0.2.1": True} else None

    (sl,) = await cluster.wait_until(headless_slice, what="headless slice")
    assert sl["metadata"]["labels"]["service.kubernetes.io/headless"] == ""

    await cluster.client.patch(
        resource_path("", "v1", "services", "default", "db"), {"spec": {"selector": None}}, "merge"
    )

    async def removed() -> bool:
        return await endpoints_of(cluster, "db") is None and not await slices_of(cluster, "db")

    await cluster.wait_until(removed, what="endpoints and slices removed with the selector")


async def test_more_than_100_endpoints_split_into_two_slices(cluster) -> None:
    await cluster.run(EndpointSliceController(cluster.client, cluster.informers))
    await cluster.client.create(SERVICES, service("big", {"app": "big"}))

    async def make(i: int) -> None:
        created = await cluster.client.create(PODS, pod(f"big-{i}", {"app": "big"}))
        await cluster.set_pod_status(created, ip=f"10.3.{i // 200}.{i % 200 + 1}")

    for start in range(0, 130, 26):
        await asyncio.gather(*(make(i) for i in range(start, start + 26)))

    async def split() -> list[Obj] | None:
        slices = await slices_of(cluster, "big")
        sizes = [len(s.get("endpoints") or ()) for s in slices]
        return slices if sum(sizes) == 130 else None

    # Pods arrive in batches, so (as upstream) earlier slices are topped up rather than rebalanced.
    slices = await cluster.wait_until(split, what="130 endpoints in slices")
    assert len(slices) == 2
    assert all(len(s["endpoints"]) <= 100 for s in slices)
    assert len(slice_states(slices)) == 130
    names = {s["metadata"]["name"] for s in slices}

    for i in range(10):
        await cluster.client.delete(resource_path("", "v1", "pods", "default", f"big-{i}"))

    async def shrunk() -> list[Obj] | None:
        slices = await slices_of(cluster, "big")
        return slices if len(slice_states(slices)) == 120 else None

    slices = await cluster.wait_until(shrunk, what="120 endpoints")
    assert {s["metadata"]["name"] for s in slices} <= names  # updated in place, nothing new

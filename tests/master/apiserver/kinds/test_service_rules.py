"""Service defaults, validation, cluster IP / node port allocation and release; Endpoints checks."""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass

import pytest

from kubemark import codec
from kubemark.master.apiserver.errors import StatusError
from kubemark.master.apiserver.kinds.service_ips import AllocationError, ClusterIPAllocator, RangeAllocator


def service(name: str = "web", **spec: object) -> dict:
    body = {"selector": {"app": name}, "ports": [{"port": 80}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "ns"}, "spec": body}


@pytest.fixture
def services(make_strategy):
    return make_strategy("", "services")


def test_defaults_and_allocation(services) -> None:
    obj = service()
    services.prepare_for_create(obj)
    assert services.validate(obj) == []
    spec = obj["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert ipaddress.IPv4Address(spec["clusterIP"]) in ipaddress.IPv4Network("10.96.0.0/12")
    assert spec["clusterIP"] != "10.96.0.1"
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert obj["status"] == {"loadBalancer": {}}


def test_cluster_ips_are_unique_and_released(services) -> None:
    ips = set()
    objs = []
    for i in range(200):
        obj = service(f"s{i}")
        services.prepare_for_create(obj)
        assert services.validate(obj) == []
        ips.add(obj["spec"]["clusterIP"])
        objs.append(obj)
    assert len(ips) == 200
    ip = objs[0]["spec"]["clusterIP"]
    clash = service("clash", clusterIP=ip)
    services.prepare_for_create(clash)
    [cause] = services.validate(clash)
    assert cause.field == "spec.clusterIPs[0]"
    assert "provided IP is already allocated" in cause.message
    services.on_deleted(objs[0])
    again = service("again", clusterIP=ip)
    services.prepare_for_create(again)
    assert services.validate(again) == []


def test_kubernetes_ip_only_on_request(services) -> None:
    obj = service("kubernetes", clusterIP="10.96.0.1")
    services.prepare_for_create(obj)
    assert services.validate(obj) == []
    outside = service("out", clusterIP="192.168.0.1")
    services.prepare_for_create(outside)
    [cause] = services.validate(outside)
    assert "not in the valid range. The range of valid IPs is 10.96.0.0/12" in cause.message


def test_headless_and_external_name(services) -> None:
    headless = service(clusterIP="None", ports=[])
    services.prepare_for_create(headless)
    assert services.validate(headless) == []
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["clusterIPs"] == ["None"]
    external = {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "example.com"}}
    services.prepare_for_create(external)
    assert services.validate(external) == []
    assert "clusterIP" not in external["spec"]


def test_validation_failures(services) -> None:
    obj = service(
        type="Weird",
        ports=[{"port": 80}, {"name": "http", "port": 0}, {"name": "http", "port": 81, "nodePort": 30001}],
    )
    services.prepare_for_create(obj)
    assert {(c.field, c.reason) for c in services.validate(obj)} == {
        ("spec.type", "FieldValueNotSupported"),
        ("spec.ports[0].name", "FieldValueRequired"),
        ("spec.ports[1].port", "FieldValueInvalid"),
        ("spec.ports[2].name", "FieldValueDuplicate"),
        ("spec.ports[2].nodePort", "FieldValueForbidden"),
    }
    no_ports = service(ports=[])
    services.prepare_for_create(no_ports)
    assert [(c.field, c.reason) for c in services.validate(no_ports)] == [("spec.ports", "FieldValueRequired")]


def test_node_ports(services) -> None:
    obj = service(type="NodePort", ports=[{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30500}])
    services.prepare_for_create(obj)
    assert services.validate(obj) == []
    ports = [p["nodePort"] for p in obj["spec"]["ports"]]
    assert 30000 <= ports[0] <= 32767 and ports[1] == 30500
    assert obj["spec"]["externalTrafficPolicy"] == "Cluster"
    clash = service("c", type="NodePort", ports=[{"port": 80, "nodePort": 30500}])
    services.prepare_for_create(clash)
    [cause] = services.validate(clash)
    assert (cause.field, cause.message) == (
        "spec.ports[0].nodePort",
        "Invalid value: 30500: provided port is already allocated",
    )
    bad = service("d", type="NodePort", ports=[{"port": 80, "nodePort": 80}])
    services.prepare_for_create(bad)
    [cause] = services.validate(bad)
    assert "The range of valid ports is 30000-32767" in cause.message
    ip = clash["spec"].get("clusterIP")
    assert ip is None or ip not in services.cluster_ips  # failed allocation gave its IP back
    services.on_deleted(obj)
    retry = service("e", type="NodePort", ports=[{"port": 80, "nodePort": 30500}])
    services.prepare_for_create(retry)
    assert services.validate(retry) == []


def test_update_keeps_cluster_ip_and_forbids_change(services) -> None:
    old = service()
    services.prepare_for_create(old)
    services.validate(old)
    new = service()  # a client PUT without the allocated IP
    services.prepare_for_update(new, old)
    assert new["spec"]["clusterIP"] == old["spec"]["clusterIP"]
    assert services.validate_update(new, old) == []
    changed = copy.deepcopy(new)
    changed["spec"]["clusterIP"] = "10.96.5.5"
    changed["spec"]["clusterIPs"] = ["10.96.5.5"]
    [cause] = services.validate_update(changed, old)
    assert (cause.field, cause.message) == ("spec.clusterIP", 'Invalid value: "10.96.5.5": field is immutable')


def test_update_to_node_port_allocates(services) -> None:
    old = service()
    services.prepare_for_create(old)
    services.validate(old)
    new = copy.deepcopy(old)
    new["spec"]["type"] = "NodePort"
    services.prepare_for_update(new, old)
    assert services.validate_update(new, old) == []
    assert 30000 <= new["spec"]["ports"][0]["nodePort"] <= 32767


@dataclass
class _KV:
    key: str
    value: bytes


@dataclass
class _Page:
    kvs: list
    more: bool


class _ListingStorage:
    """Only `list`, paged, as warm_up uses it."""

    def __init__(self, objs: list[dict]) -> None:
        self.kvs = [_KV(f"/registry/services/ns/{o['metadata']['name']}", codec.dumps(o)) for o in objs]
        self.calls = 0

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0, start_key: str = "") -> _Page:
        self.calls += 1
        rest = [kv for kv in self.kvs if kv.key.startswith(prefix) and kv.key >= start_key]
        return _Page(rest[:limit], len(rest) > limit)


async def test_warm_up_seeds_allocators(make_strategy) -> None:
    stored = [
        service(
            f"s{i:04d}",
            clusterIP=f"10.96.{i // 200}.{i % 200 + 2}",
            type="NodePort",
            ports=[{"port": 80, "nodePort": 30000 + i}],
        )
        for i in range(600)
    ]
    storage = _ListingStorage(stored)
    strategy = make_strategy("", "services")
    await strategy.warm_up(storage)
    assert storage.calls == 2  # paged by 500
    assert "10.96.2.199" in strategy.cluster_ips
    clash = service("clash", clusterIP="10.96.0.2")
    strategy.prepare_for_create(clash)
    assert "already allocated" in strategy.validate(clash)[0].message
    fresh = service("fresh", type="NodePort")
    strategy.prepare_for_create(fresh)
    assert strategy.validate(fresh) == []
    assert fresh["spec"]["ports"][0]["nodePort"] >= 30600
    assert fresh["spec"]["clusterIP"] not in {s["spec"]["clusterIP"] for s in stored}


async def test_store_create_conflict_releases_ip(cluster) -> None:
    store = cluster.store("", "services")
    first = await store.create(service("web", clusterIP="10.96.0.10"), None)
    assert first["spec"]["clusterIP"] == "10.96.0.10"
    with pytest.raises(StatusError) as err:
        await store.create(service("web"), None)
    assert err.value.code == 409
    await store.delete("ns", "web", {}, None)
    again = await store.create(service("web2", clusterIP="10.96.0.10"), None)
    assert again["spec"]["clusterIP"] == "10.96.0.10"


def test_allocators_exhaust_and_wrap() -> None:
    small = RangeAllocator(1, 3, frozenset({1}))
    assert [small.allocate_next(), small.allocate_next()] == [2, 3]
    with pytest.raises(AllocationError):
        small.allocate_next()
    small.release(2)
    assert small.allocate_next() == 2
    tiny = ClusterIPAllocator("10.0.0.0/29")
    assert [tiny.allocate_next() for _ in range(5)] == [f"10.0.0.{i}" for i in range(2, 7)]
    with pytest.raises(AllocationError):
        tiny.allocate_next()


def test_endpoints_rules(make_strategy) -> None:
    strategy = make_strategy("", "endpoints")
    obj = {
        "metadata": {"name": "web", "namespace": "ns"},
        "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {}], "ports": [{"port": 80}, {"port": 0}]}],
    }
    strategy.prepare_for_create(obj)
    assert obj["subsets"][0]["ports"][0]["protocol"] == "TCP"
    assert [c.field for c in strategy.validate(obj)] == ["subsets[0].addresses[1].ip", "subsets[0].ports[1].port"]

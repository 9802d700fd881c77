"""Node IPAM: CIDR set arithmetic and unique /24s per node against the API server."""

from __future__ import annotations

import ipaddress
import logging

import pytest

from kubemark.client import resource_path
from kubemark.master.controllers.ipam import CIDRSet, CIDRSetFull, NodeIpamController


def test_cidr_set_allocates_releases_and_fills() -> None:
    s = CIDRSet("10.0.0.0/22", 24)
    got = [s.allocate_next() for _ in range(4)]
    assert got == ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"]
    with pytest.raises(CIDRSetFull):
        s.allocate_next()
    s.release("10.0.1.0/24")
    assert s.allocate_next() == "10.0.1.0/24"
    assert not s.occupy("192.168.0.0/24")


def node(name: str, cidr: str | None = None) -> dict:
    body: dict = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {}}
    if cidr:
        body["spec"] = {"podCIDR": cidr, "podCIDRs": [cidr]}
    return body


async def test_nodes_get_unique_cidrs_seeded_from_existing(cluster) -> None:
    nodes = resource_path("", "v1", "nodes")
    await cluster.client.create(nodes, node("pre", "10.128.0.0/24"))
    await cluster.run(NodeIpamController(cluster.client, cluster.informers))
    for i in range(20):
        await cluster.client.create(nodes, node(f"n{i}"))

    async def all_assigned() -> list | None:
        items = (await cluster.client.list(nodes))["items"]
        return items if all(n["spec"].get("podCIDR") for n in items) and len(items) == 21 else None

    items = await cluster.wait_until(all_assigned, what="every node has a podCIDR")
    cidrs = [n["spec"]["podCIDR"] for n in items]
    assert len(set(cidrs)) == 21
    assert all(n["spec"]["podCIDRs"] == [n["spec"]["podCIDR"]] for n in items)
    default_range = ipaddress.ip_network("10.128.0.0/10")
    assert all(ipaddress.ip_network(c).subnet_of(default_range) and c.endswith("/24") for c in cidrs)


def test_default_range_holds_thousands_of_nodes() -> None:
    assert CIDRSet().size >= 10_000


async def test_full_range_is_reported_once_and_a_released_cidr_reaches_a_waiting_node(cluster, caplog) -> None:
    nodes = resource_path("", "v1", "nodes")
    ipam = NodeIpamController(cluster.client, cluster.informers, cluster_cidr="10.9.0.0/23", node_mask=24)
    await cluster.run(ipam)
    caplog.set_level(logging.WARNING, logger="kubemark.master.controllers.ipam")
    for i in range(4):
        await cluster.client.create(nodes, node(f"n{i}"))

    async def two_assigned() -> list | None:
        items = (await cluster.client.list(nodes))["items"]
        with_cidr = [n for n in items if n["spec"].get("podCIDR")]
        return items if len(with_cidr) == 2 and len(items) == 4 else None

    items = await cluster.wait_until(two_assigned, what="the two /24s of the /23 handed out")
    waiting = [n["metadata"]["name"] for n in items if not n["spec"].get("podCIDR")]

    async def warned() -> list[str]:
        return _warnings(caplog)

    await cluster.wait_until(warned, what="a warning that the range is full")
    # Updates of the waiting nodes retry them; the full range is not reported again.
    for name in waiting:
        await cluster.client.patch(resource_path("", "v1", "nodes", None, name), {"metadata": {"labels": {"x": "1"}}})
    assert len(_warnings(caplog)) == 1
    freed = next(n for n in items if n["spec"].get("podCIDR"))
    await cluster.client.delete(resource_path("", "v1", "nodes", None, freed["metadata"]["name"]))
    for name in waiting:
        await cluster.client.patch(resource_path("", "v1", "nodes", None, name), {"metadata": {"labels": {"x": "2"}}})

    async def reassigned() -> list | None:
        got = [await cluster.client.get(resource_path("", "v1", "nodes", None, name)) for name in waiting]
        cidrs = [n["spec"].get("podCIDR") for n in got]
        return cidrs if freed["spec"]["podCIDR"] in cidrs else None

    cidrs = await cluster.wait_until(reassigned, what="the freed CIDR assigned to a waiting node")
    assert sorted(cidrs, key=str) == sorted([freed["spec"]["podCIDR"], None], key=str)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "without a pod CIDR" in r.getMessage()]

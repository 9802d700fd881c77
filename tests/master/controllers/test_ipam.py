"""Node IPAM: CIDR set arithmetic and unique /24s per node against the API server."""

from __future__ import annotations

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
    await cluster.client.create(nodes, node("pre", "10.244.0.0/24"))
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
    assert all(c.startswith("10.244.") and c.endswith("/24") for c in cidrs)

"""HollowRuntime: unique pod IPs with reuse, host network, IDs and simulated delays."""

from __future__ import annotations

import random

import pytest

from kubemark.hollow.config import node_config_from_dict
from kubemark.hollow.runtime import HollowRuntime, PodIPAllocator, PodIPExhausted


def test_allocator_hands_out_unique_addresses_and_reuses_the_lowest_freed() -> None:
    ips = PodIPAllocator("10.128.3.0/24")
    first = [ips.allocate() for _ in range(5)]
    assert first == [f"10.128.3.{i}" for i in range(2, 7)]
    ips.release("10.128.3.4")
    ips.release("10.128.3.3")
    assert ips.allocate() == "10.128.3.3"
    assert ips.allocate() == "10.128.3.4"
    assert ips.allocate() == "10.128.3.7"
    assert len(ips) == 6


def test_allocator_exhaustion_and_reservation() -> None:
    ips = PodIPAllocator("10.0.0.0/29")  # .2 .. .6 usable
    assert ips.reserve("10.0.0.5")
    assert not ips.reserve("10.0.0.5")
    assert not ips.reserve("192.168.0.1")
    got = {ips.allocate() for _ in range(4)}
    assert got == {"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.6"}
    with pytest.raises(PodIPExhausted):
        ips.allocate()


async def test_sandboxes_get_unique_ips_and_host_network_uses_the_node_ip() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    config = node_config_from_dict({"delays": {"imagePull": {"kind": "constant", "value": 0.5}}})
    runtime = HollowRuntime(config, node_ip="10.64.0.9", pod_cidr="10.128.9.0/24", rng=random.Random(3), sleep=sleep)
    sandboxes = [await runtime.run_sandbox({"spec": {}}) for _ in range(50)]
    assert len({s.ip for s in sandboxes}) == 50
    host = await runtime.run_sandbox({"spec": {"hostNetwork": True}})
    assert host.ip == "10.64.0.9"
    await runtime.remove_sandbox(sandboxes[10])
    again = await runtime.run_sandbox({"spec": {}})
    assert again.ip == sandboxes[10].ip
    image_id = await runtime.pull_image("nginx:1.25")
    assert image_id.startswith("docker-pullable://nginx:1.25@sha256:")
    assert slept == [0.5]
    cid = await runtime.create_container(again, {"name": "c"})
    assert cid.startswith("hollow://") and len(cid) == len("hollow://") + 32
    await runtime.start_container(cid)
    assert cid in runtime.running
    await runtime.stop_container(cid, 0)
    assert cid not in runtime.running


def test_adopted_sandboxes_keep_their_ips() -> None:
    runtime = HollowRuntime(node_config_from_dict({}), node_ip="10.64.0.1", pod_cidr="10.128.0.0/24")
    kept = runtime.adopt_sandbox({"spec": {}, "status": {"podIP": "10.128.0.7"}})
    assert kept.ip == "10.128.0.7"
    fresh = [runtime.ips.allocate() for _ in range(6)]
    assert "10.128.0.7" not in fresh

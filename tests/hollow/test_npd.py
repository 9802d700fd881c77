"""Hollow NPD: configured conditions on node status and scheduled flips."""

from __future__ import annotations

from typing import Any

from kubemark.client.kubeconfig import ClusterCredentials
from kubemark.client.paths import resource_path
from kubemark.client.rest import RestClient
from kubemark.hollow.config import ConditionFlip
from kubemark.hollow.npd import HollowNodeProblemDetector, flip_applies
from kubemark.master.apiserver.server import APIServer

from .conftest import eventually, fast_config


def test_flip_share_is_stable_per_node() -> None:
    flip = ConditionFlip(type="KernelDeadlock", after=0, node_fraction=0.5)
    chosen = [flip_applies(flip, f"n-{i}") for i in range(400)]
    assert chosen == [flip_applies(flip, f"n-{i}") for i in range(400)]
    assert 120 < sum(chosen) < 280
    assert all(flip_applies(ConditionFlip(type="X", after=0), f"n-{i}") for i in range(50))


async def test_npd_sets_conditions_and_flips_them(apiserver: APIServer, admin: RestClient) -> None:
    await admin.create(
        resource_path("", "v1", "nodes"), {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}
    )
    config = fast_config(
        npd={
            "flips": [
                {
                    "type": "KernelDeadlock",
                    "status": "True",
                    "reason": "DeadlockDetected",
                    "after": 0.05,
                    "duration": 0.2,
                }
            ]
        }
    )
    client = RestClient(ClusterCredentials(server=apiserver.url))
    npd = HollowNodeProblemDetector("n", client, config)
    path = resource_path("", "v1", "nodes", name="n")

    def condition(status: str, reason: str) -> Any:
        async def check() -> Any:
            node = await admin.get(path)
            conds = {c["type"]: c for c in (node.get("status") or {}).get("conditions") or []}
            c = conds.get("KernelDeadlock")
            return conds if c and c["status"] == status and c["reason"] == reason else None

        return check

    npd.start()
    try:
        conds = await eventually(condition("False", "KernelHasNoDeadlock"))
        assert {"ReadonlyFilesystem", "FrequentKubeletRestart"} <= set(conds)
        await eventually(condition("True", "DeadlockDetected"))
        await eventually(condition("False", "KernelHasNoDeadlock"))
        assert npd.patches >= 3
    finally:
        await npd.stop()
        await client.close()

"""Node credentials against the secure control plane: a node writes only its own Node, Lease and pods."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubemark.client import ClusterCredentials, Forbidden, RestClient, load_kubeconfig
from kubemark.client.paths import resource_path
from kubemark.master.control_plane import ControlPlane, ControlPlaneConfig

PODS = resource_path("", "v1", "pods", "default")
NODES = resource_path("", "v1", "nodes")
LEASES = resource_path("coordination.k8s.io", "v1", "leases", "kube-node-lease")


def node_client(plane: ControlPlane, name: str) -> RestClient:
    cert, key = plane.pki.node_credentials(name)  # type: ignore[union-attr]
    creds = ClusterCredentials(server=plane.url, ca_pem=plane.pki.ca_pem, cert_pem=cert, key_pem=key)  # type: ignore[union-attr]
    return RestClient(creds, qps=0, max_retries=0)


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(ControlPlaneConfig(data_dir=tmp_path, storage="memory", port=0)) as cp:
        yield cp


def pod(name: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i"}]}}


async def test_node_writes_are_limited_to_its_own_objects(plane: ControlPlane) -> None:
    async with RestClient(load_kubeconfig(plane.kubeconfig_path), qps=0) as admin:
        for name, node in (("mine", "n1"), ("theirs", "n2")):
            await admin.create(PODS, pod(name))
            await admin.request(
                "POST",
                f"{PODS}/{name}/binding",
                body={"metadata": {"name": name}, "target": {"kind": "Node", "name": node}},
            )
    async with node_client(plane, "n1") as n1:
        await n1.create(NODES, {"metadata": {"name": "n1"}})
        with pytest.raises(Forbidden) as denied:
            await n1.create(NODES, {"metadata": {"name": "n2"}})
        assert "n2" in denied.value.message

        await n1.create(LEASES, {"metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1"}})
        with pytest.raises(Forbidden):
            await n1.create(LEASES, {"metadata": {"name": "n2"}, "spec": {"holderIdentity": "n2"}})

        patch = {"status": {"phase": "Running"}}
        updated = await n1.patch(f"{PODS}/mine/status", patch, patch_type="merge")
        assert updated["status"]["phase"] == "Running"
        with pytest.raises(Forbidden) as denied:
            await n1.patch(f"{PODS}/theirs/status", patch, patch_type="merge")
        assert "n2" in denied.value.message
        with pytest.raises(Forbidden):
            await n1.delete(f"{PODS}/theirs", grace_period_seconds=0)
        await n1.delete(f"{PODS}/mine", grace_period_seconds=0)
        # Reads are not restricted by binding.
        theirs = await n1.get(f"{PODS}/theirs")
        assert theirs["status"].get("phase") != "Running"

"""Hollow nodes against the REAL kube-apiserver, kube-controller-manager and kube-scheduler (built by
scripts/kube-binaries.sh, or given by KUBEMARK_KUBE_BINARIES): they register, renew leases, run and delete pods,
survive a kube-apiserver restart, and a node's credential cannot write another node's objects (node authorizer +
NodeRestriction). Missing binaries fail these tests with the build command, they are never skipped."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from kubemark.client import APIError, ClusterCredentials, Forbidden, NotFound, RestClient, load_kubeconfig
from kubemark.client.paths import resource_path
from kubemark.hollow.config import node_config_from_dict
from kubemark.hollow.pool import NodePool
from kubemark.master.launcher import read_component_pids
from kubemark.master.real_master import (
    CLUSTER_CIDR,
    DEFAULT_KUBE_VERSION,
    KUBE_PROXY_USER,
    REQUIRED_BINARIES,
    KubeBinariesNotFound,
    RealControlPlane,
    RealControlPlaneConfig,
    RealMasterLauncher,
    binary_version,
    find_kube_binaries,
)

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(240)]

KUBEMARK = [sys.executable, "-m", "kubemark"]
REPO = Path(__file__).resolve().parents[2]
NODES = resource_path("", "v1", "nodes")
LEASES = resource_path("coordination.k8s.io", "v1", "leases", "kube-node-lease")
PODS = resource_path("", "v1", "pods", "default")
DEPLOYMENTS = resource_path("apps", "v1", "deployments", "default")
FAST_NODES = {
    "heartbeat": {"leaseRenewInterval": 1.0, "statusUpdateFrequency": 1.0, "jitter": 0.0},
    "proxy": {"minSyncPeriod": 0.1},
}


def kube_binaries() -> dict[str, Path]:
    """The binaries: $KUBEMARK_KUBE_BINARIES, else the default cache, else PATH; a clear failure if missing."""
    explicit = os.environ.get("KUBEMARK_KUBE_BINARIES")
    try:
        return find_kube_binaries(Path(explicit) if explicit else None)
    except KubeBinariesNotFound as exc:
        pytest.fail(f"real control-plane binaries missing: {exc}", pytrace=False)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 60.0, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


def node_creds(plane: RealControlPlane, name: str) -> ClusterCredentials:
    assert plane.pki is not None
    cert, key = plane.pki.node_credentials(name)
    return ClusterCredentials(server=plane.url, ca_pem=plane.pki.ca_pem, cert_pem=cert, key_pem=key)


def proxy_creds(plane: RealControlPlane) -> ClusterCredentials:
    """kube-proxy's identity on a real master (system:kube-proxy: may list EndpointSlices, a node may not)."""
    assert plane.pki is not None
    cert, key = plane.pki.issue_client_cert(KUBE_PROXY_USER)
    return ClusterCredentials(server=plane.url, ca_pem=plane.pki.ca_pem, cert_pem=cert, key_pem=key)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def plane(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RealControlPlane]:
    config = RealControlPlaneConfig(
        data_dir=tmp_path_factory.mktemp("real-master"), binaries=kube_binaries(), port=0, unsafe_no_fsync=True
    )
    async with RealControlPlane(config) as cp:
        yield cp


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def admin(plane: RealControlPlane) -> AsyncIterator[RestClient]:
    async with RestClient(load_kubeconfig(plane.kubeconfig_path), qps=0) as client:
        yield client


def test_missing_binaries_fail_with_the_build_command(tmp_path: Path) -> None:
    (tmp_path / "kube-apiserver").write_text("#!/bin/sh\n")
    (tmp_path / "kube-apiserver").chmod(0o755)
    with pytest.raises(KubeBinariesNotFound) as missing:
        find_kube_binaries(tmp_path)
    message = str(missing.value)
    assert "kube-controller-manager, kube-scheduler not found" in message
    assert "kube-apiserver," not in message
    assert "scripts/kube-binaries.sh" in message and str(tmp_path) in message
    for argv in (
        ["master", "start", "--kube-binaries", str(tmp_path), "--data-dir", str(tmp_path / "d")],
        ["master", "start", "--master", "real", "--kube-binaries", str(tmp_path / "nothing")],
        ["run", "--master", "real", "--kube-binaries", str(tmp_path), "--out", str(tmp_path / "run")],
    ):
        out = subprocess.run([*KUBEMARK, *argv], capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 2, (argv, out.stdout, out.stderr)
        assert "not found in" in out.stderr and "scripts/kube-binaries.sh" in out.stderr, out.stderr


def test_default_version_is_the_one_the_build_script_pins() -> None:
    gomod = (REPO / "tools" / "kube-binaries" / "go.mod").read_text()
    assert re.search(rf"^\s*k8s\.io/kubernetes {re.escape(DEFAULT_KUBE_VERSION)}\b", gomod, re.M)
    # Every staging module at the matching v0.X.Y: one release throughout.
    staging = f"v0.{DEFAULT_KUBE_VERSION.removeprefix('v1.')}"
    replaces = [line.split() for line in gomod.splitlines() if "=> k8s.io/" in line]
    assert len(replaces) >= 25
    assert all(r[0] == r[2] and r[3] == staging for r in replaces), replaces


def test_binaries_report_their_release() -> None:
    binaries = kube_binaries()
    versions = {name: binary_version(binaries[name]) for name in REQUIRED_BINARIES}
    assert len(set(versions.values())) == 1, versions
    assert all(v.startswith("Kubernetes v1.") for v in versions.values()), versions


@pytest.mark.asyncio(loop_scope="module")
async def test_real_apiserver_serves_with_rbac_and_node_cidrs(plane: RealControlPlane, admin: RestClient) -> None:
    version = await admin.request("GET", "/version")
    assert version["gitVersion"] == binary_version(plane.config.binaries["kube-apiserver"]).split()[-1]
    pids = read_component_pids(plane.data_dir)
    assert set(pids) == {"kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler"}
    # The components run as their own users (RBAC, not system:masters): their leases... and clients work.
    roles = await admin.list(resource_path("rbac.authorization.k8s.io", "v1", "clusterroles"))
    assert "system:node" in {r["metadata"]["name"] for r in roles["items"]}
    # A node object gets its podCIDR from the real kube-controller-manager's range allocator.
    await admin.create(NODES, {"metadata": {"name": "cidr-probe"}})
    try:
        node = await eventually(lambda: _with_pod_cidr(admin, "cidr-probe"))
        prefix = CLUSTER_CIDR.split(".")[0] + "." + CLUSTER_CIDR.split(".")[1]
        assert node["spec"]["podCIDR"].startswith(prefix) and node["spec"]["podCIDR"].endswith("/24")
    finally:
        await admin.delete(f"{NODES}/cidr-probe")


async def _with_pod_cidr(admin: RestClient, name: str) -> dict | None:
    node = await admin.get(f"{NODES}/{name}")
    return node if node.get("spec", {}).get("podCIDR") else None


@pytest.mark.asyncio(loop_scope="module")
async def test_hollow_nodes_register_renew_leases_run_and_delete_pods(
    plane: RealControlPlane, admin: RestClient
) -> None:
    config = node_config_from_dict(FAST_NODES)
    pool = NodePool(2, config, lambda n: node_creds(plane, n), prefix="real", proxy_credentials=proxy_creds(plane))
    await pool.start()
    try:
        assert await pool.wait_ready(60), "hollow nodes not Ready against the real kube-apiserver"
        # Every watch synced: the kubelets' (pods, own Node, Services) and kube-proxies' (Services,
        # EndpointSlices, own Node) - the latter as system:kube-proxy, which may list EndpointSlices.
        informers = [i for n in pool.nodes.values() for i in n.informers()]
        await asyncio.wait_for(asyncio.gather(*(i.wait_synced() for i in informers)), 60)
        names = ["real-0", "real-1"]
        for name in names:
            node = await eventually(lambda name=name: _with_pod_cidr(admin, name))
            ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
            assert ready["Ready"] == "True", node["status"]["conditions"]
        # Leases: created by each node and renewed (renewTime moves on).
        first = {n: (await admin.get(f"{LEASES}/{n}"))["spec"]["renewTime"] for n in names}

        async def renewed() -> bool:
            now = {n: (await admin.get(f"{LEASES}/{n}"))["spec"]["renewTime"] for n in names}
            return all(now[n] != first[n] for n in names)

        await eventually(renewed, timeout=30)

        # Pods: the real scheduler binds a Deployment's pods, our kubelets run them, the real controllers count them.
        deployment = {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 4,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
                },
            },
        }
        await admin.create(DEPLOYMENTS, deployment)

        async def running() -> list[dict] | None:
            pods = (await admin.list(PODS, label_selector="app=web"))["items"]
            ok = [p for p in pods if p["status"].get("phase") == "Running" and p["status"].get("podIP")]
            return pods if len(ok) == 4 else None

        pods = await eventually(running, timeout=90)
        assert {p["spec"]["nodeName"] for p in pods} <= set(names)
        assert len({p["status"]["podIP"] for p in pods}) == 4  # unique IPs from each node's podCIDR
        ready = await eventually(lambda: _deployment_ready(admin, "web", 4), timeout=60)
        assert ready["status"]["readyReplicas"] == 4

        # Deleting: the kubelet finishes each pod (terminated statuses, then DELETE with gracePeriodSeconds=0).
        await admin.delete(f"{DEPLOYMENTS}/web")

        async def gone() -> bool:
            return not (await admin.list(PODS, label_selector="app=web"))["items"]

        await eventually(gone, timeout=90)
    finally:
        await pool.stop()  # a kubelet may not delete its Node on a real master: the admin does
        for name in ("real-0", "real-1"):
            with contextlib.suppress(APIError):
                await admin.delete(f"{NODES}/{name}")


@pytest.mark.asyncio(loop_scope="module")
async def test_hollow_nodes_survive_a_kube_apiserver_restart(plane: RealControlPlane, admin: RestClient) -> None:
    config = node_config_from_dict(FAST_NODES)
    pool = NodePool(2, config, lambda n: node_creds(plane, n), prefix="restart", proxy_credentials=proxy_creds(plane))
    await pool.start()
    names = ["restart-0", "restart-1"]
    try:
        assert await pool.wait_ready(60)
        old_pid = read_component_pids(plane.data_dir)["kube-apiserver"]
        await plane.restart_apiserver()
        assert read_component_pids(plane.data_dir)["kube-apiserver"] != old_pid
        after = time.time()

        # Leases renewed after the restart, and a pod created now runs: the watches came back.
        async def renewed_after_restart() -> bool:
            for n in names:
                lease = await admin.get(f"{LEASES}/{n}")
                renew = lease["spec"]["renewTime"]  # RFC 3339 with microseconds, UTC
                if _rfc3339(renew) < after:
                    return False
            return True

        await eventually(renewed_after_restart, timeout=60)
        pod = {
            "metadata": {"name": "after-restart"},
            "spec": {"nodeName": "restart-0", "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
        }
        await admin.create(PODS, pod)

        async def running() -> bool:
            return (await admin.get(f"{PODS}/after-restart"))["status"].get("phase") == "Running"

        await eventually(running, timeout=60)
        nodes = {n: await admin.get(f"{NODES}/{n}") for n in names}
        for node in nodes.values():
            ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
            assert ready["Ready"] == "True"
        await admin.delete(f"{PODS}/after-restart")
        await eventually(lambda: _gone(admin, f"{PODS}/after-restart"), timeout=60)
    finally:
        await pool.stop()
        for name in names:
            with contextlib.suppress(APIError):
                await admin.delete(f"{NODES}/{name}")


def _rfc3339(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def _gone(admin: RestClient, path: str) -> bool:
    try:
        await admin.get(path)
    except NotFound:
        return True
    return False


async def _deployment_ready(admin: RestClient, name: str, replicas: int) -> dict | None:
    d = await admin.get(f"{DEPLOYMENTS}/{name}")
    return d if d.get("status", {}).get("readyReplicas") == replicas else None


@pytest.mark.asyncio(loop_scope="module")
async def test_node_credential_cannot_write_another_nodes_objects(plane: RealControlPlane, admin: RestClient) -> None:
    async with (
        RestClient(node_creds(plane, "na"), qps=0, max_retries=0) as na,
        RestClient(node_creds(plane, "nb"), qps=0, max_retries=0) as nb,
    ):
        for client, name in ((na, "na"), (nb, "nb")):
            await client.create(NODES, {"metadata": {"name": name}})
            await client.create(LEASES, {"metadata": {"name": name}, "spec": {"holderIdentity": name}})
        try:
            with pytest.raises(Forbidden):
                await na.create(NODES, {"metadata": {"name": "nc"}})
            with pytest.raises(Forbidden):
                await na.patch(f"{NODES}/nb/status", {"status": {"phase": "Pending"}}, patch_type="merge")
            with pytest.raises(Forbidden):
                await na.patch(f"{NODES}/nb", {"metadata": {"labels": {"x": "y"}}}, patch_type="merge")
            with pytest.raises(Forbidden):
                await na.delete(f"{NODES}/nb")
            lease = await admin.get(f"{LEASES}/nb")
            with pytest.raises(Forbidden):  # another node's lease: not even readable
                await na.get(f"{LEASES}/nb")
            with pytest.raises(Forbidden):
                await na.replace(f"{LEASES}/nb", lease)
            with pytest.raises(Forbidden):
                await na.delete(f"{LEASES}/nb")
            # NodeRestriction: a node may not label itself with node-restriction.kubernetes.io/.
            with pytest.raises(Forbidden):
                await na.patch(
                    f"{NODES}/na",
                    {"metadata": {"labels": {"node-restriction.kubernetes.io/x": "y"}}},
                    patch_type="merge",
                )
            # A pod bound to nb: na cannot write its status or delete it; nb can.
            await admin.create(
                PODS,
                {
                    "metadata": {"name": "on-nb"},
                    "spec": {"nodeName": "nb", "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
                },
            )
            with pytest.raises(Forbidden):
                await na.patch(f"{PODS}/on-nb/status", {"status": {"phase": "Running"}}, patch_type="merge")
            with pytest.raises(Forbidden):
                await na.delete(f"{PODS}/on-nb", grace_period_seconds=0)
            await nb.patch(f"{PODS}/on-nb/status", {"status": {"phase": "Running"}}, patch_type="strategic")
            await nb.delete(f"{PODS}/on-nb", grace_period_seconds=0)
            with pytest.raises(NotFound):
                await admin.get(f"{PODS}/on-nb")
        finally:
            for name in ("na", "nb"):
                with contextlib.suppress(APIError):
                    await admin.delete(f"{NODES}/{name}")


@pytest.mark.asyncio(loop_scope="module")
async def test_launcher_publishes_the_binaries_and_stops_them(tmp_path: Path) -> None:
    explicit = os.environ.get("KUBEMARK_KUBE_BINARIES")
    kube_binaries()  # a clear failure first when they are missing
    launcher = RealMasterLauncher(tmp_path / "master", Path(explicit) if explicit else None)
    async with launcher as cluster:
        pids = cluster.pids
        assert set(pids) == {"kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler"}
        (apiserver,) = pids["kube-apiserver"]  # type: ignore[misc]
        procs = {"kube-apiserver": apiserver, **{k: v for k, v in pids.items() if k != "kube-apiserver"}}
        for name, pid in procs.items():
            exe = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            assert Path(exe).name == name, (name, exe)
        async with RestClient(cluster.node_credentials("ln"), qps=0, max_retries=0) as node:
            await node.create(NODES, {"metadata": {"name": "ln"}})
            with pytest.raises(Forbidden):
                await node.create(NODES, {"metadata": {"name": "other"}})
        # `kubemark master node-kubeconfig` works on this data dir too, with the real kubectl.
        out = tmp_path / "ln.kubeconfig"
        data_dir = str(tmp_path / "master")
        subprocess.run(
            [
                *KUBEMARK,
                "master",
                "node-kubeconfig",
                "ln",
                "--data-dir",
                data_dir,
                "--server",
                cluster.admin.server,
                "-o",
                str(out),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        kubectl = str(Path(sys.executable).parent / "kubectl")
        got = subprocess.run(
            [kubectl, "--kubeconfig", str(out), "get", "node", "ln", "-o", "name"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert got.stdout.strip() == "node/ln", got.stderr
    for pid in procs.values():
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), pid


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True

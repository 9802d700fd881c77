"""HollowKubelet against the in-process API server: registration, leases, pods start/stop/lifetimes, adoption."""

from __future__ import annotations

import asyncio
import ipaddress
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from kubemark.client.kubeconfig import ClusterCredentials
from kubemark.client.paths import resource_path
from kubemark.client.rest import RestClient
from kubemark.hollow.config import NodeConfig
from kubemark.hollow.kubelet import HollowKubelet
from kubemark.master.apiserver.server import APIServer

from .conftest import create_bound_pod, eventually, fast_config

POD_COND = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")


@asynccontextmanager
async def running_kubelets(
    server: APIServer, count: int, config: NodeConfig, prefix: str = "hollow"
) -> AsyncIterator[list[HollowKubelet]]:
    clients, kubelets = [], []
    try:
        for i in range(count):
            client = RestClient(ClusterCredentials(server=server.url), qps=1000, burst=1000, max_retries=2)
            clients.append(client)
            kubelets.append(HollowKubelet(f"{prefix}-{i}", client, config, index=i))
        await asyncio.gather(*(k.start() for k in kubelets))
        await asyncio.gather(*(asyncio.wait_for(k.ready.wait(), 5) for k in kubelets))
        yield kubelets
    finally:
        for k in kubelets:
            await k.stop()
        for c in clients:
            await c.close()


def _pod_path(name: str, ns: str = "default") -> str:
    return resource_path("", "v1", "pods", ns, name)


def _get_or_none(admin: RestClient, path: str) -> Callable[[], Any]:
    async def check() -> Any:
        from kubemark.client.errors import NotFound

        try:
            return await admin.get(path)
        except NotFound:
            return None

    return check


async def test_nodes_register_and_report_ready(apiserver: APIServer, admin: RestClient) -> None:
    async with running_kubelets(apiserver, 4, fast_config(labels={"tier": "hollow"})):
        nodes = (await admin.list(resource_path("", "v1", "nodes")))["items"]
        assert sorted(n["metadata"]["name"] for n in nodes) == [f"hollow-{i}" for i in range(4)]
        ips = set()
        for node in nodes:
            labels = node["metadata"]["labels"]
            assert labels["kubernetes.io/hostname"] == node["metadata"]["name"]
            assert labels["tier"] == "hollow"
            assert node["spec"]["providerID"] == "kubemark://" + node["metadata"]["name"]
            conds = {c["type"]: c for c in node["status"]["conditions"]}
            assert conds["Ready"]["status"] == "True"
            assert conds["Ready"]["message"] == "kubelet is posting ready status"
            assert conds["MemoryPressure"]["status"] == "False"
            ips.add(next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"))
        assert len(ips) == 4


async def test_leases_renew_and_each_node_watches_its_pods(apiserver: APIServer, admin: RestClient) -> None:
    async with running_kubelets(apiserver, 3, fast_config()) as kubelets:
        first, counts = {}, {}
        for k in kubelets:
            lease = await admin.get(resource_path("coordination.k8s.io", "v1", "leases", "kube-node-lease", k.name))
            assert lease["spec"]["holderIdentity"] == k.name
            assert lease["spec"]["leaseDurationSeconds"] == 40
            assert lease["metadata"]["ownerReferences"][0]["uid"] == k.node["metadata"]["uid"]
            first[k.name] = lease["spec"]["renewTime"]
            counts[k.name] = k.lease.renewals
        # One renewal may have been in flight during the GET; the one after it certainly came later.
        await asyncio.gather(*(asyncio.wait_for(_renewals_reach(k, counts[k.name] + 2), 3) for k in kubelets))
        for k in kubelets:
            lease = await admin.get(resource_path("coordination.k8s.io", "v1", "leases", "kube-node-lease", k.name))
            assert lease["spec"]["renewTime"] > first[k.name]
            assert k.lease.renewals >= 2
            # Its own pod watch, selected by node name.
            assert k.pod_informer.reflector.field_selector == f"spec.nodeName={k.name}"
            assert k.pod_informer.reflector.watches >= 1


async def test_bound_pods_run_with_unique_ips_and_kubelet_conditions(apiserver: APIServer, admin: RestClient) -> None:
    async with running_kubelets(apiserver, 2, fast_config()):
        for i in range(6):
            await create_bound_pod(admin, f"p{i}", f"hollow-{i % 2}")

        async def all_running() -> Any:
            pods = (await admin.list(resource_path("", "v1", "pods", "default")))["items"]
            return pods if len(pods) == 6 and all(p["status"].get("phase") == "Running" for p in pods) else None

        pods = await eventually(all_running)
        ips = [p["status"]["podIP"] for p in pods]
        assert len(set(ips)) == 6
        for pod in pods:
            status = pod["status"]
            node_ip = status["hostIP"]
            assert status["hostIPs"] == [{"ip": node_ip}]
            assert status["podIPs"] == [{"ip": status["podIP"]}]
            assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network("10.128.0.0/9")
            conds = {c["type"]: c["status"] for c in status["conditions"]}
            assert all(conds[t] == "True" for t in POD_COND)
            assert conds["PodScheduled"] == "True"
            (cs,) = status["containerStatuses"]
            assert cs["containerID"].startswith("hollow://")
            assert cs["ready"] is True and cs["started"] is True and cs["restartCount"] == 0
            assert "startedAt" in cs["state"]["running"]
            assert cs["imageID"]
            assert status["startTime"]

        async def kubelet_events() -> Any:
            items = (await admin.list(resource_path("", "v1", "events", "default")))["items"]
            reasons = [e["reason"] for e in items if e["involvedObject"]["name"] == "p0"]
            return items if {"Pulled", "Created", "Started"} <= set(reasons) else None

        events = await eventually(kubelet_events)
        started = next(e for e in events if e["reason"] == "Started" and e["involvedObject"]["name"] == "p0")
        assert started["source"] == {"component": "kubelet", "host": "hollow-0"}
        assert started["reportingInstance"] == "hollow-0"


async def test_delete_is_finished_with_a_grace_zero_delete(apiserver: APIServer, admin: RestClient) -> None:
    async with running_kubelets(apiserver, 1, fast_config()) as (kubelet,):
        await create_bound_pod(admin, "doomed", "hollow-0")
        await eventually(lambda: _phase(admin, "doomed", "Running"))
        await admin.delete(_pod_path("doomed"))  # graceful: 30 s unless the kubelet finishes it
        gone = await eventually(_not_found(admin, _pod_path("doomed")), timeout=5)
        assert gone is True
        assert kubelet.runtime.ips.__len__() == 0

        async def killing() -> Any:
            items = (await admin.list(resource_path("", "v1", "events", "default")))["items"]
            return any(e["reason"] == "Killing" for e in items)

        assert await eventually(killing)


async def test_lifetimes_end_pods_by_restart_policy(apiserver: APIServer, admin: RestClient) -> None:
    async with running_kubelets(apiserver, 1, fast_config()):
        short = {"kubemark.io/lifetime-seconds": "0.1"}
        await create_bound_pod(admin, "ok", "hollow-0", annotations=short, restartPolicy="Never")
        failing = {**short, "kubemark.io/exit-code": "3"}
        await create_bound_pod(admin, "bad", "hollow-0", annotations=failing, restartPolicy="Never")
        await create_bound_pod(admin, "loop", "hollow-0", annotations={"kubemark.io/lifetime-seconds": "0.2"})
        ok = await eventually(lambda: _phase(admin, "ok", "Succeeded"))
        assert ok["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
        assert {c["type"]: c["status"] for c in ok["status"]["conditions"]}["Ready"] == "False"
        bad = await eventually(lambda: _phase(admin, "bad", "Failed"))
        assert bad["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3

        async def restarted() -> Any:
            pod = await admin.get(_pod_path("loop"))
            cs = pod["status"].get("containerStatuses") or [{}]
            return pod if cs[0].get("restartCount", 0) >= 1 else None

        loop = await eventually(restarted)
        cs = loop["status"]["containerStatuses"][0]
        assert loop["status"]["phase"] == "Running"
        assert cs["lastState"]["terminated"]["exitCode"] == 0


async def test_admission_rejects_pods_that_do_not_fit(apiserver: APIServer, admin: RestClient) -> None:
    async with running_kubelets(apiserver, 1, fast_config()):
        await create_bound_pod(admin, "big", "hollow-0", cpu="800m")
        await eventually(lambda: _phase(admin, "big", "Running"))
        await create_bound_pod(admin, "too-big", "hollow-0", cpu="500m")
        pod = await eventually(lambda: _phase(admin, "too-big", "Failed"))
        assert pod["status"]["reason"] == "OutOfcpu"
        assert pod["status"]["message"] == (
            "Pod was rejected: Node didn't have enough resource: cpu, requested: 500, used: 800, capacity: 1000"
        )


async def test_restarted_node_adopts_its_pods_without_writes(apiserver: APIServer, admin: RestClient) -> None:
    config = fast_config()
    async with running_kubelets(apiserver, 1, config):
        for i in range(3):
            await create_bound_pod(admin, f"keep{i}", "hollow-0")
        for i in range(3):
            await eventually(lambda i=i: _phase(admin, f"keep{i}", "Running"))
        before = {p["metadata"]["name"]: p for p in (await admin.list(_pods()))["items"]}
    # stop() flushed the first incarnation's events.
    events_before = (await admin.list(resource_path("", "v1", "events", "default")))["items"]
    async with running_kubelets(apiserver, 1, config) as (again,):
        assert await again.pod_informer.wait_synced(5)
        assert sorted(w.name for w in again.pods.values()) == ["keep0", "keep1", "keep2"]
        assert all(w.phase == "Running" for w in again.pods.values())
        # A new pod still starts, with an IP that does not collide with the adopted ones.
        await create_bound_pod(admin, "fresh", "hollow-0")
        fresh = await eventually(lambda: _phase(admin, "fresh", "Running"))
        assert fresh["status"]["podIP"] not in {p["status"]["podIP"] for p in before.values()}
        after = {p["metadata"]["name"]: p for p in (await admin.list(_pods()))["items"]}
        for name, pod in before.items():
            assert after[name]["metadata"]["resourceVersion"] == pod["metadata"]["resourceVersion"]
        assert again.status_writes == 2  # only the fresh pod's Pending and Running writes
        events_after = (await admin.list(resource_path("", "v1", "events", "default")))["items"]
        old_names = {e["metadata"]["name"] for e in events_before}
        new_events = [e for e in events_after if e["metadata"]["name"] not in old_names]
        assert new_events
        assert all(e["involvedObject"]["name"] == "fresh" for e in new_events)


async def test_deleted_node_registers_again(apiserver: APIServer, admin: RestClient) -> None:
    async with running_kubelets(apiserver, 1, fast_config()) as (kubelet,):
        await admin.delete(resource_path("", "v1", "nodes", name="hollow-0"))
        node = await eventually(_get_or_none(admin, resource_path("", "v1", "nodes", name="hollow-0")))
        assert node["metadata"]["name"] == "hollow-0"
        assert kubelet.registrations == 2


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_status_is_patched_only_on_change_or_after_the_report_period(
    apiserver: APIServer, admin: RestClient
) -> None:
    """The master canonicalises quantities ("3.75Gi" is stored as "3840Mi"), so a kubelet that compared strings
    saw a change at every sync and PATCHed nodes/status every 10 s. Ticks are driven by hand on a fake clock (the
    status loop's own period is an hour, so it never ticks during the test)."""
    config = fast_config(
        capacity={"cpu": "1000m", "memory": "3.75Gi", "pods": "110", "ephemeral-storage": "102400Mi"},
        heartbeat={"leaseRenewInterval": 3600, "statusUpdateFrequency": 3600, "statusReportFrequency": 300},
    )
    clock = FakeClock()
    client = RestClient(ClusterCredentials(server=apiserver.url), qps=1000, burst=1000, max_retries=2)
    kubelet = HollowKubelet("steady-0", client, config, index=0, clock=clock)
    patches: list[str] = []
    patch = client.patch

    async def counting_patch(path: str, body: Any, **kw: Any) -> Any:
        if path.endswith("/nodes/steady-0/status"):
            patches.append(path)
        return await patch(path, body, **kw)

    client.patch = counting_patch  # type: ignore[method-assign]
    try:
        await kubelet.start()
        assert kubelet.ready.is_set() and len(patches) == 1  # the first sync: Ready
        assert await kubelet.node_informer.wait_synced(5)
        node = await admin.get(resource_path("", "v1", "nodes", name="steady-0"))
        assert node["status"]["capacity"]["memory"] == "3840Mi" and node["status"]["capacity"]["cpu"] == "1"
        # The first periodic report comes nodeStatusReportFrequency plus kubelet's one-time random delay after
        # the change (-150..+150 s); every nodeStatusUpdateFrequency tick before that sends nothing.
        delay = kubelet.reporter.delay_after_change
        assert -150.0 <= delay <= 150.0
        ticks = math.ceil((300 + delay) / 10)
        for _ in range(ticks - 1):
            clock.now += 10
            assert await kubelet.sync_node_status() is False
        assert len(patches) == 1
        clock.now += 10  # the report period (plus the delay) has passed: the periodic one
        assert await kubelet.sync_node_status() is True
        assert len(patches) == 2 and kubelet.reporter.patches == 2
        for _ in range(5):
            clock.now += 10
            assert await kubelet.sync_node_status() is False
        assert len(patches) == 2
        kubelet.facts.pressure["DiskPressure"] = True  # a real change goes out at the next tick
        clock.now += 10
        assert await kubelet.sync_node_status() is True and len(patches) == 3
    finally:
        await kubelet.stop()
        await client.close()


async def test_kubelet_watches_what_a_v1_37_kubelet_watches(apiserver: APIServer, admin: RestClient) -> None:
    config = fast_config()
    async with running_kubelets(apiserver, 2, config) as kubelets:
        for k in kubelets:
            assert k.csi_driver_informer is not None and k.runtime_class_informer is not None
            pcr = k.pod_certificate_request_informer
            assert pcr is not None and pcr.reflector.field_selector == f"spec.nodeName={k.name}"
            for informer in k.informers:
                assert await informer.wait_synced(5)
        driver = {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "hollow.csi"}}
        await admin.create(resource_path("storage.k8s.io", "v1", "csidrivers"), driver)
        handler = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "rc"}, "handler": "h"}
        await admin.create(resource_path("node.k8s.io", "v1", "runtimeclasses"), handler)
        request = {
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "PodCertificateRequest",
            "metadata": {"name": "pcr"},
            "spec": {"nodeName": "hollow-1", "podName": "p", "signerName": "example.com/s"},
        }
        await admin.create(resource_path("certificates.k8s.io", "v1", "podcertificaterequests", "default"), request)

        async def seen() -> bool:
            return all(
                k.csi_driver_informer is not None
                and k.csi_driver_informer.get("hollow.csi") is not None
                and k.runtime_class_informer is not None
                and k.runtime_class_informer.get("rc") is not None
                for k in kubelets
            ) and [len(k.pod_certificate_request_informer or ()) for k in kubelets] == [0, 1]

        await eventually(seen)
    config = fast_config(watchCsiDrivers=False, watchRuntimeClasses=False, watchPodCertificateRequests=False)
    kubelet = HollowKubelet("bare", admin, config, index=9)
    assert kubelet.informers == [kubelet.node_informer, kubelet.pod_informer, kubelet.service_informer]


async def _renewals_reach(kubelet: HollowKubelet, count: int) -> None:
    while kubelet.lease.renewals < count:
        kubelet.lease.renewed.clear()
        await kubelet.lease.renewed.wait()


def _pods() -> str:
    return resource_path("", "v1", "pods", "default")


async def _phase(admin: RestClient, name: str, phase: str) -> Any:
    pod = await admin.get(_pod_path(name))
    return pod if pod["status"].get("phase") == phase else None


def _not_found(admin: RestClient, path: str) -> Callable[[], Any]:
    async def check() -> bool:
        from kubemark.client.errors import NotFound

        try:
            await admin.get(path)
        except NotFound:
            return True
        return False

    return check

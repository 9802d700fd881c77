"""Hollow nodes against a misbehaving master: an API server restart, 429s, dropped connections, and the
per-node identity/watch contract (own pod watch per node, NodeRestriction under system:node:<name>)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kubemark.client.errors import APIError, is_already_exists
from kubemark.client.kubeconfig import ClusterCredentials, load_kubeconfig
from kubemark.client.paths import resource_path
from kubemark.client.rest import RestClient
from kubemark.hollow.pool import NodePool
from kubemark.master.apiserver.server import APIServer, APIServerConfig
from kubemark.master.control_plane import ControlPlane, ControlPlaneConfig

from .conftest import eventually, fast_config, pod_manifest

PODS = resource_path("", "v1", "pods", "default")
pytestmark = pytest.mark.timeout(120)


def bound_pod(name: str, node: str) -> dict[str, Any]:
    pod = pod_manifest(name)
    pod["spec"]["nodeName"] = node  # no scheduler in these tests: bind at creation
    return pod


async def create_until_accepted(admin: RestClient, pod: dict[str, Any], timeout: float = 60.0) -> None:
    """POST a pod, retrying while the master is unreachable; AlreadyExists means an earlier try landed."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await admin.create(PODS, pod)
            return
        except APIError as exc:
            if is_already_exists(exc):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise
        except OSError:  # aiohttp's connection errors are OSErrors
            if asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.2)


async def pods_running(admin: RestClient, names: set[str]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            items = (await admin.list(PODS))["items"]
        except (APIError, OSError):
            return False
        phases = {p["metadata"]["name"]: p["status"].get("phase") for p in items}
        return all(phases.get(n) == "Running" for n in names)

    return check


def node_creds(plane: ControlPlane, name: str) -> ClusterCredentials:
    assert plane.pki is not None
    cert, key = plane.pki.node_credentials(name)
    return ClusterCredentials(server=plane.url, ca_pem=plane.pki.ca_pem, cert_pem=cert, key_pem=key)


@contextlib.asynccontextmanager
async def control_plane(tmp_path: Path, **overrides: Any) -> AsyncIterator[ControlPlane]:
    config = ControlPlaneConfig(
        data_dir=tmp_path / "master",
        port=0,
        scheduler=False,
        controllers=False,
        unsafe_no_fsync=True,
        compaction_interval=0,
        **overrides,
    )
    plane = ControlPlane(config)
    await plane.start()
    try:
        yield plane
    finally:
        await plane.stop()


# -- (a) API server restart --------------------------------------------------------------------------------


async def test_apiserver_restart_loses_no_pod_and_duplicates_none(tmp_path: Path) -> None:
    async with control_plane(tmp_path, storage="etcd") as plane:
        assert plane.apiserver is not None
        port = plane.apiserver.port
        admin = RestClient(load_kubeconfig(plane.kubeconfig_path), qps=1000, burst=1000, max_retries=0)
        pool = NodePool(2, fast_config(), lambda name: node_creds(plane, name), prefix="restart")
        try:
            await pool.start()
            assert await pool.wait_ready(30)
            assert await pool.wait_synced(30)
            nodes = sorted(pool.nodes)
            before = {f"before-{i}" for i in range(6)}
            for i, name in enumerate(sorted(before)):
                await admin.create(PODS, bound_pod(name, nodes[i % 2]))
            await eventually(await pods_running(admin, before), timeout=30)

            # Everything the kubelets wrote for the first pods, per pod: a restart must add nothing to it.
            writes_before = await eventually(settled_writes(pool, nodes, len(before)), timeout=10)
            per_pod = writes_before / len(before)
            assert per_pod == int(per_pod), "every pod start should take the same number of status writes"
            ids_before = {
                p["metadata"]["name"]: p["status"]["containerStatuses"][0]["containerID"]
                for p in (await admin.list(PODS))["items"]
            }
            renewals = {n: pool.kubelet(n).lease.renewals for n in nodes}
            pod_lists = {n: pool.kubelet(n).pod_informer.reflector.watches for n in nodes}

            # Restart the API server (and its etcd) on the same data dir and port; create pods meanwhile.
            await plane.apiserver.stop()
            plane.apiserver.config.port = port
            during = {f"during-{i}" for i in range(4)}
            creators = [
                asyncio.create_task(create_until_accepted(admin, bound_pod(name, nodes[i % 2])))
                for i, name in enumerate(sorted(during))
            ]
            await plane.apiserver.start()
            assert plane.apiserver.port == port
            await asyncio.wait_for(asyncio.gather(*creators), 60)

            await eventually(await pods_running(admin, before | during), timeout=60)

            # Nodes reconnected: leases renewed again and the pod watches were re-opened.
            async def reconnected() -> bool:
                return all(
                    pool.kubelet(n).lease.renewals > renewals[n] + 1
                    and pool.kubelet(n).pod_informer.reflector.watches > pod_lists[n]
                    for n in nodes
                )

            await eventually(reconnected, timeout=60)

            items = (await admin.list(PODS))["items"]
            names = Counter(p["metadata"]["name"] for p in items)
            assert set(names) == before | during and set(names.values()) == {1}
            for pod in items:
                statuses = pod["status"]["containerStatuses"]
                assert [cs["restartCount"] for cs in statuses] == [0], pod["metadata"]["name"]
                if pod["metadata"]["name"] in before:  # adopted after the relist, not started again
                    assert statuses[0]["containerID"] == ids_before[pod["metadata"]["name"]]

            # Exactly one start per pod: status writes and Started events as if no restart had happened.
            writes_after = await eventually(settled_writes(pool, nodes, len(before | during)), timeout=10)
            assert writes_after == per_pod * len(before | during)

            async def every_pod_started_once() -> bool:
                # Events travel apart from status writes (kubelet's broadcaster sends them one at a time), so
                # wait for the last ones to arrive; a second Started event for any pod fails at once.
                events = (await admin.list(resource_path("", "v1", "events", "default")))["items"]
                started = Counter(
                    e["involvedObject"]["name"]
                    for e in events
                    if e["reason"] == "Started" and e["involvedObject"].get("kind") == "Pod"
                )
                assert set(started.values()) <= {1}, started
                return set(started) == before | during

            # A call sent just as the server stopped may wait its full read timeout (30 s) before the retry.
            await eventually(every_pod_started_once, timeout=60)
        finally:
            await pool.stop()
            await admin.close()


def settled_writes(pool: NodePool, nodes: list[str], expected: int) -> Callable[[], Awaitable[Any]]:
    """Pod status writes of `nodes` once exactly `expected` pods are started and no pod work is pending."""

    async def check() -> int | None:
        kubelets = [pool.kubelet(n) for n in nodes]
        works = [w for k in kubelets for w in k.pods.values()]
        idle = all(w.active and (w.task is None or w.task.done()) for w in works)
        return sum(k.status_writes for k in kubelets) if idle and len(works) == expected else None

    return check


# -- (b) 429s ------------------------------------------------------------------------------------------------


def throttle_every(nth: int, counter: Counter[str]) -> Any:
    """A middleware answering every `nth` mutating request with 429 + Retry-After: 0 (like max-in-flight)."""

    @web.middleware
    async def throttle(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            counter["mutating"] += 1
            if counter["mutating"] % nth == 0:
                counter["throttled"] += 1
                body = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": "Too many requests, please try again later.",
                    "reason": "TooManyRequests",
                    "code": 429,
                }
                return web.json_response(body, status=429, headers={"Retry-After": "0"})
        return await handler(request)

    return throttle


@contextlib.asynccontextmanager
async def pods_on_throttled_nodes(
    middleware: Any, node_count: int, prefix: str, names: set[str]
) -> AsyncIterator[tuple[RestClient, NodePool]]:
    """An in-process API server behind `middleware`, `node_count` hollow nodes, and pods `names` Running on
    them (round robin); yields the admin client and the pool."""
    server = APIServer(APIServerConfig(storage="memory", compaction_interval=0, middlewares=[middleware]))
    await server.start()
    admin = RestClient(ClusterCredentials(server=server.url), qps=1000, burst=1000)
    pool = NodePool(node_count, fast_config(), ClusterCredentials(server=server.url), prefix=prefix)
    try:
        await pool.start()
        assert await pool.wait_ready(30)
        nodes = sorted(pool.nodes)
        for i, name in enumerate(sorted(names)):
            await admin.create(PODS, bound_pod(name, nodes[i % len(nodes)]))
        await eventually(await pods_running(admin, names), timeout=30)
        yield admin, pool
    finally:
        await pool.stop()
        await admin.close()
        await server.stop()


async def test_429s_are_survived() -> None:
    counter: Counter[str] = Counter()
    names = {f"p-{i}" for i in range(8)}
    async with pods_on_throttled_nodes(throttle_every(3, counter), 4, "throttled", names) as (admin, pool):
        nodes = sorted(pool.nodes)

        async def renewing() -> bool:
            return all(pool.kubelet(n).lease.renewals >= 5 for n in nodes)

        await eventually(renewing, timeout=30)
        assert counter["throttled"] >= 10, counter  # the nodes really were throttled, repeatedly
        leases = (await admin.list(resource_path("coordination.k8s.io", "v1", "leases", "kube-node-lease")))["items"]
        assert sorted(le["metadata"]["name"] for le in leases) == nodes


def too_many_requests() -> web.Response:
    """What max-in-flight answers: a 429 Status with Retry-After 0."""
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "TooManyRequests", "code": 429}
    return web.json_response(status, status=429, headers={"Retry-After": "0"})


def throttle_pod_deletes(rejections: int, counter: Counter[str]) -> Any:
    """A middleware answering the first `rejections` final (grace 0) DELETEs of each pod with 429: more than one
    client call's retry budget, as under a mass deletion that keeps the API server at its max-in-flight limit."""

    @web.middleware
    async def throttle(request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read() if request.method == "DELETE" else b""  # aiohttp keeps it for the handler
        final = request.query.get("gracePeriodSeconds") == "0" or b'"gracePeriodSeconds":0' in body.replace(b" ", b"")
        if request.method == "DELETE" and "/pods/" in request.path and final:  # the kubelet's, not the user's
            counter[request.path] += 1
            if counter[request.path] <= rejections:
                return too_many_requests()
        return await handler(request)

    return throttle


async def test_pod_deletion_is_retried_past_the_clients_retry_budget() -> None:
    counter: Counter[str] = Counter()
    rejections = 8  # the client gives up after 1 + 5 attempts; the kubelet must come back for the pod
    names = {"p-0", "p-1", "p-2"}
    async with pods_on_throttled_nodes(throttle_pod_deletes(rejections, counter), 2, "deleting", names) as (admin, _):
        for name in names:
            await admin.delete(f"{PODS}/{name}")  # graceful: the kubelets finish it with DELETE grace 0

        async def all_gone() -> bool:
            return not (await admin.list(PODS))["items"]

        await eventually(all_gone, timeout=60)
        finals = {path: n for path, n in counter.items() if path.rsplit("/", 1)[-1] in names}
        # Each pod: the kubelet's rejected attempts (over several client calls), then its accepted one.
        assert len(finals) == 3 and all(n == rejections + 1 for n in finals.values()), counter


def throttle_pod_status(rejections: int, counter: Counter[str]) -> Any:
    """A middleware answering the first `rejections` status PATCHes of each pod with 429."""

    @web.middleware
    async def throttle(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method == "PATCH" and request.path.endswith("/status") and "/pods/" in request.path:
            counter[request.path] += 1
            if counter[request.path] <= rejections:
                return too_many_requests()
        return await handler(request)

    return throttle


async def test_pod_start_status_is_retried_past_every_retry_budget() -> None:
    counter: Counter[str] = Counter()
    # More than the client's 1 + 5 attempts times the 3 status writes the kubelet used to try before giving up
    # (which left pods Pending for good in a 1,000-node density run).
    rejections = 20
    names = {"p-0", "p-1"}
    # The set-up waits for both pods to be Running: that is the assertion.
    async with pods_on_throttled_nodes(throttle_pod_status(rejections, counter), 2, "starting", names):
        pass
    assert all(counter[f"{PODS}/{name}/status"] > rejections for name in names), counter


# -- (c) dropped connections -----------------------------------------------------------------------------


class TcpProxy:
    """A loopback TCP relay that can be killed (every connection aborted, listener closed) and restarted."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.accepted = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def kill(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}


async def test_nodes_recover_from_dropped_connections(apiserver: APIServer, admin: RestClient) -> None:
    proxy = TcpProxy(apiserver.port)
    await proxy.start()
    pool = NodePool(3, fast_config(), ClusterCredentials(server=f"http://127.0.0.1:{proxy.port}"), prefix="dropped")
    try:
        await pool.start()
        assert await pool.wait_ready(30)
        assert await pool.wait_synced(30)
        nodes = sorted(pool.nodes)
        await admin.create(PODS, bound_pod("before", nodes[0]))
        await eventually(await pods_running(admin, {"before"}), timeout=20)

        await proxy.kill()
        failures = {n: pool.kubelet(n).lease.failures for n in nodes}

        async def noticed() -> bool:  # the nodes saw the outage (renewals failing), not just a quiet period
            return all(pool.kubelet(n).lease.failures > failures[n] for n in nodes)

        await eventually(noticed, timeout=20)
        await admin.create(PODS, bound_pod("during", nodes[1]))  # straight to the master: nodes cannot see it
        accepted = proxy.accepted
        await proxy.start()
        renewals = {n: pool.kubelet(n).lease.renewals for n in nodes}

        await eventually(await pods_running(admin, {"before", "during"}), timeout=60)
        await admin.create(PODS, bound_pod("after", nodes[2]))
        await eventually(await pods_running(admin, {"after"}), timeout=30)

        async def renewing() -> bool:
            return all(pool.kubelet(n).lease.renewals > renewals[n] + 1 for n in nodes)

        await eventually(renewing, timeout=30)
        assert proxy.accepted > accepted  # they came back through new connections
        assert all(pool.kubelet(n).ready.is_set() for n in nodes)
    finally:
        await pool.stop()
        with contextlib.suppress(AssertionError):
            await proxy.kill()


# -- (d) per-node watches and identity --------------------------------------------------------------------


def gauge(plane: ControlPlane, name: str, **labels: str) -> float:
    total = 0.0
    for family in plane.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def test_each_node_holds_its_own_pod_watch_as_system_node(tmp_path: Path) -> None:
    async with control_plane(tmp_path, storage="memory") as plane:
        pool = NodePool(3, fast_config(), lambda name: node_creds(plane, name), prefix="ident")
        try:
            await pool.start()
            assert await pool.wait_ready(30)
            assert await pool.wait_synced(30)

            async def watches() -> bool:
                # kubelet: node, pods, services, csidrivers, runtimeclasses, podcertificaterequests; kube-proxy:
                # services, endpointslices, node, servicecidrs = 10 per node (each opened once its informer has
                # listed).
                return (
                    gauge(plane, "apiserver_longrunning_requests", verb="WATCH", resource="pods") == 3
                    and gauge(plane, "apiserver_registered_watchers", kind="Pod") == 3
                    and gauge(plane, "apiserver_longrunning_requests", verb="WATCH", resource="podcertificaterequests")
                    == 3
                    and gauge(plane, "apiserver_longrunning_requests", verb="WATCH", resource="servicecidrs") == 3
                    and gauge(plane, "apiserver_longrunning_requests", verb="WATCH") == 3 * 10
                )

            await eventually(watches, timeout=20)

            # NodeRestriction: a node writes its own Node and Lease, never another node's.
            a, b = sorted(pool.nodes)[:2]
            client = pool.nodes[a].kubelet_client
            own_status = resource_path("", "v1", "nodes", name=a, subresource="status")
            await client.patch(own_status, {"metadata": {"labels": {"mine": "yes"}}})
            for path in (
                resource_path("", "v1", "nodes", name=b, subresource="status"),
                resource_path("coordination.k8s.io", "v1", "leases", "kube-node-lease", b),
            ):
                with pytest.raises(APIError) as err:
                    await client.patch(path, {"metadata": {"labels": {"stolen": "yes"}}})
                # Refused by the Node authorizer for *this* node: it authenticated as system:node:<a>.
                assert err.value.status == 403 and f'User "system:node:{a}"' in str(err.value)
        finally:
            await pool.stop()

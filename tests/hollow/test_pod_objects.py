"""The Secrets / ConfigMaps a pod references, read by the hollow kubelet as kubelet's managers read them and
gating its start as kubelet's volume manager and container runtime do; requests counted at the API server."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from kubemark.client.kubeconfig import ClusterCredentials
from kubemark.client.paths import resource_path
from kubemark.client.rest import RestClient
from kubemark.hollow.config import NodeConfig
from kubemark.hollow.kubelet import HollowKubelet
from kubemark.master.apiserver.app import default_filters
from kubemark.master.apiserver.server import APIServer, APIServerConfig

from .conftest import create_bound_pod, eventually, fast_config

NS = "default"
SECRETS = resource_path("", "v1", "secrets", NS)
CONFIGMAPS = resource_path("", "v1", "configmaps", NS)
EVENTS = resource_path("", "v1", "events", NS)


class Recorder:
    """Server-side request log, and 403s for the first `forbid[path]` GETs of a path (a Node authorizer whose
    graph has not seen the binding yet)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.forbid: Counter[str] = Counter()

    def middleware(self) -> Any:
        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            self.requests.append((request.method, request.path, dict(request.query)))
            if request.method == "GET" and self.forbid[request.path] > 0:
                self.forbid[request.path] -= 1
                body = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": f"{request.path} is forbidden: no relationship found between node and this object",
                    "reason": "Forbidden",
                    "code": 403,
                }
                return web.json_response(body, status=403)
            return await handler(request)

        return record

    def count(self, path: str, *, watch: bool | None = None, method: str = "GET") -> int:
        return sum(
            1
            for m, p, q in self.requests
            if m == method and p == path and (watch is None or (q.get("watch") in ("true", "1")) == watch)
        )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def server(recorder: Recorder) -> AsyncIterator[APIServer]:
    cfg = APIServerConfig(storage="memory", compaction_interval=0, middlewares=[recorder.middleware(), default_filters])
    srv = APIServer(cfg)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def admin(server: APIServer) -> AsyncIterator[RestClient]:
    client = RestClient(ClusterCredentials(server=server.url), qps=0, burst=1, max_retries=1)
    try:
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def kubelet_on(server: APIServer, config: NodeConfig, name: str = "node-0") -> AsyncIterator[HollowKubelet]:
    client = RestClient(ClusterCredentials(server=server.url), qps=1000, burst=1000, max_retries=1)
    kubelet = HollowKubelet(name, client, config, index=0)
    try:
        await kubelet.start()
        await kubelet.ready.wait()
        await kubelet.pod_informer.wait_synced(5)
        yield kubelet
    finally:
        await kubelet.stop()
        await client.close()


async def create_secret(admin: RestClient, name: str, **data: str) -> None:
    await admin.create(SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data})


async def create_configmap(admin: RestClient, name: str, **data: str) -> None:
    await admin.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})


def containers(*, env: list[Any] | None = None, env_from: list[Any] | None = None) -> list[dict[str, Any]]:
    c: dict[str, Any] = {"name": "app", "image": "registry.k8s.io/pause:3.9", "resources": {"requests": {"cpu": "10m"}}}
    if env:
        c["env"] = env
    if env_from:
        c["envFrom"] = env_from
    return [c]


def secret_volume(secret: str, optional: bool = False, name: str = "creds") -> dict[str, Any]:
    return {"name": name, "secret": {"secretName": secret, "optional": optional}}


async def pod(admin: RestClient, name: str) -> dict[str, Any]:
    return await admin.get(resource_path("", "v1", "pods", NS, name))


def phase_is(admin: RestClient, name: str, phase: str) -> Any:
    async def check() -> bool:
        return (await pod(admin, name)).get("status", {}).get("phase") == phase

    return check


def events_of(admin: RestClient, name: str, reason: str) -> Any:
    async def check() -> list[dict[str, Any]]:
        items = (await admin.list(EVENTS))["items"]
        return [e for e in items if e["involvedObject"].get("name") == name and e["reason"] == reason]

    return check


async def set_node_ttl(admin: RestClient, kubelet: HollowKubelet, seconds: str) -> None:
    """Annotate the node as the TTL controller does, and wait until its kubelet has seen it."""
    patch = {"metadata": {"annotations": {"node.alpha.kubernetes.io/ttl": seconds}}}
    await admin.patch(resource_path("", "v1", "nodes", name=kubelet.name), patch, "merge")

    async def seen() -> bool:
        return kubelet._object_ttl() == float(seconds)

    await eventually(seen)


def waiting_of(p: dict[str, Any]) -> dict[str, Any]:
    return p["status"]["containerStatuses"][0]["state"].get("waiting") or {}


async def test_secret_volume_and_configmap_envfrom_are_each_read_once_and_the_pod_runs(
    server: APIServer, admin: RestClient, recorder: Recorder
) -> None:
    await create_secret(admin, "creds", password="c2VjcmV0")
    await create_configmap(admin, "settings", mode="fast")
    async with kubelet_on(server, fast_config()) as kubelet:
        await create_bound_pod(
            admin,
            "web",
            kubelet.name,
            volumes=[secret_volume("creds")],
            containers=containers(env_from=[{"configMapRef": {"name": "settings"}}]),
        )
        await create_bound_pod(admin, "plain", kubelet.name)
        await eventually(phase_is(admin, "web", "Running"))
        await eventually(phase_is(admin, "plain", "Running"))
        assert recorder.count(f"{SECRETS}/creds") == 1
        assert recorder.count(f"{CONFIGMAPS}/settings") == 1
        # Cache strategy: GETs only, no LIST or WATCH of either resource.
        assert recorder.count(SECRETS) == recorder.count(CONFIGMAPS) == 0
        # A pod that references nothing registers nothing.
        plain_uid = (await pod(admin, "plain"))["metadata"]["uid"]
        assert plain_uid not in kubelet._sources
        assert len(kubelet.objects) == 2
        assert await events_of(admin, "web", "FailedMount")() == []


async def test_missing_secret_volume_blocks_the_start_until_it_exists(
    server: APIServer, admin: RestClient, recorder: Recorder
) -> None:
    async with kubelet_on(server, fast_config()) as kubelet:
        await create_bound_pod(admin, "web", kubelet.name, volumes=[secret_volume("late")])
        failed = await eventually(events_of(admin, "web", "FailedMount"))
        assert failed[0]["type"] == "Warning"
        assert failed[0]["message"] == 'MountVolume.SetUp failed for volume "creds" : secrets "late" not found'
        assert failed[0]["source"]["component"] == "kubelet"
        # Pending, ContainerCreating, no sandbox yet (volumes are set up before it).
        p = await pod(admin, "web")
        assert p["status"]["phase"] == "Pending"
        assert waiting_of(p) == {"reason": "ContainerCreating"}
        conds = {c["type"]: c["status"] for c in p["status"]["conditions"]}
        assert conds["PodReadyToStartContainers"] == "False"
        assert await events_of(admin, "web", "Started")() == []

        before = recorder.count(f"{SECRETS}/late")
        await create_secret(admin, "late", password="c2VjcmV0")  # the volume manager's retry picks it up
        await eventually(phase_is(admin, "web", "Running"))
        assert recorder.count(f"{SECRETS}/late") > before


async def test_missing_env_secret_is_create_container_config_error_until_it_exists(
    server: APIServer, admin: RestClient
) -> None:
    async with kubelet_on(server, fast_config()) as kubelet:
        kubelet.pod_sync_backoff = 0.05  # the pod worker's 10 s re-sync, shortened for the test
        env = [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
        await create_bound_pod(admin, "app", kubelet.name, containers=containers(env=env))
        failed = await eventually(events_of(admin, "app", "Failed"))
        assert failed[0]["message"] == 'Error: secrets "db" not found'
        assert failed[0]["involvedObject"]["fieldPath"] == "spec.containers{app}"

        async def config_error() -> dict[str, Any]:
            p = await pod(admin, "app")
            return p if waiting_of(p).get("reason") == "CreateContainerConfigError" else {}

        p = await eventually(config_error)
        assert waiting_of(p) == {"reason": "CreateContainerConfigError", "message": 'secrets "db" not found'}
        assert p["status"]["phase"] == "Pending"
        assert p["status"]["podIP"]  # the sandbox runs; only the container config failed

        await create_secret(admin, "db", other="eA==")  # exists, but without the key

        async def key_error() -> list[dict[str, Any]]:
            events = await events_of(admin, "app", "Failed")()
            return [e for e in events if "couldn't find key" in e["message"]]

        keyed = await eventually(key_error)
        assert keyed[0]["message"] == "Error: couldn't find key password in Secret default/db"
        # The copy without the key is cached for the TTL (60 s by default); a small cluster's TTL controller
        # sets 0 s, so the next pod sync reads the object afresh.
        await set_node_ttl(admin, kubelet, "0")
        secret = await admin.get(f"{SECRETS}/db")
        secret["data"] = {"password": "c2VjcmV0"}
        await admin.replace(f"{SECRETS}/db", secret)
        await eventually(phase_is(admin, "app", "Running"))
        cs = (await pod(admin, "app"))["status"]["containerStatuses"][0]
        assert "running" in cs["state"] and cs["ready"]


async def test_optional_missing_objects_do_not_block(server: APIServer, admin: RestClient) -> None:
    async with kubelet_on(server, fast_config()) as kubelet:
        env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "x", "optional": True}}}]
        await create_bound_pod(
            admin,
            "relaxed",
            kubelet.name,
            volumes=[secret_volume("absent", optional=True)],
            containers=containers(env=env, env_from=[{"secretRef": {"name": "absent-too", "optional": True}}]),
            imagePullSecrets=[{"name": "regcred"}],
        )
        await eventually(phase_is(admin, "relaxed", "Running"))
        # A missing pull secret is only reported (kubelet pulls without it).
        pulled = await eventually(events_of(admin, "relaxed", "FailedToRetrieveImagePullSecret"))
        assert pulled[0]["message"] == (
            "Unable to retrieve some image pull secrets (regcred); attempting to pull the image may not succeed."
        )
        assert await events_of(admin, "relaxed", "FailedMount")() == []
        assert await events_of(admin, "relaxed", "Failed")() == []


async def test_forbidden_right_after_binding_is_retried(
    server: APIServer, admin: RestClient, recorder: Recorder
) -> None:
    await create_secret(admin, "creds", password="c2VjcmV0")
    recorder.forbid[f"{SECRETS}/creds"] = 2  # the authorizer's graph lags the binding by two reads
    async with kubelet_on(server, fast_config()) as kubelet:
        await create_bound_pod(admin, "web", kubelet.name, volumes=[secret_volume("creds")])
        await eventually(phase_is(admin, "web", "Running"))
        assert recorder.count(f"{SECRETS}/creds") == 3
        assert kubelet.objects.forbidden_retries == 2
        assert await events_of(admin, "web", "FailedMount")() == []


async def test_resync_rereads_volumes_through_the_cache_ttl(
    server: APIServer, admin: RestClient, recorder: Recorder
) -> None:
    await create_secret(admin, "creds", password="c2VjcmV0")
    async with kubelet_on(server, fast_config(syncFrequency=0.05)) as kubelet:
        await create_bound_pod(admin, "web", kubelet.name, volumes=[secret_volume("creds")])
        await eventually(phase_is(admin, "web", "Running"))
        resyncs = kubelet.pod_resyncs

        async def resynced(n: int) -> bool:
            return kubelet.pod_resyncs >= n

        await eventually(lambda: resynced(resyncs + 3))
        assert recorder.count(f"{SECRETS}/creds") == 1  # within the 60 s default TTL: answered by the cache
        # The TTL controller's annotation: 0 s, every remount GETs (from the API server's cache).
        await set_node_ttl(admin, kubelet, "0")

        async def refreshed() -> bool:
            return recorder.count(f"{SECRETS}/creds") >= 3

        await eventually(refreshed)
        refreshes = [q for m, p, q in recorder.requests if p == f"{SECRETS}/creds"][1:]
        assert all(q.get("resourceVersion") == "0" for q in refreshes)

        # The pod goes: its objects are unregistered and no longer read.
        await admin.delete(resource_path("", "v1", "pods", NS, "web"))

        async def unregistered() -> bool:
            return len(kubelet.objects) == 0 and not kubelet._sources

        await eventually(unregistered)


async def test_watch_strategy_lists_and_watches_the_single_object(
    server: APIServer, admin: RestClient, recorder: Recorder
) -> None:
    await create_configmap(admin, "settings", mode="fast")
    config = fast_config(configMapAndSecretChangeDetectionStrategy="Watch")
    async with kubelet_on(server, config) as kubelet:
        await create_bound_pod(
            admin,
            "web",
            kubelet.name,
            volumes=[{"name": "cfg", "configMap": {"name": "settings"}}],
            containers=containers(env_from=[{"configMapRef": {"name": "settings"}}]),
        )
        await eventually(phase_is(admin, "web", "Running"))

        async def watching() -> bool:
            return recorder.count(CONFIGMAPS, watch=True) == 1

        await eventually(watching)
        assert recorder.count(CONFIGMAPS, watch=False) == 1  # one LIST for both references
        assert recorder.count(f"{CONFIGMAPS}/settings") == 0  # never a GET
        selectors = {q.get("fieldSelector") for m, p, q in recorder.requests if m == "GET" and p == CONFIGMAPS}
        assert selectors == {"metadata.name=settings"}

        # A missing object: the watch-based manager's own NotFound text.
        await create_bound_pod(admin, "late", kubelet.name, volumes=[secret_volume("later")])
        failed = await eventually(events_of(admin, "late", "FailedMount"))
        assert failed[0]["message"] == 'MountVolume.SetUp failed for volume "creds" : secret "later" not found'
        await create_secret(admin, "later", password="c2VjcmV0")  # arrives over the watch
        await eventually(phase_is(admin, "late", "Running"))

        # The last pod referencing an object goes: its watch stops.
        await admin.delete(resource_path("", "v1", "pods", NS, "web"))

        async def stopped() -> bool:
            return len(kubelet.objects) == 1

        await eventually(stopped)


async def test_pods_without_references_cost_nothing(server: APIServer, admin: RestClient, recorder: Recorder) -> None:
    async with kubelet_on(server, fast_config(syncFrequency=0.05)) as kubelet:
        for i in range(3):
            await create_bound_pod(admin, f"plain-{i}", kubelet.name)
        for i in range(3):
            await eventually(phase_is(admin, f"plain-{i}", "Running"))
        assert not kubelet._sources and len(kubelet.objects) == 0
        assert kubelet._resync is None  # no resync timer either
        assert not any("/secrets" in p or "/configmaps" in p for _, p, _ in recorder.requests)


async def test_a_restarted_container_resolves_its_env_again(server: APIServer, admin: RestClient) -> None:
    await create_configmap(admin, "settings", mode="fast")
    async with kubelet_on(server, fast_config()) as kubelet:
        kubelet.pod_sync_backoff = 0.05
        await set_node_ttl(admin, kubelet, "0")
        await create_bound_pod(
            admin,
            "job",
            kubelet.name,
            annotations={"kubemark.io/lifetime-seconds": "0.2"},
            containers=containers(env_from=[{"configMapRef": {"name": "settings"}}]),
        )
        await eventually(phase_is(admin, "job", "Running"))
        await admin.delete(f"{CONFIGMAPS}/settings")

        async def config_error() -> dict[str, Any]:
            p = await pod(admin, "job")
            return p if waiting_of(p).get("reason") == "CreateContainerConfigError" else {}

        cs = (await eventually(config_error))["status"]["containerStatuses"][0]
        assert cs["state"]["waiting"]["message"] == 'configmaps "settings" not found'
        assert cs["restartCount"] == 1 and cs["lastState"]["terminated"]["exitCode"] == 0
        assert not cs["ready"]

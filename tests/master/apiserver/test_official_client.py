"""The official kubernetes Python client against the embedded API server (memory storage, plain HTTP).

The client is synchronous (urllib3), so its calls run in a worker thread while the server runs on the
test's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from kubemark.master.apiserver.server import APIServer, APIServerConfig

T = TypeVar("T")


class Clients:
    def __init__(self, server: APIServer) -> None:
        cfg = client.Configuration()
        cfg.host = server.url
        cfg.verify_ssl = False
        self.api_client = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.server = server

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)


async def _serve(cfg: APIServerConfig) -> AsyncIterator[Clients]:
    server = APIServer(cfg)
    await server.start()
    clients = Clients(server)
    try:
        yield clients
    finally:
        await asyncio.to_thread(clients.api_client.close)
        await server.stop()


@pytest.fixture
async def k8s() -> AsyncIterator[Clients]:
    async for clients in _serve(APIServerConfig(storage="memory", compaction_interval=0)):
        yield clients


@pytest.fixture
async def k8s_small_window() -> AsyncIterator[Clients]:
    async for clients in _serve(APIServerConfig(storage="memory", compaction_interval=0, watch_cache_window=3)):
        yield clients


def pod_body(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
    }


def deployment_body(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
            },
        },
    }


async def test_pod_create_list_patch_delete(k8s: Clients) -> None:
    created = await k8s.run(k8s.core.create_namespaced_pod, "default", pod_body("p1", {"app": "a"}))
    assert isinstance(created, client.V1Pod) and created.metadata.uid
    await k8s.run(k8s.core.create_namespaced_pod, "default", pod_body("p2", {"app": "b"}))
    listed = await k8s.run(k8s.core.list_namespaced_pod, "default", label_selector="app=a")
    assert [p.metadata.name for p in listed.items] == ["p1"]
    everywhere = await k8s.run(k8s.core.list_pod_for_all_namespaces)
    assert sorted(p.metadata.name for p in everywhere.items) == ["p1", "p2"]
    patched = await k8s.run(k8s.core.patch_namespaced_pod, "p1", "default", {"metadata": {"labels": {"x": "y"}}})
    assert patched.metadata.labels == {"app": "a", "x": "y"}
    status = await k8s.run(k8s.core.patch_namespaced_pod_status, "p1", "default", {"status": {"phase": "Running"}})
    assert status.status.phase == "Running"
    deleted = await k8s.run(k8s.core.delete_namespaced_pod, "p1", "default")
    assert deleted.metadata.name == "p1"
    with pytest.raises(ApiException) as err:
        await k8s.run(k8s.core.read_namespaced_pod, "p1", "default")
    assert err.value.status == 404


async def test_conflict_and_already_exists_surface_as_api_exceptions(k8s: Clients) -> None:
    await k8s.run(k8s.core.create_namespaced_pod, "default", pod_body("p"))
    with pytest.raises(ApiException) as err:
        await k8s.run(k8s.core.create_namespaced_pod, "default", pod_body("p"))
    assert err.value.status == 409 and "AlreadyExists" in err.value.body
    current = await k8s.run(k8s.core.read_namespaced_pod, "p", "default")
    current.metadata.labels = {"v": "1"}
    await k8s.run(k8s.core.replace_namespaced_pod, "p", "default", current)
    current.metadata.labels = {"v": "2"}  # stale resourceVersion now
    with pytest.raises(ApiException) as err:
        await k8s.run(k8s.core.replace_namespaced_pod, "p", "default", current)
    assert err.value.status == 409 and "the object has been modified" in err.value.body


async def test_deployment_crud(k8s: Clients) -> None:
    created = await k8s.run(k8s.apps.create_namespaced_deployment, "default", deployment_body("web"))
    assert created.metadata.generation == 1 and created.spec.replicas == 1
    patched = await k8s.run(k8s.apps.patch_namespaced_deployment, "web", "default", {"spec": {"replicas": 4}})
    assert patched.spec.replicas == 4 and patched.metadata.generation == 2
    listed = await k8s.run(k8s.apps.list_namespaced_deployment, "default")
    assert [d.metadata.name for d in listed.items] == ["web"]
    result = await k8s.run(k8s.apps.delete_namespaced_deployment, "web", "default")
    # Newer clients type this response as a plain object (dict); older ones as V1Status.
    status = result if isinstance(result, dict) else result.to_dict()
    assert status["status"] == "Success" and status["details"]["name"] == "web"
    assert (await k8s.run(k8s.apps.list_namespaced_deployment, "default")).items == []


async def test_list_pagination(k8s: Clients) -> None:
    for i in range(5):
        await k8s.run(k8s.core.create_namespaced_config_map, "default", {"metadata": {"name": f"c{i}"}})
    names: list[str] = []
    token = None
    while True:
        page = await k8s.run(k8s.core.list_namespaced_config_map, "default", limit=2, _continue=token)
        names += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert names == [f"c{i}" for i in range(5)]


def _collect(fn: Callable[..., Any], n: int, **kwargs: Any) -> list[tuple[str, str, str]]:
    """Run a Watch until n events arrived (or its timeout) and return (type, name, resourceVersion)."""
    w = watch.Watch()
    out: list[tuple[str, str, str]] = []
    for event in w.stream(fn, timeout_seconds=10, **kwargs):
        obj = event["object"]
        out.append((event["type"], obj.metadata.name, obj.metadata.resource_version))
        if len(out) >= n:
            w.stop()
    return out


async def test_watch_and_resume(k8s: Clients) -> None:
    first = await k8s.run(k8s.core.create_namespaced_config_map, "default", {"metadata": {"name": "a"}})
    await k8s.run(k8s.core.create_namespaced_config_map, "default", {"metadata": {"name": "b"}})
    await k8s.run(k8s.core.delete_namespaced_config_map, "a", "default")
    events = await k8s.run(
        _collect,
        k8s.core.list_namespaced_config_map,
        2,
        namespace="default",
        resource_version=first.metadata.resource_version,
    )
    assert [(t, n) for t, n, _ in events] == [("ADDED", "b"), ("DELETED", "a")]
    await k8s.run(k8s.core.create_namespaced_config_map, "default", {"metadata": {"name": "c"}})
    resumed = await k8s.run(
        _collect, k8s.core.list_namespaced_config_map, 1, namespace="default", resource_version=events[-1][2]
    )
    assert [(t, n) for t, n, _ in resumed] == [("ADDED", "c")]


async def test_watch_too_old_raises_410(k8s_small_window: Clients) -> None:
    k8s = k8s_small_window
    first = await k8s.run(k8s.core.create_namespaced_config_map, "default", {"metadata": {"name": "c0"}})
    for i in range(1, 8):
        await k8s.run(k8s.core.create_namespaced_config_map, "default", {"metadata": {"name": f"c{i}"}})
    server = k8s.server
    await server.caches[server.store("", "configmaps").rt].wait_until_fresh(await server.storage.current_revision())
    with pytest.raises(ApiException) as err:
        await k8s.run(
            _collect,
            k8s.core.list_namespaced_config_map,
            1,
            namespace="default",
            resource_version=first.metadata.resource_version,
        )
    assert err.value.status == 410 and "too old resource version" in str(err.value.reason)


async def test_load_test_kinds_deserialize_into_the_typed_models(k8s: Clients) -> None:
    """The kinds clusterloader2 creates round-trip through the official client's typed models (required fields
    such as DaemonSetStatus.numberReady or PodDisruptionBudgetStatus.expectedPods must be present)."""
    scheduling = client.SchedulingV1Api(k8s.api_client)
    policy = client.PolicyV1Api(k8s.api_client)
    networking = client.NetworkingV1Api(k8s.api_client)
    template = {
        "metadata": {"labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
    }
    selector = {"matchLabels": {"app": "x"}}
    sts = await k8s.run(
        k8s.apps.create_namespaced_stateful_set,
        "default",
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "x"},
            "spec": {"serviceName": "x", "selector": selector, "template": template},
        },
    )
    assert isinstance(sts, client.V1StatefulSet)
    assert sts.spec.pod_management_policy == "OrderedReady" and sts.status.replicas == 0
    scale = await k8s.run(k8s.apps.patch_namespaced_stateful_set_scale, "x", "default", {"spec": {"replicas": 2}})
    assert scale.spec.replicas == 2
    ds = await k8s.run(
        k8s.apps.create_namespaced_daemon_set,
        "default",
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "x"},
            "spec": {"selector": selector, "template": template},
        },
    )
    assert ds.status.number_ready == 0 and ds.spec.update_strategy.rolling_update.max_unavailable == 1
    listed = await k8s.run(k8s.apps.list_daemon_set_for_all_namespaces)
    assert [d.metadata.name for d in listed.items] == ["x"]
    pc = await k8s.run(
        scheduling.create_priority_class,
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "x"}, "value": 5},
    )
    assert pc.value == 5 and pc.preemption_policy == "PreemptLowerPriority"
    pdb = await k8s.run(
        policy.create_namespaced_pod_disruption_budget,
        "default",
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "x"},
            "spec": {"maxUnavailable": "10%", "selector": selector},
        },
    )
    assert pdb.status.expected_pods == 0 and pdb.spec.max_unavailable == "10%"
    netpol = await k8s.run(
        networking.create_namespaced_network_policy,
        "default",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "x"},
            "spec": {"podSelector": selector},
        },
    )
    assert netpol.spec.policy_types == ["Ingress"]
    pvc = await k8s.run(
        k8s.core.create_namespaced_persistent_volume_claim,
        "default",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "x"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    assert pvc.status.phase == "Pending" and pvc.spec.volume_mode == "Filesystem"
    with pytest.raises(ApiException) as raised:
        await k8s.run(
            k8s.core.create_namespaced_pod,
            "default",
            {**pod_body("needs-class"), "spec": {**pod_body("p")["spec"], "priorityClassName": "nope"}},
        )
    assert raised.value.status == 403
    pod = await k8s.run(
        k8s.core.create_namespaced_pod,
        "default",
        {**pod_body("classy"), "spec": {**pod_body("p")["spec"], "priorityClassName": "x"}},
    )
    assert pod.spec.priority == 5
    await k8s.run(k8s.apps.delete_namespaced_stateful_set, "x", "default")
    with pytest.raises(ApiException) as raised:
        await k8s.run(k8s.apps.read_namespaced_stateful_set, "x", "default")
    assert raised.value.status == 404

"""The node authorizer's graph: edges from each kind of pod reference, pod lifecycle, PVC -> PV chains, feeds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kubemark import codec
from kubemark.master.apiserver.auth import Authorizer, selected_name
from kubemark.master.apiserver.node_graph import (
    CONFIGMAP,
    GRAPH_SOURCES,
    POD_CERTIFICATE_REQUEST,
    PV,
    PVC,
    SECRET,
    SERVICE_ACCOUNT,
    VOLUME_ATTACHMENT,
    CacheFeed,
    NodeGraph,
    pod_references,
)
from kubemark.master.apiserver.request_info import UserInfo, parse_request_info
from kubemark.master.storage.cacher import WatchCache
from kubemark.master.storage.memory import MemoryStorage

PODS = "/registry/pods/"


def pod(name: str, node: str = "", ns: str = "p", uid: str = "", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "c", "image": "i"}], **spec}
    if node:
        body["nodeName"] = node
    return {"metadata": {"name": name, "namespace": ns, "uid": uid or f"uid-{name}"}, "spec": body}


def pv(name: str, claim: tuple[str, str] | None, **source: Any) -> dict[str, Any]:
    spec: dict[str, Any] = dict(source)
    if claim is not None:
        spec["claimRef"] = {"namespace": claim[0], "name": claim[1]}
    return {"metadata": {"name": name}, "spec": spec}


ENV_SECRET = {"name": "E", "valueFrom": {"secretKeyRef": {"name": "s-env", "key": "k"}}}
ENV_CONFIGMAP = {"name": "E", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}}


@pytest.mark.parametrize(
    ("spec", "kind", "name"),
    [
        ({"imagePullSecrets": [{"name": "pull"}]}, SECRET, "pull"),
        ({"containers": [{"name": "c", "env": [ENV_SECRET]}]}, SECRET, "s-env"),
        ({"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "s-from"}}]}]}, SECRET, "s-from"),
        ({"initContainers": [{"name": "i", "env": [ENV_SECRET]}]}, SECRET, "s-env"),
        ({"ephemeralContainers": [{"name": "e", "envFrom": [{"secretRef": {"name": "dbg"}}]}]}, SECRET, "dbg"),
        ({"volumes": [{"name": "v", "secret": {"secretName": "s-vol"}}]}, SECRET, "s-vol"),
        (
            {"volumes": [{"name": "v", "projected": {"sources": [{"secret": {"name": "s-proj"}}]}}]},
            SECRET,
            "s-proj",
        ),
        ({"volumes": [{"name": "v", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi"}}}]}, SECRET, "csi"),
        ({"volumes": [{"name": "v", "rbd": {"image": "x", "secretRef": {"name": "ceph"}}}]}, SECRET, "ceph"),
        ({"volumes": [{"name": "v", "azureFile": {"secretName": "az", "shareName": "s"}}]}, SECRET, "az"),
        ({"containers": [{"name": "c", "env": [ENV_CONFIGMAP]}]}, CONFIGMAP, "cm-env"),
        ({"containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "cm-from"}}]}]}, CONFIGMAP, "cm-from"),
        ({"initContainers": [{"name": "i", "env": [ENV_CONFIGMAP]}]}, CONFIGMAP, "cm-env"),
        ({"volumes": [{"name": "v", "configMap": {"name": "cm-vol"}}]}, CONFIGMAP, "cm-vol"),
        (
            {"volumes": [{"name": "v", "projected": {"sources": [{"configMap": {"name": "cm-proj"}}]}}]},
            CONFIGMAP,
            "cm-proj",
        ),
        ({"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]}, PVC, "data"),
        ({"volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}}]}, PVC, "web-scratch"),
        ({"serviceAccountName": "robot"}, SERVICE_ACCOUNT, "robot"),
        ({"serviceAccount": "legacy"}, SERVICE_ACCOUNT, "legacy"),
    ],
)
def test_each_reference_kind_is_an_edge_to_the_pods_node(spec: dict[str, Any], kind: str, name: str) -> None:
    graph = NodeGraph()
    graph.add_pod(pod("web", "n1", **spec))
    assert graph.allows("n1", kind, "p", name)
    assert not graph.allows("n2", kind, "p", name)
    assert not graph.allows("n1", kind, "other", name)  # references are in the pod's own namespace
    graph.check()


def test_references_are_collected_once_and_empty_names_skipped() -> None:
    refs = pod_references(
        pod(
            "web",
            "n1",
            imagePullSecrets=[{"name": "s"}, {"name": ""}, {}],
            volumes=[{"name": "v", "secret": {"secretName": "s"}}, {"name": "w", "configMap": {}}],
            serviceAccountName="default",
        )
    )
    assert sorted(refs) == [(SECRET, "s"), (SERVICE_ACCOUNT, "default")]


def test_a_mirror_pod_grants_nothing() -> None:
    graph = NodeGraph()
    mirror = pod("static", "n1", volumes=[{"name": "v", "secret": {"secretName": "s"}}])
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
    graph.add_pod(mirror)
    assert not graph.allows("n1", SECRET, "p", "s")
    assert len(graph) == 0


def test_unbound_pod_has_no_edges_until_its_binding() -> None:
    graph = NodeGraph()
    spec = {"volumes": [{"name": "v", "secret": {"secretName": "s1"}}]}
    graph.pod_event("ADDED", pod("web", **spec))
    assert graph.nodes_for(SECRET, "p", "s1") == frozenset()
    assert graph.pod_count == 0
    graph.pod_event("MODIFIED", pod("web", "n1", **spec))  # the scheduler's binding sets spec.nodeName
    assert graph.nodes_for(SECRET, "p", "s1") == {"n1"}
    graph.check()


def test_status_updates_keep_the_edges_and_deletion_removes_them() -> None:
    graph = NodeGraph()
    bound = pod("web", "n1", volumes=[{"name": "v", "secret": {"secretName": "s1"}}])
    graph.pod_event("ADDED", bound)
    running = {**bound, "status": {"phase": "Running"}}
    graph.pod_event("MODIFIED", running)
    assert graph.nodes_for(SECRET, "p", "s1") == {"n1"}
    graph.pod_event("DELETED", running)
    assert not graph.allows("n1", SECRET, "p", "s1")
    assert len(graph) == 0 and graph.pod_count == 0
    graph.check()


def test_a_node_gets_exactly_the_pods_bound_to_it() -> None:
    """node <- pod: what the Node authorizer's pod get (and metadata.name list/watch) asks the graph."""
    authz = Authorizer()
    graph = authz.node_graph
    n1 = UserInfo("system:node:n1", ("system:nodes", "system:authenticated"))

    def get(name: str) -> str | None:
        return authz.authorize(n1, parse_request_info("GET", f"/api/v1/namespaces/p/pods/{name}"))

    denied = "no relationship found between node 'n1' and this object"
    graph.add_pod(pod("web", uid="u1"))  # pending: bound to no node
    assert graph.pod_binding("p", "web") is None and get("web") == denied
    graph.add_pod(pod("web", "n1", uid="u1"))
    assert graph.pod_binding("p", "web") == ("n1", "u1") and get("web") is None
    mirror = pod("static", "n1")
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    graph.add_pod(mirror)  # a mirror pod references nothing, but is bound
    assert get("static") is None
    graph.add_pod(pod("db", "n2"))
    assert get("db") == denied
    graph.delete_pod(pod("web", "n1"))
    assert graph.pod_binding("p", "web") is None and get("web") == denied
    graph.check()


def test_shared_secret_used_by_pods_on_two_nodes() -> None:
    graph = NodeGraph()
    uses = {"volumes": [{"name": "v", "secret": {"secretName": "shared"}}]}
    graph.add_pod(pod("a", "n1", **uses))
    graph.add_pod(pod("b", "n2", **uses))
    graph.add_pod(pod("c", "n2", **uses))
    assert graph.nodes_for(SECRET, "p", "shared") == {"n1", "n2"}
    graph.delete_pod(pod("a", "n1"))
    assert graph.nodes_for(SECRET, "p", "shared") == {"n2"}
    graph.delete_pod(pod("b", "n2"))
    assert graph.nodes_for(SECRET, "p", "shared") == {"n2"}  # pod c still uses it there
    graph.delete_pod(pod("c", "n2"))
    assert graph.nodes_for(SECRET, "p", "shared") == frozenset()
    graph.check()


def test_a_recreated_pod_of_the_same_name_moves_its_edges() -> None:
    graph = NodeGraph()
    graph.add_pod(pod("web", "n1", uid="u1", volumes=[{"name": "v", "secret": {"secretName": "old"}}]))
    graph.add_pod(pod("web", "n2", uid="u2", volumes=[{"name": "v", "secret": {"secretName": "new"}}]))
    assert graph.nodes_for(SECRET, "p", "old") == frozenset()
    assert graph.nodes_for(SECRET, "p", "new") == {"n2"}
    assert graph.pod_binding("p", "web") == ("n2", "u2")
    graph.check()


def test_an_added_ephemeral_container_adds_its_references() -> None:
    graph = NodeGraph()
    graph.add_pod(pod("web", "n1"))
    debug = [{"name": "dbg", "env": [ENV_SECRET]}]
    graph.add_pod(pod("web", "n1", ephemeralContainers=debug))
    assert graph.allows("n1", SECRET, "p", "s-env")
    graph.check()


def test_replace_pods_drops_pods_that_are_gone() -> None:
    graph = NodeGraph()
    graph.add_pod(pod("gone", "n1", imagePullSecrets=[{"name": "a"}]))
    graph.add_pod(pod("kept", "n1", imagePullSecrets=[{"name": "b"}]))
    graph.replace_pods([pod("kept", "n1", imagePullSecrets=[{"name": "b"}]), pod("new", "n2", serviceAccountName="x")])
    assert not graph.allows("n1", SECRET, "p", "a")
    assert graph.allows("n1", SECRET, "p", "b")
    assert graph.allows("n2", SERVICE_ACCOUNT, "p", "x")
    graph.check()


CSI = {
    "driver": "d",
    "volumeHandle": "h",
    "nodePublishSecretRef": {"namespace": "p", "name": "publish"},
    "controllerPublishSecretRef": {"namespace": "p", "name": "controller-only"},
}


@pytest.mark.parametrize("pv_first", [True, False])
def test_pvc_to_pv_to_secret_chain(pv_first: bool) -> None:
    graph = NodeGraph()
    volume = pv("vol-1", ("p", "data"), csi=CSI)
    user = pod("db", "n1", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}])
    if pv_first:
        graph.add_pv(volume)
        graph.add_pod(user)
    else:
        graph.add_pod(user)
        graph.add_pv(volume)
    assert graph.allows("n1", PVC, "p", "data")
    assert graph.allows("n1", PV, "", "vol-1")
    assert graph.allows("n1", SECRET, "p", "publish")
    assert not graph.allows("n1", SECRET, "p", "controller-only")  # not kubelet-visible
    assert not graph.allows("n2", PV, "", "vol-1")
    graph.check()

    graph.delete_pod(user)
    assert not graph.allows("n1", PV, "", "vol-1")
    assert not graph.allows("n1", SECRET, "p", "publish")
    graph.add_pod(user)
    assert graph.allows("n1", SECRET, "p", "publish")
    graph.delete_pv(volume)
    assert graph.allows("n1", PVC, "p", "data")
    assert not graph.allows("n1", PV, "", "vol-1")
    assert not graph.allows("n1", SECRET, "p", "publish")
    graph.check()


def test_pv_rebound_or_unbound_moves_its_edges() -> None:
    graph = NodeGraph()
    graph.add_pod(pod("a", "n1", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "c1"}}]))
    graph.add_pod(pod("b", "n2", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "c2"}}]))
    graph.pv_event("ADDED", pv("vol", ("p", "c1"), rbd={"image": "x", "secretRef": {"name": "ceph"}}))
    assert graph.nodes_for(PV, "", "vol") == {"n1"}
    assert graph.nodes_for(SECRET, "p", "ceph") == {"n1"}  # secretRef namespace defaults to the claim's
    graph.pv_event("MODIFIED", pv("vol", ("p", "c2"), rbd={"image": "x", "secretRef": {"name": "ceph"}}))
    assert graph.nodes_for(PV, "", "vol") == {"n2"}
    assert graph.nodes_for(SECRET, "p", "ceph") == {"n2"}
    graph.pv_event("MODIFIED", pv("vol", None, rbd={"image": "x", "secretRef": {"name": "ceph"}}))
    assert graph.nodes_for(PV, "", "vol") == frozenset()
    assert graph.nodes_for(SECRET, "p", "ceph") == frozenset()
    graph.check()


def test_pvc_claimed_only_by_the_pvs_claim_ref() -> None:
    # A PVC's spec.volumeName is the user's to write; only the PV's claimRef (the binder's) grants the PV.
    graph = NodeGraph()
    graph.add_pod(pod("a", "n1", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "mine"}}]))
    graph.add_pv(pv("someone-elses", ("q", "theirs"), csi=CSI))
    assert not graph.allows("n1", PV, "", "someone-elses")
    graph.check()


def test_volume_attachment_edge_follows_its_node() -> None:
    graph = NodeGraph()
    va = {"metadata": {"name": "va1"}, "spec": {"nodeName": "n1"}}
    graph.volume_attachment_event("ADDED", va)
    assert graph.nodes_for(VOLUME_ATTACHMENT, "", "va1") == {"n1"}
    graph.volume_attachment_event("MODIFIED", {"metadata": {"name": "va1"}, "spec": {"nodeName": "n2"}})
    assert graph.nodes_for(VOLUME_ATTACHMENT, "", "va1") == {"n2"}
    graph.volume_attachment_event("DELETED", va)
    assert len(graph) == 0
    graph.check()


def test_pod_certificate_request_edge_follows_its_node() -> None:
    graph = NodeGraph()
    pcr = {"metadata": {"name": "r1", "namespace": "p"}, "spec": {"nodeName": "n1"}}
    graph.pod_certificate_request_event("ADDED", pcr)
    assert graph.nodes_for(POD_CERTIFICATE_REQUEST, "p", "r1") == {"n1"}
    assert graph.nodes_for(POD_CERTIFICATE_REQUEST, "q", "r1") == frozenset()
    graph.replace_pod_certificate_requests([{"metadata": {"name": "r2", "namespace": "p"}, "spec": {"nodeName": "n2"}}])
    assert graph.nodes_for(POD_CERTIFICATE_REQUEST, "p", "r1") == frozenset()
    assert graph.nodes_for(POD_CERTIFICATE_REQUEST, "p", "r2") == {"n2"}
    graph.check()
    graph.pod_certificate_request_event("DELETED", {"metadata": {"name": "r2", "namespace": "p"}})
    assert len(graph) == 0
    graph.check()


def _node_request(method: str, path: str) -> str | None:
    authorizer = Authorizer()
    authorizer.node_graph.pod_certificate_request_event(
        "ADDED", {"metadata": {"name": "mine", "namespace": "p"}, "spec": {"nodeName": "n1"}}
    )
    path, _, query = path.partition("?")
    params = dict(q.split("=", 1) for q in query.split("&")) if query else {}
    info = parse_request_info(method, path, params)
    return authorizer.authorize(UserInfo("system:node:n1", ("system:nodes",)), info)


@pytest.mark.parametrize(
    ("method", "path", "reason"),
    [
        ("GET", "/apis/certificates.k8s.io/v1/podcertificaterequests?fieldSelector=spec.nodeName=n1", None),
        ("GET", "/apis/certificates.k8s.io/v1/podcertificaterequests?fieldSelector=spec.nodeName=n1&watch=1", None),
        (
            "GET",
            "/apis/certificates.k8s.io/v1/namespaces/p/podcertificaterequests?fieldSelector=spec.nodeName=n1",
            None,
        ),
        (
            "GET",
            "/apis/certificates.k8s.io/v1/podcertificaterequests?fieldSelector=spec.nodeName=n2",
            "can only list/watch podcertificaterequests with nodeName field selector",
        ),
        (
            "GET",
            "/apis/certificates.k8s.io/v1/podcertificaterequests?fieldSelector=spec.nodeName!=n2",
            "can only list/watch podcertificaterequests with nodeName field selector",
        ),
        (
            "GET",
            "/apis/certificates.k8s.io/v1/podcertificaterequests",
            "can only list/watch podcertificaterequests with nodeName field selector",
        ),
        ("GET", "/apis/certificates.k8s.io/v1/namespaces/p/podcertificaterequests/mine", None),
        (
            "GET",
            "/apis/certificates.k8s.io/v1/namespaces/p/podcertificaterequests/other",
            "no relationship found between node 'n1' and this object",
        ),
        ("POST", "/apis/certificates.k8s.io/v1/namespaces/p/podcertificaterequests", None),
        (
            "DELETE",
            "/apis/certificates.k8s.io/v1/namespaces/p/podcertificaterequests/mine",
            "nodes may not delete podcertificaterequests",
        ),
        (
            "PUT",
            "/apis/certificates.k8s.io/v1/namespaces/p/podcertificaterequests/mine/status",
            "nodes may not access the status subresource of PodCertificateRequests",
        ),
        ("GET", "/apis/storage.k8s.io/v1/csidrivers?watch=1", None),
        ("GET", "/apis/node.k8s.io/v1/runtimeclasses/rc", None),
        ("POST", "/apis/node.k8s.io/v1/runtimeclasses", ""),
    ],
)
def test_node_authorizer_pod_certificate_requests(method: str, path: str, reason: str | None) -> None:
    """authorizePodCertificateRequest, and the NodeRules() reads of CSIDrivers and RuntimeClasses."""
    assert _node_request(method, path) == reason


def test_malformed_pods_grant_nothing_and_do_not_raise() -> None:
    graph = NodeGraph()
    graph.add_pod({"metadata": {"name": "x", "namespace": "p"}, "spec": {"nodeName": "n1", "volumes": "nope"}})
    graph.add_pod({"metadata": {"name": "y", "namespace": "p"}, "spec": {"nodeName": "n1", "containers": [None]}})
    graph.add_pod({"metadata": None, "spec": None})
    assert len(graph) == 0


# --- fed from a watch cache ----------------------------------------------------------------------------------


@pytest.fixture
async def pods_cache() -> AsyncIterator[tuple[MemoryStorage, WatchCache]]:
    storage = MemoryStorage()
    await storage.start()
    cache = WatchCache(storage, PODS)
    cache.add_index("spec.nodeName", lambda o: (o.get("spec") or {}).get("nodeName") or None)
    await cache.start()
    yield storage, cache
    await cache.stop()
    await storage.close()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


POD_SOURCE = next(s for s in GRAPH_SOURCES if s.plural == "pods")


async def test_feed_loads_existing_pods_then_follows_events(pods_cache: tuple[MemoryStorage, WatchCache]) -> None:
    storage, cache = pods_cache
    secret_vol = {"volumes": [{"name": "v", "secret": {"secretName": "s1"}}]}
    await storage.create(PODS + "p/old", codec.dumps(pod("old", "n1", imagePullSecrets=[{"name": "pull"}])))
    await cache.wait_until_fresh(await storage.current_revision())
    graph = NodeGraph()
    feed = CacheFeed(graph, cache, PODS, POD_SOURCE)
    feed.sync()
    assert graph.allows("n1", SECRET, "p", "pull")  # loaded synchronously, before any request is served
    task = asyncio.create_task(feed.run())
    try:
        created = await storage.create(PODS + "p/web", codec.dumps(pod("web", **secret_vol)))
        bound = await storage.update(PODS + "p/web", codec.dumps(pod("web", "n2", **secret_vol)), created.mod_revision)
        await until(lambda: graph.allows("n2", SECRET, "p", "s1"))
        await storage.delete(PODS + "p/web", bound.mod_revision)
        await until(lambda: not graph.allows("n2", SECRET, "p", "s1"))
        graph.check()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_binding_seen_by_a_node_watch_is_already_in_the_graph(
    pods_cache: tuple[MemoryStorage, WatchCache],
) -> None:
    """The race of a kubelet that sees its pod and at once reads its secret: no window where it is denied."""
    storage, cache = pods_cache
    graph = NodeGraph()
    feed = CacheFeed(graph, cache, PODS, POD_SOURCE)
    feed.sync()  # as the API server does before serving
    task = asyncio.create_task(feed.run())
    kubelet = cache.watch(PODS, index=("spec.nodeName", "n1"))  # as the kubelet's spec.nodeName=n1 watch
    try:
        for i in range(20):
            spec = {"volumes": [{"name": "v", "secret": {"secretName": f"s{i}"}}]}
            created = await storage.create(PODS + f"p/w{i}", codec.dumps(pod(f"w{i}", **spec)))
            await storage.update(PODS + f"p/w{i}", codec.dumps(pod(f"w{i}", "n1", **spec)), created.mod_revision)
            event = await asyncio.wait_for(anext(kubelet), 5)
            assert event.obj["metadata"]["name"] == f"w{i}"
            assert graph.allows("n1", SECRET, "p", f"s{i}"), f"pod w{i} delivered before its edge"
    finally:
        kubelet.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_feed_resyncs_after_falling_behind(pods_cache: tuple[MemoryStorage, WatchCache]) -> None:
    storage, cache = pods_cache
    gone = await storage.create(PODS + "p/gone", codec.dumps(pod("gone", "n1", serviceAccountName="sa-gone")))
    await cache.wait_until_fresh(gone.mod_revision)
    graph = NodeGraph()
    feed = CacheFeed(graph, cache, PODS, POD_SOURCE)
    cache.max_pending = 2  # the feed's first watcher is ended once it has more than 2 events pending
    feed.sync()
    cache.max_pending = 10000
    assert graph.allows("n1", SERVICE_ACCOUNT, "p", "sa-gone")
    # Written while the feed's task does not run: its watcher overflows and is ended.
    await storage.delete(PODS + "p/gone", gone.mod_revision)
    for i in range(5):
        await storage.create(PODS + f"p/w{i}", codec.dumps(pod(f"w{i}", "n1", serviceAccountName=f"sa{i}")))
    await cache.wait_until_fresh(await storage.current_revision())
    assert feed._watcher.terminated
    task = asyncio.create_task(feed.run())
    try:
        await until(lambda: all(graph.allows("n1", SERVICE_ACCOUNT, "p", f"sa{i}") for i in range(5)))
        assert not graph.allows("n1", SERVICE_ACCOUNT, "p", "sa-gone")
        graph.check()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize(
    ("selector", "name"),
    [
        ("metadata.name=s1", "s1"),
        ("metadata.name==s1", "s1"),
        ("metadata.namespace=p,metadata.name=s1", "s1"),
        ("metadata.name=s1,type=Opaque", "s1"),
        ("metadata.name!=s1", ""),
        ("type=Opaque", ""),
        ("", ""),
        ("metadata.name=", ""),
        ("metadata.name=..", ""),
        ("metadata.name=a/b", ""),
    ],
)
def test_single_object_selector_names_the_object(selector: str, name: str) -> None:
    assert selected_name(selector) == name

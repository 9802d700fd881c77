"""The Node authorizer's graph: which Secrets, ConfigMaps, PVCs, PVs, ServiceAccounts, VolumeAttachments and
PodCertificateRequests each node may use.

As upstream (plugin/pkg/auth/authorizer/node: graph.go, graph_populator.go), a node may read an object only
along a path to itself:

    node <- pod                               (spec.nodeName: a node gets only its own pods, `pod_binding`)
    node <- pod <- secret | configmap | pvc | serviceaccount
    node <- pod <- pvc <- pv <- secret        (the PV's spec.claimRef names the PVC; kubelet-visible secrets)
    node <- volumeattachment                  (spec.nodeName)
    node <- podcertificaterequest             (spec.nodeName)

Upstream keeps a general graph and searches it per request (with a per-vertex destination index once a
vertex has 200 edges). Here the graph is kept flattened, since every path ends at a node: `_access` maps
(kind, namespace, name) to {node: number of paths}, so an authorization is one dict lookup and one
membership test, whatever the cluster size. Maintenance per event is proportional to the object's own
references: a pod adds +1 per distinct reference on its node (and, for a PVC bound to a PV, on the PV and
its secrets); deleting it undoes exactly that. A pod's references and node never change once it is bound
(ephemeral containers can only be added), so a pod update with the same node, uid and number of ephemeral
containers -- status updates, by far the most frequent pod event -- costs a few dict lookups.

Fed from the API server's own watch caches by `CacheFeed` (no storage reads); each API server process has
its own caches and so its own graph. See `CacheFeed` for when an edge becomes visible.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kubemark.master.storage.base import CompactedError

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# Vertex kinds (upstream's vertexType names).
SECRET = "secret"
CONFIGMAP = "configmap"
PVC = "pvc"
PV = "pv"
SERVICE_ACCOUNT = "serviceaccount"
VOLUME_ATTACHMENT = "volumeattachment"
POD_CERTIFICATE_REQUEST = "podcertificaterequest"

MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
# Pod volume sources with a secret reference at <source>.secretRef.name (podutil.VisitPodSecretNames).
_VOLUME_SECRET_REFS = ("cephfs", "cinder", "flexVolume", "rbd", "scaleIO", "iscsi", "storageos")
# PV sources whose secretRef namespace defaults to the claim's (pvutil.VisitPVSecretNames); cinder and
# storageos use the namespace as written.
_PV_SECRET_REFS_CLAIM_NS = ("cephfs", "flexVolume", "rbd", "scaleIO", "iscsi")
_PV_SECRET_REFS = ("cinder", "storageos")
# CSI secrets the kubelet reads (the controller-side ones are for the external controllers only).
_CSI_KUBELET_SECRETS = ("nodePublishSecretRef", "nodeStageSecretRef", "nodeExpandSecretRef")

_EMPTY: dict[str, int] = {}


@dataclass(frozen=True, slots=True)
class _Pod:
    node: str
    uid: str
    ephemeral: int  # number of ephemeral containers (they can only be added to a running pod)
    refs: tuple[tuple[str, str], ...]  # distinct (kind, name) in the pod's namespace


@dataclass(frozen=True, slots=True)
class _PV:
    claim: tuple[str, str] | None  # (namespace, name) from spec.claimRef
    secrets: tuple[tuple[str, str], ...]  # distinct kubelet-visible (namespace, name)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _name(value: Any, field: str = "name") -> str:
    name = _dict(value).get(field)
    return name if isinstance(name, str) else ""


def pod_references(pod: Obj) -> tuple[tuple[str, str], ...]:
    """The (kind, name) pairs a pod references in its namespace, as upstream's AddPod collects them.

    Secrets: imagePullSecrets, env/envFrom of every container (init, regular, ephemeral), secret volumes,
    projected secret sources and the secretRefs of volume plugins; ConfigMaps likewise; PVCs from
    persistentVolumeClaim and ephemeral volumes (<pod>-<volume>); the pod's ServiceAccount. A mirror pod
    references nothing (a node must not grant itself access by creating one).
    """
    metadata = _dict(pod.get("metadata"))
    if MIRROR_POD_ANNOTATION in _dict(metadata.get("annotations")):
        return ()
    spec = _dict(pod.get("spec"))
    refs: dict[tuple[str, str], None] = {}

    def add(kind: str, name: str) -> None:
        if name:
            refs[(kind, name)] = None

    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if isinstance(account, str):
        add(SERVICE_ACCOUNT, account)
    for ref in _list(spec.get("imagePullSecrets")):
        add(SECRET, _name(ref))
    for field in _CONTAINER_LISTS:
        for container in _list(spec.get(field)):
            container = _dict(container)
            for source in _list(container.get("envFrom")):
                source = _dict(source)
                add(SECRET, _name(source.get("secretRef")))
                add(CONFIGMAP, _name(source.get("configMapRef")))
            for env in _list(container.get("env")):
                value_from = _dict(_dict(env).get("valueFrom"))
                if value_from:
                    add(SECRET, _name(value_from.get("secretKeyRef")))
                    add(CONFIGMAP, _name(value_from.get("configMapKeyRef")))
    pod_name = _name(metadata)
    for volume in _list(spec.get("volumes")):
        volume = _dict(volume)
        if not volume:
            continue
        add(SECRET, _name(volume.get("secret"), "secretName"))
        add(CONFIGMAP, _name(volume.get("configMap")))
        add(SECRET, _name(volume.get("azureFile"), "secretName"))
        for plugin in _VOLUME_SECRET_REFS:
            if plugin in volume:
                add(SECRET, _name(_dict(volume[plugin]).get("secretRef")))
        if "csi" in volume:
            add(SECRET, _name(_dict(volume["csi"]).get("nodePublishSecretRef")))
        if "projected" in volume:
            for source in _list(_dict(volume["projected"]).get("sources")):
                source = _dict(source)
                add(SECRET, _name(source.get("secret")))
                add(CONFIGMAP, _name(source.get("configMap")))
        add(PVC, _name(volume.get("persistentVolumeClaim"), "claimName"))
        if volume.get("ephemeral") is not None and pod_name and _name(volume):
            add(PVC, f"{pod_name}-{_name(volume)}")  # ephemeral.VolumeClaimName
    return tuple(refs)


def pv_claim(pv: Obj) -> tuple[str, str] | None:
    ref = _dict(_dict(pv.get("spec")).get("claimRef"))
    namespace, name = _name(ref, "namespace"), _name(ref)
    return (namespace, name) if namespace and name else None


def pv_secrets(pv: Obj) -> tuple[tuple[str, str], ...]:
    """Kubelet-visible secrets of a PV as (namespace, name), as upstream's VisitPVSecretNames."""
    spec = _dict(pv.get("spec"))
    claim = pv_claim(pv)
    claim_ns = claim[0] if claim is not None else ""
    found: dict[tuple[str, str], None] = {}

    def add(namespace: str, name: str) -> None:
        if namespace and name:
            found[(namespace, name)] = None

    if "azureFile" in spec:
        source = _dict(spec["azureFile"])
        add(_name(source, "secretNamespace") or claim_ns, _name(source, "secretName"))
    for plugin in _PV_SECRET_REFS_CLAIM_NS:
        if plugin in spec:
            ref = _dict(_dict(spec[plugin]).get("secretRef"))
            add(_name(ref, "namespace") or claim_ns, _name(ref))
    for plugin in _PV_SECRET_REFS:
        if plugin in spec:
            ref = _dict(_dict(spec[plugin]).get("secretRef"))
            add(_name(ref, "namespace"), _name(ref))
    if "csi" in spec:
        csi = _dict(spec["csi"])
        for field in _CSI_KUBELET_SECRETS:
            ref = _dict(csi.get(field))
            add(_name(ref, "namespace"), _name(ref))
    return tuple(found)


def _key(obj: Obj) -> tuple[str, str]:
    metadata = _dict(obj.get("metadata"))
    return _name(metadata, "namespace"), _name(metadata)


class NodeGraph:
    """Which node may use which object, kept from pod, PV, VolumeAttachment and PodCertificateRequest events.

    Not thread-safe: the event loop that serves requests also applies the events.
    """

    def __init__(self) -> None:
        # (kind, namespace, name) -> {node: number of paths from the object to the node}
        self._access: dict[tuple[str, str, str], dict[str, int]] = {}
        self._pods: dict[tuple[str, str], _Pod] = {}  # (namespace, name) of pods bound to a node
        self._pvs: dict[str, _PV] = {}
        self._pvs_by_claim: dict[tuple[str, str], set[str]] = {}  # (namespace, pvc) -> PVs claiming it
        self._attachments: dict[str, str] = {}  # VolumeAttachment name -> node
        self._pcrs: dict[tuple[str, str], str] = {}  # PodCertificateRequest (namespace, name) -> node

    # --- queries (the hot path) ----------------------------------------------------------------------------

    def allows(self, node: str, kind: str, namespace: str, name: str) -> bool:
        """Whether a path leads from object (kind, namespace, name) to `node` (namespace "" for PVs, VAs)."""
        return node in self._access.get((kind, namespace, name), _EMPTY)

    def pod_binding(self, namespace: str, name: str) -> tuple[str, str] | None:
        """(node, uid) of a pod bound to a node, or None."""
        entry = self._pods.get((namespace, name))
        return (entry.node, entry.uid) if entry is not None else None

    def pod_uses(self, namespace: str, pod: str, kind: str, name: str) -> bool:
        """Whether bound pod `pod` itself references object (kind, name) of its namespace."""
        entry = self._pods.get((namespace, pod))
        return entry is not None and (kind, name) in entry.refs

    def nodes_for(self, kind: str, namespace: str, name: str) -> frozenset[str]:
        """The nodes that may use the object (for tests and debugging)."""
        return frozenset(self._access.get((kind, namespace, name), _EMPTY))

    def __len__(self) -> int:
        """Number of objects some node may use."""
        return len(self._access)

    @property
    def pod_count(self) -> int:
        return len(self._pods)

    # --- pods ----------------------------------------------------------------------------------------------

    def add_pod(self, pod: Obj) -> None:
        """A pod was created or changed (upstream's updatePod + AddPod): only bound pods have edges."""
        metadata = _dict(pod.get("metadata"))
        key = (_name(metadata, "namespace"), _name(metadata))
        node = _dict(pod.get("spec")).get("nodeName")
        old = self._pods.get(key)
        if not isinstance(node, str) or not node:
            if old is not None:  # nodeName cannot be unset, but stay correct if it were
                self._drop_pod(key, old)
            return
        uid = _name(metadata, "uid")
        ephemeral = len(_list(_dict(pod.get("spec")).get("ephemeralContainers")))
        if old is not None:
            if old.node == node and old.uid == uid and old.ephemeral == ephemeral:
                return  # the references of a bound pod are immutable
            self._drop_pod(key, old)
        entry = _Pod(node, uid, ephemeral, pod_references(pod))
        self._pods[key] = entry
        namespace = key[0]
        for kind, name in entry.refs:
            self._bump((kind, namespace, name), node, 1)

    def delete_pod(self, pod: Obj) -> None:
        key = _key(pod)
        old = self._pods.get(key)
        if old is not None:
            self._drop_pod(key, old)

    def _drop_pod(self, key: tuple[str, str], entry: _Pod) -> None:
        del self._pods[key]
        namespace = key[0]
        for kind, name in entry.refs:
            self._bump((kind, namespace, name), entry.node, -1)

    def replace_pods(self, pods: Iterable[Obj]) -> None:
        """Make the pod edges those of exactly `pods` (initial load, or a re-list after falling behind)."""
        seen: set[tuple[str, str]] = set()
        for pod in pods:
            seen.add(_key(pod))
            self.add_pod(pod)
        for key in [k for k in self._pods if k not in seen]:
            self._drop_pod(key, self._pods[key])

    def pod_event(self, event_type: str, pod: Obj) -> None:
        if event_type == "DELETED":
            self.delete_pod(pod)
        elif event_type in ("ADDED", "MODIFIED"):
            self.add_pod(pod)

    # --- persistent volumes --------------------------------------------------------------------------------

    def add_pv(self, pv: Obj) -> None:
        """A PV was created or changed (upstream's AddPV): pv -> its claim, kubelet-visible secrets -> pv."""
        name = _name(pv.get("metadata"))
        if not name:
            return
        claim = pv_claim(pv)
        entry = _PV(claim, pv_secrets(pv) if claim is not None else ())
        old = self._pvs.get(name)
        if old == entry:
            return
        if old is not None:
            self._drop_pv(name, old)
        if claim is None:
            return  # an unbound PV leads to no node
        self._pvs[name] = entry
        self._pvs_by_claim.setdefault(claim, set()).add(name)
        for node, paths in list(self._access.get((PVC, *claim), _EMPTY).items()):
            self._bump_pv(name, entry, node, paths)

    def delete_pv(self, pv: Obj) -> None:
        name = _name(pv.get("metadata"))
        old = self._pvs.get(name)
        if old is not None:
            self._drop_pv(name, old)

    def _drop_pv(self, name: str, entry: _PV) -> None:
        del self._pvs[name]
        assert entry.claim is not None
        claimants = self._pvs_by_claim[entry.claim]
        claimants.discard(name)
        if not claimants:
            del self._pvs_by_claim[entry.claim]
        for node, paths in list(self._access.get((PVC, *entry.claim), _EMPTY).items()):
            self._bump_pv(name, entry, node, -paths)

    def replace_pvs(self, pvs: Iterable[Obj]) -> None:
        seen: set[str] = set()
        for pv in pvs:
            seen.add(_name(pv.get("metadata")))
            self.add_pv(pv)
        for name in [n for n in self._pvs if n not in seen]:
            self._drop_pv(name, self._pvs[name])

    def pv_event(self, event_type: str, pv: Obj) -> None:
        if event_type == "DELETED":
            self.delete_pv(pv)
        elif event_type in ("ADDED", "MODIFIED"):
            self.add_pv(pv)

    # --- volume attachments --------------------------------------------------------------------------------

    def add_volume_attachment(self, attachment: Obj) -> None:
        name = _name(attachment.get("metadata"))
        node = _name(attachment.get("spec"), "nodeName")
        old = self._attachments.get(name)
        if old == node or not name:
            return
        if old is not None:
            del self._attachments[name]
            self._bump((VOLUME_ATTACHMENT, "", name), old, -1)
        if node:
            self._attachments[name] = node
            self._bump((VOLUME_ATTACHMENT, "", name), node, 1)

    def delete_volume_attachment(self, attachment: Obj) -> None:
        name = _name(attachment.get("metadata"))
        old = self._attachments.pop(name, None)
        if old is not None:
            self._bump((VOLUME_ATTACHMENT, "", name), old, -1)

    def replace_volume_attachments(self, attachments: Iterable[Obj]) -> None:
        seen: set[str] = set()
        for attachment in attachments:
            seen.add(_name(attachment.get("metadata")))
            self.add_volume_attachment(attachment)
        for name in [n for n in self._attachments if n not in seen]:
            self.delete_volume_attachment({"metadata": {"name": name}})

    def volume_attachment_event(self, event_type: str, attachment: Obj) -> None:
        if event_type == "DELETED":
            self.delete_volume_attachment(attachment)
        elif event_type in ("ADDED", "MODIFIED"):
            self.add_volume_attachment(attachment)

    # --- pod certificate requests (upstream's AddPodCertificateRequest: an edge to spec.nodeName) ----------

    def add_pod_certificate_request(self, request: Obj) -> None:
        key = _key(request)
        node = _name(request.get("spec"), "nodeName")
        old = self._pcrs.get(key)
        if old == node or not key[1]:
            return
        if old is not None:
            del self._pcrs[key]
            self._bump((POD_CERTIFICATE_REQUEST, *key), old, -1)
        if node:
            self._pcrs[key] = node
            self._bump((POD_CERTIFICATE_REQUEST, *key), node, 1)

    def delete_pod_certificate_request(self, request: Obj) -> None:
        key = _key(request)
        old = self._pcrs.pop(key, None)
        if old is not None:
            self._bump((POD_CERTIFICATE_REQUEST, *key), old, -1)

    def replace_pod_certificate_requests(self, requests: Iterable[Obj]) -> None:
        seen: set[tuple[str, str]] = set()
        for request in requests:
            seen.add(_key(request))
            self.add_pod_certificate_request(request)
        for namespace, name in [k for k in self._pcrs if k not in seen]:
            self.delete_pod_certificate_request({"metadata": {"namespace": namespace, "name": name}})

    def pod_certificate_request_event(self, event_type: str, request: Obj) -> None:
        if event_type == "DELETED":
            self.delete_pod_certificate_request(request)
        elif event_type in ("ADDED", "MODIFIED"):
            self.add_pod_certificate_request(request)

    # --- path counts ---------------------------------------------------------------------------------------

    def _bump(self, key: tuple[str, str, str], node: str, delta: int) -> None:
        nodes = self._access.get(key)
        if nodes is None:
            nodes = self._access[key] = {}
        count = nodes.get(node, 0) + delta
        if count > 0:
            nodes[node] = count
        else:
            nodes.pop(node, None)
            if not nodes:
                del self._access[key]
        if key[0] == PVC:
            # Paths through this PVC continue to the PVs bound to it, and on to their secrets.
            for pv in self._pvs_by_claim.get((key[1], key[2]), ()):
                self._bump_pv(pv, self._pvs[pv], node, delta)

    def _bump_pv(self, name: str, entry: _PV, node: str, delta: int) -> None:
        self._bump((PV, "", name), node, delta)
        for namespace, secret in entry.secrets:
            self._bump((SECRET, namespace, secret), node, delta)

    def check(self) -> None:
        """Recompute every path count from the recorded pods, PVs and attachments; AssertionError if any
        differs from the maintained one (for tests)."""
        expected = NodeGraph()
        expected._pvs, expected._pvs_by_claim = dict(self._pvs), {k: set(v) for k, v in self._pvs_by_claim.items()}
        for (namespace, _), entry in self._pods.items():
            for kind, name in entry.refs:
                expected._bump((kind, namespace, name), entry.node, 1)
        for name, node in self._attachments.items():
            expected._bump((VOLUME_ATTACHMENT, "", name), node, 1)
        for (namespace, name), node in self._pcrs.items():
            expected._bump((POD_CERTIFICATE_REQUEST, namespace, name), node, 1)
        assert expected._access == self._access, (expected._access, self._access)


@dataclass(frozen=True)
class GraphSource:
    """How one resource's events feed the graph."""

    group: str
    plural: str
    on_event: Callable[[Any], Callable[[str, Obj], None]]  # given the graph (or another fed policy)
    on_replace: Callable[[Any], Callable[[Iterable[Obj]], None]]


# The resources the graph is built from (upstream: pod, PV, VolumeAttachment and PodCertificateRequest
# informers). Those the API server does not serve are skipped.
GRAPH_SOURCES = (
    GraphSource("", "pods", lambda g: g.pod_event, lambda g: g.replace_pods),
    GraphSource("", "persistentvolumes", lambda g: g.pv_event, lambda g: g.replace_pvs),
    GraphSource(
        "storage.k8s.io",
        "volumeattachments",
        lambda g: g.volume_attachment_event,
        lambda g: g.replace_volume_attachments,
    ),
    GraphSource(
        "certificates.k8s.io",
        "podcertificaterequests",
        lambda g: g.pod_certificate_request_event,
        lambda g: g.replace_pod_certificate_requests,
    ),
)


class CacheFeed:
    """Keeps the graph current from one watch cache: a live watcher plus the cache's state at the same revision.

    `sync()` (synchronous, so nothing can happen in between) opens a watcher from the cache's current revision
    and loads the cache's objects; `run()` applies the watcher's events and re-syncs when the watcher is ended
    for falling behind or by a re-list after compaction.

    When an edge becomes visible: the watcher is a prefix watcher of the same cache that serves the kubelets'
    pod watches, and the cache hands each event to all its watchers in one synchronous step (prefix watchers
    first), waking this feed's task before the watch stream that will carry the event to the kubelet even
    writes it. So a kubelet that has seen its pod's binding through this API server process cannot have its
    next request authorized against a graph without the pod. Across API server processes
    (`--apiserver-workers`), each process's caches follow etcd on their own, and a request reaching a process
    whose pod cache is a few milliseconds behind the one that served the watch is denied (403); the kubelet
    retries, as it does against upstream, whose graph is fed by informers and is likewise eventually
    consistent.
    """

    def __init__(self, graph: Any, cache: Any, prefix: str, source: GraphSource) -> None:
        self.cache = cache
        self.prefix = prefix
        self.on_event = source.on_event(graph)
        self.on_replace = source.on_replace(graph)
        self._watcher: Any = None

    def sync(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        self._watcher = self.cache.watch(self.prefix)
        items, _ = self.cache.list(self.prefix)
        self.on_replace(c.obj for c in items)

    async def run(self) -> None:
        if self._watcher is None:
            self.sync()
        try:
            while True:
                watcher = self._watcher
                try:
                    async for event in watcher:
                        try:
                            self.on_event(event.type, event.obj)
                        except Exception:  # a malformed object must not stop the feed; it just grants nothing
                            log.exception("cache feed: cannot apply %s event under %s", event.type, self.prefix)
                except CompactedError:
                    log.info("cache feed: watch cache %s re-listed; re-syncing", self.prefix)
                else:
                    if not watcher.terminated:
                        return  # the cache was stopped
                    log.info("cache feed: fell behind watch cache %s; re-syncing", self.prefix)
                self.sync()
        finally:
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None


def feeds(
    graph: Any, caches: Iterable[tuple[Any, Any]], sources: Iterable[GraphSource] | None = None
) -> Iterator[CacheFeed]:
    """A synced `CacheFeed` for each served source (the graph's by default; also RBAC's policy, rbac.py);
    `caches` yields (ResourceType, WatchCache)."""
    by_resource = {(rt.group, rt.plural): (rt, cache) for rt, cache in caches}
    for source in GRAPH_SOURCES if sources is None else sources:
        found = by_resource.get((source.group, source.plural))
        if found is None:
            continue
        rt, cache = found
        feed = CacheFeed(graph, cache, rt.storage_prefix(), source)
        feed.sync()
        yield feed

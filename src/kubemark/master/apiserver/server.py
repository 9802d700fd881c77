"""`APIServer`: the embedded kube-apiserver, in-process, for tests and for the CLI.

start(): etcd (when asked) -> storage -> one watch cache and one ResourceStore per served resource -> the
node authorizer's graph fed from the caches (when configured) -> default namespaces -> aiohttp site on
host:port (port 0 picks a free one; see `.url`) -> periodic compaction.
stop() undoes it in reverse order. Also an async context manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from ssl import SSLContext
from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Middleware

from kubemark.kube.meta import now_rfc3339
from kubemark.kube.resources import RESOURCES, ResourceType
from kubemark.master.apiserver.app import create_app
from kubemark.master.apiserver.node_graph import NodeGraph, feeds
from kubemark.master.apiserver.object_store import ResourceStore
from kubemark.master.apiserver.rbac import RBAC_SOURCES, RBACPolicy
from kubemark.master.apiserver.strategy import Strategy
from kubemark.master.storage.base import CompactedError, Storage, StorageError

log = logging.getLogger(__name__)

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# kube-apiserver's http.Server IdleTimeout (k8s.io/apiserver secure_serving.go): idle keep-alive connections
# close after 90 s, not aiohttp's 75 s.
IDLE_TIMEOUT_SECONDS = 90.0
# Go's net.Listen uses the kernel's somaxconn (capped there again); aiohttp's default of 128 refuses
# connection bursts (thousands of kubelets connecting at once) with SYN retries of 1 s and more.
LISTEN_BACKLOG = 4096
POD_NODE_INDEX = "spec.nodeName"


@dataclass
class APIServerConfig:
    """How to run the embedded API server."""

    storage: Literal["memory", "etcd"] = "memory"
    data_dir: Path | None = None  # etcd data; a temporary directory when None
    host: str = "127.0.0.1"
    port: int = 0
    etcd_binary: str | None = None
    unsafe_no_fsync: bool = False
    etcd_endpoint: str | None = None  # use an already running etcd instead of starting one
    tls: bool = False
    ssl_context: SSLContext | None = None
    middlewares: Sequence[Middleware] = ()
    extra_routes: Sequence[web.RouteDef] = ()
    metrics: Any = None  # APIServerMetrics (optional)
    # Object-level authorization of node writes, e.g. Authorizer.authorize_object (None: no such check).
    object_authorizer: Callable[..., str | None] | None = None
    # The Node authorizer's graph (Authorizer.node_graph), kept current from this server's watch caches.
    node_graph: NodeGraph | None = None
    # The RBAC authorizer's policy (Authorizer.rbac), kept current from this server's watch caches, and the
    # escalation check of role and binding writes (Authorizer.authorize_rbac_write).
    rbac: RBACPolicy | None = None
    rbac_write_authorizer: Callable[..., str | None] | None = None
    # SelfSubjectAccessReview's authorizer (Authorizer.authorize); None: that API is not served.
    access_check: Callable[..., str | None] | None = None
    # ServiceAccountTokens (service_account_tokens.py): serves serviceaccounts/token and reads the objects its
    # tokens are bound to from this server's watch caches. None: no TokenRequest API (404), as upstream
    # without a service-account signing key.
    service_account_tokens: Any = None
    compaction_interval: float = 300.0  # seconds; <= 0 disables compaction
    watch_cache_window: int = 20000  # events kept per resource for watches from a past resourceVersion
    watch_bookmark_interval: float = 60.0  # seconds between BOOKMARK events on idle watches
    freshness_timeout: float = 3.0  # seconds a read waits for the watch cache before 504 (upstream: 3 s)
    storage_count_interval: float = 60.0  # seconds between apiserver_storage_objects updates (with metrics)
    shutdown_timeout: float = 5.0
    resources: Sequence[ResourceType] = field(default_factory=lambda: RESOURCES)
    # Several API server processes on one port (SO_REUSEPORT, the kernel spreads connections) over one etcd:
    # only the primary compacts and creates the default namespaces.
    reuse_port: bool = False
    primary: bool = True
    # This process's share of automatically allocated values (service IPs, node ports) among `worker_count`.
    worker_index: int = 0
    worker_count: int = 1


def _pod_node_name(obj: dict[str, Any]) -> str | None:
    return (obj.get("spec") or {}).get("nodeName") or None


def _object_name(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("name") or None


# Cache indexes per resource, named after the field selector they serve: each kubelet watches its pods by
# spec.nodeName and its Node by metadata.name, so both must be dispatched in O(1), not O(nodes).
_INDEXES: dict[tuple[str, str], dict[str, Callable[[dict[str, Any]], str | None]]] = {
    ("", "pods"): {POD_NODE_INDEX: _pod_node_name},
    ("", "nodes"): {"metadata.name": _object_name},
    # Each kubelet watches its node's PodCertificateRequests (fieldSelector spec.nodeName=<node>).
    ("certificates.k8s.io", "podcertificaterequests"): {POD_NODE_INDEX: _pod_node_name},
}
DEFAULT_SERVICE_CIDR = "kubernetes"  # the ServiceCIDR kube-apiserver creates for --service-cluster-ip-range


def _strategy_for(rt: ResourceType) -> Strategy:
    try:
        from kubemark.master.apiserver.kinds import strategy_for
    except ImportError:  # the kind rules are optional for the generic machinery
        return Strategy(rt)
    return strategy_for(rt)


class APIServer:
    """An in-process kube-apiserver on memory or etcd storage."""

    def __init__(self, config: APIServerConfig | None = None) -> None:
        self.config = config or APIServerConfig()
        self.storage: Storage | None = None
        self.etcd: Any = None
        self.caches: dict[ResourceType, Any] = {}
        self.stores: dict[ResourceType, ResourceStore] = {}
        self.app: web.Application | None = None
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._compactor: asyncio.Task[None] | None = None
        self._counter: asyncio.Task[None] | None = None
        self._followers: list[asyncio.Task[None]] = []
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def etcd_endpoint(self) -> str | None:
        """The etcd this server talks to (the one it started, or the configured one)."""
        if self.etcd is not None:
            return str(self.etcd.endpoint)
        return self.config.etcd_endpoint

    @property
    def url(self) -> str:
        scheme = "https" if self.config.ssl_context is not None else "http"
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    def store(self, group: str, plural: str) -> ResourceStore:
        for rt, store in self.stores.items():
            if rt.group == group and rt.plural == plural:
                return store
        raise KeyError(f"{plural}.{group}" if group else plural)

    # --- lifecycle -----------------------------------------------------------------------------------------

    async def _start_storage(self) -> Storage:
        cfg = self.config
        if cfg.storage == "memory":
            from kubemark.master.storage.memory import MemoryStorage

            storage: Storage = MemoryStorage()
        elif cfg.storage == "etcd":
            from kubemark.master.storage.etcd import EtcdStorage

            endpoint = cfg.etcd_endpoint
            if endpoint is None:
                from kubemark.master.storage.etcd_server import EtcdServer

                data_dir = cfg.data_dir
                if data_dir is None:
                    self._tmpdir = tempfile.TemporaryDirectory(prefix="kubemark-etcd-")
                    data_dir = Path(self._tmpdir.name)
                self.etcd = EtcdServer(data_dir, binary=cfg.etcd_binary, unsafe_no_fsync=cfg.unsafe_no_fsync)
                await self.etcd.start()
                endpoint = self.etcd.endpoint
            storage = EtcdStorage(endpoint)
        else:
            raise ValueError(f"unknown storage {cfg.storage!r}")
        await storage.start()
        return storage

    async def start(self) -> None:
        from kubemark.master.storage.cacher import WatchCache

        cfg = self.config
        if cfg.tls and cfg.ssl_context is None:
            raise ValueError("tls=True needs an ssl_context (the serving certificate comes from the PKI)")
        if cfg.ssl_context is not None:
            _tune_tls(cfg.ssl_context)
        try:
            self.storage = await self._start_storage()
            storage = self.storage
            for rt in cfg.resources:
                cache = WatchCache(
                    storage,
                    rt.storage_prefix(),
                    window=cfg.watch_cache_window,
                    bookmark_interval=cfg.watch_bookmark_interval,
                    bookmark_object=_bookmark_factory(rt),
                )
                for name, fn in _INDEXES.get((rt.group, rt.plural), {}).items():
                    cache.add_index(name, fn)
                self.caches[rt] = cache
            await asyncio.gather(*(cache.start() for cache in self.caches.values()))
            if cfg.node_graph is not None:
                # Loaded from the caches now, before serving, then followed (see node_graph.CacheFeed).
                for feed in feeds(cfg.node_graph, self.caches.items()):
                    self._followers.append(asyncio.create_task(feed.run(), name=f"node-graph {feed.prefix}"))
            if cfg.rbac is not None:
                for feed in feeds(cfg.rbac, self.caches.items(), RBAC_SOURCES):
                    self._followers.append(asyncio.create_task(feed.run(), name=f"rbac {feed.prefix}"))
            ns_rt = next((rt for rt in cfg.resources if rt.group == "" and rt.plural == "namespaces"), None)
            ns_store = None
            if ns_rt is not None:
                ns_store = ResourceStore(
                    ns_rt,
                    storage,
                    self.caches[ns_rt],
                    _strategy_for(ns_rt),
                    metrics=cfg.metrics,
                    index_fields=tuple(_INDEXES.get(("", "namespaces"), {})),
                    freshness_timeout=cfg.freshness_timeout,
                )
                self.stores[ns_rt] = ns_store
            for rt in cfg.resources:
                if rt is ns_rt:
                    continue
                self.stores[rt] = ResourceStore(
                    rt,
                    storage,
                    self.caches[rt],
                    _strategy_for(rt),
                    namespaces=ns_store,
                    metrics=cfg.metrics,
                    index_fields=tuple(_INDEXES.get((rt.group, rt.plural), {})),
                    freshness_timeout=cfg.freshness_timeout,
                )
            by_resource = {(rt.group, rt.plural): store for rt, store in self.stores.items()}
            for store in self.stores.values():
                bind_stores = getattr(store.strategy, "bind_stores", None)
                if bind_stores is not None:
                    bind_stores(lambda group, plural: by_resource.get((group, plural)))
            for store in self.stores.values():
                if cfg.worker_count > 1 and hasattr(store.strategy, "partition"):
                    store.strategy.partition(cfg.worker_index, cfg.worker_count)
                warm_up = getattr(store.strategy, "warm_up", None)
                if warm_up is not None:
                    await warm_up(storage)
                if cfg.worker_count > 1 and hasattr(store.strategy, "observe") and store.cache is not None:
                    self._followers.append(asyncio.create_task(self._follow(store)))
            if cfg.service_account_tokens is not None:
                cfg.service_account_tokens.attach(self.stores.values(), object_authorizer=cfg.object_authorizer)
            if ns_store is not None and cfg.primary:
                await self._ensure_namespaces(ns_store)
            if cfg.primary:
                await self._ensure_default_service_cidr()
                await self._ensure_system_priority_classes()
                await self._ensure_default_storage_class()
                await self._ensure_rbac_bootstrap_policy()
            self.app = create_app(
                self.stores.values(),
                middlewares=cfg.middlewares,
                extra_routes=cfg.extra_routes,
                object_authorizer=cfg.object_authorizer,
                rbac_write_authorizer=cfg.rbac_write_authorizer,
                access_check=cfg.access_check,
            )
            # lingering_time=0: a connection whose body was refused unread (413) closes at once instead of
            # draining it, which otherwise also holds stop() for the whole shutdown timeout.
            self._runner = web.AppRunner(
                self.app,
                handle_signals=False,
                access_log=None,
                shutdown_timeout=cfg.shutdown_timeout,
                lingering_time=0,
                keepalive_timeout=IDLE_TIMEOUT_SECONDS,
            )
            await self._runner.setup()
            site = web.TCPSite(
                self._runner,
                cfg.host,
                cfg.port,
                ssl_context=cfg.ssl_context,
                reuse_address=True,
                reuse_port=cfg.reuse_port or None,
                backlog=LISTEN_BACKLOG,
            )
            await site.start()
            addresses = self._runner.addresses
            self.port = addresses[0][1] if addresses else cfg.port
            if cfg.compaction_interval > 0 and cfg.primary:
                self._compactor = asyncio.create_task(self._compact_loop(cfg.compaction_interval))
            if cfg.metrics is not None and cfg.storage_count_interval > 0:
                self.record_object_counts()
                self._counter = asyncio.create_task(self._count_loop(cfg.storage_count_interval))
            log.info("API server listening on %s (%s storage)", self.url, cfg.storage)
        except BaseException:
            await self.stop()
            raise

    @staticmethod
    async def _follow(store: ResourceStore) -> None:
        """Feed every change of the store's objects, whichever process wrote it, to its strategy's `observe`."""
        assert store.cache is not None
        watcher = store.cache.watch(store.prefix)
        try:
            async for event in watcher:
                store.strategy.observe(event.type, event.obj)  # type: ignore[attr-defined]
        finally:
            watcher.close()

    @staticmethod
    async def _create_if_missing(store: ResourceStore | None, body: dict[str, Any]) -> None:
        """Bootstrap objects: created when missing, never overwritten (another API server may race us to it)."""
        if store is None or await store.storage.get(store.key("", body["metadata"]["name"])) is not None:
            return
        try:
            await store.create(body)
        except Exception as exc:
            if getattr(exc, "code", None) != 409:
                raise

    def _store_of(self, group_resource: str) -> ResourceStore | None:
        return next((s for rt, s in self.stores.items() if rt.group_resource == group_resource), None)

    async def _ensure_namespaces(self, ns_store: ResourceStore) -> None:
        for name in DEFAULT_NAMESPACES:
            await self._create_if_missing(
                ns_store, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            )

    async def _ensure_system_priority_classes(self) -> None:
        """system-node-critical and system-cluster-critical, as kube-apiserver's bootstrap-system-priority-classes
        post-start hook creates them (kube-system's critical pods name them)."""
        from kubemark.master.apiserver.kinds.scheduling import SYSTEM_PRIORITY_CLASSES, system_priority_class

        store = self._store_of("priorityclasses.scheduling.k8s.io")
        for name in SYSTEM_PRIORITY_CLASSES:
            await self._create_if_missing(store, system_priority_class(name))

    async def _ensure_rbac_bootstrap_policy(self) -> None:
        """The bootstrap ClusterRoles and ClusterRoleBindings (cluster-admin, admin/edit/view, system:discovery,
        ...), created when missing as kube-apiserver's rbac/bootstrap-roles post-start hook does."""
        from kubemark.master.apiserver.rbac import GROUP, bootstrap_policy

        for plural, body in bootstrap_policy():
            await self._create_if_missing(self._store_of(f"{plural}.{GROUP}"), body)

    async def _ensure_default_storage_class(self) -> None:
        """The default StorageClass (`standard`, the hollow provisioner), as a cluster's storage addon installs
        one (addon-manager mode EnsureExists: created when missing, never overwritten), so claims without a
        class (clusterloader2's StatefulSet volumeClaimTemplates) get provisioned and bound."""
        from kubemark.master.apiserver.kinds.storage import default_storage_class_object

        await self._create_if_missing(self._store_of("storageclasses.storage.k8s.io"), default_storage_class_object())

    async def _ensure_default_service_cidr(self) -> None:
        """The ServiceCIDR `kubernetes` with the Services' cluster IP range, Ready, as kube-apiserver's default
        ServiceCIDR controller creates it (there in two writes, the create and a status apply)."""
        by_resource = {(rt.group, rt.plural): store for rt, store in self.stores.items()}
        cidr_store = by_resource.get(("networking.k8s.io", "servicecidrs"))
        services = by_resource.get(("", "services"))
        allocator = getattr(services.strategy, "cluster_ips", None) if services is not None else None
        if cidr_store is None or allocator is None:
            return
        if await cidr_store.storage.get(cidr_store.key("", DEFAULT_SERVICE_CIDR)) is not None:
            return
        ready = {
            "type": "Ready",
            "status": "True",
            "lastTransitionTime": now_rfc3339(),
            "reason": "",
            "message": "Kubernetes default Service CIDR is ready",
        }
        obj = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "ServiceCIDR",
            "metadata": {"name": DEFAULT_SERVICE_CIDR},
            "spec": {"cidrs": [allocator.cidr]},
            "status": {"conditions": [ready]},
        }
        try:
            await cidr_store.create(obj)
        except Exception as exc:  # another API server may have raced us to it
            if getattr(exc, "code", None) != 409:
                raise

    async def compact_now(self, keep: int = 0) -> int:
        """Compact storage to (current revision - keep); returns the compacted revision (0 if nothing)."""
        assert self.storage is not None
        revision = await self.storage.current_revision() - keep
        if revision <= 1:
            return 0
        try:
            await self.storage.compact(revision)
        except CompactedError:
            return 0
        return revision

    async def _compact_loop(self, interval: float) -> None:
        """Like upstream: every interval, compact to the revision seen one interval ago."""
        assert self.storage is not None
        previous = 0
        while True:
            await asyncio.sleep(interval)
            try:
                current = await self.storage.current_revision()
                if previous > 1:
                    with contextlib.suppress(CompactedError):
                        await self.storage.compact(previous)
                previous = current
            except StorageError as exc:
                log.warning("compaction failed: %s", exc)

    def record_object_counts(self) -> None:
        """Set apiserver_storage_objects for every resource from its watch cache (upstream: every minute)."""
        metrics = self.config.metrics
        if metrics is None:
            return
        for rt, cache in self.caches.items():
            metrics.set_storage_objects(rt.group_resource, cache.count())

    async def _count_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.record_object_counts()

    async def stop(self) -> None:
        for task in (self._compactor, self._counter, *self._followers):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._compactor = self._counter = None
        self._followers.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for cache in self.caches.values():
            with contextlib.suppress(Exception):
                await cache.stop()
        self.caches.clear()
        if self.storage is not None:
            await self.storage.close()
            self.storage = None
        if self.etcd is not None:
            await self.etcd.stop()
            self.etcd = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    async def __aenter__(self) -> APIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _tune_tls(ctx: SSLContext) -> None:
    """Serving-side TLS settings that cut the handshake cost without changing what clients see.

    No TLS 1.3 session tickets: our clients (aiohttp, client-go without a ClientSessionCache) never resume a
    session, and minting the two tickets OpenSSL sends by default is about a third of a server handshake.
    """
    ctx.num_tickets = 0


def _bookmark_factory(rt: ResourceType) -> Callable[[int], dict[str, Any]]:
    def bookmark(revision: int) -> dict[str, Any]:
        return {"kind": rt.kind, "apiVersion": rt.group_version, "metadata": {"resourceVersion": str(revision)}}

    return bookmark

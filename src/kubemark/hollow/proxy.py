"""HollowProxy: kube-proxy's API load (its watches, sync loop and start-up event) without programming rules.

Watches Services and EndpointSlices with kube-proxy's label selector, its own Node, and (switchable) all
ServiceCIDRs, as a v1.37 kube-proxy does. Service and EndpointSlice changes mark the
proxy dirty; the sync loop runs at most once per min-sync-period and at least once per sync period, "programs"
the rule set (only its size is computed) and records network programming latency: for each EndpointSlice
changed since the last sync, now - its `endpoints.kubernetes.io/last-change-trigger-time` annotation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubemark.client.informer import Informer, namespaced_key, namespaced_key_from
from kubemark.client.paths import resource_path
from kubemark.client.shared_objects import SharedObjects
from kubemark.hollow.config import NodeConfig
from kubemark.hollow.events import EventRecorder
from kubemark.kube.meta import parse_time

if TYPE_CHECKING:
    from kubemark.client.rest import RestClient

log = logging.getLogger(__name__)

# kube-proxy's watch filters (cmd/kube-proxy/app/server.go): Services another proxy does not claim, minus
# headless ones (DNS serves those); EndpointSlices not of headless Services.
SERVICE_LABEL_SELECTOR = "!service.kubernetes.io/service-proxy-name"
SERVICE_FIELD_SELECTOR = "spec.clusterIP!=None"
ENDPOINT_SLICE_LABEL_SELECTOR = "!service.kubernetes.io/headless"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


ObjectKey = str  # "namespace/name", interned: a thousand nodes' rule sets share each key's one string


def _ready_endpoints(endpoint_slice: dict[str, Any]) -> int:
    return sum(
        1 for e in endpoint_slice.get("endpoints") or [] if (e.get("conditions") or {}).get("ready", True) is not False
    )


class RuleSet:
    """The size of the rule set an iptables proxier would write: per service port, one service rule plus one per
    ready endpoint. Kept up to date change by change, so a sync costs nothing however many services exist (a
    recount at every sync, on every hollow node, grew as nodes x services)."""

    def __init__(self) -> None:
        self.rules = 0
        self._ports: dict[ObjectKey, int] = {}
        self._ready: dict[ObjectKey, int] = {}  # ready endpoints per service, over its slices
        # per slice: its service and its ready endpoints (two dicts, not a tuple per slice per node)
        self._slice_service: dict[ObjectKey, ObjectKey] = {}
        self._slice_ready: dict[ObjectKey, int] = {}

    def set_service(self, service: dict[str, Any]) -> None:
        key = _key(service)
        ports = len((service.get("spec") or {}).get("ports") or [])
        self.rules += (ports - self._ports.get(key, 0)) * (1 + self._ready.get(key, 0))
        self._ports[key] = ports

    def remove_service(self, service: dict[str, Any]) -> None:
        key = _key(service)
        self.rules -= self._ports.pop(key, 0) * (1 + self._ready.get(key, 0))

    def set_slice(self, endpoint_slice: dict[str, Any]) -> None:
        self.remove_slice(endpoint_slice)
        meta = endpoint_slice.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if owner:
            key = _key(endpoint_slice)
            service = sys.intern(namespaced_key_from(meta.get("namespace"), owner))
            ready = _ready_endpoints(endpoint_slice)
            self._slice_service[key] = service
            self._slice_ready[key] = ready
            self._add_ready(service, ready)

    def remove_slice(self, endpoint_slice: dict[str, Any]) -> None:
        key = _key(endpoint_slice)
        service = self._slice_service.pop(key, None)
        if service is not None:
            self._add_ready(service, -self._slice_ready.pop(key))

    def _add_ready(self, service: ObjectKey, delta: int) -> None:
        ready = self._ready.get(service, 0) + delta
        if ready:
            self._ready[service] = ready
        else:
            self._ready.pop(service, None)
        self.rules += self._ports.get(service, 0) * delta


def _key(obj: dict[str, Any]) -> ObjectKey:
    return sys.intern(namespaced_key(obj))


class HollowProxy:
    """One node's kube-proxy."""

    def __init__(
        self,
        node_name: str,
        client: RestClient,
        config: NodeConfig,
        *,
        recorder: EventRecorder | None = None,
        on_programming_latency: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
        shared: SharedObjects | None = None,
    ) -> None:
        """`shared`: the process's shared copies of Services and EndpointSlices (every node's proxy holds all)."""
        self.node_name = node_name
        self.client = client
        self.min_sync_period = config.proxy.min_sync_period
        self.sync_period = config.proxy.sync_period
        self.recorder = recorder or EventRecorder(client, component="kube-proxy", host=node_name, enabled=config.events)
        self._on_latency = on_programming_latency
        self._clock = clock
        self.services = Informer(
            client,
            resource_path("", "v1", "services"),
            label_selector=SERVICE_LABEL_SELECTOR,
            field_selector=SERVICE_FIELD_SELECTOR,
            shared=shared,
        )
        self.slices = Informer(
            client,
            resource_path("discovery.k8s.io", "v1", "endpointslices"),
            label_selector=ENDPOINT_SLICE_LABEL_SELECTOR,
            shared=shared,
        )
        self.node = Informer(client, resource_path("", "v1", "nodes"), field_selector=f"metadata.name={node_name}")
        # kube-proxy's ServiceCIDR config (an informer with no filters); nothing here acts on the ranges.
        self.service_cidrs = (
            Informer(client, resource_path("networking.k8s.io", "v1", "servicecidrs"), shared=shared)
            if config.proxy.watch_service_cidrs
            else None
        )
        self._dirty = asyncio.Event()
        self._changed_slices: dict[str, float] = {}  # slice key -> trigger time (epoch) awaiting programming
        self._rule_set = RuleSet()
        self.rules = 0  # the rule set's size at the last sync
        self.syncs = 0
        self.synced = asyncio.Event()  # set after every sync; tests clear and wait
        self._task: asyncio.Task[None] | None = None
        self.services.add_handler(
            on_add=self._service_changed, on_update=self._service_changed, on_delete=self._service_deleted
        )
        self.slices.add_handler(
            on_add=self._slice_changed, on_update=self._slice_changed, on_delete=self._slice_deleted
        )

    @property
    def informers(self) -> list[Informer]:
        """Every informer this proxy runs, in start order."""
        out = [self.services, self.slices, self.node]
        if self.service_cidrs is not None:
            out.append(self.service_cidrs)
        return out

    def _service_changed(self, *objs: dict[str, Any]) -> None:
        self._rule_set.set_service(objs[-1])
        self._dirty.set()

    def _service_deleted(self, obj: dict[str, Any]) -> None:
        self._rule_set.remove_service(obj)
        self._dirty.set()

    def _slice_deleted(self, obj: dict[str, Any]) -> None:
        self._rule_set.remove_slice(obj)
        self._dirty.set()

    def _slice_changed(self, *objs: dict[str, Any]) -> None:
        obj = objs[-1]
        self._rule_set.set_slice(obj)
        meta = obj.get("metadata") or {}
        text = (meta.get("annotations") or {}).get(TRIGGER_TIME_ANNOTATION)
        if text:
            try:
                key = namespaced_key(obj)
                self._changed_slices.setdefault(key, parse_time(text))
            except ValueError:
                pass
        self._dirty.set()

    def sync(self) -> None:
        """Program the proxy rules now (take their count) and record programming latencies."""
        self.rules = self._rule_set.rules
        now = self._clock()
        if self._on_latency is not None:
            for trigger in self._changed_slices.values():
                self._on_latency(max(0.0, now - trigger))
        self._changed_slices.clear()
        self.syncs += 1
        self.synced.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for informer in (self.services, self.slices):
            await informer.wait_synced()
        last = float("-inf")
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that arrives as the event
            # is set, and stop() then waited a whole sync period for this loop to come round again.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.sync_period):
                    await self._dirty.wait()
            wait = last + self.min_sync_period - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._dirty.clear()
            self.sync()
            last = loop.time()

    async def start(self) -> None:
        # The start-up event goes first and is awaited, so it reuses the node's idle connection instead of
        # opening one more beside the informers' streams.
        node_ref = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": self.node_name, "uid": self.node_name}}
        self.recorder.record(node_ref, "Normal", "Starting", "")
        await self.recorder.flush()
        for informer in self.informers:
            informer.start()
        self._task = asyncio.create_task(self.run(), name=f"proxy {self.node_name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for informer in self.informers:
            await informer.stop()
        await self.recorder.flush()

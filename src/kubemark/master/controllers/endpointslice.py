"""EndpointSlice controller (pkg/controller/endpointslice): discovery.k8s.io/v1 slices for selecting Services.

Every pod a Service selects (with an IP, not terminal; terminating ones included) becomes an endpoint with
conditions ready/serving/terminating. Endpoints are grouped by the ports they resolve to; each group is spread
over slices of at most `max_endpoints_per_slice`. A sync keeps the existing slices of a group (rewriting those
whose endpoints changed, filling them before creating new ones), creates slices named `<service>-<random>` for
the rest and deletes what is left over. A Service without endpoints keeps one empty placeholder slice, as
upstream. Slices we create but have not seen in the informer yet are tracked, so a quick second sync waits for
them instead of creating duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from kubemark.client import APIError, RestClient, is_not_found, resource_path
from kubemark.client.informer import namespaced_key_from
from kubemark.master.controllers.base import Obj, SharedInformers
from kubemark.master.controllers.endpoints import (
    HEADLESS_LABEL,
    PortKey,
    ServiceEndpointsController,
    is_headless,
    pod_hostname,
    pod_ip,
    resolved_ports,
    service_selector,
    set_trigger_annotation,
    should_be_in_endpoints,
    target_ref,
)
from kubemark.master.controllers.expectations import Expectations
from kubemark.master.controllers.ownership import is_deleting, is_pod_ready, labels_of, meta, owner_reference, uid_of
from kubemark.master.controllers.workqueue import QueueMetrics

log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100
ADDRESS_TYPE = "IPv4"

_SLICES = ("discovery.k8s.io", "v1", "endpointslices")


def managed_service_key(slice_: Obj) -> str | None:
    """ "ns/service" for a slice this controller manages, else None."""
    labels = labels_of(slice_)
    service = labels.get(SERVICE_NAME_LABEL)
    if not service or labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME:
        return None
    return namespaced_key_from(meta(slice_).get("namespace"), service)


def slice_port(key: PortKey) -> dict[str, Any]:
    name, number, protocol, app_protocol = key
    port: dict[str, Any] = {"name": name, "port": number, "protocol": protocol}
    if app_protocol:
        port["appProtocol"] = app_protocol
    return port


def slice_port_key(slice_: Obj) -> tuple[PortKey, ...]:
    keys = [
        (
            str(p.get("name") or ""),
            int(p.get("port") or 0),
            str(p.get("protocol") or "TCP"),
            str(p.get("appProtocol") or ""),
        )
        for p in slice_.get("ports") or ()
    ]
    return tuple(sorted(keys))


def pod_to_endpoint(svc: Obj, pod: Obj) -> dict[str, Any]:
    """endpointslice podToEndpoint (no zone or hints: hollow nodes carry no topology here)."""
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    serving = publish or is_pod_ready(pod)
    terminating = is_deleting(pod)
    endpoint: dict[str, Any] = {
        "addresses": [pod_ip(pod)],
        "conditions": {
            "ready": publish or (serving and not terminating),
            "serving": serving,
            "terminating": terminating,
        },
    }
    hostname = pod_hostname(svc, pod)
    if hostname:
        endpoint["hostname"] = hostname
    endpoint["targetRef"] = target_ref(pod)
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        endpoint["nodeName"] = node
    return endpoint


def endpoint_key(endpoint: dict[str, Any]) -> str:
    ref = endpoint.get("targetRef") or {}
    return str(ref.get("uid") or ",".join(endpoint.get("addresses") or ()))


def desired_endpoints(svc: Obj, pods: list[Obj]) -> dict[tuple[PortKey, ...], dict[str, dict[str, Any]]]:
    """Endpoints grouped by resolved ports, each group keyed by endpoint_key and ordered by pod IP."""
    groups: dict[tuple[PortKey, ...], dict[str, dict[str, Any]]] = {}
    for pod in sorted(pods, key=lambda p: (pod_ip(p), uid_of(p))):
        if not should_be_in_endpoints(pod, include_terminating=True):
            continue
        endpoint = pod_to_endpoint(svc, pod)
        groups.setdefault(resolved_ports(svc, pod), {})[endpoint_key(endpoint)] = endpoint
    return groups


def slice_labels(svc: Obj) -> dict[str, str]:
    """setEndpointSliceLabels: the service's labels (minus reserved keys), service name, manager, headless."""
    labels = {
        k: v for k, v in labels_of(svc).items() if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)
    }
    if is_headless(svc):
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = str(meta(svc).get("name") or "")
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


class _Plan:
    """The writes of one reconcile: new slices (endpoints, ports), rewritten slices, slices to delete."""

    def __init__(self) -> None:
        self.create: list[tuple[list[dict[str, Any]], tuple[PortKey, ...]]] = []
        self.update: list[tuple[Obj, list[dict[str, Any]]]] = []
        self.delete: list[Obj] = []


def plan_slices(
    existing: list[Obj],
    desired: dict[tuple[PortKey, ...], dict[str, dict[str, Any]]],
    labels: dict[str, str],
    max_per_slice: int,
) -> _Plan:
    """reconciler.reconcileByAddressType for one address type (see the module docstring)."""
    plan = _Plan()
    by_ports: dict[tuple[PortKey, ...], list[Obj]] = {}
    for slice_ in existing:
        if slice_.get("addressType") != ADDRESS_TYPE:
            plan.delete.append(slice_)
        else:
            by_ports.setdefault(slice_port_key(slice_), []).append(slice_)
    if not any(desired.values()):
        # A service without endpoints keeps (or gets) one empty placeholder slice.
        placeholder = next((s for s in by_ports.get((), []) if not s.get("endpoints")), None)
        for slices in by_ports.values():
            plan.delete.extend(s for s in slices if s is not placeholder)
        if placeholder is None:
            plan.create.append(([], ()))
        elif labels_of(placeholder) != labels:
            plan.update.append((placeholder, []))
        return plan
    for ports, slices in by_ports.items():
        if ports not in desired or not desired[ports]:
            plan.delete.extend(slices)
    for ports, wanted in desired.items():
        if not wanted:
            continue
        remaining = dict(wanted)
        rewritten: list[tuple[Obj, list[dict[str, Any]]]] = []
        unchanged: list[Obj] = []
        for slice_ in by_ports.get(ports, []):
            kept: list[dict[str, Any]] = []
            changed = labels_of(slice_) != labels
            for endpoint in slice_.get("endpoints") or ():
                fresh = remaining.pop(endpoint_key(endpoint), None)
                if fresh is None:
                    changed = True  # gone, or a duplicate of one kept in an earlier slice
                    continue
                kept.append(fresh)
                changed = changed or fresh != endpoint
            if changed:
                rewritten.append((slice_, kept))
            else:
                unchanged.append(slice_)
        leftovers = list(remaining.values())
        for _, kept in rewritten:
            room = max_per_slice - len(kept)
            if room > 0 and leftovers:
                kept.extend(leftovers[:room])
                del leftovers[:room]
        chunks = [leftovers[i : i + max_per_slice] for i in range(0, len(leftovers), max_per_slice)]
        if chunks and len(chunks[-1]) < max_per_slice:
            # Rather than a new small slice, top up an unchanged slice that has room for the last chunk.
            last = chunks[-1]
            host = next((s for s in unchanged if len(s.get("endpoints") or ()) + len(last) <= max_per_slice), None)
            if host is not None:
                chunks.pop()
                unchanged.remove(host)
                rewritten.append((host, [*host.get("endpoints", []), *last]))
        for slice_, kept in rewritten:
            if kept:
                plan.update.append((slice_, kept))
            else:
                plan.delete.append(slice_)
        plan.create.extend((chunk, ports) for chunk in chunks)
    return plan


class EndpointSliceController(ServiceEndpointsController):
    """Keeps the EndpointSlices of every selecting Service (see the module docstring)."""

    name = "endpointslice"

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        workers: int = 5,
        max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(client, informers, workers=workers, metrics=metrics, clock=clock)
        self.max_endpoints_per_slice = max_endpoints_per_slice
        self.slices = self.use(*_SLICES)
        self.slices_by_service = informers.index(*_SLICES, "managed-service", managed_service_key)
        # Creates/deletes not yet seen by the informer, per service: a sync from a stale cache would duplicate.
        self.creates = Expectations()
        self.deletes = Expectations()
        self.slices.add_handler(self._slice_added, self._slice_updated, self._slice_deleted)

    def _slice_added(self, slice_: Obj) -> None:
        key = managed_service_key(slice_)
        if key is not None:
            self.creates.creation_observed(key)
            self.queue.add(key)

    def _slice_updated(self, old: Obj, new: Obj) -> None:
        for key in {managed_service_key(old), managed_service_key(new)}:
            if key is not None:
                self.queue.add(key)

    def _slice_deleted(self, slice_: Obj) -> None:
        key = managed_service_key(slice_)
        if key is not None:
            self.deletes.deletion_observed(key, uid_of(slice_))
            self.queue.add(key)

    async def sync(self, key: str) -> None:
        namespace = key.split("/", 1)[0]
        svc = self.services.get(key)
        selector = service_selector(svc) if svc is not None else None
        existing = [s for s in self.slices_by_service.get(key) if not is_deleting(s)]
        if svc is None or selector is None:
            if svc is None:
                self.triggers.forget(key)
            # The garbage collector would remove them too (ownerReferences); deleting here is immediate.
            await self._apply(namespace, key, svc, _plan_delete_all(existing), None)
            return
        if not (self.creates.satisfied(key) and self.deletes.satisfied(key)):
            return  # the informer events for our last writes re-queue this service
        pods = self.selected_pods(namespace, selector)
        trigger = self.triggers.compute(key, svc, pods)
        labels = slice_labels(svc)
        plan = plan_slices(existing, desired_endpoints(svc, pods), labels, self.max_endpoints_per_slice)
        await self._apply(namespace, key, svc, plan, trigger, labels)
        log.debug(
            "endpointslice %s: %d created, %d updated, %d deleted",
            key,
            len(plan.create),
            len(plan.update),
            len(plan.delete),
        )

    async def _apply(
        self,
        namespace: str,
        key: str,
        svc: Obj | None,
        plan: _Plan,
        trigger: float | None,
        labels: dict[str, str] | None = None,
    ) -> None:
        """Creates first, then updates, then deletes (so a service never transiently loses all endpoints)."""
        path = resource_path(*_SLICES, namespace)
        if plan.create and svc is not None and labels is not None:
            self.creates.expect_creations(key, len(plan.create))
            bodies = [self._new_slice(svc, labels, eps, ports, trigger) for eps, ports in plan.create]
            results = await asyncio.gather(*(self.client.create(path, b) for b in bodies), return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                self.creates.creation_observed(key, len(failures))
                raise failures[0]
        for slice_, endpoints in plan.update:
            body = dict(slice_)
            md = dict(meta(slice_))
            md["labels"] = labels if labels is not None else labels_of(slice_)
            annotations = dict(md.get("annotations") or {})
            set_trigger_annotation(annotations, trigger)
            md["annotations"] = annotations
            body["metadata"] = md
            body["endpoints"] = endpoints
            await self.client.replace(resource_path(*_SLICES, namespace, md.get("name")), body)
        if plan.delete:
            self.deletes.expect_deletions(key, [uid_of(s) for s in plan.delete])
            for slice_ in plan.delete:
                try:
                    await self.client.delete(resource_path(*_SLICES, namespace, meta(slice_).get("name")))
                except APIError as exc:
                    self.deletes.deletion_observed(key, uid_of(slice_))
                    if not is_not_found(exc):
                        raise

    def _new_slice(
        self,
        svc: Obj,
        labels: dict[str, str],
        endpoints: list[dict[str, Any]],
        ports: tuple[PortKey, ...],
        trigger: float | None,
    ) -> Obj:
        md: dict[str, Any] = {
            "generateName": f"{meta(svc).get('name')}-",
            "namespace": meta(svc).get("namespace"),
            "labels": dict(labels),
            "ownerReferences": [owner_reference(svc, "v1", "Service")],
        }
        annotations: dict[str, str] = {}
        set_trigger_annotation(annotations, trigger)
        if annotations:
            md["annotations"] = annotations
        return {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": md,
            "addressType": ADDRESS_TYPE,
            "endpoints": endpoints,
            "ports": [slice_port(p) for p in ports],
        }


def _plan_delete_all(slices: list[Obj]) -> _Plan:
    plan = _Plan()
    plan.delete.extend(slices)
    return plan

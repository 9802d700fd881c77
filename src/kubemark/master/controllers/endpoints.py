"""Endpoints controller (pkg/controller/endpoint) and the Service/Pod plumbing it shares with EndpointSlices.

For each Service with a selector, the pods of its namespace that the selector matches become addresses of
the core/v1 Endpoints named like the Service: Ready pods under `addresses`, the others under
`notReadyAddresses`; each service port's `targetPort` is resolved per pod (a number, or a named container
port), and addresses with the same resolved ports share a subset (upstream's RepackSubsets). The object is
written only when subsets, labels or the over-capacity annotation change; it is deleted when the Service goes
away or loses its selector.

`ServiceEndpointsController` is the common base: it maps pod events to the Services selecting the pod and
tracks `endpoints.kubernetes.io/last-change-trigger-time` (upstream's TriggerTimeTracker).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubemark.client import APIError, RestClient, is_not_found, namespaced_key, resource_path
from kubemark.kube.meta import parse_time
from kubemark.master.controllers.base import Controller, Obj, SharedInformers
from kubemark.master.controllers.ownership import (
    TERMINAL_PHASES,
    is_deleting,
    is_pod_ready,
    labels_of,
    meta,
    pod_condition,
    pod_phase,
    uid_of,
)
from kubemark.master.controllers.workqueue import QueueMetrics

log = logging.getLogger(__name__)

TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
ENDPOINTS_MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
ENDPOINTS_CONTROLLER_NAME = "endpoint-controller"
HEADLESS_LABEL = "service.kubernetes.io/headless"
MAX_ENDPOINTS_CAPACITY = 1000

PortKey = tuple[str, int, str, str]  # (name, port, protocol, appProtocol)


# -- Services and pods ------------------------------------------------------------------------------------------


def service_selector(svc: Obj) -> dict[str, str] | None:
    """The selector this controller acts on; None for ExternalName services and services without one."""
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return None
    selector = spec.get("selector")
    return dict(selector) if selector else None


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def is_headless(svc: Obj) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def pod_ip(pod: Obj) -> str:
    status = pod.get("status") or {}
    ip = status.get("podIP")
    if ip:
        return str(ip)
    for entry in status.get("podIPs") or ():
        if entry.get("ip"):
            return str(entry["ip"])
    return ""


def should_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """endpointsliceutil.ShouldPodBeInEndpoints."""
    if pod_phase(pod) in TERMINAL_PHASES or not pod_ip(pod):
        return False
    return include_terminating or not is_deleting(pod)


def find_port(pod: Obj, service_port: dict[str, Any]) -> int | None:
    """podutil.FindPort: a numeric targetPort as is, a named one looked up among the pod's container ports."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target if target > 0 else None
    if not isinstance(target, str) or not target:
        return None
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or ():
        for port in container.get("ports") or ():
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                number = port.get("containerPort")
                return number if isinstance(number, int) else None
    return None


def port_key(service_port: dict[str, Any], number: int) -> PortKey:
    return (
        str(service_port.get("name") or ""),
        number,
        str(service_port.get("protocol") or "TCP"),
        str(service_port.get("appProtocol") or ""),
    )


def resolved_ports(svc: Obj, pod: Obj) -> tuple[PortKey, ...]:
    """The service's ports as this pod serves them (ports whose targetPort the pod lacks are left out)."""
    keys: list[PortKey] = []
    for sp in (svc.get("spec") or {}).get("ports") or ():
        number = find_port(pod, sp)
        if number is not None:
            keys.append(port_key(sp, number))
    return tuple(sorted(keys))


def target_ref(pod: Obj) -> dict[str, str]:
    md = meta(pod)
    return {"kind": "Pod", "namespace": md.get("namespace") or "", "name": md.get("name") or "", "uid": uid_of(pod)}


def pod_hostname(svc: Obj, pod: Obj) -> str | None:
    """A pod's hostname is published when its subdomain is the service name (in the same namespace)."""
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == meta(svc).get("name"):
        return str(spec["hostname"])
    return None


def pod_endpoint_view(pod: Obj) -> tuple[Any, ...]:
    """What about a pod matters to its endpoints (besides labels): pod updates changing none of it are skipped."""
    spec = pod.get("spec") or {}
    return (
        pod_ip(pod),
        is_pod_ready(pod),
        is_deleting(pod),
        pod_phase(pod) in TERMINAL_PHASES,
        spec.get("nodeName"),
        spec.get("hostname"),
        spec.get("subdomain"),
    )


def format_rfc3339_nano(epoch: float) -> str:
    """Go's time.RFC3339Nano in UTC: fractional seconds with trailing zeros trimmed (none when whole)."""
    micros = round(epoch * 1_000_000)
    seconds, frac = divmod(micros, 1_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if frac:
        base += "." + f"{frac:06d}".rstrip("0")
    return base + "Z"


def _stamp(text: Any) -> float | None:
    if not text:
        return None
    try:
        return parse_time(str(text))
    except ValueError:
        return None


# -- trigger times ----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _TriggerState:
    service: float | None = None
    pods: dict[str, float] = field(default_factory=dict)


class TriggerTimeTracker:
    """pkg/controller/util/endpoint TriggerTimeTracker.

    The trigger time of a sync is the earliest of the trigger times that changed since the previous sync of
    the same service: a pod's is its Ready condition's lastTransitionTime, the service's its creation time.
    None when nothing changed (the annotation is then dropped).
    """

    def __init__(self) -> None:
        self._state: dict[str, _TriggerState] = {}

    def compute(self, key: str, service: Obj, pods: Iterable[Obj]) -> float | None:
        state = self._state.setdefault(key, _TriggerState())
        earliest: float | None = None
        pod_times: dict[str, float] = {}
        for pod in pods:
            cond = pod_condition(pod, "Ready")
            stamp = _stamp((cond or {}).get("lastTransitionTime"))
            if stamp is None:
                continue
            name = str(meta(pod).get("name") or "")
            pod_times[name] = stamp
            previous = state.pods.get(name)
            if previous is None or stamp > previous:
                earliest = stamp if earliest is None else min(earliest, stamp)
        svc_time = _stamp(meta(service).get("creationTimestamp"))
        if svc_time is not None and (state.service is None or svc_time > state.service):
            earliest = svc_time if earliest is None else min(earliest, svc_time)
        state.pods = pod_times
        state.service = svc_time
        return earliest

    def forget(self, key: str) -> None:
        self._state.pop(key, None)


def set_trigger_annotation(annotations: dict[str, str], trigger: float | None) -> None:
    if trigger is None:
        annotations.pop(TRIGGER_TIME_ANNOTATION, None)
    else:
        annotations[TRIGGER_TIME_ANNOTATION] = format_rfc3339_nano(trigger)


# -- the shared controller base ---------------------------------------------------------------------------------


class ServiceEndpointsController(Controller):
    """Queues Service keys: on Service events, and for every Service selecting a pod that changed."""

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        workers: int = 5,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(client, informers, workers=workers, metrics=metrics, clock=clock)
        self.triggers = TriggerTimeTracker()
        self.services = self.use("", "v1", "services")
        self.services_by_ns = informers.by_namespace("", "v1", "services")
        self.pods = self.use("", "v1", "pods")
        self.pods_by_ns = informers.by_namespace("", "v1", "pods")
        self.services.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.pods.add_handler(self._pod_changed, self._pod_updated, self._pod_changed)

    def services_for(self, pod: Obj) -> list[str]:
        namespace = meta(pod).get("namespace") or ""
        labels = labels_of(pod)
        keys: list[str] = []
        for svc in self.services_by_ns.get(namespace):
            selector = service_selector(svc)
            if selector is not None and selects(selector, labels):
                keys.append(namespaced_key(svc))
        return keys

    def _pod_changed(self, pod: Obj) -> None:
        for key in self.services_for(pod):
            self.queue.add(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if labels_of(old) != labels_of(new):
            for key in {*self.services_for(old), *self.services_for(new)}:
                self.queue.add(key)
        elif pod_endpoint_view(old) != pod_endpoint_view(new):
            self._pod_changed(new)

    def selected_pods(self, namespace: str, selector: dict[str, str]) -> list[Obj]:
        return [p for p in self.pods_by_ns.get(namespace) if selects(selector, labels_of(p))]


# -- Endpoints --------------------------------------------------------------------------------------------------


def _address_sort_key(address: dict[str, Any]) -> tuple[str, str]:
    return (str(address.get("ip") or ""), str((address.get("targetRef") or {}).get("uid") or ""))


def endpoint_port(key: PortKey) -> dict[str, Any]:
    name, number, protocol, app_protocol = key
    port: dict[str, Any] = {"port": number, "protocol": protocol}
    if name:
        port["name"] = name
    if app_protocol:
        port["appProtocol"] = app_protocol
    return port


def compute_subsets(svc: Obj, pods: Iterable[Obj]) -> tuple[list[dict[str, Any]], bool]:
    """The Endpoints subsets for a service's selected pods, and whether they were truncated to capacity."""
    spec = svc.get("spec") or {}
    tolerate = bool(spec.get("publishNotReadyAddresses"))
    has_ports = bool(spec.get("ports"))
    headless = is_headless(svc)
    # ports -> (ready addresses, not-ready addresses): RepackSubsets groups addresses sharing a port set.
    groups: dict[tuple[PortKey, ...], tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for pod in pods:
        if not should_be_in_endpoints(pod, include_terminating=tolerate):
            continue
        if has_ports:
            ports = resolved_ports(svc, pod)
            if not ports:
                continue
        elif headless:
            ports = ()
        else:
            continue
        address: dict[str, Any] = {"ip": pod_ip(pod)}
        hostname = pod_hostname(svc, pod)
        if hostname:
            address["hostname"] = hostname
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            address["nodeName"] = node
        address["targetRef"] = target_ref(pod)
        ready, not_ready = groups.setdefault(ports, ([], []))
        (ready if tolerate or is_pod_ready(pod) else not_ready).append(address)
    truncated = sum(len(r) + len(n) for r, n in groups.values()) > MAX_ENDPOINTS_CAPACITY
    budget = MAX_ENDPOINTS_CAPACITY
    subsets: list[dict[str, Any]] = []
    ordered = sorted(groups.items())
    if truncated:
        # Ready addresses are kept first, as upstream's capacity truncation prefers them.
        for _, (ready, _) in ordered:
            ready.sort(key=_address_sort_key)
            del ready[budget:]
            budget -= len(ready)
        for _, (_, not_ready) in ordered:
            not_ready.sort(key=_address_sort_key)
            del not_ready[budget:]
            budget -= len(not_ready)
    for ports, (ready, not_ready) in ordered:
        if not ready and not not_ready:
            continue
        subset: dict[str, Any] = {}
        if ready:
            subset["addresses"] = sorted(ready, key=_address_sort_key)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_address_sort_key)
        if ports:
            subset["ports"] = [endpoint_port(k) for k in ports]
        subsets.append(subset)
    return subsets, truncated


def endpoints_labels(svc: Obj) -> dict[str, str]:
    labels = dict(labels_of(svc))
    labels.pop(HEADLESS_LABEL, None)
    if is_headless(svc):
        labels[HEADLESS_LABEL] = ""
    labels[ENDPOINTS_MANAGED_BY_LABEL] = ENDPOINTS_CONTROLLER_NAME
    return labels


def _is_managed(endpoints: Obj) -> bool:
    return labels_of(endpoints).get(ENDPOINTS_MANAGED_BY_LABEL) == ENDPOINTS_CONTROLLER_NAME


class EndpointsController(ServiceEndpointsController):
    """Keeps one core/v1 Endpoints per selecting Service (see the module docstring)."""

    name = "endpoint"

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        workers: int = 5,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(client, informers, workers=workers, metrics=metrics, clock=clock)
        self.endpoints = self.use("", "v1", "endpoints")
        self.endpoints.add_handler(on_delete=self._endpoints_deleted)

    def _endpoints_deleted(self, endpoints: Obj) -> None:
        key = namespaced_key(endpoints)  # the Service's key too: same namespace and name
        if self.services.get(key) is not None:
            self.queue.add(key)  # recreate what someone deleted

    async def on_synced(self) -> None:
        # checkLeftoverEndpoints: our Endpoints whose Service vanished while we were not watching.
        for endpoints in self.endpoints.list():
            key = namespaced_key(endpoints)
            if _is_managed(endpoints) and self.services.get(key) is None:
                self.queue.add(key)

    async def sync(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        svc = self.services.get(key)
        selector = service_selector(svc) if svc is not None else None
        current = self.endpoints.get(key)
        if svc is None or selector is None:
            if svc is None:
                self.triggers.forget(key)
            if current is not None and (svc is None or _is_managed(current)):
                await self._delete(namespace, name)
            return
        pods = self.selected_pods(namespace, selector)
        trigger = self.triggers.compute(key, svc, pods)
        subsets, truncated = compute_subsets(svc, pods)
        labels = endpoints_labels(svc)
        if current is not None and not is_deleting(current):
            annotations = meta(current).get("annotations") or {}
            if (
                (current.get("subsets") or []) == subsets
                and labels_of(current) == labels
                and (annotations.get(OVER_CAPACITY_ANNOTATION) == "truncated") == truncated
            ):
                return
        annotations = dict((meta(current).get("annotations") or {}) if current is not None else {})
        set_trigger_annotation(annotations, trigger)
        if truncated:
            annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY_ANNOTATION, None)
        md: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
        if annotations:
            md["annotations"] = annotations
        body: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": md, "subsets": subsets}
        if current is None:
            await self.client.create(resource_path("", "v1", "endpoints", namespace), body)
        else:
            md["resourceVersion"] = meta(current).get("resourceVersion")
            await self.client.replace(resource_path("", "v1", "endpoints", namespace, name), body)

    async def _delete(self, namespace: str, name: str) -> None:
        try:
            await self.client.delete(resource_path("", "v1", "endpoints", namespace, name))
        except APIError as exc:
            if not is_not_found(exc):
                raise

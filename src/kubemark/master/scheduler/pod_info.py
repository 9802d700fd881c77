"""PodInfo: a pod's scheduling constraints, parsed once when the pod enters the scheduler.

Everything the filters and scores read per node (requests, tolerations, selectors, affinity terms, host ports)
is extracted here so that checking one node costs a few comparisons instead of dict walks and quantity parsing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubemark.client.informer import namespaced_key_from
from kubemark.kube.labels import LabelSelectorError, Selector, selector_from_label_selector
from kubemark.master.scheduler.resources import Resources, pod_requests

Obj = dict[str, Any]

# (protocol, hostIP, hostPort)
HostPort = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str  # "Equal" | "Exists"
    value: str
    effect: str  # "" matches every effect

    def tolerates(self, key: str, value: str, effect: str) -> bool:
        """v1.Toleration.ToleratesTaint."""
        if self.effect and self.effect != effect:
            return False
        if self.key and self.key != key:
            return False
        if self.operator == "Exists":
            return True
        if self.operator in ("", "Equal"):
            return self.value == value
        return False


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """A required/preferred pod (anti-)affinity term, resolved to a selector and a namespace set."""

    selector: Selector
    namespaces: frozenset[str] | None  # None: every namespace (an empty namespaceSelector)
    topology_key: str
    weight: int = 0

    def matches(self, namespace: str, labels: dict[str, str]) -> bool:
        if self.namespaces is not None and namespace not in self.namespaces:
            return False
        return self.selector.matches(labels)


@dataclass(slots=True)
class PodInfo:
    pod: Obj
    key: str  # "namespace/name"
    namespace: str
    name: str
    uid: str
    labels: dict[str, str]
    priority: int
    requests: Resources
    non_zero_cpu: int
    non_zero_mem: int
    tolerations: tuple[Toleration, ...]
    node_selector: dict[str, str]
    required_node_terms: list[Obj] | None  # None: no required node affinity
    preferred_node_terms: list[tuple[int, Obj]]
    host_ports: tuple[HostPort, ...]
    owner_uid: str  # the controller's uid, for spreading replicas
    affinity_terms: tuple[AffinityTerm, ...] = ()
    anti_affinity_terms: tuple[AffinityTerm, ...] = ()
    scheduling_gates: tuple[str, ...] = ()
    node_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def plain(self) -> bool:
        """Only node readiness, taints and resources can reject it (no selectors, affinity, ports, extras)."""
        return not (
            self.node_selector
            or self.required_node_terms is not None
            or self.host_ports
            or self.affinity_terms
            or self.anti_affinity_terms
            or self.requests.scalar
        )

    @property
    def has_affinity_constraints(self) -> bool:
        return bool(self.affinity_terms or self.anti_affinity_terms)


def _tolerations(spec: Obj) -> tuple[Toleration, ...]:
    out = []
    for t in spec.get("tolerations") or ():
        if isinstance(t, dict):
            out.append(
                Toleration(
                    str(t.get("key") or ""),
                    str(t.get("operator") or ""),
                    str(t.get("value") or ""),
                    str(t.get("effect") or ""),
                )
            )
    return tuple(out)


def _host_ports(spec: Obj) -> tuple[HostPort, ...]:
    ports: list[HostPort] = []
    for container in list(spec.get("initContainers") or ()) + list(spec.get("containers") or ()):
        for port in container.get("ports") or ():
            host_port = int(port.get("hostPort") or 0)
            if host_port > 0:
                ports.append((str(port.get("protocol") or "TCP"), str(port.get("hostIP") or "0.0.0.0"), host_port))
    return tuple(ports)


def _affinity_terms(namespace: str, terms: list[Obj] | None, weighted: bool) -> tuple[AffinityTerm, ...]:
    out: list[AffinityTerm] = []
    for item in terms or ():
        term = (item.get("podAffinityTerm") or {}) if weighted else item
        try:
            selector = selector_from_label_selector(term.get("labelSelector"))
        except LabelSelectorError:
            selector = Selector.nothing()
        names = term.get("namespaces") or []
        ns_selector = term.get("namespaceSelector")
        namespaces: frozenset[str] | None
        if ns_selector is not None and not ns_selector.get("matchLabels") and not ns_selector.get("matchExpressions"):
            namespaces = None  # {} selects every namespace
        else:
            # A non-empty namespaceSelector would need namespace labels; only explicit names are honoured.
            namespaces = frozenset(names) if names else frozenset((namespace,))
        out.append(AffinityTerm(selector, namespaces, str(term.get("topologyKey") or ""), int(item.get("weight") or 0)))
    return tuple(out)


def _owner_uid(meta: Obj) -> str:
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("uid") or "")
    return ""


def pod_info_from(pod: Obj) -> PodInfo:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    namespace = str(meta.get("namespace") or "")
    name = str(meta.get("name") or "")
    requests, nz_cpu, nz_mem = pod_requests(spec)
    affinity = spec.get("affinity") or {}
    node_affinity = affinity.get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    preferred = [
        (int(p.get("weight") or 0), p.get("preference") or {})
        for p in node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
    ]
    pod_affinity = affinity.get("podAffinity") or {}
    pod_anti = affinity.get("podAntiAffinity") or {}
    return PodInfo(
        pod=pod,
        key=namespaced_key_from(namespace, name),
        namespace=namespace,
        name=name,
        uid=str(meta.get("uid") or ""),
        labels=dict(meta.get("labels") or {}),
        priority=int(spec.get("priority") or 0),
        requests=requests,
        non_zero_cpu=nz_cpu,
        non_zero_mem=nz_mem,
        tolerations=_tolerations(spec),
        node_selector=dict(spec.get("nodeSelector") or {}),
        required_node_terms=None if required is None else list(required.get("nodeSelectorTerms") or []),
        preferred_node_terms=preferred,
        host_ports=_host_ports(spec),
        owner_uid=_owner_uid(meta),
        affinity_terms=_affinity_terms(
            namespace, pod_affinity.get("requiredDuringSchedulingIgnoredDuringExecution"), False
        ),
        anti_affinity_terms=_affinity_terms(
            namespace, pod_anti.get("requiredDuringSchedulingIgnoredDuringExecution"), False
        ),
        scheduling_gates=tuple(str(g.get("name") or "") for g in spec.get("schedulingGates") or ()),
        node_name=str(spec.get("nodeName") or ""),
    )

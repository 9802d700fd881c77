"""Filter plugins: can this pod run on this node? Each failure is a kube-scheduler reason string.

Order and wording follow kube-scheduler's default profile (NodeUnschedulable, TaintToleration, NodeAffinity,
NodePorts, NodeResourcesFit, InterPodAffinity), preceded by the node Ready check of older releases; a node
reports the reasons of the first filter that rejects it (NodeResourcesFit can give several).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubemark.master.scheduler.cache import NodeInfo, SchedulerCache
from kubemark.master.scheduler.pod_info import HostPort, PodInfo, Toleration

Obj = dict[str, Any]

REASON_NOT_READY = "node(s) were not ready"
REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_PORTS = "node(s) didn't have free ports for the requested pod ports"
REASON_TOO_MANY_PODS = "Too many pods"
REASON_AFFINITY = "node(s) didn't match pod affinity rules"
REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"

UNSCHEDULABLE_TAINT_KEY = "node.kubernetes.io/unschedulable"
_FILTERED_EFFECTS = ("NoSchedule", "NoExecute")


def untolerated_taint_reason(key: str, value: str) -> str:
    return f"node(s) had untolerated taint {{{key}: {value}}}"


def tolerated(tolerations: tuple[Toleration, ...], key: str, value: str, effect: str) -> bool:
    for t in tolerations:  # noqa: SIM110 - a plain loop is cheaper than any() on the per-node hot path
        if t.tolerates(key, value, effect):
            return True
    return False


def _match_expression(expr: Obj, labels: dict[str, str]) -> bool:
    key = expr.get("key") or ""
    op = expr.get("operator")
    values: list[str] = expr.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt"):
        if key not in labels or len(values) != 1:
            return False
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def _match_field(expr: Obj, node_name: str) -> bool:
    if expr.get("key") != "metadata.name":
        return False
    values = expr.get("values") or ()
    op = expr.get("operator")
    if op == "In":
        return node_name in values
    if op == "NotIn":
        return node_name not in values
    return False


def node_matches_term(term: Obj, labels: dict[str, str], node_name: str) -> bool:
    """One NodeSelectorTerm: all its expressions and fields hold; an empty term matches nothing."""
    exprs = term.get("matchExpressions") or ()
    fields = term.get("matchFields") or ()
    if not exprs and not fields:
        return False
    return all(_match_expression(e, labels) for e in exprs) and all(_match_field(f, node_name) for f in fields)


def node_affinity_matches(pod: PodInfo, node: NodeInfo) -> bool:
    """nodeSelector and required node affinity (terms are ORed)."""
    labels = node.labels
    for key, value in pod.node_selector.items():
        if labels.get(key) != value:
            return False
    terms = pod.required_node_terms
    if terms is None:
        return True
    return any(node_matches_term(t, labels, node.name) for t in terms)


def _ports_conflict(wanted: tuple[HostPort, ...], used: dict[HostPort, int]) -> bool:
    for protocol, ip, port in wanted:
        for used_protocol, used_ip, used_port in used:
            if (
                used_port == port
                and used_protocol == protocol
                and (ip == used_ip or ip == "0.0.0.0" or used_ip == "0.0.0.0")
            ):
                return True
    return False


def insufficient_resources(pod: PodInfo, node: NodeInfo) -> list[str]:
    """NodeResourcesFit reasons, in upstream order (pods, cpu, memory, ephemeral-storage, extended)."""
    reasons: list[str] = []
    alloc = node.allocatable
    used = node.requested
    req = pod.requests
    if len(node.pods) + 1 > alloc.pods:
        reasons.append(REASON_TOO_MANY_PODS)
    if req.milli_cpu > 0 and req.milli_cpu > alloc.milli_cpu - used.milli_cpu:
        reasons.append("Insufficient cpu")
    if req.memory > 0 and req.memory > alloc.memory - used.memory:
        reasons.append("Insufficient memory")
    if req.ephemeral_storage > 0 and req.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage:
        reasons.append("Insufficient ephemeral-storage")
    for name, amount in req.scalar.items():
        if amount > alloc.scalar.get(name, 0) - used.scalar.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


@dataclass(slots=True)
class AffinityState:
    """InterPodAffinity's PreFilter result for one pod: topology pairs that attract or repel it."""

    existing_anti: set[tuple[str, str]] = field(default_factory=set)
    affinity_values: list[set[str]] = field(default_factory=list)  # per affinity term
    anti_values: list[set[str]] = field(default_factory=list)  # per anti-affinity term
    any_affinity_match: bool = False
    self_match: bool = False

    @property
    def empty(self) -> bool:
        return not self.existing_anti and not self.affinity_values and not self.anti_values


def affinity_state(pod: PodInfo, cache: SchedulerCache) -> AffinityState:
    """Scan the cluster once per scheduling attempt (only pods with, or near pods with, affinity pay this)."""
    state = AffinityState()
    for other in cache.anti_affinity_pods.values():
        node = cache.nodes.get(other.node_name)
        if node is None:
            continue
        for term in other.anti_affinity_terms:
            value = node.labels.get(term.topology_key)
            if value is not None and term.matches(pod.namespace, pod.labels):
                state.existing_anti.add((term.topology_key, value))
    if not pod.has_affinity_constraints:
        return state
    state.affinity_values = [set() for _ in pod.affinity_terms]
    state.anti_values = [set() for _ in pod.anti_affinity_terms]
    for node in cache.nodes.values():
        for other in node.pods.values():
            for i, term in enumerate(pod.affinity_terms):
                if term.matches(other.namespace, other.labels):
                    state.any_affinity_match = True
                    value = node.labels.get(term.topology_key)
                    if value is not None:
                        state.affinity_values[i].add(value)
            for i, term in enumerate(pod.anti_affinity_terms):
                if term.matches(other.namespace, other.labels):
                    value = node.labels.get(term.topology_key)
                    if value is not None:
                        state.anti_values[i].add(value)
    state.self_match = all(t.matches(pod.namespace, pod.labels) for t in pod.affinity_terms)
    return state


def _affinity_reason(pod: PodInfo, node: NodeInfo, state: AffinityState) -> str | None:
    labels = node.labels
    if pod.affinity_terms:
        ok = True
        for i, term in enumerate(pod.affinity_terms):
            value = labels.get(term.topology_key)
            if value is None or value not in state.affinity_values[i]:
                ok = False
                break
        # The first pod of a group that selects itself may go anywhere the topology key exists.
        if not ok and not (
            not state.any_affinity_match
            and state.self_match
            and all(term.topology_key in labels for term in pod.affinity_terms)
        ):
            return REASON_AFFINITY
    for i, term in enumerate(pod.anti_affinity_terms):
        value = labels.get(term.topology_key)
        if value is not None and value in state.anti_values[i]:
            return REASON_ANTI_AFFINITY
    for key, value in state.existing_anti:
        if labels.get(key) == value:
            return REASON_EXISTING_ANTI_AFFINITY
    return None


def filter_node(pod: PodInfo, node: NodeInfo, state: AffinityState | None) -> list[str] | None:
    """None if `pod` fits `node`, else the reasons of the first rejecting filter."""
    if not node.ready:
        return [REASON_NOT_READY]
    tolerations = pod.tolerations
    if node.unschedulable and not tolerated(tolerations, UNSCHEDULABLE_TAINT_KEY, "", "NoSchedule"):
        return [REASON_UNSCHEDULABLE]
    for key, value, effect in node.taints:
        if effect in _FILTERED_EFFECTS and not tolerated(tolerations, key, value, effect):
            return [untolerated_taint_reason(key, value)]
    if (pod.node_selector or pod.required_node_terms is not None) and not node_affinity_matches(pod, node):
        return [REASON_NODE_AFFINITY]
    if pod.host_ports and node.used_ports and _ports_conflict(pod.host_ports, node.used_ports):
        return [REASON_PORTS]
    # Inline fast path of NodeResourcesFit for the common case; the slow path names every shortage.
    alloc = node.allocatable
    used = node.requested
    req = pod.requests
    if (
        len(node.pods) >= alloc.pods
        or req.milli_cpu > alloc.milli_cpu - used.milli_cpu
        or req.memory > alloc.memory - used.memory
        or req.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage
        or req.scalar
    ):
        reasons = insufficient_resources(pod, node)
        if reasons:
            return reasons
    if state is not None and not state.empty:
        reason = _affinity_reason(pod, node, state)
        if reason is not None:
            return [reason]
    return None

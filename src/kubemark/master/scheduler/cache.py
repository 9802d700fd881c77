"""The scheduler cache: every node with the pods assigned to it and their summed requests.

Fed by the node informer and the assigned-pod informer, and by `assume` when the scheduler decides, so the
next decision already sees the capacity taken before the API server confirms the binding. An assumed pod is
confirmed when the informer reports it on its node, and forgotten if the binding fails.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kubemark.master.scheduler.pod_info import HostPort, PodInfo
from kubemark.master.scheduler.resources import Resources, resources_from_list

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# (key, value, effect)
Taint = tuple[str, str, str]


def _taints(spec: Obj) -> tuple[Taint, ...]:
    return tuple(
        (str(t.get("key") or ""), str(t.get("value") or ""), str(t.get("effect") or ""))
        for t in spec.get("taints") or ()
        if isinstance(t, dict)
    )


def _ready(status: Obj) -> bool:
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def scheduling_view(node: Obj) -> tuple[Any, ...]:
    """The parts of a Node the scheduler decides on; heartbeats that change nothing else compare equal."""
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    meta = node.get("metadata") or {}
    return (
        meta.get("labels"),
        spec.get("taints"),
        bool(spec.get("unschedulable")),
        status.get("allocatable"),
        _ready(status),
    )


@dataclass(slots=True)
class NodeInfo:
    name: str
    node: Obj | None = None  # None while only pods name this node (node informer behind the pod one)
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False
    ready: bool = False
    allocatable: Resources = field(default_factory=Resources)
    requested: Resources = field(default_factory=Resources)
    non_zero_cpu: int = 0
    non_zero_mem: int = 0
    pods: dict[str, PodInfo] = field(default_factory=dict)
    used_ports: dict[HostPort, int] = field(default_factory=dict)
    owner_counts: dict[str, int] = field(default_factory=dict)
    # Ready, schedulable and without NoSchedule/NoExecute taints: only resources can reject a plain pod here.
    plain: bool = False

    def set_node(self, node: Obj) -> None:
        self.node = node
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        self.labels = dict(meta.get("labels") or {})
        self.taints = _taints(spec)
        self.unschedulable = bool(spec.get("unschedulable"))
        self.ready = _ready(status)
        self.allocatable = resources_from_list(status.get("allocatable"))
        self.plain = (
            self.ready
            and not self.unschedulable
            and not any(effect in ("NoSchedule", "NoExecute") for _, _, effect in self.taints)
        )

    def add_pod(self, info: PodInfo) -> None:
        self.pods[info.key] = info
        self.requested.add(info.requests)
        self.non_zero_cpu += info.non_zero_cpu
        self.non_zero_mem += info.non_zero_mem
        for port in info.host_ports:
            self.used_ports[port] = self.used_ports.get(port, 0) + 1
        if info.owner_uid:
            self.owner_counts[info.owner_uid] = self.owner_counts.get(info.owner_uid, 0) + 1

    def remove_pod(self, key: str) -> PodInfo | None:
        info = self.pods.pop(key, None)
        if info is None:
            return None
        self.requested.subtract(info.requests)
        self.non_zero_cpu -= info.non_zero_cpu
        self.non_zero_mem -= info.non_zero_mem
        for port in info.host_ports:
            left = self.used_ports.get(port, 0) - 1
            if left > 0:
                self.used_ports[port] = left
            else:
                self.used_ports.pop(port, None)
        if info.owner_uid:
            left = self.owner_counts.get(info.owner_uid, 0) - 1
            if left > 0:
                self.owner_counts[info.owner_uid] = left
            else:
                self.owner_counts.pop(info.owner_uid, None)
        return info


class SchedulerCache:
    """Nodes by name (in a stable order for sampling) plus where each assigned or assumed pod sits."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._order: list[str] = []  # names of nodes with a Node object, in insertion order
        self._order_dirty = False
        self._pod_node: dict[str, str] = {}  # pod key -> node name
        self.assumed: set[str] = set()
        # Pods whose required anti-affinity constrains newcomers, wherever they run.
        self.anti_affinity_pods: dict[str, PodInfo] = {}
        self.affinity_pods: dict[str, PodInfo] = {}

    # -- nodes ----------------------------------------------------------------------------------------------

    def node_names(self) -> list[str]:
        """Schedulable candidates (nodes the informer has reported), in a stable order."""
        if self._order_dirty:
            self._order = [name for name, info in self.nodes.items() if info.node is not None]
            self._order_dirty = False
        return self._order

    def node_count(self) -> int:
        return len(self.node_names())

    def add_node(self, node: Obj) -> NodeInfo:
        name = str((node.get("metadata") or {}).get("name") or "")
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(name)
        if info.node is None:
            self._order_dirty = True
        info.set_node(node)
        return info

    def update_node(self, old: Obj | None, new: Obj) -> bool:
        """Store the new Node; True if anything the scheduler decides on changed."""
        name = str((new.get("metadata") or {}).get("name") or "")
        info = self.nodes.get(name)
        if info is None or info.node is None or old is None or scheduling_view(old) != scheduling_view(new):
            self.add_node(new)
            return True
        info.node = new
        return False

    def remove_node(self, node: Obj) -> None:
        name = str((node.get("metadata") or {}).get("name") or "")
        info = self.nodes.get(name)
        if info is None:
            return
        if info.pods:
            info.node = None  # keep the pods' accounting until their own deletes arrive
        else:
            del self.nodes[name]
        self._order_dirty = True

    # -- pods -----------------------------------------------------------------------------------------------

    def _place(self, info: PodInfo, node_name: str) -> None:
        node = self.nodes.get(node_name)
        if node is None:
            node = self.nodes[node_name] = NodeInfo(node_name)
        node.add_pod(info)
        self._pod_node[info.key] = node_name
        if info.anti_affinity_terms:
            self.anti_affinity_pods[info.key] = info
        if info.affinity_terms:
            self.affinity_pods[info.key] = info

    def _unplace(self, key: str) -> PodInfo | None:
        node_name = self._pod_node.pop(key, None)
        if node_name is None:
            return None
        self.anti_affinity_pods.pop(key, None)
        self.affinity_pods.pop(key, None)
        node = self.nodes.get(node_name)
        if node is None:
            return None
        removed = node.remove_pod(key)
        if node.node is None and not node.pods:
            del self.nodes[node_name]
        return removed

    def node_of(self, key: str) -> str | None:
        return self._pod_node.get(key)

    def assume(self, info: PodInfo, node_name: str) -> None:
        """Count `info` on `node_name` now, before the binding is confirmed."""
        self._unplace(info.key)
        info.node_name = node_name
        self._place(info, node_name)
        self.assumed.add(info.key)

    def forget(self, key: str) -> None:
        """Undo `assume` after a failed binding (no-op if the informer already confirmed the pod)."""
        if key in self.assumed:
            self.assumed.discard(key)
            self._unplace(key)

    def add_pod(self, info: PodInfo) -> None:
        """An assigned pod reported by the informer (confirms an assumed one)."""
        self.assumed.discard(info.key)
        self._unplace(info.key)
        self._place(info, info.node_name)

    update_pod = add_pod

    def remove_pod(self, key: str) -> PodInfo | None:
        self.assumed.discard(key)
        return self._unplace(key)

    def pod_count(self) -> int:
        return len(self._pod_node)

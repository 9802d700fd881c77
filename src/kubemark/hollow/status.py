"""The hollow kubelet's Node: the object it registers, and the periodic node-status patch.

Like kubelet: status is recomputed every nodeStatusUpdateFrequency (10 s) from the last known Node, and a
strategic-merge PATCH (conditions merged by type, with `$setElementOrder/conditions`) is sent only when
something other than heartbeat times changed, or nodeStatusReportFrequency (5 min) has passed. After a change
(and the first report) the next periodic report waits a one-time random extra delay, uniform in +-50 % of the
report frequency (kubelet's delayAfterNodeStatusChange), so nodes that started together do not report together;
later periodic reports are every 5 min exactly.

Quantities (capacity, allocatable) are emitted in canonical form, as kube-apiserver returns them, and compared
by value, as kubelet's Semantic.DeepEqual does: the server answers "3840Mi" for "3.75Gi", and a string
comparison would find a "change" at every sync and PATCH every 10 s.
"""

from __future__ import annotations

import copy
import hashlib
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubemark.hollow.config import NodeConfig
from kubemark.kube.meta import format_rfc3339
from kubemark.kube.patch import create_strategic_merge_patch
from kubemark.kube.quantity import QuantityError, parse_quantity

PADDING_ANNOTATION = "kubemark.io/node-padding"
PROVIDER_PREFIX = "kubemark://"

# kubelet's condition setters run in this order, so a registered Node lists them so.
KUBELET_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")

_HEALTHY: dict[str, tuple[str, str, str]] = {
    "MemoryPressure": ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    "DiskPressure": ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    "Ready": ("True", "KubeletReady", "kubelet is posting ready status"),
}
_NOT_READY = (
    "False",
    "KubeletNotReady",
    "container runtime status check may not have completed yet",
)


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """Host identifiers in nodeInfo: machine ID and system UUID are stable per name, boot ID per start."""

    machine_id: str
    system_uuid: str
    boot_id: str

    @classmethod
    def for_node(cls, name: str, boot_id: str | None = None) -> NodeIdentity:
        digest = hashlib.sha256(name.encode()).hexdigest()
        return cls(
            machine_id=digest[:32],
            system_uuid=str(uuid.UUID(digest[32:64])),
            boot_id=boot_id or str(uuid.uuid4()),
        )


@dataclass(slots=True)
class NodeSpecFacts:
    """Everything a node's status depends on apart from time."""

    name: str
    index: int
    config: NodeConfig
    identity: NodeIdentity
    ready: bool = True
    pressure: dict[str, bool] = field(default_factory=dict)  # condition type -> under pressure

    @property
    def node_ip(self) -> str:
        return self.config.node_ip(self.index)


def _condition(ctype: str, status: str, reason: str, message: str, now: str, since: str) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "lastHeartbeatTime": now,
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    }


def _pressure_condition(ctype: str) -> tuple[str, str, str]:
    word = {"MemoryPressure": "Insufficient memory", "DiskPressure": "Disk pressure", "PIDPressure": "Insufficient PID"}
    reason = {
        "MemoryPressure": "KubeletHasInsufficientMemory",
        "DiskPressure": "KubeletHasDiskPressure",
        "PIDPressure": "KubeletHasInsufficientPID",
    }
    return "True", reason[ctype], f"kubelet has {word[ctype].lower()}"


def kubelet_conditions(facts: NodeSpecFacts, previous: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Kubelet's four conditions, keeping lastTransitionTime when a status did not change."""
    stamp = format_rfc3339(now)
    before = {c.get("type"): c for c in previous}
    out = []
    for ctype in KUBELET_CONDITIONS:
        if ctype == "Ready":
            status, reason, message = _HEALTHY["Ready"] if facts.ready else _NOT_READY
        elif facts.pressure.get(ctype):
            status, reason, message = _pressure_condition(ctype)
        else:
            status, reason, message = _HEALTHY[ctype]
        old = before.get(ctype)
        since = (
            old["lastTransitionTime"]
            if old and old.get("status") == status and old.get("lastTransitionTime")
            else stamp
        )
        out.append(_condition(ctype, status, reason, message, stamp, since))
    return out


def _images(config: NodeConfig) -> list[dict[str, Any]]:
    # kubelet reports at most 50 images (nodeStatusMaxImages) and at most 5 names per image.
    return [{"names": list(img.names[:5]), "sizeBytes": img.size_bytes} for img in config.images[:50]]


def static_status(facts: NodeSpecFacts) -> dict[str, Any]:
    """Status fields that do not depend on time: capacity, addresses, endpoints, nodeInfo, images."""
    config = facts.config
    return {
        "capacity": config.canonical_capacity(),
        "allocatable": config.allocatable(),
        "addresses": [
            {"type": "InternalIP", "address": facts.node_ip},
            {"type": "Hostname", "address": facts.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": config.kubelet_port(facts.index)}},
        "nodeInfo": {
            "machineID": facts.identity.machine_id,
            "systemUUID": facts.identity.system_uuid,
            "bootID": facts.identity.boot_id,
            "kernelVersion": config.kernel_version,
            "osImage": config.os_image,
            "containerRuntimeVersion": config.container_runtime_version,
            "kubeletVersion": config.kubelet_version,
            "kubeProxyVersion": "",  # DisableNodeKubeProxyVersion, locked on since 1.36: kubelet clears it
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
        "images": _images(config),
    }


def build_node(facts: NodeSpecFacts, now: float, *, ready: bool = False) -> dict[str, Any]:
    """The Node a kubelet POSTs at registration (Ready=False until the first status sync, as kubelet)."""
    config = facts.config
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": facts.name,
        "kubernetes.io/os": "linux",
        **config.labels,
    }
    annotations = {"volumes.kubernetes.io/controller-managed-attach-detach": "true"}
    if config.node_padding_bytes:
        annotations[PADDING_ANNOTATION] = "x" * config.node_padding_bytes
    spec: dict[str, Any] = {"providerID": PROVIDER_PREFIX + facts.name}
    if config.taints:
        spec["taints"] = [
            {"key": t.key, "effect": t.effect, **({"value": t.value} if t.value else {})} for t in config.taints
        ]
    registration = NodeSpecFacts(facts.name, facts.index, config, facts.identity, ready=ready, pressure=facts.pressure)
    status = static_status(facts)
    status["conditions"] = kubelet_conditions(registration, [], now)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": facts.name, "labels": labels, "annotations": annotations},
        "spec": spec,
        "status": status,
    }


def _without_heartbeats(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stripped = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"} for c in conditions]
    return sorted(stripped, key=lambda c: str(c.get("type")))


_RESOURCE_LISTS = ("capacity", "allocatable")


def resource_lists_equal(old: Any, new: Any) -> bool:
    """Two ResourceLists equal as apiequality.Semantic.DeepEqual sees them: same names, quantities equal in value
    (the server returns "3840Mi" for "3.75Gi"; a string comparison would see a change at every status sync)."""
    if old == new:
        return True
    if not isinstance(old, dict) or not isinstance(new, dict) or old.keys() != new.keys():
        return False
    for name, value in new.items():
        before = old[name]
        if before == value:
            continue
        try:
            if parse_quantity(before) != parse_quantity(value):
                return False
        except QuantityError:
            return False
    return True


def status_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """kubelet's nodeStatusHasChanged: any difference except conditions' lastHeartbeatTime (quantities are
    compared by value, as Semantic.DeepEqual compares them)."""
    if _without_heartbeats(old.get("conditions") or []) != _without_heartbeats(new.get("conditions") or []):
        return True
    keys = (old.keys() | new.keys()) - {"conditions"}
    for key in keys:
        if key in _RESOURCE_LISTS:
            if not resource_lists_equal(old.get(key), new.get(key)):
                return True
        elif old.get(key) != new.get(key):
            return True
    return False


class NodeStatusReporter:
    """Decides whether a status sync PATCHes, and builds the patch; the caller sends it and calls `reported`."""

    def __init__(
        self, facts: NodeSpecFacts, *, clock: Callable[[], float] = time.time, rng: random.Random | None = None
    ) -> None:
        self.facts = facts
        self._clock = clock
        self._rng = rng or random.Random()
        self.last_report: float | None = None
        self.patches = 0
        self._static_status: dict[str, Any] | None = None
        # kubelet's delayAfterNodeStatusChange: added to the report period once after a change.
        self.delay_after_change = 0.0
        self._pending_delay = 0.0

    def _static(self) -> dict[str, Any]:
        # Time-independent fields are computed once (quantity parsing and friends are not free at 200 syncs/s).
        if self._static_status is None:
            self._static_status = static_status(self.facts)
        return self._static_status

    def desired_status(self, old_status: dict[str, Any], now: float) -> dict[str, Any]:
        """Node status as this kubelet wants it: `old_status` (shallow-copied) with kubelet's fields recomputed."""
        old_conditions = old_status.get("conditions") or []
        ours = kubelet_conditions(self.facts, old_conditions, now)
        by_type = {c["type"]: c for c in ours}
        merged = [by_type.pop(c.get("type"), c) for c in old_conditions]  # keep others' (NPD) conditions
        merged.extend(c for c in ours if c["type"] in by_type)
        status = {**old_status, **copy.deepcopy(self._static())}
        status["conditions"] = merged
        return status

    def desired(self, original: dict[str, Any], now: float) -> dict[str, Any]:
        """The Node as this kubelet wants it (a new top-level dict; `original` is not modified)."""
        return {**original, "status": self.desired_status(original.get("status") or {}, now)}

    def patch_for(self, original: dict[str, Any]) -> dict[str, Any] | None:
        """The status PATCH to send now, or None when nothing changed and the report period has not passed."""
        now = self._clock()
        old_status = original.get("status") or {}
        frequency = self.facts.config.heartbeat.status_report_frequency
        changed = self._changed(old_status, now)
        due = self.last_report is None or now - self.last_report >= frequency + self.delay_after_change
        if not due and not changed:
            return None
        # A change or the first report draws a new one-time delay; a plain periodic report resets it.
        self._pending_delay = frequency * (self._rng.random() - 0.5) if changed or self.last_report is None else 0.0
        patch = create_strategic_merge_patch(original, self.desired(original, now), "Node")
        return patch or None

    def _changed(self, old_status: dict[str, Any], now: float) -> bool:
        """kubelet's nodeStatusHasChanged without building the desired Node: static fields equal, and our
        conditions equal apart from lastHeartbeatTime. This runs every 10 s per node, so it stays cheap."""
        for key, value in self._static().items():
            old = old_status.get(key)
            if old == value:
                continue
            if key in _RESOURCE_LISTS and resource_lists_equal(old, value):
                continue
            return True
        old_conditions = old_status.get("conditions") or []
        before = {c.get("type"): c for c in old_conditions}
        for c in kubelet_conditions(self.facts, old_conditions, now):
            old = before.get(c["type"])
            if old is None:
                return True
            for k in ("status", "reason", "message", "lastTransitionTime"):
                if old.get(k) != c[k]:
                    return True
        return False

    def reported(self) -> None:
        self.last_report = self._clock()
        self.delay_after_change = self._pending_delay
        self.patches += 1

"""Pod admission and the PodStatus a kubelet writes, as pure functions over plain dicts.

Admission follows kubelet's resource fit check (sum of requests of admitted pods vs allocatable). Status
builders produce kubelet's shapes: Pending/ContainerCreating, Running, and terminal phases, with the
PodReadyToStartContainers, Initialized, Ready and ContainersReady conditions (PodScheduled is the scheduler's).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubemark.kube.meta import format_rfc3339
from kubemark.kube.patch import create_strategic_merge_patch
from kubemark.kube.quantity import QuantityError, parse_quantity, to_int, to_milli

KUBELET_POD_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")
TERMINAL_PHASES = ("Succeeded", "Failed")


# --- admission ---------------------------------------------------------------------------------------------


def _amount(name: str, text: Any) -> int:
    try:
        return to_milli(parse_quantity(str(text))) if name == "cpu" else to_int(parse_quantity(str(text)))
    except QuantityError:
        return 0


def pod_requests(pod: dict[str, Any]) -> dict[str, int]:
    """Effective requests (cpu in millicores): max(sum of containers, largest init container) + overhead."""
    spec = pod.get("spec") or {}
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        for name, text in ((c.get("resources") or {}).get("requests") or {}).items():
            total[name] = total.get(name, 0) + _amount(name, text)
    for c in spec.get("initContainers") or []:
        for name, text in ((c.get("resources") or {}).get("requests") or {}).items():
            total[name] = max(total.get(name, 0), _amount(name, text))
    for name, text in (spec.get("overhead") or {}).items():
        total[name] = total.get(name, 0) + _amount(name, text)
    return total


def admit(
    pod: dict[str, Any], admitted: Iterable[dict[str, Any]], allocatable: dict[str, str]
) -> tuple[str, str] | None:
    """None if the pod fits beside the admitted pods, else kubelet's (reason, message) for rejecting it."""
    capacity = {name: _amount(name, text) for name, text in allocatable.items()}
    used: dict[str, int] = {}
    count = 0
    for other in admitted:
        count += 1
        for name, value in pod_requests(other).items():
            used[name] = used.get(name, 0) + value
    if "pods" in capacity and count + 1 > capacity["pods"]:
        return "OutOfpods", _rejected("pods", 1, count, capacity["pods"])
    for name, value in pod_requests(pod).items():
        if value == 0:
            continue
        if name not in capacity and "/" not in name:
            continue  # resources the node does not account (e.g. hugepages when not configured) are not checked
        cap = capacity.get(name, 0)
        if used.get(name, 0) + value > cap:
            return f"OutOf{name}", _rejected(name, value, used.get(name, 0), cap)
    return None


def _rejected(name: str, requested: int, used: int, capacity: int) -> str:
    return (
        f"Pod was rejected: Node didn't have enough resource: {name}, "
        f"requested: {requested}, used: {used}, capacity: {capacity}"
    )


# --- container state ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class ContainerRecord:
    """What the kubelet knows about one container of a pod."""

    name: str
    image: str
    image_id: str = ""
    container_id: str = ""
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int = 0
    restart_count: int = 0
    ready: bool = False
    last_terminated: dict[str, Any] | None = None
    message: str = ""  # of a waiting state, e.g. CreateContainerConfigError's cause

    def to_status(self) -> dict[str, Any]:
        if self.state == "running":
            state: dict[str, Any] = {"running": {"startedAt": _t(self.started_at)}}
        elif self.state == "terminated":
            state = {"terminated": self.terminated_state()}
        else:
            waiting = {"reason": self.reason}
            if self.message:
                waiting["message"] = self.message
            state = {"waiting": waiting}
        out: dict[str, Any] = {
            "name": self.name,
            "state": state,
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
            "ready": self.ready,
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": self.image_id,
            "started": self.state == "running",
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out

    def terminated_state(self) -> dict[str, Any]:
        return {
            "exitCode": self.exit_code,
            "reason": "Completed" if self.exit_code == 0 else "Error",
            "startedAt": _t(self.started_at),
            "finishedAt": _t(self.finished_at),
            "containerID": self.container_id,
        }


def _t(epoch: float | None) -> str | None:
    return format_rfc3339(epoch) if epoch is not None else None


def containers_of(pod: dict[str, Any]) -> list[ContainerRecord]:
    return [
        ContainerRecord(c.get("name", ""), c.get("image", "")) for c in (pod.get("spec") or {}).get("containers") or []
    ]


# --- status ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class PodView:
    """The kubelet's view of a pod that its status is built from."""

    phase: str
    containers: list[ContainerRecord]
    host_ip: str
    pod_ip: str = ""
    start_time: float | None = None
    sandbox_ready: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. reason/message of a terminal phase


def _cond(ctype: str, status: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    c: dict[str, Any] = {"type": ctype, "status": "True" if status else "False", "lastProbeTime": None}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def kubelet_pod_conditions(view: PodView) -> list[dict[str, Any]]:
    terminal = view.phase in TERMINAL_PHASES
    unready = [c.name for c in view.containers if not c.ready]
    if terminal:
        reason, message = "PodCompleted", ""
    elif unready:
        reason = "ContainersNotReady"
        message = f"containers with unready status: [{' '.join(unready)}]"
    else:
        reason, message = "", ""
    all_ready = not unready and not terminal
    return [
        _cond("PodReadyToStartContainers", view.sandbox_ready and not terminal),
        _cond("Initialized", True, "PodCompleted" if terminal else ""),
        _cond("Ready", all_ready, reason, message),
        _cond("ContainersReady", all_ready, reason, message),
    ]


def build_status(view: PodView) -> dict[str, Any]:
    """The status fields the kubelet owns (conditions without transition times; see merge_status)."""
    status: dict[str, Any] = {
        "phase": view.phase,
        "conditions": kubelet_pod_conditions(view),
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "containerStatuses": [c.to_status() for c in view.containers],
    }
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    if view.start_time is not None:
        status["startTime"] = format_rfc3339(view.start_time)
    status.update(view.extra)
    return status


def merge_status(old: dict[str, Any], ours: dict[str, Any], now: float) -> dict[str, Any]:
    """Old status with our fields set; our conditions replace theirs by type, keeping unchanged transition times."""
    stamp = format_rfc3339(now)
    merged = copy.deepcopy(old)
    merged.update({k: v for k, v in ours.items() if k != "conditions"})
    previous = {c.get("type"): c for c in old.get("conditions") or []}
    conditions = []
    for c in ours.get("conditions") or []:
        prior = previous.pop(c["type"], None)
        same = prior is not None and prior.get("status") == c["status"] and prior.get("lastTransitionTime")
        conditions.append({**c, "lastTransitionTime": prior["lastTransitionTime"] if same else stamp})
    conditions.extend(previous.values())  # PodScheduled and others keep their place after kubelet's
    merged["conditions"] = conditions
    return merged


def status_patch(pod: dict[str, Any], new_status: dict[str, Any]) -> dict[str, Any] | None:
    """kubelet's status manager PATCH (strategic merge with a UID precondition), or None if nothing changed."""
    old_status = pod.get("status") or {}
    if old_status == new_status:
        return None
    patch = create_strategic_merge_patch({"status": old_status}, {"status": new_status}, "Pod")
    if not patch:
        return None
    patch["metadata"] = {"uid": (pod.get("metadata") or {}).get("uid")}
    return patch


def rejected_status(old: dict[str, Any], reason: str, message: str) -> dict[str, Any]:
    """kubelet's rejectPod: phase Failed with the admission reason and message."""
    merged = copy.deepcopy(old)
    merged.update({"phase": "Failed", "reason": reason, "message": message})
    return merged

"""Node lifecycle controller (pkg/controller/nodelifecycle) with the NoExecute taint manager.

Every node-monitor-period the controller checks each node's health probe: the last local time its Lease
(kube-node-lease/<name>) renewTime or its Ready heartbeat changed. Past node-monitor-grace-period (or the
startup grace period for nodes that never reported Ready) the node's conditions become Unknown with reason
NodeStatusUnknown, its pods are marked not Ready, and it is tainted node.kubernetes.io/unreachable
(NoSchedule + NoExecute); Ready=False gives node.kubernetes.io/not-ready instead; Ready=True removes both.
Pods on NoExecute-tainted nodes that do not tolerate the taints — or whose tolerationSeconds (the
DefaultTolerationSeconds admission gives 300 s) ran out since the taint was added — are marked with the
DisruptionTarget condition and deleted.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from kubemark.client import APIError, RestClient, is_conflict, is_not_found, resource_path
from kubemark.client.informer import namespaced_key_from
from kubemark.kube.meta import format_rfc3339, parse_time
from kubemark.master.controllers.base import Controller, Obj, SharedInformers, pod_node_name
from kubemark.master.controllers.ownership import is_deleting, meta, pod_condition, pod_phase
from kubemark.master.controllers.workqueue import QueueMetrics

log = logging.getLogger(__name__)

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
LEASE_NAMESPACE = "kube-node-lease"
NODE_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."


@dataclass(frozen=True, slots=True)
class NodeLifecycleOptions:
    monitor_period: float = 5.0
    grace_period: float = 40.0
    startup_grace_period: float = 60.0
    mark_pods_not_ready: bool = True
    disruption_condition: bool = True


@dataclass(slots=True)
class _Health:
    signature: tuple[Any, ...]
    probed_at: float


def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    """v1.Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def eviction_time(pod: Obj, taints: list[dict[str, Any]]) -> float | None:
    """When the taint manager deletes this pod: 0.0 now, None never, else an epoch time."""
    no_execute = [t for t in taints if t.get("effect") == "NoExecute"]
    if not no_execute:
        return None
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    due: float | None = None
    for taint in no_execute:
        used = [t for t in tolerations if tolerates(t, taint)]
        if not used:
            return 0.0
        seconds = [int(t["tolerationSeconds"]) for t in used if t.get("tolerationSeconds") is not None]
        if not seconds:
            continue  # tolerated forever
        try:
            added = parse_time(taint.get("timeAdded") or "")
        except ValueError:
            added = 0.0
        when = added + max(0, min(seconds))
        due = when if due is None else min(due, when)
    return due


def _condition(node: Obj, kind: str) -> dict[str, Any] | None:
    for cond in (node.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return cond
    return None


def wanted_taints(ready_status: str | None) -> set[str]:
    if ready_status == "Unknown":
        return {UNREACHABLE}
    if ready_status == "False":
        return {NOT_READY}
    return set()


class NodeLifecycleController(Controller):
    """Marks silent nodes Unknown, taints them, and evicts pods that do not tolerate it."""

    name = "node-lifecycle"

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        options: NodeLifecycleOptions | None = None,
        workers: int = 4,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(client, informers, workers=workers, metrics=metrics, clock=clock)
        self.options = options or NodeLifecycleOptions()
        self.nodes = self.use("", "v1", "nodes")
        self.leases = self.use("coordination.k8s.io", "v1", "leases")
        self.use("", "v1", "pods")
        self.pods_by_node = informers.index("", "v1", "pods", "spec.nodeName", pod_node_name)
        self._health: dict[str, _Health] = {}
        self.nodes.add_handler(on_delete=lambda n: self._health.pop(meta(n).get("name") or "", None))

    def background(self) -> list[Coroutine[Any, Any, None]]:
        return [self._monitor_loop()]

    async def _monitor_loop(self) -> None:
        while True:
            try:
                self.monitor()
            except Exception:
                log.exception("node lifecycle: monitor pass failed")
            await asyncio.sleep(self.options.monitor_period)

    def monitor(self) -> None:
        """One monitorNodeHealth pass: refresh probes and queue every node for a health/taint/eviction sync."""
        now = self.clock()
        for node in self.nodes.list():
            name = meta(node).get("name") or ""
            lease = self.leases.get(namespaced_key_from(LEASE_NAMESPACE, name))
            renew = ((lease or {}).get("spec") or {}).get("renewTime")
            ready = _condition(node, "Ready") or {}
            signature = (renew, ready.get("lastHeartbeatTime"), ready.get("status"))
            health = self._health.get(name)
            if health is None or health.signature != signature:
                self._health[name] = _Health(signature, now)
            self.queue.add(name)

    async def sync(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None:
            return
        now = self.clock()
        health = self._health.get(key)
        ready = _condition(node, "Ready")
        grace = self.options.grace_period if ready is not None else self.options.startup_grace_period
        if health is not None and now - health.probed_at > grace and (ready or {}).get("status") != "Unknown":
            node = await self._mark_unknown(key, now) or node
            ready = _condition(node, "Ready")
            if self.options.mark_pods_not_ready:
                await self._mark_pods_not_ready(key)
        node = await self._reconcile_taints(node, (ready or {}).get("status"), now) or node
        await self._evict(node, now)

    async def _mark_unknown(self, name: str, now: float) -> Obj | None:
        path = resource_path("", "v1", "nodes", None, name)
        for _ in range(3):
            try:
                live = await self.client.get(path)
            except APIError as exc:
                if is_not_found(exc):
                    return None
                raise
            stamp = format_rfc3339(now)
            status = live.setdefault("status", {})
            conditions = {c.get("type"): c for c in status.get("conditions") or []}
            for kind in NODE_CONDITIONS:
                cond = conditions.get(kind)
                if cond is None:
                    # Never reported: upstream adds it as Unknown with "Kubelet never posted node status."
                    status.setdefault("conditions", []).append(
                        {
                            "type": kind,
                            "status": "Unknown",
                            "reason": UNKNOWN_REASON,
                            "message": "Kubelet never posted node status.",
                            "lastHeartbeatTime": stamp,
                            "lastTransitionTime": stamp,
                        }
                    )
                elif cond.get("status") != "Unknown":
                    cond.update(
                        {
                            "status": "Unknown",
                            "reason": UNKNOWN_REASON,
                            "message": UNKNOWN_MESSAGE,
                            "lastTransitionTime": stamp,
                        }
                    )
            try:
                log.info("node %s: no status for %.0fs, marking Unknown", name, self.options.grace_period)
                return await self.client.replace(f"{path}/status", live)
            except APIError as exc:
                if not is_conflict(exc):
                    raise
        return None

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        for pod in self.pods_by_node.get(node_name):
            if pod_phase(pod) in ("Succeeded", "Failed"):
                continue
            cond = pod_condition(pod, "Ready")
            if cond is None or cond.get("status") == "False":
                continue
            body = copy.deepcopy(pod)
            for c in body["status"]["conditions"]:
                if c.get("type") == "Ready":
                    c["status"] = "False"
                    c["lastTransitionTime"] = format_rfc3339(self.clock())
            md = meta(pod)
            try:
                await self.client.replace(
                    resource_path("", "v1", "pods", md.get("namespace"), md.get("name"), "status"), body
                )
            except APIError as exc:
                if not (is_not_found(exc) or is_conflict(exc)):
                    raise

    async def _reconcile_taints(self, node: Obj, ready_status: str | None, now: float) -> Obj | None:
        wanted = wanted_taints(ready_status)
        ours = {UNREACHABLE, NOT_READY}
        current = (node.get("spec") or {}).get("taints") or []
        have = {(t.get("key"), t.get("effect")) for t in current if t.get("key") in ours}
        want = {(k, e) for k in wanted for e in ("NoSchedule", "NoExecute")}
        if have == want:
            return None
        name = meta(node).get("name") or ""
        path = resource_path("", "v1", "nodes", None, name)
        for _ in range(3):
            try:
                live = await self.client.get(path)
            except APIError as exc:
                if is_not_found(exc):
                    return None
                raise
            spec = live.setdefault("spec", {})
            kept = [
                t
                for t in spec.get("taints") or []
                if t.get("key") not in ours or (t.get("key"), t.get("effect")) in want
            ]
            present = {(t.get("key"), t.get("effect")) for t in kept}
            for key, effect in sorted(want - present):
                taint: dict[str, Any] = {"key": key, "effect": effect}
                if effect == "NoExecute":
                    taint["timeAdded"] = format_rfc3339(now)
                kept.append(taint)
            spec["taints"] = kept
            if not kept:
                spec.pop("taints")
            try:
                log.info("node %s: taints now %s", name, sorted(want))
                return await self.client.replace(path, live)
            except APIError as exc:
                if not is_conflict(exc):
                    raise
        return None

    async def _evict(self, node: Obj, now: float) -> None:
        taints = (node.get("spec") or {}).get("taints") or []
        if not any(t.get("effect") == "NoExecute" for t in taints):
            return
        name = meta(node).get("name") or ""
        next_due: float | None = None
        for pod in self.pods_by_node.get(name):
            if is_deleting(pod) or pod_phase(pod) in ("Succeeded", "Failed"):
                continue
            due = eviction_time(pod, taints)
            if due is None:
                continue
            if due <= now:
                await self._delete_pod(pod)
            else:
                next_due = due if next_due is None else min(next_due, due)
        if next_due is not None:
            self.queue.add_after(name, next_due - now)

    async def _delete_pod(self, pod: Obj) -> None:
        md = meta(pod)
        ns, name = md.get("namespace"), md.get("name")
        log.info("taint manager: evicting pod %s/%s", ns, name)
        try:
            if self.options.disruption_condition:
                body = copy.deepcopy(pod)
                status = body.setdefault("status", {})
                conds = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
                conds.append(
                    {
                        "type": "DisruptionTarget",
                        "status": "True",
                        "reason": "DeletionByTaintManager",
                        "message": "Taint manager: deleting due to NoExecute taint",
                        "lastTransitionTime": format_rfc3339(self.clock()),
                    }
                )
                status["conditions"] = conds
                try:
                    await self.client.replace(resource_path("", "v1", "pods", ns, name, "status"), body)
                except APIError as exc:
                    if not is_conflict(exc):
                        raise
            await self.client.delete(resource_path("", "v1", "pods", ns, name))
        except APIError as exc:
            if not is_not_found(exc):
                raise

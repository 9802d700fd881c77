"""Disruption controller (pkg/controller/disruption): the status of PodDisruptionBudgets.

For each budget it counts the pods its selector matches in its namespace and computes, as trySync does:
- expectedPods and desiredHealthy: with an integer minAvailable, the matching pods and minAvailable; with a
  percentage minAvailable or any maxUnavailable, the summed scale of the pods' controllers (a ReplicaSet
  owned by a Deployment counts as the Deployment; ReplicationControllers, StatefulSets likewise), scaled
  with rounding up; a pod without a known controller fails the sync (condition DisruptionAllowed False,
  reason SyncFailed, disruptionsAllowed 0), as upstream's failSafe;
- currentHealthy: Ready pods not being deleted and not evicted in the last 2 minutes (status.disruptedPods,
  which the eviction subresource fills and this controller expires);
- disruptionsAllowed = currentHealthy - desiredHealthy (at least 0, 0 without expected pods), the
  DisruptionAllowed condition (SufficientPods / InsufficientPods) and observedGeneration.
The eviction subresource (kinds/disruption.py) refuses evictions against these numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kubemark.client import APIError, RestClient, is_conflict, is_not_found, resource_path
from kubemark.kube.disruption import DELETION_TIMEOUT_SECONDS, disruption_allowed_condition
from kubemark.kube.intstr import scaled_value
from kubemark.kube.labels import LabelSelectorError, Selector, selector_from_label_selector
from kubemark.kube.meta import format_rfc3339, parse_time
from kubemark.master.controllers.base import Controller, Obj, SharedInformers
from kubemark.master.controllers.ownership import controller_ref, is_deleting, is_pod_ready, labels_of, meta
from kubemark.master.controllers.workqueue import QueueMetrics

log = logging.getLogger(__name__)

SYNC_FAILED = "SyncFailed"
# Controller kind -> (group, plural) whose spec.replicas is the scale (finders: RC, RS/Deployment, StatefulSet).
_SCALED_KINDS = {
    "ReplicationController": ("", "replicationcontrollers"),
    "ReplicaSet": ("apps", "replicasets"),
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
}


def selector_of(pdb: Obj) -> Selector:
    """policy/v1: a nil selector matches no pods, an empty one every pod of the namespace."""
    raw = (pdb.get("spec") or {}).get("selector")
    if raw is None:
        return Selector.nothing()
    try:
        return selector_from_label_selector(raw)
    except LabelSelectorError:
        return Selector.nothing()


class ExpectedScaleError(Exception):
    """A selected pod has no controller whose scale is known (upstream: "found no controllers for pod")."""


class DisruptionController(Controller):
    """Keeps every PodDisruptionBudget's status current."""

    name = "disruption"

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        workers: int = 1,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(client, informers, workers=workers, metrics=metrics, clock=clock)
        self.budgets = self.use("policy", "v1", "poddisruptionbudgets")
        self.budgets_by_ns = informers.by_namespace("policy", "v1", "poddisruptionbudgets")
        self.pods = self.use("", "v1", "pods")
        self.pods_by_ns = informers.by_namespace("", "v1", "pods")
        self.scaled = {kind: self.use(group, "v1", plural) for kind, (group, plural) in _SCALED_KINDS.items()}
        self.budgets.add_handler(self.enqueue, lambda old, new: self.enqueue(new), None)
        self.pods.add_handler(self._pod_event, self._pod_updated, self._pod_event)
        for informer in self.scaled.values():
            informer.add_handler(None, self._scale_updated, None)

    # -- event handlers -------------------------------------------------------------------------------------

    def _pod_event(self, pod: Obj) -> None:
        namespace = meta(pod).get("namespace") or ""
        for pdb in self.budgets_by_ns.get(namespace):
            if selector_of(pdb).matches(labels_of(pod)):
                self.enqueue(pdb)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._pod_event(new)
        if labels_of(old) != labels_of(new):
            self._pod_event(old)

    def _scale_updated(self, old: Obj, new: Obj) -> None:
        if (old.get("spec") or {}).get("replicas") != (new.get("spec") or {}).get("replicas"):
            for pdb in self.budgets_by_ns.get(meta(new).get("namespace") or ""):
                self.enqueue(pdb)

    # -- sync -----------------------------------------------------------------------------------------------

    def _expected_scale(self, pods: list[Obj]) -> int:
        scales: dict[str, int] = {}
        for pod in pods:
            ref = controller_ref(pod)
            if ref is None:
                continue  # an unmanaged pod: upstream only warns about it
            owner = self._scaled_owner(meta(pod).get("namespace") or "", ref)
            if owner is None:
                raise ExpectedScaleError(f'found no controllers for pod "{meta(pod).get("name")}"')
            scales[str(meta(owner).get("uid"))] = int((owner.get("spec") or {}).get("replicas", 1))
        return sum(scales.values())

    def _scaled_owner(self, namespace: str, ref: dict[str, Any]) -> Obj | None:
        informer = self.scaled.get(str(ref.get("kind")))
        owner = informer.get(f"{namespace}/{ref.get('name')}") if informer is not None else None
        if owner is None or meta(owner).get("uid") != ref.get("uid"):
            return None
        if ref.get("kind") == "ReplicaSet":
            parent = controller_ref(owner)
            if parent is not None and parent.get("kind") == "Deployment":
                return self._scaled_owner(namespace, parent)  # a Deployment's ReplicaSet: the Deployment's scale
        return owner

    def expected_and_desired(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int]:
        """getExpectedPodCount: (expectedPods, desiredHealthy)."""
        spec = pdb.get("spec") or {}
        max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
        if max_unavailable is not None:
            expected = self._expected_scale(pods)
            return expected, max(0, expected - scaled_value(max_unavailable, expected))
        if isinstance(min_available, int):
            return len(pods), min_available
        if isinstance(min_available, str):
            expected = self._expected_scale(pods)
            return expected, scaled_value(min_available, expected)
        return 0, 0

    async def sync(self, key: str) -> None:
        pdb = self.budgets.get(key)
        if pdb is None:
            return
        namespace = meta(pdb).get("namespace") or ""
        selector = selector_of(pdb)
        pods = [p for p in self.pods_by_ns.get(namespace) if selector.matches(labels_of(p))]
        now = self.clock()
        status = dict(pdb.get("status") or {})
        try:
            expected, desired = self.expected_and_desired(pdb, pods)
        except ExpectedScaleError as exc:
            status["disruptionsAllowed"] = 0
            status["conditions"] = _set_condition(status.get("conditions"), "False", SYNC_FAILED, str(exc), status, now)
            await self._write(pdb, status)
            raise RuntimeError(str(exc)) from exc
        disrupted, recheck = self._disrupted(pdb, pods, now)
        healthy = sum(
            1 for p in pods if not is_deleting(p) and (meta(p).get("name") or "") not in disrupted and is_pod_ready(p)
        )
        allowed = healthy - desired
        if expected <= 0 or allowed <= 0:
            allowed = 0
        new_status: dict[str, Any] = {
            "observedGeneration": meta(pdb).get("generation", 0),
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
        }
        if disrupted:
            new_status["disruptedPods"] = disrupted
        condition = disruption_allowed_condition(allowed, new_status["observedGeneration"])
        new_status["conditions"] = _set_condition(
            status.get("conditions"), condition["status"], condition["reason"], "", new_status, now
        )
        if new_status != status:
            await self._write(pdb, new_status)
        if recheck is not None:
            self.queue.add_after(key, max(0.0, recheck - now))

    def _disrupted(self, pdb: Obj, pods: list[Obj], now: float) -> tuple[dict[str, str], float | None]:
        """buildDisruptedPodMap: evictions younger than 2 minutes of pods not yet being deleted."""
        recorded = (pdb.get("status") or {}).get("disruptedPods") or {}
        result: dict[str, str] = {}
        recheck: float | None = None
        for pod in pods:
            name = meta(pod).get("name") or ""
            if is_deleting(pod) or name not in recorded:
                continue
            try:
                expires = parse_time(recorded[name]) + DELETION_TIMEOUT_SECONDS
            except ValueError:
                continue
            if expires >= now:
                result[name] = recorded[name]
                recheck = expires if recheck is None else min(recheck, expires)
        return result, recheck

    async def _write(self, pdb: Obj, status: dict[str, Any]) -> None:
        md = meta(pdb)
        path = resource_path(
            "policy", "v1", "poddisruptionbudgets", md.get("namespace") or "", md.get("name"), "status"
        )
        try:
            await self.client.replace(path, {**pdb, "status": status})
        except APIError as exc:
            if is_not_found(exc):
                return
            if is_conflict(exc):
                self.enqueue(pdb)  # the eviction subresource wrote it meanwhile: recompute from the new state
                return
            raise


def _set_condition(
    conditions: Any, status: str, reason: str, message: str, pdb_status: dict[str, Any], now: float
) -> list[dict[str, Any]]:
    """apimeta.SetStatusCondition for DisruptionAllowed: lastTransitionTime moves only when status changes."""
    out = [c for c in conditions or () if isinstance(c, dict) and c.get("type") != "DisruptionAllowed"]
    previous = next((c for c in conditions or () if isinstance(c, dict) and c.get("type") == "DisruptionAllowed"), None)
    changed = previous is None or previous.get("status") != status
    out.append(
        {
            "type": "DisruptionAllowed",
            "status": status,
            "observedGeneration": pdb_status.get("observedGeneration", 0),
            "lastTransitionTime": format_rfc3339(now) if changed else previous.get("lastTransitionTime"),  # type: ignore[union-attr]
            "reason": reason,
            "message": message,
        }
    )
    return out

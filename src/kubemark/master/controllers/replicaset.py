"""ReplicaSet and ReplicationController controllers (pkg/controller/replicaset), one class for both kinds.

Each sync claims the pods the selector matches (adopting orphans, releasing strays), then — when the
expectations of earlier creates/deletes are satisfied — creates missing pods in slow-start batches
(1, 2, 4, ...) or deletes surplus ones ranked like upstream, and finally writes status through /status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubemark.client import APIError, RestClient, is_conflict, is_not_found, namespaced_key, resource_path
from kubemark.kube.labels import LabelSelectorError, Selector, selector_from_label_selector
from kubemark.kube.meta import parse_time
from kubemark.master.controllers.base import Controller, Obj, SharedInformers
from kubemark.master.controllers.expectations import Expectations
from kubemark.master.controllers.ownership import (
    claim,
    controller_ref,
    is_active_pod,
    is_deleting,
    is_pod_available,
    is_pod_ready,
    labels_of,
    meta,
    owner_reference,
    pod_from_template,
    pod_phase,
    ready_since,
    recheck_deletion,
    resolve_controller_ref,
    uid_of,
)
from kubemark.master.controllers.workqueue import QueueMetrics

log = logging.getLogger(__name__)

BURST_REPLICAS = 500
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


@dataclass(frozen=True, slots=True)
class ReplicaKind:
    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


REPLICA_SET = ReplicaKind("apps", "v1", "replicasets", "ReplicaSet")
REPLICATION_CONTROLLER = ReplicaKind("", "v1", "replicationcontrollers", "ReplicationController")


def selector_of(kind: ReplicaKind, obj: Obj) -> Selector:
    raw = (obj.get("spec") or {}).get("selector")
    try:
        if kind is REPLICATION_CONTROLLER:
            # An RC selector is a plain map; an empty one was defaulted to the template labels by the server.
            return selector_from_label_selector({"matchLabels": raw or {}}) if raw else Selector.nothing()
        return selector_from_label_selector(raw)
    except LabelSelectorError:
        return Selector.nothing()


def slow_start_sizes(count: int, initial: int = 1) -> list[int]:
    """controller.slowStartBatch batch sizes: 1, 2, 4, ... summing to count."""
    sizes: list[int] = []
    remaining = count
    size = min(remaining, initial)
    while size > 0:
        sizes.append(size)
        remaining -= size
        size = min(2 * size, remaining)
    return sizes


async def create_in_slow_start(
    client: RestClient, path: str, body: Obj, count: int
) -> tuple[int, BaseException | None]:
    """POST `body` `count` times in slow-start batches (1, 2, 4, ...), stopping after the first batch with a
    failure, as controller.slowStartBatch does; returns (created, first error)."""
    created = 0
    for size in slow_start_sizes(count):
        results = await asyncio.gather(*(client.create(path, body) for _ in range(size)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        created += size - len(failures)
        if failures:
            return created, failures[0]
    return created, None


def deletion_order_key(pod: Obj, rank: int) -> tuple[Any, ...]:
    """controller.ActivePodsWithRanks: pods sorting first are deleted first."""
    spec, md, status = pod.get("spec") or {}, meta(pod), pod.get("status") or {}
    assigned = 1 if spec.get("nodeName") else 0
    phase = _PHASE_RANK.get(pod_phase(pod), 3)
    ready = 1 if is_pod_ready(pod) else 0
    try:
        cost = int((md.get("annotations") or {}).get(POD_DELETION_COST, 0))
    except ValueError:
        cost = 0
    since = ready_since(pod) if ready else None
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or ())
    created = md.get("creationTimestamp")
    created_at = parse_time(created) if created else 0.0
    return (assigned, phase, ready, cost, -rank, -(since or 0.0), -restarts, -created_at)


def pods_to_delete(pods: list[Obj], count: int) -> list[Obj]:
    """The `count` pods upstream would delete first; rank = active pods sharing the pod's node."""
    per_node: dict[str, int] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        per_node[node] = per_node.get(node, 0) + 1
    ranked = sorted(
        pods,
        key=lambda p: deletion_order_key(p, per_node.get((p.get("spec") or {}).get("nodeName") or "", 0)),
    )
    return ranked[:count]


def compute_status(obj: Obj, pods: list[Obj], now: float) -> dict[str, Any]:
    """replicaset.calculateStatus (conditions kept as they are)."""
    spec = obj.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    fully = ready = available = 0
    for pod in pods:
        labels = labels_of(pod)
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully += 1
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
    status: dict[str, Any] = {
        "replicas": len(pods),
        "fullyLabeledReplicas": fully,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": meta(obj).get("generation", 0),
    }
    conditions = (obj.get("status") or {}).get("conditions")
    if conditions:
        status["conditions"] = conditions
    return status


_STATUS_FIELDS = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration")


def _status_view(status: dict[str, Any]) -> tuple[Any, ...]:
    return (*(status.get(k) or 0 for k in _STATUS_FIELDS), status.get("conditions") or [])


class ReplicaSetController(Controller):
    """Keeps `spec.replicas` active pods per ReplicaSet (or ReplicationController)."""

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        kind: ReplicaKind = REPLICA_SET,
        workers: int = 5,
        burst_replicas: int = BURST_REPLICAS,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.name = "replicaset" if kind is REPLICA_SET else "replicationmanager"
        super().__init__(client, informers, workers=workers, metrics=metrics, clock=clock)
        self.kind = kind
        self.burst_replicas = burst_replicas
        self.expectations = Expectations()
        self.owners = self.use(kind.group, kind.version, kind.plural)
        self.owners_by_ns = informers.by_namespace(kind.group, kind.version, kind.plural)
        self.pods = self.use("", "v1", "pods")
        self.pods_by_controller = informers.by_controller("", "v1", "pods")
        self.owners.add_handler(self.enqueue, self._owner_updated, self._owner_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # -- event handlers -------------------------------------------------------------------------------------

    def _owner_updated(self, old: Obj, new: Obj) -> None:
        self.enqueue(new)

    def _owner_deleted(self, obj: Obj) -> None:
        key = namespaced_key(obj)
        self.expectations.delete(key)
        self.queue.add(key)

    def _resolve(self, namespace: str, ref: dict[str, Any] | None) -> str | None:
        return resolve_controller_ref(namespace, ref, self.kind.kind, self.owners)

    def _matching_owners(self, pod: Obj) -> list[str]:
        namespace = meta(pod).get("namespace") or ""
        labels = labels_of(pod)
        return [
            namespaced_key(o) for o in self.owners_by_ns.get(namespace) if selector_of(self.kind, o).matches(labels)
        ]

    def _pod_added(self, pod: Obj) -> None:
        if is_deleting(pod):
            self._pod_deleted(pod)
            return
        namespace = meta(pod).get("namespace") or ""
        ref = controller_ref(pod)
        if ref is not None:
            key = self._resolve(namespace, ref)
            if key is not None:
                self.expectations.creation_observed(key)
                self.queue.add(key)
            return
        for key in self._matching_owners(pod):
            self.queue.add(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        namespace = meta(new).get("namespace") or ""
        labels_changed = labels_of(old) != labels_of(new)
        if is_deleting(new) and not is_deleting(old):
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        ref_changed = (old_ref or {}).get("uid") != (new_ref or {}).get("uid")
        if ref_changed and old_ref is not None:
            key = self._resolve(namespace, old_ref)
            if key is not None:
                self.queue.add(key)
        if new_ref is not None:
            key = self._resolve(namespace, new_ref)
            if key is None:
                return
            self.queue.add(key)
            owner = self.owners.get(key) or {}
            min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(new):
                self.queue.add_after(key, float(min_ready))  # re-check availability once it is due
            return
        if labels_changed or ref_changed:
            for key in self._matching_owners(new):
                self.queue.add(key)

    def _pod_deleted(self, pod: Obj) -> None:
        namespace = meta(pod).get("namespace") or ""
        key = self._resolve(namespace, controller_ref(pod))
        if key is None:
            return
        self.expectations.deletion_observed(key, uid_of(pod))
        self.queue.add(key)

    # -- sync -----------------------------------------------------------------------------------------------

    def _path(self, namespace: str, name: str | None = None, sub: str | None = None) -> str:
        k = self.kind
        return resource_path(k.group, k.version, k.plural, namespace, name, sub)

    async def sync(self, key: str) -> None:
        owner = self.owners.get(key)
        if owner is None:
            self.expectations.delete(key)
            return
        namespace, name = key.split("/", 1)
        needs_sync = self.expectations.satisfied(key)
        selector = selector_of(self.kind, owner)
        ref = owner_reference(owner, self.kind.api_version, self.kind.kind)

        can_adopt = recheck_deletion(self.client, self._path(namespace, name), owner)

        # Its own pods and the namespace's orphans: pods of other controllers are skipped by claim anyway.
        own = self.pods_by_controller.get(uid_of(owner)) + self.pods_by_controller.get(f"orphan/{namespace}")
        candidates = [p for p in own if is_active_pod(p)]
        pods = await claim(
            self.client,
            owner,
            ref,
            selector,
            candidates,
            lambda p: resource_path("", "v1", "pods", namespace, meta(p).get("name")),
            can_adopt,
        )
        manage_error: Exception | None = None
        if needs_sync and not is_deleting(owner):
            try:
                await self._manage_replicas(key, owner, pods, ref)
            except APIError as exc:
                manage_error = exc
        status = compute_status(owner, pods, self.clock())
        updated = await self._update_status(owner, status)
        if manage_error is not None:
            raise manage_error
        spec_replicas = int((owner.get("spec") or {}).get("replicas", 1))
        min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
        final = (updated or owner).get("status") or status
        if (
            min_ready > 0
            and final.get("readyReplicas") == spec_replicas
            and final.get("availableReplicas") != spec_replicas
        ):
            self.queue.add_after(key, float(min_ready))

    async def _manage_replicas(self, key: str, owner: Obj, pods: list[Obj], ref: dict[str, Any]) -> None:
        namespace = meta(owner).get("namespace") or ""
        spec = owner.get("spec") or {}
        diff = len(pods) - int(spec.get("replicas", 1))
        if diff < 0:
            count = min(-diff, self.burst_replicas)
            self.expectations.expect_creations(key, count)
            template = spec.get("template") or {}
            body = pod_from_template(template, namespace, f"{meta(owner).get('name')}-", ref)
            path = resource_path("", "v1", "pods", namespace)
            created, error = await create_in_slow_start(self.client, path, body, count)
            skipped = count - created
            if skipped > 0:
                # Creates never issued or failed: the informer will not see them.
                self.expectations.creation_observed(key, skipped)
            if error is not None:
                if isinstance(error, APIError):
                    raise error
                raise RuntimeError(f"creating pods for {key}: {error!r}") from error
        elif diff > 0:
            count = min(diff, self.burst_replicas)
            victims = pods_to_delete(pods, count)
            self.expectations.expect_deletions(key, [uid_of(p) for p in victims])
            results = await asyncio.gather(
                *(self.client.delete(resource_path("", "v1", "pods", namespace, meta(p).get("name"))) for p in victims),
                return_exceptions=True,
            )
            error = None
            for pod, result in zip(victims, results, strict=True):
                if isinstance(result, BaseException):
                    self.expectations.deletion_observed(key, uid_of(pod))
                    if not (isinstance(result, APIError) and is_not_found(result)):
                        error = error or result
            if error is not None:
                raise error

    async def _update_status(self, owner: Obj, status: dict[str, Any]) -> Obj | None:
        if _status_view(status) == _status_view(owner.get("status") or {}):
            return None
        md = meta(owner)
        path = self._path(md.get("namespace") or "", md.get("name"), "status")
        current = owner
        for attempt in range(2):
            body = dict(current)
            body["status"] = status
            try:
                return await self.client.replace(path, body)
            except APIError as exc:
                if is_not_found(exc):
                    return None
                if not is_conflict(exc) or attempt == 1:
                    raise
                current = await self.client.get(self._path(md.get("namespace") or "", md.get("name")))
                status = {**status, "observedGeneration": meta(current).get("generation", 0)}
        return None

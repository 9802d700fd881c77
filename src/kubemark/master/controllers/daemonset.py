"""DaemonSet controller (pkg/controller/daemon): one pod per node that should run it, bound by the scheduler.

For each DaemonSet a sync claims its pods (adopting orphans its selector matches), maps them to nodes (the
pod's spec.nodeName, or the node its required node affinity names), syncs the ControllerRevision of its
template (`history`), and then, as DaemonSetsController.manage does:
- a node should run the daemon when it matches the template's nodeSelector and required node affinity and
  every NoSchedule/NoExecute taint is tolerated by the template's tolerations plus the ones every daemon pod
  gets (not-ready/unreachable NoExecute, disk/memory/pid-pressure and unschedulable NoSchedule, and
  network-unavailable for host-network pods);
- such a node without a pod gets one, created from the template with those tolerations and a required node
  affinity term `metadata.name In [<node>]` (the default scheduler then binds it, as upstream), in slow-start
  batches guarded by expectations; a failed pod is deleted (and recreated on the next pass); surplus pods on
  one node are deleted, oldest kept; pods on nodes that should not run the daemon, or not yet bound pods whose
  node is gone, are deleted;
- RollingUpdate replaces pods of an older revision: with maxSurge 0, up to maxUnavailable (int or percent of
  the desired count, rounded up) old pods are deleted at a time, unavailable old pods first and free; with a
  surge, new pods start beside old ones on up to maxSurge nodes and an old pod goes once its node's new pod
  is available. OnDelete leaves old pods alone;
- status (desired/current/updatedNumberScheduled, numberMisscheduled, numberReady, numberAvailable,
  numberUnavailable, observedGeneration, collisionCount) is written through /status.
Pods carry controller-revision-hash and pod-template-generation labels.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubemark.client import APIError, RestClient, is_conflict, is_not_found, resource_path
from kubemark.kube.daemonset import template_generation
from kubemark.kube.intstr import scaled_value
from kubemark.kube.labels import LabelSelectorError, Selector, selector_from_label_selector
from kubemark.kube.meta import parse_time
from kubemark.master.controllers.base import Controller, Obj, SharedInformers
from kubemark.master.controllers.expectations import Expectations
from kubemark.master.controllers.history import CONTROLLER_REVISION_HASH, RevisionHistory
from kubemark.master.controllers.ownership import (
    claim,
    controller_ref,
    is_deleting,
    is_pod_available,
    is_pod_ready,
    labels_of,
    meta,
    owner_reference,
    pod_phase,
    recheck_deletion,
    resolve_controller_ref,
    uid_of,
)
from kubemark.master.controllers.replicaset import slow_start_sizes
from kubemark.master.controllers.workqueue import QueueMetrics
from kubemark.master.scheduler.filters import node_matches_term
from kubemark.master.scheduler.pod_info import Toleration

log = logging.getLogger(__name__)

API_VERSION = "apps/v1"
KIND = "DaemonSet"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
BURST_REPLICAS = 250
# util.AddOrUpdateDaemonPodTolerations: (key, effect) every daemon pod tolerates (operator Exists).
DAEMON_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
HOST_NETWORK_TOLERATION = ("node.kubernetes.io/network-unavailable", "NoSchedule")


def selector_of(ds: Obj) -> Selector:
    try:
        return selector_from_label_selector((ds.get("spec") or {}).get("selector"))
    except LabelSelectorError:
        return Selector.nothing()


def daemon_tolerations(pod_spec: Obj) -> list[Obj]:
    """The template's tolerations plus the daemon ones it lacks (AddOrUpdateTolerationInPodSpec keeps the
    pod's own toleration when one with the same key, operator and effect exists)."""
    tolerations = [t for t in pod_spec.get("tolerations") or () if isinstance(t, dict)]
    wanted = list(DAEMON_TOLERATIONS)
    if pod_spec.get("hostNetwork"):
        wanted.append(HOST_NETWORK_TOLERATION)
    for key, effect in wanted:
        if not any(
            t.get("key") == key and t.get("effect") == effect and t.get("operator") == "Exists" for t in tolerations
        ):
            tolerations.append({"key": key, "operator": "Exists", "effect": effect})
    return tolerations


def with_node_affinity(pod_spec: Obj, node_name: str) -> None:
    """util.ReplaceDaemonSetPodNodeNameNodeAffinity: every required term pins metadata.name to the node."""
    requirement = {"key": "metadata.name", "operator": "In", "values": [node_name]}
    affinity = pod_spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = [t for t in required.get("nodeSelectorTerms") or () if isinstance(t, dict)]
    if not terms:
        terms = [{"matchFields": [requirement]}]
    else:
        for term in terms:
            term["matchFields"] = [requirement]
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": terms}


def target_node(pod: Obj) -> str:
    """util.GetTargetNodeName: spec.nodeName, else the node a required matchFields term names."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
    ) or {}
    for term in required.get("nodeSelectorTerms") or ():
        for requirement in term.get("matchFields") or ():
            values: list[Any] = requirement.get("values") or []
            if requirement.get("key") == "metadata.name" and requirement.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return ""


def should_run(ds: Obj, node: Obj) -> bool:
    """NodeShouldRunDaemonPod: node selector, required node affinity and NoSchedule/NoExecute taints."""
    pod_spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    node_name = meta(node).get("name") or ""
    labels = labels_of(node)
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (
        ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
    ) or None
    if required is not None and not any(
        node_matches_term(t, labels, node_name) for t in required.get("nodeSelectorTerms") or ()
    ):
        return False
    tolerations = [
        Toleration(
            str(t.get("key") or ""), str(t.get("operator") or ""), str(t.get("value") or ""), str(t.get("effect") or "")
        )
        for t in daemon_tolerations(pod_spec)
    ]
    for taint in (node.get("spec") or {}).get("taints") or ():
        effect = taint.get("effect")
        if effect not in ("NoSchedule", "NoExecute"):
            continue
        key, value = str(taint.get("key") or ""), str(taint.get("value") or "")
        if not any(t.tolerates(key, value, str(effect)) for t in tolerations):
            return False
    return True


def _created_at(pod: Obj) -> float:
    stamp = meta(pod).get("creationTimestamp")
    try:
        return parse_time(stamp) if stamp else 0.0
    except ValueError:
        return 0.0


@dataclass
class _NodePlan:
    """Per-node view of one DaemonSet's pods."""

    should_run: bool
    pods: list[Obj] = field(default_factory=list)  # active (not terminating) pods, oldest first


class DaemonSetController(Controller):
    """Runs one pod of each DaemonSet on every node that should run it."""

    name = "daemonset"

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        workers: int = 2,
        burst_replicas: int = BURST_REPLICAS,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(client, informers, workers=workers, metrics=metrics, clock=clock)
        self.burst_replicas = burst_replicas
        self.expectations = Expectations()
        self.sets = self.use("apps", "v1", "daemonsets")
        self.sets_by_ns = informers.by_namespace("apps", "v1", "daemonsets")
        self.pods = self.use("", "v1", "pods")
        self.pods_by_controller = informers.by_controller("", "v1", "pods")
        self.nodes = self.use("", "v1", "nodes")
        self.use("apps", "v1", "controllerrevisions")
        self.history = RevisionHistory(
            client, informers.by_controller("apps", "v1", "controllerrevisions"), API_VERSION, KIND
        )
        self.sets.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self._set_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.nodes.add_handler(self._node_changed, self._node_updated, self._node_changed)

    # -- event handlers -------------------------------------------------------------------------------------

    def _set_deleted(self, ds: Obj) -> None:
        key = f"{meta(ds).get('namespace')}/{meta(ds).get('name')}"
        self.expectations.delete(key)
        self.queue.add(key)

    def _owner_key(self, pod: Obj) -> str | None:
        return resolve_controller_ref(meta(pod).get("namespace"), controller_ref(pod), KIND, self.sets)

    def _pod_added(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)
        elif controller_ref(pod) is None:
            self._enqueue_matching(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        key = self._owner_key(new)
        if key is not None:
            if is_deleting(new) and not is_deleting(old):
                self.expectations.deletion_observed(key, uid_of(new))
            self.queue.add(key)
            ds = self.sets.get(key) or {}
            min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(new):
                self.queue.add_after(key, float(min_ready))
        old_key = self._owner_key(old)
        if old_key is not None and old_key != key:
            self.queue.add(old_key)
        if key is None and controller_ref(new) is None and labels_of(old) != labels_of(new):
            self._enqueue_matching(new)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, uid_of(pod))
            self.queue.add(key)

    def _enqueue_matching(self, pod: Obj) -> None:
        for ds in self.sets_by_ns.get(meta(pod).get("namespace") or ""):
            if selector_of(ds).matches(labels_of(pod)):
                self.enqueue(ds)

    def _node_changed(self, node: Obj) -> None:
        for ds in self.sets.list():
            self.enqueue(ds)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        # Only what decides shouldRun: labels, taints (the scheduler cares about the rest).
        if labels_of(old) != labels_of(new) or (old.get("spec") or {}).get("taints") != (new.get("spec") or {}).get(
            "taints"
        ):
            self._node_changed(new)

    # -- sync -----------------------------------------------------------------------------------------------

    def _path(self, namespace: str, name: str | None = None, sub: str | None = None) -> str:
        return resource_path("apps", "v1", "daemonsets", namespace, name, sub)

    async def sync(self, key: str) -> None:
        ds = self.sets.get(key)
        if ds is None:
            self.expectations.delete(key)
            return
        namespace, name = key.split("/", 1)

        can_adopt = recheck_deletion(self.client, self._path(namespace, name), ds)

        candidates = self.pods_by_controller.get(uid_of(ds)) + self.pods_by_controller.get(f"orphan/{namespace}")
        pods = await claim(
            self.client,
            ds,
            owner_reference(ds, API_VERSION, KIND),
            selector_of(ds),
            candidates,
            lambda p: resource_path("", "v1", "pods", namespace, meta(p).get("name")),
            can_adopt,
        )
        revisions = await self.history.sync_revisions(ds)
        plans = self._plans(ds, pods)
        error: Exception | None = None
        if not is_deleting(ds) and self.expectations.satisfied(key):
            try:
                await self._manage(key, ds, plans, pods, revisions.hash)
            except APIError as exc:
                error = exc
        status = self._status(ds, plans, revisions.hash, revisions.collision_count)
        await self._update_status(ds, status)
        live = {meta(revisions.update).get("name") or ""}
        hashes = {labels_of(p).get(CONTROLLER_REVISION_HASH) for p in pods}
        live |= {
            meta(r).get("name") or ""
            for r in self.history.owned(ds)
            if labels_of(r).get(CONTROLLER_REVISION_HASH) in hashes
        }
        await self.history.truncate(ds, live)
        if error is not None:
            raise error
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0 and status["numberReady"] != status.get("numberAvailable", 0):
            self.queue.add_after(key, float(min_ready))

    def _plans(self, ds: Obj, pods: list[Obj]) -> dict[str, _NodePlan]:
        plans = {meta(n).get("name") or "": _NodePlan(should_run(ds, n)) for n in self.nodes.list()}
        for pod in sorted(pods, key=_created_at):
            if is_deleting(pod):
                continue
            node = target_node(pod)
            plan = plans.get(node)
            if plan is None:
                plan = plans[node] = _NodePlan(False)  # its node is gone (or it names none)
            plan.pods.append(pod)
        return plans

    async def _manage(self, key: str, ds: Obj, plans: dict[str, _NodePlan], pods: list[Obj], hash_: str) -> None:
        to_create: list[str] = []
        to_delete: list[Obj] = []
        existing = {meta(n).get("name") or "" for n in self.nodes.list()}
        for node, plan in plans.items():
            if not plan.should_run:
                # Misscheduled pods and unbound pods of a deleted node are ours; bound ones of a deleted node
                # are pod GC's (orphaned pods), as upstream.
                gone = node not in existing
                to_delete += [p for p in plan.pods if not (gone and (p.get("spec") or {}).get("nodeName"))]
                continue
            if not plan.pods:
                to_create.append(node)
                continue
            failed = [p for p in plan.pods if pod_phase(p) == "Failed"]
            to_delete += failed
            if failed and len(failed) == len(plan.pods):
                continue  # recreated once the failed one is gone (upstream backs off the same way)
            healthy = [p for p in plan.pods if p not in failed]
            if len(healthy) > 1 and not self._surging(ds, healthy, hash_):
                to_delete += healthy[1:]  # keep the oldest
        to_delete += self._rolling_update_victims(ds, plans, hash_, to_create)
        await self._sync_nodes(key, ds, to_create, to_delete, hash_)

    def _surging(self, ds: Obj, pods: list[Obj], hash_: str) -> bool:
        """Two pods on a node are a surge in progress (one old, one new) under a RollingUpdate with maxSurge."""
        rolling = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
        if len(pods) != 2 or not scaled_value(rolling.get("maxSurge", 0), 1):
            return False
        return {labels_of(p).get(CONTROLLER_REVISION_HASH) == hash_ for p in pods} == {True, False}

    def _rolling_update_victims(
        self, ds: Obj, plans: dict[str, _NodePlan], hash_: str, to_create: list[str]
    ) -> list[Obj]:
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type") != "RollingUpdate":
            return []
        rolling = strategy.get("rollingUpdate") or {}
        desired = sum(1 for p in plans.values() if p.should_run)
        max_unavailable = scaled_value(rolling.get("maxUnavailable", 1), desired)
        max_surge = scaled_value(rolling.get("maxSurge", 0), desired)
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        now = self.clock()

        def available(pod: Obj) -> bool:
            return is_pod_available(pod, min_ready, now)

        def is_new(pod: Obj) -> bool:
            return labels_of(pod).get(CONTROLLER_REVISION_HASH) == hash_

        victims: list[Obj] = []
        if max_surge > 0:
            # Surge: start a new pod beside the old one, then remove the old once the new one is available.
            surging = 0
            candidates: list[str] = []
            for node, plan in plans.items():
                if not plan.should_run or not plan.pods:
                    continue
                old = [p for p in plan.pods if not is_new(p)]
                new = [p for p in plan.pods if is_new(p)]
                if not old:
                    continue
                if new:
                    surging += 1
                    if available(new[0]):
                        victims += old
                elif not any(available(p) for p in old):
                    victims += old  # an unavailable old pod is replaced without surging
                else:
                    candidates.append(node)
            to_create += candidates[: max(0, max_surge - surging)]
            return victims
        unavailable = 0
        old_available: list[Obj] = []
        for plan in plans.values():
            if not plan.should_run:
                continue
            if not plan.pods or not any(available(p) for p in plan.pods):
                unavailable += 1
            for pod in plan.pods:
                if is_new(pod):
                    continue
                if available(pod):
                    old_available.append(pod)
                else:
                    victims.append(pod)  # already down: replacing it costs nothing
        budget = max_unavailable - unavailable
        return victims + old_available[: max(0, budget)]

    async def _sync_nodes(self, key: str, ds: Obj, nodes: list[str], victims: list[Obj], hash_: str) -> None:
        namespace = meta(ds).get("namespace") or ""
        nodes = nodes[: self.burst_replicas]
        unique: dict[str, Obj] = {uid_of(p): p for p in victims}
        victims = list(unique.values())[: self.burst_replicas]
        errors: list[BaseException] = []
        if victims:
            self.expectations.expect_deletions(key, [uid_of(p) for p in victims])
            results = await asyncio.gather(
                *(
                    self.client.delete(
                        resource_path("", "v1", "pods", namespace, meta(p).get("name")),
                        preconditions={"uid": uid_of(p)},
                    )
                    for p in victims
                ),
                return_exceptions=True,
            )
            for pod, result in zip(victims, results, strict=True):
                if isinstance(result, BaseException):
                    self.expectations.deletion_observed(key, uid_of(pod))
                    if not (isinstance(result, APIError) and (is_not_found(result) or is_conflict(result))):
                        errors.append(result)
        if nodes:
            template = (ds.get("spec") or {}).get("template") or {}
            generation = template_generation(ds)
            path = resource_path("", "v1", "pods", namespace)
            self.expectations.expect_creations(key, len(nodes))
            created = 0
            error: BaseException | None = None
            for node_batch in _batches(nodes):
                bodies = [self._pod_for(ds, template, node, hash_, generation) for node in node_batch]
                results = await asyncio.gather(*(self.client.create(path, b) for b in bodies), return_exceptions=True)
                failures = [r for r in results if isinstance(r, BaseException)]
                created += len(node_batch) - len(failures)
                if failures:
                    error = failures[0]
                    break
            skipped = len(nodes) - created
            if skipped:
                self.expectations.creation_observed(key, skipped)
            if error is not None:
                errors.append(error)
        if errors:
            first = errors[0]
            raise first if isinstance(first, APIError) else RuntimeError(f"syncing {key}: {first!r}")

    def _pod_for(self, ds: Obj, template: Obj, node: str, hash_: str, generation: int) -> Obj:
        """controller.GetPodFromTemplate + the daemon tolerations and node affinity for `node`."""
        tmeta = template.get("metadata") or {}
        labels = dict(tmeta.get("labels") or {})
        labels[CONTROLLER_REVISION_HASH] = hash_
        labels[TEMPLATE_GENERATION_LABEL] = str(generation)
        md: dict[str, Any] = {
            "generateName": f"{meta(ds).get('name')}-",
            "namespace": meta(ds).get("namespace") or "",
            "labels": labels,
            "ownerReferences": [owner_reference(ds, API_VERSION, KIND)],
        }
        if tmeta.get("annotations"):
            md["annotations"] = dict(tmeta["annotations"])
        if tmeta.get("finalizers"):
            md["finalizers"] = list(tmeta["finalizers"])
        spec = copy.deepcopy(template.get("spec") or {})
        spec["tolerations"] = daemon_tolerations(spec)
        with_node_affinity(spec, node)
        return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}

    def _status(self, ds: Obj, plans: dict[str, _NodePlan], hash_: str, collision_count: int) -> dict[str, Any]:
        """updateDaemonSetStatus."""
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        now = self.clock()
        generation = str(template_generation(ds))
        desired = current = misscheduled = ready = available = updated = 0
        for plan in plans.values():
            scheduled = bool(plan.pods)
            if plan.should_run:
                desired += 1
                if scheduled:
                    current += 1
                    pod = plan.pods[0]
                    if is_pod_ready(pod):
                        ready += 1
                        if is_pod_available(pod, min_ready, now):
                            available += 1
                    pod_labels = labels_of(pod)
                    if (
                        pod_labels.get(CONTROLLER_REVISION_HASH) == hash_
                        or pod_labels.get(TEMPLATE_GENERATION_LABEL) == generation
                    ):
                        updated += 1
            elif scheduled:
                misscheduled += 1
        status: dict[str, Any] = {
            "currentNumberScheduled": current,
            "numberMisscheduled": misscheduled,
            "desiredNumberScheduled": desired,
            "numberReady": ready,
            "observedGeneration": meta(ds).get("generation", 0),
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
            "numberUnavailable": desired - available,
        }
        if collision_count:
            status["collisionCount"] = collision_count
        conditions = (ds.get("status") or {}).get("conditions")
        if conditions:
            status["conditions"] = conditions
        return {k: v for k, v in status.items() if v or k in _ALWAYS}

    async def _update_status(self, ds: Obj, status: dict[str, Any]) -> None:
        if status == (ds.get("status") or {}):
            return
        md = meta(ds)
        namespace, name = md.get("namespace") or "", md.get("name")
        current = ds
        for attempt in range(2):
            body = dict(current)
            body["status"] = status
            try:
                await self.client.replace(self._path(namespace, name, "status"), body)
                return
            except APIError as exc:
                if is_not_found(exc):
                    return
                if not is_conflict(exc) or attempt == 1:
                    raise
                current = await self.client.get(self._path(namespace, name))
                status = {**status, "observedGeneration": meta(current).get("generation", 0)}


# DaemonSetStatus fields without omitempty (always serialized, 0 included).
_ALWAYS = frozenset({"currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"})


def _batches(items: list[str]) -> list[list[str]]:
    """Slow-start batches (1, 2, 4, ...) of `items` (controller.slowStartBatch)."""
    out: list[list[str]] = []
    done = 0
    for size in slow_start_sizes(len(items)):
        out.append(items[done : done + size])
        done += size
    return out

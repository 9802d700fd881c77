"""StatefulSet controller (pkg/controller/statefulset): stable pod names, ordered or parallel, with claims.

A sync claims the set's pods (adopting orphans its selector matches, releasing the rest), finds or creates the
ControllerRevision of its template (`history`), and then, as StatefulSetControl.UpdateStatefulSet does:
- pods `<set>-<ordinal>` for ordinals [start, start+replicas) are the replicas, others are condemned;
- missing replicas are created (their PersistentVolumeClaims `<template>-<set>-<ordinal>` first), failed or
  succeeded ones deleted to be recreated; with OrderedReady one at a time and only once every lower ordinal
  is Running and Ready, with Parallel all at once;
- condemned pods are deleted from the highest ordinal down (OrderedReady: one at a time, waiting while any
  pod is unhealthy; Parallel: all at once);
- with the RollingUpdate strategy, once every replica exists, pods of an older revision with ordinal >=
  partition are deleted from the highest ordinal down, at most maxUnavailable (1 by default) unavailable at
  a time, and come back at the update revision;
- status (replicas, readyReplicas, availableReplicas, currentReplicas, updatedReplicas, current/update
  revision, collisionCount, observedGeneration) is written through /status.
Pods get the labels statefulset.kubernetes.io/pod-name, apps.kubernetes.io/pod-index and
controller-revision-hash, hostname = pod name and subdomain = spec.serviceName.

The PersistentVolumeClaim retention policy (StatefulSetAutoDeletePVC, GA): with whenDeleted: Delete a claim is
created owned by the set, with whenScaled: Delete a condemned pod's claims get the pod as owner before it is
deleted (the garbage collector does the rest), and a claim reused on scale-up loses that pod reference.
Not implemented: re-owning existing claims when the policy is changed later.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kubemark.client import APIError, RestClient, is_conflict, is_not_found, resource_path
from kubemark.kube.intstr import scaled_value
from kubemark.kube.labels import LabelSelectorError, Selector, selector_from_label_selector
from kubemark.master.controllers.base import Controller, Obj, SharedInformers
from kubemark.master.controllers.history import CONTROLLER_REVISION_HASH, RevisionHistory, Revisions, template_of
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

log = logging.getLogger(__name__)

API_VERSION = "apps/v1"
KIND = "StatefulSet"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_ORDINAL_RE = re.compile(r"^(.*)-([0-9]+)$")


def selector_of(sts: Obj) -> Selector:
    try:
        return selector_from_label_selector((sts.get("spec") or {}).get("selector"))
    except LabelSelectorError:
        return Selector.nothing()


def parent_and_ordinal(pod: Obj) -> tuple[str, int]:
    """getParentNameAndOrdinal: ("web", 2) for "web-2"; ("", -1) for a name without an ordinal."""
    match = _ORDINAL_RE.match(meta(pod).get("name") or "")
    if match is None:
        return "", -1
    return match.group(1), int(match.group(2))


def start_ordinal(sts: Obj) -> int:
    ordinals = (sts.get("spec") or {}).get("ordinals") or {}
    return int(ordinals.get("start") or 0)


def replicas_of(sts: Obj) -> int:
    return int((sts.get("spec") or {}).get("replicas", 1))


def claim_name(template_name: str, set_name: str, ordinal: int) -> str:
    """getPersistentVolumeClaimName."""
    return f"{template_name}-{set_name}-{ordinal}"


def is_created(pod: Obj) -> bool:
    return bool((pod.get("status") or {}).get("phase"))


def is_failed_or_succeeded(pod: Obj) -> bool:
    return pod_phase(pod) in ("Failed", "Succeeded")


def is_running_and_ready(pod: Obj) -> bool:
    return pod_phase(pod) == "Running" and is_pod_ready(pod)


def is_healthy(pod: Obj) -> bool:
    return is_running_and_ready(pod) and not is_deleting(pod)


def revision_of_pod(pod: Obj) -> str:
    return labels_of(pod).get(CONTROLLER_REVISION_HASH) or ""


def claim_owner_refs(refs: list[dict[str, Any]], sts: Obj, condemned: Obj | None) -> list[dict[str, Any]]:
    """updateClaimOwnerRefForSetAndPod: a claim's ownerReferences under the set's retention policy.

    The set's and the pod's references are scrubbed, then: whenScaled Delete makes a condemned pod the claim's
    controller (deleted with it); whenDeleted Delete makes the set the controller of a claim in range. A claim
    controlled by anything else is left to it.
    """
    set_uid, pod_uid = uid_of(sts), uid_of(condemned) if condemned is not None else None
    for ref in refs:
        if ref.get("controller") and ref.get("uid") not in (set_uid, pod_uid):
            return [r for r in refs if r.get("uid") not in (set_uid, pod_uid)]
    kept = [r for r in refs if r.get("uid") != set_uid and (pod_uid is None or r.get("uid") != pod_uid)]
    kept = [r for r in kept if r.get("kind") != "Pod" or condemned is not None]  # a reused claim drops old pods
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    if condemned is not None:
        if policy.get("whenScaled") == "Delete":
            kept.append(owner_reference(condemned, "v1", "Pod"))
    elif policy.get("whenDeleted") == "Delete":
        kept.append(owner_reference(sts, API_VERSION, KIND))
    return kept


def new_stateful_pod(sts: Obj, template: Obj, revision: str, ordinal: int) -> Obj:
    """newVersionedStatefulSetPod: the pod for `ordinal` from `template`, with identity and storage."""
    md = meta(sts)
    set_name = md.get("name") or ""
    spec = sts.get("spec") or {}
    name = f"{set_name}-{ordinal}"
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels.update({POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal), CONTROLLER_REVISION_HASH: revision})
    pod_md: dict[str, Any] = {
        "name": name,
        "namespace": md.get("namespace") or "",
        "labels": labels,
        "ownerReferences": [owner_reference(sts, API_VERSION, KIND)],
    }
    if tmeta.get("annotations"):
        pod_md["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        pod_md["finalizers"] = list(tmeta["finalizers"])
    pod_spec = copy.deepcopy(template.get("spec") or {})
    pod_spec["hostname"] = name
    if spec.get("serviceName"):
        pod_spec["subdomain"] = spec["serviceName"]
    claims = [c for c in spec.get("volumeClaimTemplates") or () if isinstance(c, dict)]
    if claims:
        by_name = {(c.get("metadata") or {}).get("name"): c for c in claims}
        volumes = [v for v in pod_spec.get("volumes") or () if v.get("name") not in by_name]
        for template_name in by_name:
            volumes.append(
                {
                    "name": template_name,
                    "persistentVolumeClaim": {"claimName": claim_name(str(template_name), set_name, ordinal)},
                }
            )
        pod_spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_md, "spec": pod_spec}


def new_claims(sts: Obj, ordinal: int) -> list[Obj]:
    """getPersistentVolumeClaims: one claim per template, labelled with the set's selector matchLabels."""
    md = meta(sts)
    spec = sts.get("spec") or {}
    match_labels = (spec.get("selector") or {}).get("matchLabels") or {}
    claims = []
    for template in spec.get("volumeClaimTemplates") or ():
        tmeta = template.get("metadata") or {}
        labels = {**(tmeta.get("labels") or {}), **match_labels}
        claim_md: dict[str, Any] = {
            "name": claim_name(tmeta.get("name") or "", md.get("name") or "", ordinal),
            "namespace": md.get("namespace") or "",
            "labels": labels,
        }
        if tmeta.get("annotations"):
            claim_md["annotations"] = dict(tmeta["annotations"])
        claims.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": claim_md,
                "spec": copy.deepcopy(template.get("spec") or {}),
            }
        )
    return claims


def compute_status(sts: Obj, pods: list[Obj], revisions: Revisions, now: float) -> dict[str, Any]:
    """computeReplicaStatus + completeRollingUpdate."""
    min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
    current_name = meta(revisions.current).get("name") or ""
    update_name = meta(revisions.update).get("name") or ""
    replicas = ready = available = current = updated = 0
    for pod in pods:
        if not is_created(pod):
            continue
        replicas += 1
        if is_running_and_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
        if not is_deleting(pod):
            revision = revision_of_pod(pod)
            if revision == current_name:
                current += 1
            if revision == update_name:
                updated += 1
    status: dict[str, Any] = {
        "observedGeneration": meta(sts).get("generation", 0),
        "replicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": available,
        "currentReplicas": current,
        "updatedReplicas": updated,
        "currentRevision": current_name,
        "updateRevision": update_name,
        "collisionCount": revisions.collision_count,
    }
    strategy = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("type")
    if strategy == "RollingUpdate" and updated == replicas_of(sts) and ready == replicas_of(sts) == replicas:
        status["currentReplicas"] = updated
        status["currentRevision"] = update_name
    conditions = (sts.get("status") or {}).get("conditions")
    if conditions:
        status["conditions"] = conditions
    # As serialized upstream: omitempty counts dropped at 0; replicas, availableReplicas and the collisionCount
    # pointer always present.
    return {k: v for k, v in status.items() if v != 0 or k in ("replicas", "availableReplicas", "collisionCount")}


@dataclass
class _Plan:
    """One sync's pods split by ordinal: replica slots (None = missing) and condemned pods, highest first."""

    replicas: dict[int, Obj | None] = field(default_factory=dict)
    condemned: list[Obj] = field(default_factory=list)


class StatefulSetController(Controller):
    """Keeps `spec.replicas` pods `<set>-<ordinal>` per StatefulSet, in order unless Parallel."""

    name = "statefulset"

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
        self.sets = self.use("apps", "v1", "statefulsets")
        self.sets_by_ns = informers.by_namespace("apps", "v1", "statefulsets")
        self.pods = self.use("", "v1", "pods")
        self.pods_by_controller = informers.by_controller("", "v1", "pods")
        self.use("apps", "v1", "controllerrevisions")
        self.history = RevisionHistory(
            client, informers.by_controller("apps", "v1", "controllerrevisions"), API_VERSION, KIND
        )
        self.sets.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.pods.add_handler(self._pod_event, self._pod_updated, self._pod_event)

    # -- event handlers -------------------------------------------------------------------------------------

    def _owner_key(self, pod: Obj) -> str | None:
        return resolve_controller_ref(meta(pod).get("namespace"), controller_ref(pod), KIND, self.sets)

    def _pod_event(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.queue.add(key)
        elif controller_ref(pod) is None:
            self._enqueue_matching(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        old_key, new_key = self._owner_key(old), self._owner_key(new)
        if old_key is not None and old_key != new_key:
            self.queue.add(old_key)
        if new_key is not None:
            self.queue.add(new_key)
            sts = self.sets.get(new_key) or {}
            min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(new):
                self.queue.add_after(new_key, float(min_ready))
        elif controller_ref(new) is None and (labels_of(old) != labels_of(new) or old_key is not None):
            self._enqueue_matching(new)

    def _enqueue_matching(self, pod: Obj) -> None:
        namespace = meta(pod).get("namespace") or ""
        for sts in self.sets_by_ns.get(namespace):
            if selector_of(sts).matches(labels_of(pod)):
                self.enqueue(sts)

    # -- sync -----------------------------------------------------------------------------------------------

    def _path(self, namespace: str, name: str | None = None, sub: str | None = None) -> str:
        return resource_path("apps", "v1", "statefulsets", namespace, name, sub)

    async def sync(self, key: str) -> None:
        sts = self.sets.get(key)
        if sts is None:
            return
        namespace, name = key.split("/", 1)

        can_adopt = recheck_deletion(self.client, self._path(namespace, name), sts)

        candidates = self.pods_by_controller.get(uid_of(sts)) + self.pods_by_controller.get(f"orphan/{namespace}")
        pods = await claim(
            self.client,
            sts,
            owner_reference(sts, API_VERSION, KIND),
            selector_of(sts),
            [p for p in candidates if parent_and_ordinal(p)[0] == name],
            lambda p: resource_path("", "v1", "pods", namespace, meta(p).get("name")),
            can_adopt,
        )
        revisions = await self.history.sync_revisions(sts)
        error: Exception | None = None
        if not is_deleting(sts):
            try:
                await self._update(sts, pods, revisions)
            except APIError as exc:
                error = exc
        status = compute_status(sts, pods, revisions, self.clock())
        await self._update_status(sts, status)
        live = {meta(revisions.current).get("name"), meta(revisions.update).get("name")}
        live |= {revision_of_pod(p) for p in pods}
        await self.history.truncate(sts, {n for n in live if n})
        if error is not None:
            raise error
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0 and status.get("readyReplicas", 0) != status.get("availableReplicas", 0):
            self.queue.add_after(key, float(min_ready))

    def _plan(self, sts: Obj, pods: list[Obj]) -> _Plan:
        start, count = start_ordinal(sts), replicas_of(sts)
        plan = _Plan(replicas=dict.fromkeys(range(start, start + count)))
        for pod in pods:
            ordinal = parent_and_ordinal(pod)[1]
            if ordinal in plan.replicas:
                plan.replicas[ordinal] = pod
            elif ordinal >= 0:
                plan.condemned.append(pod)
        plan.condemned.sort(key=lambda p: parent_and_ordinal(p)[1], reverse=True)
        return plan

    async def _update(self, sts: Obj, pods: list[Obj], revisions: Revisions) -> None:
        """UpdateStatefulSet's pod work for one pass (the next event or resync continues it)."""
        spec = sts.get("spec") or {}
        parallel = spec.get("podManagementPolicy") == "Parallel"
        plan = self._plan(sts, pods)
        update_name = meta(revisions.update).get("name") or ""
        # Failed or succeeded replicas are deleted and come back; missing ones are created.
        for ordinal, pod in plan.replicas.items():
            if pod is not None and is_failed_or_succeeded(pod) and not is_deleting(pod):
                await self._delete_pod(pod)
                plan.replicas[ordinal] = None
                if not parallel:
                    return
        missing = [o for o, p in plan.replicas.items() if p is None]
        if parallel:
            await self._create_pods(sts, revisions, missing)
        else:
            for ordinal in sorted(plan.replicas):
                pod = plan.replicas[ordinal]
                if pod is None:
                    await self._create_pods(sts, revisions, [ordinal])
                    return
                if not is_healthy(pod):
                    return  # OrderedReady: wait for this ordinal before touching the next
        if missing and not parallel:
            return
        # Scale down from the highest ordinal.
        condemned = [p for p in plan.condemned if not is_deleting(p)]
        if parallel:
            await asyncio.gather(*(self._condemn(sts, p) for p in condemned))
        elif plan.condemned:
            target = plan.condemned[0]
            unhealthy = [p for p in [*plan.replicas.values(), *plan.condemned] if p is not None and not is_healthy(p)]
            if is_deleting(target) or any(p is not target for p in unhealthy):
                return  # OrderedReady deletes one at a time, and only while everything else is healthy
            await self._condemn(sts, target)
            return
        if missing or plan.condemned:
            return
        await self._rolling_update(sts, plan, update_name)

    async def _rolling_update(self, sts: Obj, plan: _Plan, update_name: str) -> None:
        strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type") != "RollingUpdate":
            return  # OnDelete: pods are replaced only when someone deletes them
        rolling = strategy.get("rollingUpdate") or {}
        partition = int(rolling.get("partition") or 0)
        # getStatefulSetMaxUnavailable: the scaled value, and never below 1.
        max_unavailable = max(1, scaled_value(rolling.get("maxUnavailable", 1), replicas_of(sts)))
        replicas = [p for p in plan.replicas.values() if p is not None]
        unavailable = sum(1 for p in replicas if not is_healthy(p))
        outdated = sorted(
            (
                p
                for p in replicas
                if revision_of_pod(p) != update_name and parent_and_ordinal(p)[1] >= partition and not is_deleting(p)
            ),
            key=lambda p: parent_and_ordinal(p)[1],
            reverse=True,
        )
        budget = max_unavailable - unavailable
        # An outdated pod that is already unavailable costs no budget: it is down anyway.
        victims = [p for p in outdated if not is_healthy(p)]
        victims += [p for p in outdated if is_healthy(p)][: max(0, budget)]
        await asyncio.gather(*(self._delete_pod(p) for p in victims))

    async def _create_pods(self, sts: Obj, revisions: Revisions, ordinals: list[int]) -> None:
        if not ordinals:
            return
        namespace = meta(sts).get("namespace") or ""
        update_template = (sts.get("spec") or {}).get("template") or {}
        current_template = template_of(revisions.current) or update_template
        rolling = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
        partition = int(rolling.get("partition") or 0)
        current_name = meta(revisions.current).get("name") or ""
        update_name = meta(revisions.update).get("name") or ""

        async def create(ordinal: int) -> None:
            await self._ensure_claims(sts, ordinal)
            if ordinal < partition and current_name != update_name:
                pod = new_stateful_pod(sts, current_template, current_name, ordinal)
            else:
                pod = new_stateful_pod(sts, update_template, update_name, ordinal)
            try:
                await self.client.create(resource_path("", "v1", "pods", namespace), pod)
            except APIError as exc:
                if exc.status != 409:  # already there (our cache is behind): the next sync sees it
                    raise

        if len(ordinals) == 1:
            await create(ordinals[0])
            return
        # Parallel: slow-start batches (1, 2, 4, ...) like every controller that creates many pods.
        error = await slow_start_calls(create, sorted(ordinals))
        if error is not None:
            raise error

    async def _ensure_claims(self, sts: Obj, ordinal: int) -> None:
        """Create the ordinal's missing claims (owned as the retention policy says); a claim kept from an
        earlier pod of this ordinal is reused, its owners brought in line with the policy."""
        namespace = meta(sts).get("namespace") or ""
        path = resource_path("", "v1", "persistentvolumeclaims", namespace)
        for body in new_claims(sts, ordinal):
            refs = claim_owner_refs([], sts, None)
            if refs:
                body["metadata"]["ownerReferences"] = refs
            try:
                await self.client.create(path, body)
            except APIError as exc:
                if exc.status != 409:
                    raise
                await self._own_claim(sts, body["metadata"]["name"], None)

    async def _own_claim(self, sts: Obj, name: str, condemned: Obj | None) -> None:
        """updateClaimOwnerRefForSetAndPod on an existing claim: PATCH its ownerReferences when they change."""
        path = resource_path("", "v1", "persistentvolumeclaims", meta(sts).get("namespace") or "", name)
        try:
            claim = await self.client.get(path)
        except APIError as exc:
            if is_not_found(exc):
                return
            raise
        refs = (claim.get("metadata") or {}).get("ownerReferences") or []
        wanted = claim_owner_refs(refs, sts, condemned)
        if wanted != refs:
            patch = {
                "metadata": {"ownerReferences": wanted or None, "resourceVersion": meta(claim).get("resourceVersion")}
            }
            await self.client.patch(path, patch, "merge")

    async def _condemn(self, sts: Obj, pod: Obj) -> None:
        """Delete a pod beyond the replicas, its claims first re-owned (whenScaled: Delete makes the pod their
        owner, so the garbage collector deletes them with it)."""
        if (sts.get("spec") or {}).get("volumeClaimTemplates"):
            for body in new_claims(sts, parent_and_ordinal(pod)[1]):
                await self._own_claim(sts, body["metadata"]["name"], pod)
        await self._delete_pod(pod)

    async def _delete_pod(self, pod: Obj) -> None:
        md = meta(pod)
        path = resource_path("", "v1", "pods", md.get("namespace") or "", md.get("name"))
        try:
            await self.client.delete(path, preconditions={"uid": uid_of(pod)})
        except APIError as exc:
            if not is_not_found(exc) and not is_conflict(exc):
                raise

    async def _update_status(self, sts: Obj, status: dict[str, Any]) -> None:
        if status == (sts.get("status") or {}):
            return
        md = meta(sts)
        namespace, name = md.get("namespace") or "", md.get("name")
        current = sts
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


async def slow_start_calls(call: Callable[[int], Awaitable[None]], items: list[int]) -> BaseException | None:
    """`call(item)` for every item in slow-start batches (1, 2, 4, ...), stopping after a batch with a failure
    (controller.slowStartBatch); returns the first failure."""
    done = 0
    for size in slow_start_sizes(len(items)):
        batch = items[done : done + size]
        done += size
        results = await asyncio.gather(*(call(i) for i in batch), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            return failures[0]
    return None

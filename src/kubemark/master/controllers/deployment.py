"""Deployment controller (pkg/controller/deployment): ReplicaSets per pod-template hash, rolling or recreate.

One sync: claim ReplicaSets, then (deleting -> status only; paused or a scaling event -> proportional scale;
otherwise the rollout strategy), revision annotations, revisionHistoryLimit cleanup and a status with the
Available / Progressing conditions `kubectl rollout status` reads.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from kubemark.client import (
    APIError,
    RestClient,
    is_already_exists,
    is_conflict,
    is_not_found,
    namespaced_key,
    resource_path,
)
from kubemark.client.informer import namespaced_key_from
from kubemark.kube.labels import LabelSelectorError, Selector, selector_from_label_selector
from kubemark.kube.meta import now_rfc3339, parse_time
from kubemark.master.controllers import rollout as ro
from kubemark.master.controllers.base import Controller, Obj, SharedInformers
from kubemark.master.controllers.ownership import (
    claim,
    controller_ref,
    is_deleting,
    labels_of,
    meta,
    owner_reference,
    pod_phase,
    recheck_deletion,
    resolve_controller_ref,
    uid_of,
)
from kubemark.master.controllers.workqueue import QueueMetrics

log = logging.getLogger(__name__)

AVAILABLE = "Available"
PROGRESSING = "Progressing"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MAX_INT32 = 2**31 - 1

# The status being built by the current sync (conditions set while finding/creating the new ReplicaSet).
# Per worker task, so concurrent syncs of different deployments never share it.
_WORK_STATUS: ContextVar[dict[str, Any]] = ContextVar("deployment_work_status")


def _selector(d: Obj) -> Selector:
    try:
        return selector_from_label_selector((d.get("spec") or {}).get("selector"))
    except LabelSelectorError:
        return Selector.nothing()


def get_condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or ():
        if cond.get("type") == kind:
            return cond
    return None


def set_condition(status: dict[str, Any], kind: str, value: str, reason: str, message: str, now: str) -> None:
    """deploymentutil.SetDeploymentCondition: no-op when status and reason are unchanged."""
    current = get_condition(status, kind)
    if current is not None and current.get("status") == value and current.get("reason") == reason:
        return
    cond = {
        "type": kind,
        "status": value,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }
    if current is not None and current.get("status") == value:
        cond["lastTransitionTime"] = current.get("lastTransitionTime", now)
    status["conditions"] = [c for c in status.get("conditions") or () if c.get("type") != kind] + [cond]


def has_progress_deadline(d: Obj) -> bool:
    deadline = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return deadline is not None and int(deadline) != MAX_INT32


def calculate_status(d: Obj, all_rss: list[Obj], new_rs: Obj | None, now: str) -> dict[str, Any]:
    """DeploymentController.calculateStatus (conditions carried over from the working copy)."""
    available = sum(ro.status_int(rs, "availableReplicas") for rs in all_rss)
    total = sum(ro.replicas_of(rs) for rs in all_rss)
    old = d.get("status") or {}
    status: dict[str, Any] = {
        "observedGeneration": meta(d).get("generation", 0),
        "replicas": sum(ro.status_int(rs, "replicas") for rs in all_rss),
        "updatedReplicas": ro.status_int(new_rs, "replicas"),
        "readyReplicas": sum(ro.status_int(rs, "readyReplicas") for rs in all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total - available),
        "conditions": copy.deepcopy(old.get("conditions") or []),
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if available >= ro.replicas_of(d) - ro.max_unavailable(d):
        set_condition(status, AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.", now)
    else:
        set_condition(
            status, AVAILABLE, "False", MIN_UNAVAILABLE, "Deployment does not have minimum availability.", now
        )
    return status


def _status_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
            "unavailableReplicas", "collisionCount")  # fmt: skip
    return all((a.get(k) or 0) == (b.get(k) or 0) for k in keys) and (a.get("conditions") or []) == (
        b.get("conditions") or []
    )


class DeploymentController(Controller):
    """Drives each Deployment's ReplicaSets towards its spec."""

    name = "deployment"

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
        self.deployments = self.use("apps", "v1", "deployments")
        self.deployments_by_ns = informers.by_namespace("apps", "v1", "deployments")
        self.rss = self.use("apps", "v1", "replicasets")
        self.rss_by_ns = informers.by_namespace("apps", "v1", "replicasets")
        self.pods = self.use("", "v1", "pods")
        self.pods_by_controller = informers.by_controller("", "v1", "pods")
        self.deployments.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.rss.add_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        self.pods.add_handler(on_delete=self._pod_deleted)

    # -- handlers -------------------------------------------------------------------------------------------

    def _resolve(self, namespace: str, ref: dict[str, Any] | None) -> str | None:
        return resolve_controller_ref(namespace, ref, "Deployment", self.deployments)

    def _matching(self, rs: Obj) -> list[str]:
        namespace = meta(rs).get("namespace") or ""
        labels = labels_of(rs)
        return [namespaced_key(d) for d in self.deployments_by_ns.get(namespace) if _selector(d).matches(labels)]

    def _rs_added(self, rs: Obj) -> None:
        namespace = meta(rs).get("namespace") or ""
        ref = controller_ref(rs)
        if ref is not None:
            key = self._resolve(namespace, ref)
            if key is not None:
                self.queue.add(key)
            return
        for key in self._matching(rs):
            self.queue.add(key)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        namespace = meta(new).get("namespace") or ""
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref is not None and (new_ref or {}).get("uid") != old_ref.get("uid"):
            key = self._resolve(namespace, old_ref)
            if key is not None:
                self.queue.add(key)
        if new_ref is not None:
            key = self._resolve(namespace, new_ref)
            if key is not None:
                self.queue.add(key)
            return
        if labels_of(old) != labels_of(new) or old_ref is not None:
            for key in self._matching(new):
                self.queue.add(key)

    def _rs_deleted(self, rs: Obj) -> None:
        key = self._resolve(meta(rs).get("namespace") or "", controller_ref(rs))
        if key is not None:
            self.queue.add(key)

    def _pod_deleted(self, pod: Obj) -> None:
        # Recreate waits for old pods to be gone; their deletion is what lets it continue.
        namespace = meta(pod).get("namespace") or ""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rss.get(namespaced_key_from(namespace, str(ref.get("name") or "")))
        if rs is None:
            return
        key = self._resolve(namespace, controller_ref(rs))
        if key is None:
            return
        d = self.deployments.get(key) or {}
        if not ro.is_rolling(d):
            self.queue.add(key)

    @property
    def _work_status(self) -> dict[str, Any]:
        return _WORK_STATUS.get()

    # -- API writes -----------------------------------------------------------------------------------------

    def _rs_path(self, namespace: str, name: str | None = None) -> str:
        return resource_path("apps", "v1", "replicasets", namespace, name)

    def _d_path(self, d: Obj, sub: str | None = None) -> str:
        return resource_path("apps", "v1", "deployments", meta(d).get("namespace"), meta(d).get("name"), sub)

    async def _update_rs(self, rs: Obj) -> Obj:
        md = meta(rs)
        return await self.client.replace(self._rs_path(md.get("namespace") or "", md.get("name")), rs)

    async def _scale_rs(self, rs: Obj, size: int, d: Obj) -> tuple[bool, Obj]:
        """DeploymentController.scaleReplicaSet: spec.replicas plus the desired/max replicas annotations."""
        desired = str(ro.replicas_of(d))
        maximum = str(ro.replicas_of(d) + ro.max_surge(d))
        annotations = meta(rs).get("annotations") or {}
        size_changed = ro.replicas_of(rs) != size
        if (
            not size_changed
            and annotations.get(ro.DESIRED_REPLICAS) == desired
            and annotations.get(ro.MAX_REPLICAS) == maximum
        ):
            return False, rs
        body = copy.deepcopy(rs)
        body["spec"]["replicas"] = size
        body["metadata"].setdefault("annotations", {}).update({ro.DESIRED_REPLICAS: desired, ro.MAX_REPLICAS: maximum})
        updated = await self._update_rs(body)
        if size_changed:
            log.debug("scaled replica set %s to %d", meta(rs).get("name"), size)
        return size_changed, updated

    async def _write_status(self, d: Obj, status: dict[str, Any]) -> None:
        body = dict(d)
        body["status"] = status
        for attempt in range(2):
            try:
                await self.client.replace(self._d_path(d, "status"), body)
                return
            except APIError as exc:
                if is_not_found(exc):
                    return
                if not is_conflict(exc) or attempt == 1:
                    raise
                fresh = await self.client.get(self._d_path(d))
                if meta(fresh).get("generation") != meta(d).get("generation"):
                    raise  # the spec moved on: a new sync will follow from the informer
                body = dict(fresh)
                body["status"] = status

    async def _set_revision(self, d: Obj, revision: str) -> None:
        """SetDeploymentRevision: mirror the new ReplicaSet's revision on the Deployment."""
        annotations = meta(d).get("annotations") or {}
        if annotations.get(ro.REVISION) == revision:
            return
        await self.client.patch(self._d_path(d), {"metadata": {"annotations": {ro.REVISION: revision}}}, "merge")
        d["metadata"].setdefault("annotations", {})[ro.REVISION] = revision

    # -- sync -----------------------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.deployments.get(key)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        namespace = meta(d).get("namespace") or ""
        selector = _selector(d)
        if selector.empty:
            # Upstream refuses to select every pod; only observedGeneration moves.
            status = copy.deepcopy(d.get("status") or {})
            if status.get("observedGeneration") != meta(d).get("generation"):
                status["observedGeneration"] = meta(d).get("generation")
                await self._write_status(d, status)
            return
        ref = owner_reference(d, "apps/v1", "Deployment")

        can_adopt = recheck_deletion(self.client, self._d_path(d), d)

        rs_list = await claim(
            self.client,
            d,
            ref,
            selector,
            self.rss_by_ns.get(namespace),
            lambda rs: self._rs_path(namespace, meta(rs).get("name")),
            can_adopt,
        )
        rs_list = [copy.deepcopy(rs) for rs in rs_list]
        _WORK_STATUS.set(copy.deepcopy(d.get("status") or {}))
        if is_deleting(d):
            new_rs, old_rss = await self._all_replicasets(d, rs_list, create=False)
            await self._sync_status(d, old_rss + ([new_rs] if new_rs else []), new_rs)
            return
        if (d.get("spec") or {}).get("paused") or self._is_scaling_event(d, rs_list):
            await self._sync_scale(key, d, rs_list)
            return
        if ro.is_rolling(d):
            await self._rollout_rolling(key, d, rs_list)
        else:
            await self._rollout_recreate(key, d, rs_list)

    def _find_new(self, d: Obj, rs_list: list[Obj]) -> Obj | None:
        template = (d.get("spec") or {}).get("template") or {}
        for rs in ro.by_creation(rs_list):
            if ro.equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
                return rs
        return None

    def _is_scaling_event(self, d: Obj, rs_list: list[Obj]) -> bool:
        replicas = ro.replicas_of(d)
        for rs in rs_list:
            if ro.replicas_of(rs) <= 0:
                continue
            desired = (meta(rs).get("annotations") or {}).get(ro.DESIRED_REPLICAS)
            if desired is not None and desired != str(replicas):
                return True
        return False

    async def _all_replicasets(self, d: Obj, rs_list: list[Obj], create: bool) -> tuple[Obj | None, list[Obj]]:
        """getAllReplicaSetsAndSyncRevision: (new ReplicaSet or None, old ones)."""
        existing = self._find_new(d, rs_list)
        old_rss = [rs for rs in rs_list if existing is None or uid_of(rs) != uid_of(existing)]
        new_rs = await self._new_replicaset(d, rs_list, old_rss, existing, create)
        return new_rs, old_rss

    def _copy_annotations(self, d: Obj, rs: Obj, new_revision: str) -> bool:
        """setNewReplicaSetAnnotations (without the revision history): True if anything changed."""
        rs_annotations = rs["metadata"].setdefault("annotations", {})
        changed = False
        for k, v in (meta(d).get("annotations") or {}).items():
            if k in ro.SKIPPED_ANNOTATIONS or rs_annotations.get(k) == v:
                continue
            rs_annotations[k] = v
            changed = True
        if ro.revision_of(rs) < int(new_revision):
            rs_annotations[ro.REVISION] = new_revision
            changed = True
        return changed

    async def _new_replicaset(
        self, d: Obj, rs_list: list[Obj], old_rss: list[Obj], existing: Obj | None, create: bool
    ) -> Obj | None:
        namespace = meta(d).get("namespace") or ""
        now = now_rfc3339(self.clock)
        new_revision = str(max((ro.revision_of(rs) for rs in old_rss), default=0) + 1)
        spec = d.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        if existing is not None:
            rs = copy.deepcopy(existing)
            changed = self._copy_annotations(d, rs, new_revision)
            if int((rs.get("spec") or {}).get("minReadySeconds") or 0) != min_ready:
                rs["spec"]["minReadySeconds"] = min_ready
                changed = True
            if changed:
                rs = await self._update_rs(rs)
            await self._set_revision(d, (meta(rs).get("annotations") or {}).get(ro.REVISION, new_revision))
            if has_progress_deadline(d) and get_condition(self._work_status, PROGRESSING) is None:
                msg = f'Found new replica set "{meta(rs).get("name")}"'
                set_condition(self._work_status, PROGRESSING, "True", FOUND_NEW_RS, msg, now)
            return rs
        if not create:
            return None
        collision = (d.get("status") or {}).get("collisionCount")
        template = copy.deepcopy(spec.get("template") or {})
        pod_hash = ro.pod_template_hash(template, collision)
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), ro.POD_TEMPLATE_HASH: pod_hash}
        selector = copy.deepcopy(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), ro.POD_TEMPLATE_HASH: pod_hash}
        name = f"{meta(d).get('name')}-{pod_hash}"
        body: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "ownerReferences": [owner_reference(d, "apps/v1", "Deployment")],
                "labels": dict(tmeta["labels"]),
                "annotations": {},
            },
            "spec": {"replicas": 0, "minReadySeconds": min_ready, "selector": selector, "template": template},
        }
        body["spec"]["replicas"] = ro.new_rs_new_replicas(d, old_rss, body)
        self._copy_annotations(d, body, new_revision)
        body["metadata"]["annotations"][ro.DESIRED_REPLICAS] = str(ro.replicas_of(d))
        body["metadata"]["annotations"][ro.MAX_REPLICAS] = str(ro.replicas_of(d) + ro.max_surge(d))
        try:
            created = await self.client.create(self._rs_path(namespace), body)
        except APIError as exc:
            if not is_already_exists(exc):
                raise
            found = await self.client.get(self._rs_path(namespace, name))
            ref = controller_ref(found)
            if (
                ref is not None
                and ref.get("uid") == uid_of(d)
                and ro.equal_ignore_hash((found.get("spec") or {}).get("template") or {}, spec.get("template") or {})
            ):
                return found  # our own create, not yet seen by the informer
            # A hash collision: bump collisionCount so the next attempt gets another name.
            status = copy.deepcopy(d.get("status") or {})
            status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
            await self._write_status(d, status)
            raise
        if has_progress_deadline(d):
            msg = f'Created new replica set "{name}"'
            set_condition(self._work_status, PROGRESSING, "True", NEW_RS_CREATED, msg, now)
        await self._set_revision(d, new_revision)
        return created

    async def _sync_status(self, d: Obj, all_rss: list[Obj], new_rs: Obj | None) -> None:
        """syncDeploymentStatus: counts and Available, keeping the working conditions."""
        work = {**d, "status": self._work_status}
        status = calculate_status(work, all_rss, new_rs, now_rfc3339(self.clock))
        if not _status_equal(status, d.get("status") or {}):
            await self._write_status(d, status)

    async def _sync_rollout_status(self, key: str, d: Obj, all_rss: list[Obj], new_rs: Obj | None) -> None:
        """syncRolloutStatus: counts plus the Progressing condition, and a requeue at the deadline."""
        now_epoch = self.clock()
        now = now_rfc3339(self.clock)
        work = {**d, "status": self._work_status}
        status = calculate_status(work, all_rss, new_rs, now)
        if has_progress_deadline(d):
            current = get_condition(status, PROGRESSING)
            complete_before = (
                status.get("replicas") == status.get("updatedReplicas")
                and current is not None
                and current.get("reason") == NEW_RS_AVAILABLE
            )
            if not complete_before:
                rs_name = meta(new_rs).get("name") if new_rs else ""
                if ro.deployment_complete(d, status):
                    msg = f'ReplicaSet "{rs_name}" has successfully progressed.'
                    set_condition(status, PROGRESSING, "True", NEW_RS_AVAILABLE, msg, now)
                elif ro.deployment_progressing(d, status):
                    msg = f'ReplicaSet "{rs_name}" is progressing.'
                    if current is not None and current.get("status") == "True" and current.get("reason") == RS_UPDATED:
                        # Progress refreshes lastUpdateTime (upstream removes and re-adds the condition).
                        current["lastUpdateTime"] = now
                        current["message"] = msg
                    else:
                        set_condition(status, PROGRESSING, "True", RS_UPDATED, msg, now)
                elif self._timed_out(d, status, now_epoch):
                    msg = f'ReplicaSet "{rs_name}" has timed out progressing.'
                    set_condition(status, PROGRESSING, "False", TIMED_OUT, msg, now)
        if not _status_equal(status, d.get("status") or {}):
            await self._write_status(d, status)
        self._requeue_stuck(key, d, status, now_epoch)

    def _timed_out(self, d: Obj, status: dict[str, Any], now: float) -> bool:
        cond = get_condition(status, PROGRESSING)
        if cond is None:
            return False
        if cond.get("reason") == NEW_RS_AVAILABLE:
            return False
        if cond.get("reason") == TIMED_OUT:
            return True
        try:
            since = parse_time(cond.get("lastUpdateTime") or "")
        except ValueError:
            return False
        return since + int((d.get("spec") or {}).get("progressDeadlineSeconds") or 0) < now

    def _requeue_stuck(self, key: str, d: Obj, status: dict[str, Any], now: float) -> None:
        if not has_progress_deadline(d) or ro.deployment_complete(d, status):
            return
        cond = get_condition(status, PROGRESSING)
        if cond is None or cond.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT):
            return
        try:
            since = parse_time(cond.get("lastUpdateTime") or "")
        except ValueError:
            return
        after = since + int((d.get("spec") or {}).get("progressDeadlineSeconds") or 0) - now
        if after > 0:
            self.queue.add_after(key, after + 1.0)

    # -- strategies -----------------------------------------------------------------------------------------

    async def _sync_scale(self, key: str, d: Obj, rs_list: list[Obj]) -> None:
        """DeploymentController.sync: scaling events and paused deployments."""
        new_rs, old_rss = await self._all_replicasets(d, rs_list, create=False)
        new_rs, old_rss = await self._scale(d, new_rs, old_rss)
        all_rss = old_rss + ([new_rs] if new_rs else [])
        if (d.get("spec") or {}).get("paused"):
            await self._cleanup(d, old_rss)
        await self._sync_status(d, all_rss, new_rs)

    async def _scale(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        replicas = ro.replicas_of(d)
        newest_first = sorted(old_rss, key=ro.created_at, reverse=True)
        active = [rs for rs in [*newest_first, new_rs] if rs is not None and ro.replicas_of(rs) > 0]
        target: Obj | None = None
        if len(active) == 0:
            target = new_rs if new_rs is not None else (newest_first[0] if newest_first else None)
        elif len(active) == 1:
            target = active[0]
        if target is not None or not active:
            if target is None or ro.replicas_of(target) == replicas:
                return new_rs, old_rss
            _, updated = await self._scale_rs(target, replicas, d)
            return self._replace(new_rs, old_rss, updated)
        saturated = (
            new_rs is not None
            and ro.replicas_of(new_rs) == replicas
            and (meta(new_rs).get("annotations") or {}).get(ro.DESIRED_REPLICAS) == str(replicas)
            and ro.status_int(new_rs, "availableReplicas") == replicas
        )
        if saturated:
            for rs in [rs for rs in old_rss if ro.replicas_of(rs) > 0]:
                _, updated = await self._scale_rs(rs, 0, d)
                new_rs, old_rss = self._replace(new_rs, old_rss, updated)
            return new_rs, old_rss
        if ro.is_rolling(d):
            for rs, size in ro.proportional_sizes(d, active):
                _, updated = await self._scale_rs(rs, size, d)
                new_rs, old_rss = self._replace(new_rs, old_rss, updated)
        return new_rs, old_rss

    @staticmethod
    def _replace(new_rs: Obj | None, old_rss: list[Obj], updated: Obj) -> tuple[Obj | None, list[Obj]]:
        uid = uid_of(updated)
        if new_rs is not None and uid_of(new_rs) == uid:
            return updated, old_rss
        return new_rs, [updated if uid_of(rs) == uid else rs for rs in old_rss]

    async def _rollout_rolling(self, key: str, d: Obj, rs_list: list[Obj]) -> None:
        new_rs, old_rss = await self._all_replicasets(d, rs_list, create=True)
        assert new_rs is not None
        all_rss = [*old_rss, new_rs]
        # reconcileNewReplicaSet
        replicas = ro.replicas_of(d)
        scaled_up = False
        if ro.replicas_of(new_rs) != replicas:
            size = replicas if ro.replicas_of(new_rs) > replicas else ro.new_rs_new_replicas(d, all_rss, new_rs)
            scaled_up, new_rs = await self._scale_rs(new_rs, size, d)
        if scaled_up:
            await self._sync_rollout_status(key, d, [*old_rss, new_rs], new_rs)
            return
        scaled_down, old_rss = await self._reconcile_old(d, old_rss, new_rs)
        all_rss = [*old_rss, new_rs]
        if scaled_down:
            await self._sync_rollout_status(key, d, all_rss, new_rs)
            return
        if ro.deployment_complete(d, self._work_status):
            await self._cleanup(d, old_rss)
        await self._sync_rollout_status(key, d, all_rss, new_rs)

    async def _reconcile_old(self, d: Obj, old_rss: list[Obj], new_rs: Obj) -> tuple[bool, list[Obj]]:
        """reconcileOldReplicaSets: clean up unhealthy old replicas, then scale down within maxUnavailable."""
        if sum(ro.replicas_of(rs) for rs in old_rss) == 0:
            return False, old_rss
        all_pods = sum(ro.replicas_of(rs) for rs in [*old_rss, new_rs])
        min_available = ro.replicas_of(d) - ro.max_unavailable(d)
        new_unavailable = ro.replicas_of(new_rs) - ro.status_int(new_rs, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False, old_rss
        total = 0
        # cleanupUnhealthyReplicas
        for rs in ro.by_creation([rs for rs in old_rss if ro.replicas_of(rs) > 0]):
            if total >= max_scaled_down:
                break
            unhealthy = ro.replicas_of(rs) - ro.status_int(rs, "availableReplicas")
            if unhealthy <= 0:
                continue
            count = min(max_scaled_down - total, unhealthy)
            _, updated = await self._scale_rs(rs, ro.replicas_of(rs) - count, d)
            _, old_rss = self._replace(None, old_rss, updated)
            total += count
        # scaleDownOldReplicaSetsForRollingUpdate
        available = sum(ro.status_int(rs, "availableReplicas") for rs in [*old_rss, new_rs])
        scaled = 0
        if available > min_available:
            to_scale = available - min_available
            for rs in ro.by_creation([rs for rs in old_rss if ro.replicas_of(rs) > 0]):
                if scaled >= to_scale:
                    break
                count = min(ro.replicas_of(rs), to_scale - scaled)
                _, updated = await self._scale_rs(rs, ro.replicas_of(rs) - count, d)
                _, old_rss = self._replace(None, old_rss, updated)
                scaled += count
        return total + scaled > 0, old_rss

    async def _rollout_recreate(self, key: str, d: Obj, rs_list: list[Obj]) -> None:
        new_rs, old_rss = await self._all_replicasets(d, rs_list, create=False)
        scaled_down = False
        for rs in [rs for rs in old_rss if ro.replicas_of(rs) > 0]:
            changed, updated = await self._scale_rs(rs, 0, d)
            scaled_down = scaled_down or changed
            new_rs, old_rss = self._replace(new_rs, old_rss, updated)
        all_rss = [*old_rss, *([new_rs] if new_rs else [])]
        if scaled_down or self._old_pods_running(d, new_rs, old_rss):
            await self._sync_rollout_status(key, d, all_rss, new_rs)
            return
        if new_rs is None:
            new_rs, old_rss = await self._all_replicasets(d, rs_list, create=True)
            assert new_rs is not None
        if ro.replicas_of(new_rs) != ro.replicas_of(d):
            _, new_rs = await self._scale_rs(new_rs, ro.replicas_of(d), d)
        if ro.deployment_complete(d, self._work_status):
            await self._cleanup(d, old_rss)
        await self._sync_rollout_status(key, d, [*old_rss, new_rs], new_rs)

    def _old_pods_running(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> bool:
        if sum(ro.status_int(rs, "replicas") for rs in old_rss) > 0:
            return True
        old_uids = {uid_of(rs) for rs in old_rss}
        if new_rs is not None:
            old_uids.discard(uid_of(new_rs))
        for uid in old_uids:
            for pod in self.pods_by_controller.get(uid):
                if pod_phase(pod) not in ("Failed", "Succeeded"):
                    return True
        return False

    async def _cleanup(self, d: Obj, old_rss: list[Obj]) -> None:
        """cleanupDeployment: delete the oldest idle ReplicaSets beyond revisionHistoryLimit."""
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None:
            return
        cleanable = [rs for rs in old_rss if not is_deleting(rs)]
        diff = len(cleanable) - int(limit)
        if diff <= 0:
            return
        ordered = sorted(cleanable, key=lambda rs: (ro.revision_of(rs), ro.created_at(rs)))
        for rs in ordered[:diff]:
            md = meta(rs)
            if (
                ro.status_int(rs, "replicas") != 0
                or ro.replicas_of(rs) != 0
                or int(md.get("generation") or 0) > ro.status_int(rs, "observedGeneration")
            ):
                continue
            try:
                await self.client.delete(self._rs_path(md.get("namespace") or "", md.get("name")))
            except APIError as exc:
                if not is_not_found(exc):
                    raise

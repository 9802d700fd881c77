"""Job controller (pkg/controller/job) for NonIndexed batch/v1 Jobs.

A sync looks at the pods the Job controls (controller ownerReference, via a pod index) and:
- counts terminal pods by phase into `succeeded` / `failed` (UIDs once seen stay counted, so pods removed
  later, e.g. by pod GC, are not forgotten; the stored status is a floor after a restart);
- fails the Job when `failed > backoffLimit` (BackoffLimitExceeded) or it ran past `activeDeadlineSeconds`
  (DeadlineExceeded): condition FailureTarget, active pods deleted, then Failed once none is terminating;
- succeeds it when `succeeded >= completions` (or, without completions, once a pod succeeded and none is
  active): SuccessCriteriaMet then Complete (reason CompletionsReached) and `completionTime`;
- on `suspend: true` deletes the active pods (condition Suspended), on resume resets `startTime`;
- otherwise keeps min(parallelism, remaining completions) pods active, creating missing pods from the template
  (after an exponential back-off once pods failed: 10 s doubling, capped at 6 min) or deleting surplus ones.
Creates and deletes are guarded by expectations like the ReplicaSet controller's.

Not implemented: Indexed completion mode (treated as NonIndexed), pod failure / success policies, the
job-tracking finalizer and `uncountedTerminatedPods` accounting (always empty), adoption of orphan pods.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubemark.client import APIError, RestClient, is_conflict, is_not_found, namespaced_key, resource_path
from kubemark.kube.meta import format_rfc3339, parse_time
from kubemark.master.controllers.base import Controller, Obj, SharedInformers
from kubemark.master.controllers.expectations import Expectations
from kubemark.master.controllers.ownership import (
    controller_ref,
    is_active_pod,
    is_deleting,
    is_pod_ready,
    meta,
    owner_reference,
    pod_from_template,
    pod_phase,
    resolve_controller_ref,
    uid_of,
)
from kubemark.master.controllers.replicaset import create_in_slow_start, pods_to_delete
from kubemark.master.controllers.workqueue import QueueMetrics

log = logging.getLogger(__name__)

BACKOFF_BASE = 10.0
BACKOFF_CAP = 360.0
BURST_PODS = 500

COMPLETE = "Complete"
FAILED = "Failed"
SUCCESS_CRITERIA_MET = "SuccessCriteriaMet"
FAILURE_TARGET = "FailureTarget"
SUSPENDED = "Suspended"

REASON_COMPLETIONS_REACHED = "CompletionsReached"
MESSAGE_COMPLETIONS_REACHED = "Reached expected number of succeeded pods"
REASON_BACKOFF_LIMIT = "BackoffLimitExceeded"
MESSAGE_BACKOFF_LIMIT = "Job has reached the specified backoff limit"
REASON_DEADLINE = "DeadlineExceeded"
MESSAGE_DEADLINE = "Job was active longer than specified deadline"


def job_owner_key(pod: Obj) -> str | None:
    """ "ns/job-uid" for a pod controlled by a Job (the pod index value)."""
    ref = controller_ref(pod)
    if ref is None or ref.get("kind") != "Job" or not str(ref.get("apiVersion") or "").startswith("batch/"):
        return None
    return f"{meta(pod).get('namespace')}/{ref.get('uid')}"


def condition_of(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or ():
        if cond.get("type") == kind:
            return cond
    return None


def has_condition(status: dict[str, Any], kind: str) -> bool:
    cond = condition_of(status, kind)
    return cond is not None and cond.get("status") == "True"


def is_finished(job: Obj) -> bool:
    status = job.get("status") or {}
    return has_condition(status, COMPLETE) or has_condition(status, FAILED)


def set_condition(conditions: list[dict[str, Any]], kind: str, value: str, reason: str, message: str, now: str) -> None:
    """Add or update a condition; lastTransitionTime moves only when the status flips."""
    for cond in conditions:
        if cond.get("type") == kind:
            if (cond.get("status"), cond.get("reason"), cond.get("message")) == (value, reason, message):
                return  # unchanged: leave the times alone so an idle sync writes nothing
            if cond.get("status") != value:
                cond["lastTransitionTime"] = now
            cond.update(status=value, reason=reason, message=message, lastProbeTime=now)
            return
    conditions.append(
        {
            "type": kind,
            "status": value,
            "lastProbeTime": now,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }
    )


def backoff_delay(failures: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """getRemainingTimePerIndex's delay: base * 2**(failures-1), capped."""
    if failures <= 0 or base <= 0:
        return 0.0
    return min(base * 2 ** min(failures - 1, 32), cap)


@dataclass(slots=True)
class _Tally:
    """Terminal pods this process has counted for one Job, and when the last new failure was seen."""

    succeeded: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    failures_since_success: int = 0
    last_failure: float = 0.0


class JobController(Controller):
    """Runs Jobs' pods to completion (see the module docstring)."""

    name = "job"

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        workers: int = 5,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(client, informers, workers=workers, metrics=metrics, clock=clock)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.expectations = Expectations()
        self._tallies: dict[str, _Tally] = {}
        self.jobs = self.use("batch", "v1", "jobs")
        self.pods = self.use("", "v1", "pods")
        self.pods_by_job = informers.index("", "v1", "pods", "job-owner", job_owner_key)
        self.jobs.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self._job_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # -- event handlers -------------------------------------------------------------------------------------

    def _job_deleted(self, job: Obj) -> None:
        key = namespaced_key(job)
        self.expectations.delete(key)
        self._tallies.pop(uid_of(job), None)
        self.queue.add(key)

    def _job_key(self, pod: Obj) -> str | None:
        return resolve_controller_ref(meta(pod).get("namespace"), controller_ref(pod), "Job", self.jobs)

    def _pod_added(self, pod: Obj) -> None:
        key = self._job_key(pod)
        if key is None:
            return
        if is_deleting(pod):
            self.expectations.deletion_observed(key, uid_of(pod))
        else:
            self.expectations.creation_observed(key)
        self.queue.add(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        key = self._job_key(new) or self._job_key(old)
        if key is None:
            return
        if is_deleting(new) and not is_deleting(old):
            self.expectations.deletion_observed(key, uid_of(new))
        self.queue.add(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._job_key(pod)
        if key is None:
            return
        self.expectations.deletion_observed(key, uid_of(pod))
        self.queue.add(key)

    # -- sync -----------------------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None:
            self.expectations.delete(key)
            return
        if is_finished(job) or is_deleting(job):
            return
        namespace = meta(job).get("namespace") or ""
        spec = job.get("spec") or {}
        old_status = job.get("status") or {}
        pods = self.pods_by_job.get(f"{namespace}/{uid_of(job)}")
        active = [p for p in pods if is_active_pod(p)]
        terminating = [p for p in pods if is_deleting(p) and pod_phase(p) not in ("Succeeded", "Failed")]
        now = self.clock()
        stamp = format_rfc3339(now)
        tally = self._tally(job, pods, now)
        succeeded = max(int(old_status.get("succeeded") or 0), len(tally.succeeded))
        failed = max(int(old_status.get("failed") or 0), len(tally.failed))

        status: dict[str, Any] = {k: v for k, v in old_status.items() if k in ("startTime", "completionTime")}
        conditions: list[dict[str, Any]] = [dict(c) for c in old_status.get("conditions") or ()]
        suspended = bool(spec.get("suspend"))
        if not suspended and "startTime" not in status:
            status["startTime"] = stamp

        completions = spec.get("completions")
        parallelism_field, backoff_field = spec.get("parallelism"), spec.get("backoffLimit")
        parallelism = int(parallelism_field) if parallelism_field is not None else 1
        backoff_limit = int(backoff_field) if backoff_field is not None else 6
        deadline = spec.get("activeDeadlineSeconds")
        started = _parse(status.get("startTime"))

        failure: tuple[str, str] | None = None
        if has_condition(old_status, FAILURE_TARGET):
            cond = condition_of(old_status, FAILURE_TARGET) or {}
            failure = (str(cond.get("reason") or REASON_BACKOFF_LIMIT), str(cond.get("message") or ""))
        elif failed > backoff_limit:
            failure = (REASON_BACKOFF_LIMIT, MESSAGE_BACKOFF_LIMIT)
        elif deadline and started is not None and not suspended and now - started >= int(deadline):
            failure = (REASON_DEADLINE, MESSAGE_DEADLINE)

        if completions is not None:
            success = succeeded >= int(completions)
        else:
            success = succeeded > 0 and not active
        success = success or has_condition(old_status, SUCCESS_CRITERIA_MET)

        error: Exception | None = None
        if failure is not None or success:
            if failure is not None:
                set_condition(conditions, FAILURE_TARGET, "True", *failure, stamp)
            else:
                set_condition(
                    conditions,
                    SUCCESS_CRITERIA_MET,
                    "True",
                    REASON_COMPLETIONS_REACHED,
                    MESSAGE_COMPLETIONS_REACHED,
                    stamp,
                )
            try:
                await self._delete_pods(key, active)
            except APIError as exc:
                error = exc
            # The terminal condition waits until no pod is left terminating (deleted unbound pods vanish at once).
            if not terminating and not active and error is None:
                if failure is not None:
                    set_condition(conditions, FAILED, "True", *failure, stamp)
                else:
                    set_condition(
                        conditions, COMPLETE, "True", REASON_COMPLETIONS_REACHED, MESSAGE_COMPLETIONS_REACHED, stamp
                    )
                    status["completionTime"] = stamp
            active = []
        elif suspended:
            set_condition(conditions, SUSPENDED, "True", "JobSuspended", "Job suspended", stamp)
            try:
                await self._delete_pods(key, active)
            except APIError as exc:
                error = exc
            active = []
        else:
            if has_condition(old_status, SUSPENDED):
                set_condition(conditions, SUSPENDED, "False", "JobResumed", "Job resumed", stamp)
                status["startTime"] = stamp  # a resumed Job's deadline counts from now
            if deadline and started is not None:
                self.queue.add_after(key, max(0.0, started + int(deadline) - now))
            if completions is not None:
                want = min(parallelism, max(0, int(completions) - succeeded))
            else:
                want = parallelism if succeeded == 0 else len(active)
            try:
                await self._manage(key, job, active, want, tally, now)
            except APIError as exc:
                error = exc

        status.update(
            active=len(active),
            ready=sum(1 for p in active if is_pod_ready(p)),
            succeeded=succeeded,
            failed=failed,
            terminating=len(terminating),
            uncountedTerminatedPods={},
            observedGeneration=meta(job).get("generation", 0),
        )
        if conditions:
            status["conditions"] = conditions
        await self._update_status(job, status)
        if error is not None:
            raise error

    def _tally(self, job: Obj, pods: list[Obj], now: float) -> _Tally:
        tally = self._tallies.setdefault(uid_of(job), _Tally())
        new_failures = 0
        for pod in pods:
            phase = pod_phase(pod)
            uid = uid_of(pod)
            if phase == "Succeeded" and uid not in tally.succeeded:
                tally.succeeded.add(uid)
                tally.failures_since_success = 0
            elif phase == "Failed" and uid not in tally.failed:
                tally.failed.add(uid)
                new_failures += 1
        if new_failures:
            tally.failures_since_success += new_failures
            tally.last_failure = now
        return tally

    async def _manage(self, key: str, job: Obj, active: list[Obj], want: int, tally: _Tally, now: float) -> None:
        if not self.expectations.satisfied(key):
            return
        diff = len(active) - want
        namespace = meta(job).get("namespace") or ""
        if diff > 0:
            await self._delete_pods(key, pods_to_delete(active, diff))
            return
        if diff == 0:
            return
        wait = (
            tally.last_failure + backoff_delay(tally.failures_since_success, self.backoff_base, self.backoff_cap) - now
        )
        if wait > 0:
            self.queue.add_after(key, wait)
            return
        count = min(-diff, BURST_PODS)
        self.expectations.expect_creations(key, count)
        ref = owner_reference(job, "batch/v1", "Job")
        template = (job.get("spec") or {}).get("template") or {}
        body = pod_from_template(template, namespace, f"{meta(job).get('name')}-", ref)
        path = resource_path("", "v1", "pods", namespace)
        created, error = await create_in_slow_start(self.client, path, body, count)
        if count > created:
            self.expectations.creation_observed(key, count - created)
        if error is not None:
            if isinstance(error, APIError):
                raise error
            raise RuntimeError(f"creating pods for job {key}: {error!r}") from error

    async def _delete_pods(self, key: str, pods: list[Obj]) -> None:
        if not pods:
            return
        self.expectations.expect_deletions(key, [uid_of(p) for p in pods])
        results = await asyncio.gather(
            *(
                self.client.delete(resource_path("", "v1", "pods", meta(p).get("namespace"), meta(p).get("name")))
                for p in pods
            ),
            return_exceptions=True,
        )
        error: BaseException | None = None
        for pod, result in zip(pods, results, strict=True):
            if isinstance(result, BaseException):
                self.expectations.deletion_observed(key, uid_of(pod))
                if not (isinstance(result, APIError) and is_not_found(result)):
                    error = error or result
        if error is not None:
            raise error

    async def _update_status(self, job: Obj, status: dict[str, Any]) -> None:
        if status == (job.get("status") or {}):
            return
        md = meta(job)
        namespace, name = md.get("namespace") or "", md.get("name") or ""
        current = job
        for attempt in range(2):
            body = dict(current)
            body["status"] = status
            try:
                await self.client.replace(resource_path("batch", "v1", "jobs", namespace, name, "status"), body)
                return
            except APIError as exc:
                if is_not_found(exc):
                    return
                if not is_conflict(exc) or attempt == 1:
                    raise
                current = await self.client.get(resource_path("batch", "v1", "jobs", namespace, name))


def _parse(text: Any) -> float | None:
    if not text:
        return None
    try:
        return parse_time(str(text))
    except ValueError:
        return None

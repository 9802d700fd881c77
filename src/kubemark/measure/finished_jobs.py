"""WaitForFinishedJobs: wait until every Job matching a label selector has finished (Complete or Failed).

As clusterloader2's measurement of the same name: Jobs are tracked by an informer from `start`; `gather` first
lists them (a consistent read, so a Job created a moment before is not missed by a watch that is a little
behind) and returns once the watch has seen each of them with a `Complete` or `Failed` condition. On timeout the
error lists the unfinished Jobs with their active / succeeded / failed pod counts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kubemark.client import namespaced_key
from kubemark.kube.labels import parse_label_selector
from kubemark.measure.barrier import BarrierTimeout, revision_of
from kubemark.measure.watch import ObjectWatch

Obj = dict[str, Any]

MAX_LISTED_JOBS = 20
FINISHED = ("Complete", "Failed")


def job_finished(job: Obj) -> bool:
    """A Job with a `Complete` or `Failed` condition that is True (batch/v1 semantics)."""
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") in FINISHED and c.get("status") == "True" for c in conditions)


class FinishedJobsBarrier:
    """Waits on the Jobs seen by `jobs` (an ObjectWatch on batch/v1 jobs) that match the selector."""

    def __init__(
        self,
        jobs: ObjectWatch,
        *,
        label_selector: str = "",
        namespace_prefix: str = "",
        lister: Callable[[], Awaitable[list[Obj]]] | None = None,
    ) -> None:
        self.jobs = jobs
        self.selector = parse_label_selector(label_selector)
        self.namespace_prefix = namespace_prefix
        self.lister = lister
        self._expected: dict[str, int] = {}  # namespace/name -> resourceVersion the watch must have reached
        self._deleted: set[str] = set()  # Jobs deleted since start: nothing to wait for

    def _wanted(self, job: Obj) -> bool:
        meta = job.get("metadata") or {}
        if self.namespace_prefix and not str(meta.get("namespace", "")).startswith(self.namespace_prefix):
            return False
        return self.selector.matches(meta.get("labels"))

    def unfinished(self) -> list[Obj | str]:
        """The Jobs not finished yet (objects), and listed Jobs the watch has not caught up with (keys)."""
        seen: dict[str, int] = {}
        out: list[Obj | str] = []
        for job in self.jobs.list():
            if not self._wanted(job):
                continue
            seen[namespaced_key(job)] = revision_of(job)
            if not job_finished(job):
                out.append(job)
        out.extend(key for key, rev in self._expected.items() if key in seen and seen[key] < rev)
        # A listed Job missing from the watch was either deleted since (nothing to wait for) or not seen yet.
        out.extend(key for key in self._expected if key not in seen and key not in self._deleted)
        return out

    def on_event(self, kind: str, old: Obj | None, new: Obj, received: float) -> None:
        if kind == "DELETED":
            self._deleted.add(namespaced_key(new))

    def start(self) -> None:
        self.jobs.subscribe(self)

    def stop(self) -> None:
        self.jobs.unsubscribe(self)

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109 - the barrier's own deadline
        """Return once every matching Job has finished; raise BarrierTimeout naming the others otherwise."""
        if self.lister is not None:
            self._expected = {namespaced_key(j): revision_of(j) for j in await self.lister() if self._wanted(j)}
        if not await self.jobs.wait_until(lambda: not self.unfinished(), timeout):
            raise BarrierTimeout(self.report(timeout))

    def report(self, timeout: float) -> str:
        unfinished = self.unfinished()
        lines = [f"WaitForFinishedJobs: {len(unfinished)} Jobs not finished after {timeout:g}s"]
        for item in unfinished[:MAX_LISTED_JOBS]:
            if isinstance(item, str):
                lines.append(f"  Job {item}: not yet observed by the watch")
                continue
            status = item.get("status") or {}
            want = (item.get("spec") or {}).get("completions", 1)
            lines.append(
                f"  Job {namespaced_key(item)}: {status.get('succeeded', 0)} of {want} succeeded, "
                f"{status.get('active', 0)} active, {status.get('failed', 0)} failed"
            )
        if len(unfinished) > MAX_LISTED_JOBS:
            lines.append(f"  ... and {len(unfinished) - MAX_LISTED_JOBS} more")
        return "\n".join(lines)

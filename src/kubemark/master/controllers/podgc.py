"""Pod garbage collector (pkg/controller/podgc): periodic clean-up passes over the pod cache.

Every `period` seconds (upstream: 20 s):
- terminated pods (Succeeded/Failed) beyond `terminated_pod_gc_threshold` are deleted, oldest
  creationTimestamp first (a threshold <= 0 disables this);
- pods bound to a node that does not exist are marked Failed (condition DisruptionTarget, reason
  DeletionByPodGC) and force-deleted, once the node has been missing for `quarantine` seconds and a live GET
  confirms it is gone (the node informer may lag behind a just-registered node);
- unscheduled pods that are terminating are force-deleted.
Force deletion is a DELETE with gracePeriodSeconds=0 and a UID precondition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from kubemark.client import APIError, RestClient, is_conflict, is_not_found, resource_path
from kubemark.kube.meta import now_rfc3339, parse_time
from kubemark.master.controllers.base import Controller, Obj, SharedInformers, pod_node_name
from kubemark.master.controllers.ownership import TERMINAL_PHASES, is_deleting, meta, pod_phase, uid_of
from kubemark.master.controllers.workqueue import QueueMetrics

log = logging.getLogger(__name__)

GC_CHECK_PERIOD = 20.0
TERMINATED_POD_GC_THRESHOLD = 12500
NODE_QUARANTINE = 40.0
DELETE_PARALLELISM = 50  # upstream podgc deletes with 50 goroutines


def _created(pod: Obj) -> float:
    stamp = meta(pod).get("creationTimestamp")
    try:
        return parse_time(stamp) if stamp else 0.0
    except ValueError:
        return 0.0


class PodGCController(Controller):
    """Deletes terminated pods over the threshold, orphaned pods and terminating unscheduled pods."""

    name = "podgc"

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        period: float = GC_CHECK_PERIOD,
        terminated_pod_gc_threshold: int = TERMINATED_POD_GC_THRESHOLD,
        quarantine: float = NODE_QUARANTINE,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(client, informers, workers=0, metrics=metrics, clock=clock)
        self.period = period
        self.threshold = terminated_pod_gc_threshold
        self.quarantine = quarantine
        self.pods = self.use("", "v1", "pods")
        self.nodes = self.use("", "v1", "nodes")
        self.pods_by_node = informers.index("", "v1", "pods", "spec.nodeName", pod_node_name)
        self._missing_since: dict[str, float] = {}
        self._deletes = asyncio.Semaphore(DELETE_PARALLELISM)
        self.passes = 0

    def background(self) -> list[Coroutine[Any, Any, None]]:
        return [self._loop()]

    async def _loop(self) -> None:
        while True:
            try:
                await self.gc()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("podgc: pass failed")
            await asyncio.sleep(self.period)

    async def gc(self) -> int:
        """One pass; returns how many pods it deleted."""
        deleted = await self.gc_terminated()
        deleted += await self.gc_orphaned()
        deleted += await self.gc_unscheduled_terminating()
        self.passes += 1
        return deleted

    async def gc_terminated(self) -> int:
        if self.threshold <= 0:
            return 0
        terminated = [p for p in self.pods.list() if pod_phase(p) in TERMINAL_PHASES and not is_deleting(p)]
        excess = len(terminated) - self.threshold
        if excess <= 0:
            return 0
        terminated.sort(key=_created)
        log.info("podgc: deleting %d terminated pods over the threshold of %d", excess, self.threshold)
        results = await asyncio.gather(*(self._force_delete(p) for p in terminated[:excess]))
        return sum(results)

    async def gc_orphaned(self) -> int:
        now = self.clock()
        missing: list[str] = []
        for node in self.pods_by_node.values():
            if self.nodes.get(node) is not None:
                self._missing_since.pop(node, None)
                continue
            since = self._missing_since.setdefault(node, now)
            if now - since >= self.quarantine and await self._node_gone(node):
                missing.append(node)
        for node in list(self._missing_since):
            if self.pods_by_node.count(node) == 0:
                del self._missing_since[node]
        deleted = 0
        for node in missing:
            pods = self.pods_by_node.get(node)
            log.info("podgc: deleting %d pods of missing node %s", len(pods), node)
            results = await asyncio.gather(*(self._fail_and_delete(p) for p in pods))
            deleted += sum(results)
        return deleted

    async def gc_unscheduled_terminating(self) -> int:
        victims = [p for p in self.pods.list() if is_deleting(p) and not pod_node_name(p)]
        results = await asyncio.gather(*(self._force_delete(p) for p in victims))
        return sum(results)

    async def _node_gone(self, node: str) -> bool:
        try:
            await self.client.get(resource_path("", "v1", "nodes", None, node))
        except APIError as exc:
            if is_not_found(exc):
                return True
            raise
        return False

    async def _fail_and_delete(self, pod: Obj) -> bool:
        """markFailedAndDeletePod: a pod not yet terminal is reported Failed before it is removed."""
        if pod_phase(pod) not in TERMINAL_PHASES:
            md = meta(pod)
            patch = {
                "status": {
                    "phase": "Failed",
                    "conditions": [
                        {
                            "type": "DisruptionTarget",
                            "status": "True",
                            "reason": "DeletionByPodGC",
                            "message": "PodGC: node no longer exists",
                            "lastTransitionTime": now_rfc3339(self.clock),
                        }
                    ],
                }
            }
            path = resource_path("", "v1", "pods", md.get("namespace"), md.get("name"), "status")
            try:
                await self.client.patch(path, patch, "strategic")
            except APIError as exc:
                if is_not_found(exc):
                    return False
                log.info("podgc: marking %s/%s failed: %s", md.get("namespace"), md.get("name"), exc)
        return await self._force_delete(pod)

    async def _force_delete(self, pod: Obj) -> bool:
        md = meta(pod)
        try:
            async with self._deletes:
                await self.client.delete(
                    resource_path("", "v1", "pods", md.get("namespace"), md.get("name")),
                    grace_period_seconds=0,
                    preconditions={"uid": uid_of(pod)},
                )
        except APIError as exc:
            if is_not_found(exc) or is_conflict(exc):
                return False  # already gone, or a new pod of the same name
            raise
        return True

    async def sync(self, key: str) -> None:
        return None  # all work happens in the periodic pass

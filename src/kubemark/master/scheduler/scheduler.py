"""Scheduler: the kube-scheduler equivalent, talking to the API server only through the public API.

Informers, as kube-scheduler's: Nodes, and one informer of all non-terminal pods
(`status.phase!=Succeeded,status.phase!=Failed`) whose pending pods (`spec.nodeName` empty, our schedulerName,
not terminating) feed the queue and whose assigned pods feed the cache; a binding shows up as the update that
moves a pod from one side to the other, in order on one stream. One scheduling cycle runs at a time (pop, filter, score, assume); bindings
(POST pods/{name}/binding) run concurrently, at most `bind_concurrency` in flight. A pod nothing fits gets
PodScheduled=False/Unschedulable via a PATCH of pods/status and a FailedScheduling event, and waits in the
unschedulable queue for a node add/update or a pod delete.

Pods with PersistentVolumeClaims go through VolumeBinding (volume_binding.py) over claim, volume and class
informers: PreFilter and Filter in the scheduling cycle; in the binding task, before the binding, PreBind writes
the chosen static bindings and the selected-node annotations and waits (polling the caches each second, for at
most `bind_timeout`, as upstream) until the PV controller has bound every claim. A claim event requeues the pods
that were waiting on volumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from kubemark.client import APIError, Informer, RestClient, is_conflict, is_not_found, namespaced_key, resource_path
from kubemark.kube import volumes
from kubemark.kube.meta import newer, now_rfc3339
from kubemark.master.scheduler.algorithm import FitError, ScheduleAlgorithm
from kubemark.master.scheduler.cache import NodeInfo, SchedulerCache
from kubemark.master.scheduler.events import EventRecorder
from kubemark.master.scheduler.filters import REASON_AFFINITY
from kubemark.master.scheduler.metrics import ERROR, SCHEDULED, UNSCHEDULABLE, SchedulerMetrics
from kubemark.master.scheduler.pod_info import PodInfo, pod_info_from
from kubemark.master.scheduler.queue import QueuedPod, SchedulingQueue
from kubemark.master.scheduler.volume_binding import (
    NodeVolumes,
    VolumeUnresolvable,
    claims_bound,
    has_claims,
    node_volumes,
    pod_claims,
    volume_bound_to,
)
from kubemark.metrics_endpoint import MetricsEndpoint

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NOT_TERMINAL_PODS_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"
DEFAULT_BIND_CONCURRENCY = 32
DEFAULT_BIND_TIMEOUT = 600.0  # kube-scheduler's VolumeBinding bindTimeoutSeconds
VOLUME_BIND_POLL = 1.0  # BindPodVolumes polls its caches every second


def _spec_or_labels_changed(old: Obj, new: Obj) -> bool:
    """Did anything but status and bookkeeping metadata change? (Our own status PATCH must not requeue.)"""
    old_meta = old.get("metadata") or {}
    new_meta = new.get("metadata") or {}
    return (
        old.get("spec") != new.get("spec")
        or old_meta.get("labels") != new_meta.get("labels")
        or old_meta.get("annotations") != new_meta.get("annotations")
    )


class Scheduler:
    def __init__(
        self,
        client: RestClient,
        *,
        name: str = "default-scheduler",
        percentage_of_nodes_to_score: int | None = None,
        bind_concurrency: int = DEFAULT_BIND_CONCURRENCY,
        clock: Callable[[], float] = time.monotonic,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        event_client: RestClient | None = None,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        rng: random.Random | None = None,
        post_events: bool = True,
        bind_timeout: float = DEFAULT_BIND_TIMEOUT,
    ) -> None:
        self.client = client
        self.name = name
        self._clock = clock
        self.metrics = SchedulerMetrics()
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue(
            clock, initial_backoff=initial_backoff, max_backoff=max_backoff, on_change=self.metrics.set_pending
        )
        self.algorithm = ScheduleAlgorithm(percentage_of_nodes_to_score, rng)
        self.events = EventRecorder(event_client or client, controller=name) if post_events else None
        self._metrics_server = (
            MetricsEndpoint(self.metrics.exposition, metrics_host, metrics_port, name="scheduler")
            if metrics_port is not None
            else None
        )
        self._bind_slots = asyncio.Semaphore(max(1, bind_concurrency))
        self._nodes = Informer(client, resource_path("", "v1", "nodes"), key=lambda o: o["metadata"]["name"])
        self._pods = Informer(client, resource_path("", "v1", "pods"), field_selector=NOT_TERMINAL_PODS_SELECTOR)
        self._nodes.add_handler(self._on_node_add, self._on_node_update, self._on_node_delete)
        self._pods.add_handler(self._on_pod_add, self._on_pod_update, self._on_pod_delete)
        self._claims = Informer(client, resource_path("", "v1", "persistentvolumeclaims"))
        self._volumes = Informer(
            client, resource_path("", "v1", "persistentvolumes"), key=lambda o: o["metadata"]["name"]
        )
        self._classes = Informer(
            client, resource_path("storage.k8s.io", "v1", "storageclasses"), key=lambda o: o["metadata"]["name"]
        )
        for informer in (self._claims, self._volumes, self._classes):
            informer.add_handler(self._on_volume_event, self._on_volume_update, None)
        self.bind_timeout = bind_timeout
        self._waiting_for_volumes: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._waiting_for_neighbours: set[str] = set()
        self.scheduled = 0  # pods bound by this scheduler
        self.bind_failures = 0

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def metrics_port(self) -> int | None:
        return self._metrics_server.port if self._metrics_server is not None else None

    async def start(self) -> None:
        if self._metrics_server is not None:
            await self._metrics_server.start()
        if self.events is not None:
            await self.events.start()
        for informer in self._informers():
            informer.start()
        self._tasks = [
            asyncio.create_task(self._run(), name=f"{self.name} loop"),
            asyncio.create_task(self._flush_loop(), name=f"{self.name} queue flush"),
        ]

    async def wait_synced(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - the contract
        """True once nodes, pods, claims, volumes and storage classes have been listed."""
        results = await asyncio.gather(*(i.wait_synced(timeout) for i in self._informers()))
        return all(results)

    def _informers(self) -> tuple[Informer, ...]:
        return (self._nodes, self._pods, self._claims, self._volumes, self._classes)

    async def stop(self) -> None:
        self.queue.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._side_tasks:
            await asyncio.wait(list(self._side_tasks), timeout=5)
            for task in list(self._side_tasks):
                task.cancel()
        for informer in reversed(self._informers()):
            await informer.stop()
        if self.events is not None:
            await self.events.stop()
        if self._metrics_server is not None:
            await self._metrics_server.stop()

    async def __aenter__(self) -> Scheduler:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- informer handlers ----------------------------------------------------------------------------------

    def _responsible_for(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return (spec.get("schedulerName") or "default-scheduler") == self.name and not (pod.get("metadata") or {}).get(
            "deletionTimestamp"
        )

    def _on_node_add(self, node: Obj) -> None:
        self.cache.add_node(node)
        self.queue.move_all_to_active_or_backoff()

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        if self.cache.update_node(old, new):
            self.queue.move_all_to_active_or_backoff()

    def _on_node_delete(self, node: Obj) -> None:
        self.cache.remove_node(node)

    def _on_pod_add(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName"):
            self._assigned_added(pod)
        elif self._responsible_for(pod):
            self.queue.add(pod_info_from(pod))

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        old_node = (old.get("spec") or {}).get("nodeName")
        if (new.get("spec") or {}).get("nodeName"):
            if not old_node:
                self.queue.delete(namespaced_key(new))  # bound (by us or anyone)
                self._assigned_added(new)
            else:
                self._assigned_updated(old, new)
            return
        key = namespaced_key(new)
        if not self._responsible_for(new):
            self.queue.delete(key)
            return
        self.queue.update(pod_info_from(new), relevant=_spec_or_labels_changed(old, new))

    def _on_pod_delete(self, pod: Obj) -> None:
        key = namespaced_key(pod)
        self.queue.delete(key)
        if self.cache.remove_pod(key) is not None:
            self.queue.move_all_to_active_or_backoff()  # its resources are free

    def _on_volume_event(self, obj: Obj) -> None:
        """A claim, volume or class appeared: the pods parked on volumes may fit now (upstream's queueing hints)."""
        if self._waiting_for_volumes:
            waiting, self._waiting_for_volumes = self._waiting_for_volumes, set()
            self.queue.move_all_to_active_or_backoff(lambda qp: qp.key in waiting)

    def _on_volume_update(self, old: Obj, new: Obj) -> None:
        self._on_volume_event(new)

    def _assigned_added(self, pod: Obj) -> None:
        info = pod_info_from(pod)
        self.cache.add_pod(info)
        if self._waiting_for_neighbours and info.labels:
            # A new neighbour may satisfy a parked pod's required pod affinity.
            waiting, self._waiting_for_neighbours = self._waiting_for_neighbours, set()
            self.queue.move_all_to_active_or_backoff(lambda qp: qp.key in waiting)

    def _assigned_updated(self, old: Obj, new: Obj) -> None:
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        old_labels = (old.get("metadata") or {}).get("labels")
        if old_spec == new_spec and old_labels == (new.get("metadata") or {}).get("labels"):
            return  # status-only updates (the kubelet's) change nothing the scheduler counts
        self.cache.update_pod(pod_info_from(new))

    # -- the scheduling loop --------------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        """Backoff expiries (checked at least every second, like upstream) and the 5-minute leftover flush."""
        last_leftover = self._clock()
        while True:
            expiry = self.queue.next_backoff_expiry()
            delay = 1.0 if expiry is None else min(1.0, max(0.01, expiry - self._clock()))
            await asyncio.sleep(delay)
            self.queue.flush_backoff_completed()
            now = self._clock()
            if now - last_leftover >= 30.0:
                last_leftover = now
                self.queue.flush_unschedulable_leftover()

    async def _run(self) -> None:
        await self.wait_synced()
        log.info("%s: caches synced (%d nodes); scheduling", self.name, self.cache.node_count())
        while True:
            qp = await self.queue.pop()
            if qp is None:
                return
            await self._bind_slots.acquire()
            released = False
            try:
                released = self._schedule_one(qp)
            finally:
                if not released:
                    self._bind_slots.release()
            # Let informers and bindings run between decisions (the loop itself never blocks on I/O).
            await asyncio.sleep(0)

    def _schedule_one(self, qp: QueuedPod) -> bool:
        """One scheduling cycle; True if a binding task took over the bind slot."""
        info = qp.info
        cycle = self.queue.scheduling_cycle
        start = time.perf_counter()
        if self.cache.node_of(info.key) is not None:
            self.queue.done(info.key)  # already assigned (e.g. bound by someone else meanwhile)
            return False
        per_node: dict[str, NodeVolumes] = {}
        try:
            extra = self._volume_filter(info.pod, per_node) if has_claims(info.pod) else None
            result = self.algorithm.schedule(info, self.cache, extra)
        except FitError as fit:
            elapsed = time.perf_counter() - start
            self.metrics.algorithm_duration.observe(elapsed)
            self.metrics.observe_attempt(UNSCHEDULABLE, self.name, elapsed)
            message = str(fit)
            self.queue.add_unschedulable(qp, cycle, fit.reasons)
            if REASON_AFFINITY in fit.reasons:
                self._waiting_for_neighbours.add(info.key)
            if fit.prefilter or per_node or has_claims(info.pod):
                self._waiting_for_volumes.add(info.key)
            log.debug("%s: %s", info.key, message)
            self._spawn(self._report_unschedulable(info, message))
            return False
        except Exception as exc:  # a bug in a filter must not stop scheduling
            log.exception("%s: scheduling failed", info.key)
            self.metrics.observe_attempt(ERROR, self.name, time.perf_counter() - start)
            self.queue.add_backoff(qp)
            self._spawn(self._report_unschedulable(info, f"running scheduling plugins: {exc}", reason="SchedulerError"))
            return False
        self.metrics.algorithm_duration.observe(time.perf_counter() - start)
        self.cache.assume(info, result.node)
        node_vols = per_node.get(result.node)
        self._spawn(self._bind(qp, result.node, start, node_vols), holds_slot=True)
        return True

    def _volume_filter(self, pod: Obj, per_node: dict[str, NodeVolumes]) -> Any:
        """VolumeBinding's PreFilter now (raising FitError with its message) and its Filter for the algorithm."""
        try:
            claims = pod_claims(pod, self._claims.get, self._classes.get)
        except VolumeUnresolvable as exc:
            raise FitError(namespaced_key(pod), self.cache.node_count(), Counter(), prefilter=str(exc)) from None
        if claims is None or (not claims.delayed and not claims.bound):
            return None

        def volume_filter(node: NodeInfo) -> list[str] | None:
            found = node_volumes(claims, node, self._volumes.get, self._volumes.list, self._classes.get)
            if isinstance(found, list):
                return found
            if not found.empty:
                per_node[node.name] = found
            return None

        return volume_filter

    def _spawn(self, coro: Any, holds_slot: bool = False) -> None:
        task = asyncio.create_task(coro)
        self._side_tasks.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            self._side_tasks.discard(t)
            if holds_slot:
                self._bind_slots.release()
            if not t.cancelled() and t.exception() is not None:
                log.error("scheduler task failed", exc_info=t.exception())

        task.add_done_callback(finished)

    async def _bind_volumes(self, node: str, node_vols: NodeVolumes) -> None:
        """VolumeBinding's PreBind: the API updates, then wait until the PV controller has bound every claim."""
        for claim, volume in node_vols.static:
            name = volume["metadata"]["name"]
            await self.client.replace(
                resource_path("", "v1", "persistentvolumes", None, name), volume_bound_to(volume, claim)
            )
        # What we wrote, until the informer has caught up with it (upstream's assume cache): the cache's older
        # copy, without the annotation, must not read as "selected node reset".
        written: dict[str, Obj] = {}
        for claim in node_vols.provision:
            md = claim["metadata"]
            path = resource_path("", "v1", "persistentvolumeclaims", md.get("namespace"), md["name"])
            patch = {"metadata": {"annotations": {volumes.ANN_SELECTED_NODE: node}}}
            written[namespaced_key(claim)] = await self.client.patch(path, patch, "merge")

        def claim_of(key: str) -> Obj | None:
            return newer(written.get(key), self._claims.get(key))

        deadline = self._clock() + self.bind_timeout
        while not claims_bound(node_vols, claim_of, self._volumes.get):
            if self._clock() >= deadline:
                raise TimeoutError("binding volumes: context deadline exceeded")
            await asyncio.sleep(VOLUME_BIND_POLL)

    async def _bind(self, qp: QueuedPod, node: str, start: float, node_vols: NodeVolumes | None = None) -> None:
        info = qp.info
        if node_vols is not None:
            try:
                await self._bind_volumes(node, node_vols)
            except Exception as exc:
                # handleBindingCycleError: forget the assumption, back off, say why on the pod.
                self.cache.forget(info.key)
                self.metrics.observe_attempt(ERROR, self.name, time.perf_counter() - start)
                self.queue.move_all_to_active_or_backoff()
                self.queue.add_backoff(qp)
                message = f'running PreBind plugin "VolumeBinding": {exc}'
                log.warning("%s: %s", info.key, message)
                await self._report_unschedulable(info, message, reason="SchedulerError")
                return
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": info.name, "namespace": info.namespace, "uid": info.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        path = resource_path("", "v1", "pods", info.namespace, info.name, "binding")
        t0 = time.perf_counter()
        try:
            await self.client.create(path, binding)
        except Exception as exc:
            self.bind_failures += 1
            self.cache.forget(info.key)
            self.metrics.observe_attempt(ERROR, self.name, time.perf_counter() - start)
            if isinstance(exc, APIError) and (is_not_found(exc) or is_conflict(exc)):
                # Deleted or already bound: the informers will tell; nothing to retry.
                log.debug("%s: binding to %s refused: %s", info.key, node, exc)
                self.queue.done(info.key)
                return
            log.warning("%s: binding to %s failed: %s", info.key, node, exc)
            self.queue.move_all_to_active_or_backoff()  # the capacity it held is free again
            self.queue.add_backoff(qp)
            return
        now = time.perf_counter()
        self.metrics.binding_duration.observe(now - t0)
        self.metrics.observe_attempt(SCHEDULED, self.name, now - start)
        self.metrics.pod_attempts.observe(qp.attempts)
        if qp.initial_attempt_timestamp is not None:
            self.metrics.sli_duration.labels(str(qp.attempts)).observe(
                max(0.0, self._clock() - qp.initial_attempt_timestamp)
            )
        self.queue.done(info.key)
        self.scheduled += 1
        if self.events is not None:
            self.events.record(
                info.pod, "Normal", "Scheduled", "Binding", f"Successfully assigned {info.key} to {node}"
            )

    async def _report_unschedulable(self, info: PodInfo, message: str, reason: str = "Unschedulable") -> None:
        """PodScheduled=False on the pod (only when it changes, like upstream's updatePod) and an event."""
        if self.events is not None:
            self.events.record(info.pod, "Warning", "FailedScheduling", "Scheduling", message)
        current = self._pods.get(info.key) or info.pod
        for condition in (current.get("status") or {}).get("conditions") or ():
            if (
                condition.get("type") == "PodScheduled"
                and condition.get("status") == "False"
                and condition.get("reason") == reason
                and condition.get("message") == message
            ):
                return
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": None,
            "lastTransitionTime": now_rfc3339(),
            "reason": reason,
            "message": message,
        }
        patch = {"status": {"$setElementOrder/conditions": [{"type": "PodScheduled"}], "conditions": [condition]}}
        path = resource_path("", "v1", "pods", info.namespace, info.name, "status")
        try:
            await self.client.patch(path, patch, "strategic")
        except APIError as exc:
            if not is_not_found(exc):
                log.warning("%s: cannot set PodScheduled=False: %s", info.key, exc)
        except (OSError, TimeoutError) as exc:
            log.warning("%s: cannot set PodScheduled=False: %s", info.key, exc)

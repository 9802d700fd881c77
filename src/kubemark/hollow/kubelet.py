"""HollowKubelet: a kubelet's API-facing behaviour with a simulated runtime.

It registers its Node, keeps its Lease and node status fresh, watches its own Node, its pods
(`spec.nodeName=<node>`, all namespaces), and (each switchable) all Services, CSIDrivers and RuntimeClasses and
its node's PodCertificateRequests, as a v1.37 kubelet does, and drives each bound pod through
admission -> Pending/ContainerCreating -> Running -> (lifetime) -> Succeeded/Failed or restart, and through
graceful deletion (Killing, terminated statuses, DELETE with gracePeriodSeconds=0 and a UID precondition).

Secrets and ConfigMaps a pod references are read as kubelet's secret / configmap managers read them
(hollow/object_managers.py; Cache by default) and gate the start as kubelet's do (hollow/pod_sources.py):
secret / configMap / projected volumes are "mounted" before the sandbox (a missing non-optional object keeps
the pod ContainerCreating with FailedMount events, retried with the volume manager's backoff); env from a
missing non-optional object makes the container CreateContainerConfigError with a Failed event, retried at
the pod worker's back-off; missing image pull secrets only post FailedToRetrieveImagePullSecret. Every
syncFrequency (jittered) the pods' volumes are remounted and pull secrets read again (the pod resync).

Cheapness: a pod has a task only while it is changing state; lifetimes are `loop.call_later` timers (the
event loop's own heap), so an idle Running pod costs one small record. A pod that references no Secret or
ConfigMap registers nothing and is never resynced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from kubemark.client.errors import APIError, is_already_exists, is_conflict, is_not_found
from kubemark.client.informer import Informer
from kubemark.client.paths import resource_path
from kubemark.client.retry import Backoff
from kubemark.client.shared_objects import SharedObjects
from kubemark.hollow.config import NodeConfig, exit_code_of, lifetime_of
from kubemark.hollow.events import EventRecorder
from kubemark.hollow.lease import LeaseHeartbeat
from kubemark.hollow.object_managers import object_manager
from kubemark.hollow.pod_sources import (
    SECRETS,
    EnvSource,
    FetchError,
    PodSources,
    Result,
    Volume,
    env_source_error,
    mount_failed_message,
    pod_sources,
    pull_secrets_message,
    volume_source_error,
)
from kubemark.hollow.podstatus import (
    TERMINAL_PHASES,
    ContainerRecord,
    PodView,
    admit,
    build_status,
    containers_of,
    merge_status,
    rejected_status,
    status_patch,
)
from kubemark.hollow.runtime import CONTAINER_ID_PREFIX, HollowRuntime, Runtime, Sandbox, image_id
from kubemark.hollow.status import NodeIdentity, NodeSpecFacts, NodeStatusReporter, build_node
from kubemark.kube.meta import newer, parse_time

if TYPE_CHECKING:
    from kubemark.client.rest import RestClient

log = logging.getLogger(__name__)

NODES = resource_path("", "v1", "nodes")
PODS = resource_path("", "v1", "pods")
SERVICES = resource_path("", "v1", "services")
CSI_DRIVERS = resource_path("storage.k8s.io", "v1", "csidrivers")
RUNTIME_CLASSES = resource_path("node.k8s.io", "v1", "runtimeclasses")
POD_CERTIFICATE_REQUESTS = resource_path("certificates.k8s.io", "v1", "podcertificaterequests")
_KILL_RETRY_CAP = 10.0  # seconds between attempts to finish a pod's deletion, at most
_NODE_STATUS_UPDATE_RETRY = 5  # kubelet's nodeStatusUpdateRetry
# The volume manager's retry of a failed mount: 500 ms doubling to 2 min 2 s (nestedpendingoperations).
_MOUNT_RETRY_INITIAL, _MOUNT_RETRY_CAP = 0.5, 122.0
POD_SYNC_BACKOFF = 10.0  # the pod worker's re-sync after a failed sync (backOffPeriod, jittered by 0.5)
TTL_ANNOTATION = "node.alpha.kubernetes.io/ttl"  # the TTL controller's object cache TTL for the node, seconds


class PodGone(Exception):
    """The pod was deleted or replaced (404 / UID precondition failed) while the kubelet worked on it."""


def _newer(current: dict[str, Any] | None, candidate: dict[str, Any]) -> dict[str, Any]:
    """Of two copies of one object, the later one (informer events may trail our own write's answer)."""
    return newer(current, candidate) or candidate


def _parse(text: Any) -> float | None:
    try:
        return parse_time(text) if text else None
    except ValueError:
        return None


@dataclass(slots=True)
class PodWork:
    """The kubelet's record of one pod (by UID)."""

    uid: str
    pod: dict[str, Any]
    containers: list[ContainerRecord] = field(default_factory=list)
    phase: str = "Pending"
    sandbox: Sandbox | None = None
    start_time: float | None = None
    admitted: bool = False
    terminating: bool = False
    gone: bool = False
    task: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None

    @property
    def namespace(self) -> str:
        return self.pod["metadata"].get("namespace", "default")

    @property
    def name(self) -> str:
        return self.pod["metadata"]["name"]

    @property
    def active(self) -> bool:
        return self.admitted and self.phase not in TERMINAL_PHASES and not self.gone


def _is_running_hollow(pod: dict[str, Any]) -> bool:
    """A pod a hollow kubelet already started (adopt it without writes)."""
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    if status.get("phase") != "Running" or not statuses:
        return False
    return all(
        "running" in (cs.get("state") or {}) and str(cs.get("containerID", "")).startswith(CONTAINER_ID_PREFIX)
        for cs in statuses
    )


class HollowKubelet:
    """One hollow node's kubelet. `start()` registers and begins syncing; `stop()` ends everything it started."""

    def __init__(
        self,
        name: str,
        client: RestClient,
        config: NodeConfig,
        runtime: Runtime | None = None,
        *,
        index: int,
        recorder: EventRecorder | None = None,
        heartbeat_client: RestClient | None = None,
        on_lease_lateness: Callable[[float], None] | None = None,
        on_renewal_lateness: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        shared: SharedObjects | None = None,
    ) -> None:
        """`shared`: the process's shared copies of Services (every node's kubelet follows them all)."""
        self.name = name
        self.client = client
        self.config = config
        self.index = index
        self._clock = clock
        self._rng = rng or random.Random()
        self.node_ip = config.node_ip(index)
        self.runtime: Any = runtime or HollowRuntime(
            config, node_ip=self.node_ip, pod_cidr=config.fallback_pod_cidr(index), rng=self._rng
        )
        self.recorder = recorder or EventRecorder(client, component="kubelet", host=name, enabled=config.events)
        self.facts = NodeSpecFacts(name, index, config, NodeIdentity.for_node(name))
        self.reporter = NodeStatusReporter(self.facts, clock=clock, rng=self._rng)
        hb = config.heartbeat
        self.lease = LeaseHeartbeat(
            heartbeat_client or client,
            name,
            duration_seconds=hb.lease_duration_seconds,
            interval=hb.renew_interval,
            jitter=hb.jitter,
            on_lateness=on_lease_lateness,
            on_renewal_lateness=on_renewal_lateness,
            owner=self._owner_reference,
            clock=clock,
            rng=self._rng,
        )
        self._heartbeat_client = heartbeat_client or client
        self.node: dict[str, Any] | None = None
        self.pods: dict[str, PodWork] = {}
        self.registered = asyncio.Event()
        self.ready = asyncio.Event()  # set once a status PATCH reported Ready=True
        self.started_at: float | None = None  # time.monotonic() of start(), and of the first Ready report
        self.ready_at: float | None = None
        self.status_writes = 0  # pod status PATCHes sent
        self.registrations = 0
        self.node_informer = Informer(client, NODES, field_selector=f"metadata.name={name}")
        self.pod_informer = Informer(client, PODS, field_selector=f"spec.nodeName={name}")
        self.service_informer = Informer(client, SERVICES, shared=shared) if config.watch_services else None
        # As a v1.37 kubelet: its CSI volume plugin's CSIDriver lister, its RuntimeClass manager, and its
        # PodCertificateRequest manager's informer on its node's requests. Nothing here acts on what they
        # hold (no volumes, no runtime handlers, no projected certificates): they are the watches' API load.
        self.csi_driver_informer = Informer(client, CSI_DRIVERS, shared=shared) if config.watch_csi_drivers else None
        self.runtime_class_informer = (
            Informer(client, RUNTIME_CLASSES, shared=shared) if config.watch_runtime_classes else None
        )
        self.pod_certificate_request_informer = (
            Informer(client, POD_CERTIFICATE_REQUESTS, field_selector=f"spec.nodeName={name}")
            if config.watch_pod_certificate_requests
            else None
        )
        self.node_informer.add_handler(
            on_add=self._node_seen, on_update=self._node_updated, on_delete=self._node_deleted
        )
        self.pod_informer.add_handler(on_add=self._pod_seen, on_update=self._pod_updated, on_delete=self._pod_deleted)
        self._status_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        # The Secrets / ConfigMaps of its pods: the manager (its own reads, nothing shared with other nodes) and
        # the references of each pod that has any (pods without references have no entry).
        self.objects = object_manager(
            config.config_map_and_secret_change_detection_strategy,
            client,
            self._rng,
            ttl=self._object_ttl,
            sync_frequency=config.sync_frequency,
        )
        self._sources: dict[str, PodSources] = {}
        self._resync: asyncio.TimerHandle | None = None
        self.pod_resyncs = 0  # periodic pod resyncs done (they read the pods' volumes and pull secrets)
        self.pod_sync_backoff = POD_SYNC_BACKOFF

    # --- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.start_heartbeats()
        self.start_watches()

    async def start_heartbeats(self) -> None:
        """Register, PATCH status once and renew the Lease once, one call after the other (so over one
        connection), then keep both going. The Node is Ready when this returns (unless a call failed)."""
        self._stopping = False
        self.started_at = time.monotonic()
        await self._register()
        try:
            await self.sync_node_status()
            status_done = True
        except (APIError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.debug("node %s: first status update failed: %r", self.name, exc)
            status_done = False
        renewed = await self.lease.renew_first()
        self.lease.start(renewed=renewed)
        self._status_task = asyncio.create_task(self._status_loop(status_done), name=f"node status {self.name}")

    @property
    def informers(self) -> list[Informer]:
        """Every informer this kubelet runs, in start order."""
        optional = (
            self.service_informer,
            self.csi_driver_informer,
            self.runtime_class_informer,
            self.pod_certificate_request_informer,
        )
        return [self.node_informer, self.pod_informer, *(i for i in optional if i is not None)]

    def start_watches(self) -> None:
        """Start the node, pod, service, CSIDriver, RuntimeClass and PodCertificateRequest informers (each a
        LIST, then a WATCH on its own connection; the optional ones as configured)."""
        for informer in self.informers:
            informer.start()

    async def stop(self, *, delete_node: bool = False) -> None:
        self._stopping = True
        if self._status_task is not None:
            self._status_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._status_task
            self._status_task = None
        await self.lease.stop()
        if self._resync is not None:
            self._resync.cancel()
            self._resync = None
        for informer in self.informers:
            await informer.stop()
        for work in self.pods.values():
            if work.timer is not None:
                work.timer.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.objects.stop()
        await self.recorder.flush()
        if delete_node:
            for path in (
                resource_path("coordination.k8s.io", "v1", "leases", "kube-node-lease", self.name),
                resource_path("", "v1", "nodes", name=self.name),
            ):
                try:
                    await self.client.delete(path)
                except APIError as exc:
                    if not is_not_found(exc):
                        log.warning("node %s: cannot delete %s: %s", self.name, path, exc)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- node ----------------------------------------------------------------------------------------------

    def _owner_reference(self) -> dict[str, Any] | None:
        uid = ((self.node or {}).get("metadata") or {}).get("uid")
        if not uid:
            return None
        return {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": uid}

    async def _register(self) -> None:
        """POST the Node until it exists (kubelet's registerWithAPIServer: 100 ms doubling to 7 s)."""
        backoff = Backoff(initial=0.1, factor=2.0, jitter=0.0, cap=7.0)
        while True:
            node = build_node(self.facts, self._clock())
            try:
                self.node = await self._heartbeat_client.create(NODES, node)
                break
            except APIError as exc:
                if is_already_exists(exc):
                    try:
                        self.node = await self._heartbeat_client.get(resource_path("", "v1", "nodes", name=self.name))
                        break
                    except APIError as get_exc:
                        log.debug("node %s: GET after AlreadyExists failed: %s", self.name, get_exc)
                else:
                    log.warning("node %s: registration failed: %s", self.name, exc)
            except (OSError, TimeoutError) as exc:
                log.warning("node %s: registration failed: %r", self.name, exc)
            await asyncio.sleep(backoff.next_delay())
        self.registrations += 1
        self.reporter.last_report = None  # the first sync after (re)registration reports at once
        self._observe_pod_cidr(self.node)
        self.registered.set()

    def _observe_pod_cidr(self, node: dict[str, Any] | None) -> None:
        cidr = ((node or {}).get("spec") or {}).get("podCIDR")
        if cidr and isinstance(self.runtime, HollowRuntime):
            self.runtime.set_pod_cidr(cidr)

    def _node_seen(self, node: dict[str, Any]) -> None:
        self.node = _newer(self.node, node)
        self._observe_pod_cidr(node)

    def _node_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._node_seen(new)

    def _node_deleted(self, node: dict[str, Any]) -> None:
        if (node.get("metadata") or {}).get("uid") != ((self.node or {}).get("metadata") or {}).get("uid"):
            return
        self.node = None
        self.ready.clear()
        self.registered.clear()
        self.lease.latest = None
        if self.config.reregister_on_delete and not self._stopping:
            log.info("node %s was deleted; registering again", self.name)
            self._spawn(self._register(), f"register {self.name}")

    async def sync_node_status(self) -> bool:
        """One status sync; True if a PATCH was sent.

        Like kubelet's tryUpdateNodeStatus: the first try diffs against the informer's Node, retries after a
        conflict GET the Node afresh (up to 5 tries, nodeStatusUpdateRetry).
        """
        path = resource_path("", "v1", "nodes", name=self.name, subresource="status")
        for attempt in range(_NODE_STATUS_UPDATE_RETRY):
            if attempt == 0:
                original = self.node
            else:
                original = await self._heartbeat_client.get(resource_path("", "v1", "nodes", name=self.name))
            if original is None:
                return False
            patch = self.reporter.patch_for(original)
            if patch is None:
                return False
            try:
                updated = await self._heartbeat_client.patch(path, patch, rate_limited=False)
            except APIError as exc:
                if is_not_found(exc):
                    return False
                if is_conflict(exc) and attempt + 1 < _NODE_STATUS_UPDATE_RETRY:
                    continue
                raise
            self.node = _newer(self.node, updated)
            self.reporter.reported()
            conditions = (updated.get("status") or {}).get("conditions") or []
            ready = next((c for c in conditions if c.get("type") == "Ready"), None)
            if ready is not None and ready.get("status") == "True":
                if self.ready_at is None:
                    self.ready_at = time.monotonic()
                self.ready.set()
            return True
        return False

    async def _status_loop(self, synced_first: bool = False) -> None:
        interval = self.config.heartbeat.status_update_frequency
        if synced_first:
            await asyncio.sleep(interval)
        while True:
            try:
                await self.sync_node_status()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("node %s: status update failed: %r", self.name, exc)
            await asyncio.sleep(interval)

    # --- pods: informer handlers ---------------------------------------------------------------------------

    def _pod_seen(self, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        uid = meta.get("uid", "")
        work = self.pods.get(uid)
        if work is None:
            work = PodWork(uid=uid, pod=pod)
            self.pods[uid] = work
            phase = (pod.get("status") or {}).get("phase") or "Pending"
            if phase not in TERMINAL_PHASES:
                self._register_sources(work)
            if phase in TERMINAL_PHASES:
                work.phase = phase
            elif _is_running_hollow(pod):
                self._adopt(work)
            elif not meta.get("deletionTimestamp"):
                work.task = self._spawn(self._start_pod(work), f"start {uid}")
        else:
            work.pod = _newer(work.pod, pod)
        if meta.get("deletionTimestamp") and not work.terminating:
            work.terminating = True
            if work.timer is not None:
                work.timer.cancel()
                work.timer = None
            previous = work.task
            work.task = self._spawn(self._kill_pod(work, previous), f"kill {uid}")

    def _pod_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._pod_seen(new)

    def _pod_deleted(self, pod: dict[str, Any]) -> None:
        work = self.pods.pop((pod.get("metadata") or {}).get("uid", ""), None)
        if work is None:
            return
        work.gone = True
        self._unregister_sources(work)
        if work.timer is not None:
            work.timer.cancel()
        if work.task is not None and not work.task.done() and not work.terminating:
            work.task.cancel()
        if work.sandbox is not None:
            sandbox, work.sandbox = work.sandbox, None
            self._spawn(self.runtime.remove_sandbox(sandbox), f"remove sandbox {work.uid}")

    def phase_counts(self) -> Counter[str]:
        return Counter(w.phase for w in self.pods.values() if not w.gone)

    # --- pods: transitions ---------------------------------------------------------------------------------

    def _view(self, work: PodWork, **extra: Any) -> PodView:
        return PodView(
            phase=work.phase,
            containers=work.containers,
            host_ip=self.node_ip,
            pod_ip=work.sandbox.ip if work.sandbox else (work.pod.get("status") or {}).get("podIP", ""),
            start_time=work.start_time,
            sandbox_ready=work.sandbox is not None,
            extra=extra,
        )

    async def _write_status(self, work: PodWork, new_status: dict[str, Any]) -> None:
        """PATCH the pod's status. Transient failures (429, 5xx, a dropped connection) are retried with backoff
        until the write lands or the pod is gone, as kubelet's status manager keeps re-syncing a pod's status: an
        overloaded API server must not leave a started pod Pending for good."""
        backoff = Backoff(initial=0.2, factor=2.0, jitter=0.5, cap=_KILL_RETRY_CAP, rng=self._rng)
        path = resource_path("", "v1", "pods", work.namespace, work.name, "status")
        while True:
            if work.gone:
                raise PodGone(work.uid)
            patch = status_patch(work.pod, new_status)
            if patch is None:
                return
            try:
                updated = await self.client.patch(path, patch)
            except APIError as exc:
                if is_not_found(exc) or is_conflict(exc):
                    work.gone = True
                    raise PodGone(work.uid) from exc
                if exc.status != 429 and exc.status < 500:
                    raise
                log.debug("pod %s/%s: status write failed: %s; retrying", work.namespace, work.name, exc)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.debug("pod %s/%s: status write failed: %r; retrying", work.namespace, work.name, exc)
            else:
                work.pod = _newer(work.pod, updated)
                self.status_writes += 1
                return
            await asyncio.sleep(backoff.next_delay())

    async def _write_view(self, work: PodWork, **extra: Any) -> None:
        ours = build_status(self._view(work, **extra))
        await self._write_status(work, merge_status(work.pod.get("status") or {}, ours, self._clock()))

    def _event(
        self,
        work: PodWork,
        event_type: str,
        reason: str,
        message: str,
        container: str = "",
        containers: str = "containers",
    ) -> None:
        field_path = f"spec.{containers}{{{container}}}" if container else ""
        self.recorder.record(work.pod, event_type, reason, message, field_path)

    # --- pods: Secrets and ConfigMaps ----------------------------------------------------------------------

    def _object_ttl(self) -> float | None:
        """The Cache strategy's TTL from the node's annotation (the TTL controller's), None for kubelet's default."""
        text = (((self.node or {}).get("metadata") or {}).get("annotations") or {}).get(TTL_ANNOTATION)
        try:
            return float(int(text)) if text is not None else None
        except ValueError:
            return None

    def _register_sources(self, work: PodWork) -> None:
        """kubelet's secretManager / configMapManager RegisterPod, for a pod that references anything."""
        sources = pod_sources(work.pod)
        if sources is None:
            return
        self._sources[work.uid] = sources
        self.objects.register(work.namespace, sources.objects())
        self._schedule_resync()

    def _unregister_sources(self, work: PodWork) -> None:
        """UnregisterPod: the pod is terminal or gone (idempotent)."""
        sources = self._sources.pop(work.uid, None)
        if sources is not None:
            self.objects.unregister(work.namespace, sources.objects())

    async def _read(self, resource: str, namespace: str, name: str) -> Result:
        try:
            return await self.objects.get(resource, namespace, name)
        except FetchError as exc:
            return exc

    async def _mount_error(self, work: PodWork, volume: Volume) -> str | None:
        """The FailedMount message of one volume's SetUp, or None when every source mounts."""
        errors = []
        for source in volume.sources:
            error = volume_source_error(source, await self._read(source.resource, work.namespace, source.name))
            if error is not None:
                errors.append(error)
        return mount_failed_message(volume.name, errors) if errors else None

    async def _mount_volumes(self, work: PodWork, volumes: tuple[Volume, ...]) -> None:
        """WaitForAttachAndMount: until every volume is set up, each failure a FailedMount event, retried with
        the volume manager's backoff (the pod stays Pending, its containers ContainerCreating)."""
        backoff = Backoff(initial=_MOUNT_RETRY_INITIAL, factor=2.0, jitter=0.0, cap=_MOUNT_RETRY_CAP, rng=self._rng)
        pending = list(volumes)
        while True:
            failed = []
            for volume in pending:
                error = await self._mount_error(work, volume)
                if error is not None:
                    self._event(work, "Warning", "FailedMount", error)
                    failed.append(volume)
            if not failed:
                return
            pending = failed
            await asyncio.sleep(backoff.next_delay())
            if work.gone:
                raise PodGone(work.uid)

    async def _read_pull_secrets(self, work: PodWork, sources: PodSources) -> None:
        """getPullSecretsForPod (each pod sync): missing ones are reported, never block the pod."""
        failed = [
            name
            for name in sources.pull_secrets
            if isinstance(await self._read(SECRETS, work.namespace, name), FetchError)
        ]
        if failed:
            self._event(work, "Warning", "FailedToRetrieveImagePullSecret", pull_secrets_message(failed))

    async def _env_error(self, work: PodWork, env: tuple[EnvSource, ...]) -> str | None:
        """makeEnvironmentVariables' first error (each object read once per container), or None."""
        seen: dict[tuple[str, str], Result] = {}
        for source in env:
            key = (source.resource, source.name)
            result = seen.get(key)
            if result is None:
                result = seen[key] = await self._read(source.resource, work.namespace, source.name)
            error = env_source_error(source, work.namespace, result)
            if error is not None:
                return error
        return None

    async def _resolve_env(
        self,
        work: PodWork,
        sources: PodSources,
        env: tuple[EnvSource, ...],
        container: str,
        record: ContainerRecord | None,
    ) -> None:
        """Until the container's env resolves: each failure is kubelet's CreateContainerConfigError (a Failed
        event "Error: <cause>", the container waiting with that reason and message; init containers, which a
        hollow pod's status does not list, only get the event), retried at the pod worker's back-off, each
        retry a new pod sync (pull secrets read again, the image found present again)."""
        containers = "containers" if record is not None else "initContainers"
        backoff = Backoff(
            initial=self.pod_sync_backoff, factor=1.0, jitter=0.5, cap=self.pod_sync_backoff, rng=self._rng
        )
        while True:
            error = await self._env_error(work, env)
            if error is None:
                return
            self._event(work, "Warning", "Failed", f"Error: {error}", container, containers)
            if record is not None and (record.reason, record.message) != ("CreateContainerConfigError", error):
                record.reason, record.message = "CreateContainerConfigError", error
                await self._write_view(work)
            await asyncio.sleep(backoff.next_delay())
            if work.gone:
                raise PodGone(work.uid)
            await self._read_pull_secrets(work, sources)
            image = record.image if record is not None else ""
            if image:
                message = f'Container image "{image}" already present on machine'
                self._event(work, "Normal", "Pulled", message, container, containers)

    def _schedule_resync(self) -> None:
        """Arm the node's pod resync (one timer per node, only while some pod references anything)."""
        if self._resync is not None or self._stopping:
            return
        delay = self.config.sync_frequency * (1.0 + 0.5 * self._rng.random())  # wait.Jitter(syncFrequency, 0.5)
        self._resync = asyncio.get_running_loop().call_later(delay, self._resync_due)

    def _resync_due(self) -> None:
        self._resync = None
        if self._sources or len(self.objects):
            self._spawn(self._resync_pods(), f"resync {self.name}")

    async def _resync_pods(self) -> None:
        """The periodic pod sync's reads: secret / configmap volumes remounted (each through the manager, so
        Cache GETs once the TTL has passed, Watch reads its store), pull secrets read again."""
        try:
            for uid, sources in list(self._sources.items()):
                work = self.pods.get(uid)
                if work is None or work.gone or work.terminating or work.phase != "Running":
                    continue
                for volume in sources.volumes:
                    error = await self._mount_error(work, volume)
                    if error is not None:
                        self._event(work, "Warning", "FailedMount", error)
                await self._read_pull_secrets(work, sources)
            self.objects.sweep()
            self.pod_resyncs += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("node %s: pod resync failed", self.name)
        finally:
            self._schedule_resync()

    def _image_present(self, image: str) -> bool:
        return any(image in img.names for img in self.config.images)

    async def _start_pod(self, work: PodWork) -> None:
        try:
            others = [w.pod for w in self.pods.values() if w is not work and w.active]
            rejection = admit(work.pod, others, self.config.allocatable())
            if rejection is not None:
                reason, message = rejection
                work.phase = "Failed"
                self._unregister_sources(work)
                await self._write_status(work, rejected_status(work.pod.get("status") or {}, reason, message))
                self._event(work, "Warning", reason, message)
                return
            work.admitted = True
            work.start_time = self._clock()
            work.containers = containers_of(work.pod)
            await self._write_view(work)
            sources = self._sources.get(work.uid)
            if sources is not None and sources.volumes:
                await self._mount_volumes(work, sources.volumes)
            work.sandbox = await self.runtime.run_sandbox(work.pod)
            if sources is not None:
                await self._read_pull_secrets(work, sources)
                for name, env in sources.init_env:
                    await self._resolve_env(work, sources, env, name, None)
            policies = {c.get("name"): c.get("imagePullPolicy", "IfNotPresent") for c in work.pod["spec"]["containers"]}
            for record in work.containers:
                await self._run_container(work, record, policies.get(record.name, "IfNotPresent"), sources)
            await self._readiness_delay()
            for record in work.containers:
                record.ready = True
            work.phase = "Running"
            await self._write_view(work)
            self._schedule_lifetime(work, lifetime_of(work.pod, self.config, self._rng))
        except PodGone:
            log.debug("pod %s gone while starting", work.uid)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("node %s: starting pod %s/%s failed", self.name, work.namespace, work.name)

    async def _readiness_delay(self) -> None:
        seconds = self.config.delays.readiness.sample(self._rng)
        if seconds > 0:
            await asyncio.sleep(seconds)

    async def _run_container(
        self, work: PodWork, record: ContainerRecord, pull_policy: str, sources: PodSources | None = None
    ) -> None:
        image = record.image
        if pull_policy != "Always" and self._image_present(image):
            self._event(work, "Normal", "Pulled", f'Container image "{image}" already present on machine', record.name)
            record.image_id = image_id(image)
        else:
            self._event(work, "Normal", "Pulling", f'Pulling image "{image}"', record.name)
            began = time.monotonic()
            record.image_id = await self.runtime.pull_image(image)
            took = time.monotonic() - began
            self._event(
                work,
                "Normal",
                "Pulled",
                f'Successfully pulled image "{image}" in {took:.3f}s ({took:.3f}s including waiting)',
                record.name,
            )
        env = sources.env_of(record.name) if sources is not None else ()
        if sources is not None and env:
            await self._resolve_env(work, sources, env, record.name, record)
        assert work.sandbox is not None
        record.container_id = await self.runtime.create_container(work.sandbox, {"name": record.name, "image": image})
        self._event(work, "Normal", "Created", f"Created container {record.name}", record.name)
        await self.runtime.start_container(record.container_id)
        self._event(work, "Normal", "Started", f"Started container {record.name}", record.name)
        record.state, record.reason, record.message = "running", "", ""
        record.started_at = self._clock()

    def _schedule_lifetime(self, work: PodWork, lifetime: float | None, elapsed: float = 0.0) -> None:
        if lifetime is None or work.gone or work.terminating:
            return
        delay = max(0.0, lifetime - elapsed)
        loop = asyncio.get_running_loop()
        work.timer = loop.call_later(delay, self._lifetime_ended, work)

    def _lifetime_ended(self, work: PodWork) -> None:
        work.timer = None
        if work.gone or work.terminating:
            return
        work.task = self._spawn(self._containers_exited(work), f"exit {work.uid}")

    async def _containers_exited(self, work: PodWork) -> None:
        """The pod's lifetime is over: its containers exit with the annotated code; restart per restartPolicy."""
        try:
            code = exit_code_of(work.pod)
            policy = (work.pod.get("spec") or {}).get("restartPolicy") or "Always"
            now = self._clock()
            for record in work.containers:
                record.exit_code, record.finished_at = code, now
                record.state = "terminated"
                record.ready = False
            if policy == "Always" or (policy == "OnFailure" and code != 0):
                # Restart at once (the crash-loop back-off is not simulated) with a new container ID.
                sources = self._sources.get(work.uid)
                for record in work.containers:
                    record.last_terminated = record.terminated_state()
                    record.restart_count += 1
                    self._event(
                        work,
                        "Normal",
                        "Pulled",
                        f'Container image "{record.image}" already present on machine',
                        record.name,
                    )
                    env = sources.env_of(record.name) if sources is not None else ()
                    if sources is not None and env:  # a new container's env is resolved afresh
                        record.state = "waiting"
                        await self._resolve_env(work, sources, env, record.name, record)
                    assert work.sandbox is not None
                    record.container_id = await self.runtime.create_container(
                        work.sandbox, {"name": record.name, "image": record.image}
                    )
                    self._event(work, "Normal", "Created", f"Created container {record.name}", record.name)
                    await self.runtime.start_container(record.container_id)
                    self._event(work, "Normal", "Started", f"Started container {record.name}", record.name)
                    record.state, record.started_at, record.ready = "running", self._clock(), True
                    record.reason, record.message = "", ""
                await self._write_view(work)
                self._schedule_lifetime(work, lifetime_of(work.pod, self.config, self._rng))
                return
            work.phase = "Succeeded" if code == 0 else "Failed"
            self._unregister_sources(work)
            sandbox, work.sandbox = work.sandbox, None
            if sandbox is not None:
                await self.runtime.remove_sandbox(sandbox)
            await self._write_view(work)
        except PodGone:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("node %s: ending pod %s/%s failed", self.name, work.namespace, work.name)

    async def _kill_pod(self, work: PodWork, previous: asyncio.Task[None] | None) -> None:
        """Graceful deletion: stop containers, write terminated statuses, then DELETE with grace 0 and UID.

        Transient failures (429, 5xx, a dropped connection) are retried with backoff until the pod is gone, as
        kubelet's pod worker requeues a terminating pod: a mass deletion that overloads the API server must
        not leave pods Terminating forever.
        """
        if previous is not None and not previous.done():
            previous.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await previous
        backoff = Backoff(initial=1.0, factor=2.0, jitter=0.5, cap=_KILL_RETRY_CAP, rng=self._rng)
        while True:
            try:
                await self._terminate(work)
                return
            except PodGone:
                return
            except asyncio.CancelledError:
                raise
            except (APIError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                if isinstance(exc, APIError) and exc.status != 429 and exc.status < 500:
                    log.exception("node %s: deleting pod %s/%s failed", self.name, work.namespace, work.name)
                    return
                log.debug(
                    "node %s: deleting pod %s/%s failed (%s); retrying", self.name, work.namespace, work.name, exc
                )
            except Exception:
                log.exception("node %s: deleting pod %s/%s failed", self.name, work.namespace, work.name)
                return
            await asyncio.sleep(backoff.next_delay())

    async def _terminate(self, work: PodWork) -> None:
        """One attempt of `_kill_pod`; after a failure the next attempt skips what is already done."""
        meta = work.pod.get("metadata") or {}
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = (work.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        stop_timeout = float(grace or 0) * self.config.grace_fraction
        if work.phase not in TERMINAL_PHASES and work.admitted:
            now = self._clock()
            for record in work.containers:
                if record.state == "running":
                    self._event(work, "Normal", "Killing", f"Stopping container {record.name}", record.name)
            stops = [
                self.runtime.stop_container(r.container_id, stop_timeout)
                for r in work.containers
                if r.state == "running"
            ]
            await asyncio.gather(*stops)
            now = self._clock()
            for record in work.containers:
                if record.state == "running":
                    record.state, record.exit_code, record.finished_at = "terminated", 0, now
                elif record.state == "waiting":
                    record.state, record.exit_code, record.finished_at = "terminated", 137, now
                    record.started_at = record.started_at or now
                record.ready = False
            codes = [r.exit_code for r in work.containers]
            work.phase = "Succeeded" if all(c == 0 for c in codes) else "Failed"
            sandbox, work.sandbox = work.sandbox, None
            if sandbox is not None:
                await self.runtime.remove_sandbox(sandbox)
        self._unregister_sources(work)  # a terminating pod reads nothing more
        if work.admitted:
            await self._write_view(work)  # no request when the terminated status is already written
        path = resource_path("", "v1", "pods", work.namespace, work.name)
        try:
            await self.client.delete(path, grace_period_seconds=0, preconditions={"uid": work.uid})
        except APIError as exc:
            if not (is_not_found(exc) or is_conflict(exc)):
                raise

    def _adopt(self, work: PodWork) -> None:
        """Take over a pod this node's earlier incarnation started: rebuild state, no writes, no events."""
        pod = work.pod
        status = pod.get("status") or {}
        by_name = {cs.get("name"): cs for cs in status.get("containerStatuses") or []}
        work.containers = []
        for c in (pod.get("spec") or {}).get("containers") or []:
            cs = by_name.get(c.get("name"), {})
            running = (cs.get("state") or {}).get("running") or {}
            work.containers.append(
                ContainerRecord(
                    name=c.get("name", ""),
                    image=c.get("image", ""),
                    image_id=cs.get("imageID", ""),
                    container_id=cs.get("containerID", ""),
                    state="running",
                    reason="",
                    started_at=_parse(running.get("startedAt")),
                    restart_count=int(cs.get("restartCount") or 0),
                    ready=bool(cs.get("ready")),
                    last_terminated=(cs.get("lastState") or {}).get("terminated"),
                )
            )
        work.phase = "Running"
        work.admitted = True
        work.start_time = _parse(status.get("startTime"))
        if isinstance(self.runtime, HollowRuntime):
            work.sandbox = self.runtime.adopt_sandbox(pod)
            for record in work.containers:
                self.runtime.running.add(record.container_id)
        started = min((r.started_at for r in work.containers if r.started_at), default=None)
        elapsed = self._clock() - started if started else 0.0
        self._schedule_lifetime(work, lifetime_of(pod, self.config, self._rng), elapsed)

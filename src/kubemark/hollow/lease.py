"""LeaseHeartbeat: the kubelet's node lease (`kube-node-lease/<node>`), renewed like client-go's lease controller.

First sync GETs the Lease (creating it if missing); later renewals PUT the last Lease seen (optimistic
concurrency on its resourceVersion) without a GET. A 409 re-GETs and retries. Calls are not rate limited
(kubelet's heartbeat client is exempt). Renewals run every `interval` x (1 + jitter x U[0,1)) after the previous
one ended (wait.JitterUntil, sliding); how late each starts versus that schedule goes to `on_lateness`, and
how late each successful renewal completes versus that schedule (start lateness + the write's latency) goes to
`on_renewal_lateness`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp

from kubemark.aio import cancel_and_wait
from kubemark.client.errors import APIError, is_conflict, is_not_found
from kubemark.client.paths import resource_path
from kubemark.kube.meta import format_micro

if TYPE_CHECKING:
    from kubemark.client.rest import RestClient

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
_MAX_UPDATE_RETRIES = 5  # client-go maxUpdateRetries


class LeaseHeartbeat:
    """Keeps one node's Lease fresh. `renewals` counts successful writes (create or PUT)."""

    def __init__(
        self,
        client: RestClient,
        node_name: str,
        *,
        duration_seconds: int = 40,
        interval: float = 10.0,
        jitter: float = 0.04,
        on_lateness: Callable[[float], None] | None = None,
        on_renewal_lateness: Callable[[float], None] | None = None,
        owner: Callable[[], dict[str, Any] | None] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.node_name = node_name
        self.duration_seconds = duration_seconds
        self.interval = interval
        self.jitter = jitter
        self._on_lateness = on_lateness
        self._on_renewal_lateness = on_renewal_lateness
        self._owner = owner  # the Node's ownerReference once known (kubelet sets it so GC removes the lease)
        self._clock = clock
        self._rng = rng or random.Random()
        self.latest: dict[str, Any] | None = None
        self.renewals = 0
        self.failures = 0
        self.renewed = asyncio.Event()  # set after each successful renewal; tests clear and wait on it
        self._task: asyncio.Task[None] | None = None
        self._path = resource_path("coordination.k8s.io", "v1", "leases", LEASE_NAMESPACE)
        self._item = resource_path("coordination.k8s.io", "v1", "leases", LEASE_NAMESPACE, node_name)

    def _spec(self) -> dict[str, Any]:
        return {
            "holderIdentity": self.node_name,
            "leaseDurationSeconds": self.duration_seconds,
            "renewTime": format_micro(self._clock()),
        }

    def _with_owner(self, lease: dict[str, Any]) -> dict[str, Any]:
        ref = self._owner() if self._owner else None
        if ref:
            meta = lease.setdefault("metadata", {})
            if not meta.get("ownerReferences"):
                meta["ownerReferences"] = [ref]
        return lease

    async def _ensure(self) -> bool:
        """GET the Lease into `latest`, creating it if absent; True if the create already renewed it."""
        try:
            self.latest = await self.client.get(self._item, rate_limited=False)
            return False
        except APIError as exc:
            if not is_not_found(exc):
                raise
        lease = self._with_owner(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.node_name, "namespace": LEASE_NAMESPACE},
                "spec": self._spec(),
            }
        )
        self.latest = await self.client.create(self._path, lease, rate_limited=False)
        return True

    async def _update(self) -> None:
        for attempt in range(_MAX_UPDATE_RETRIES):
            assert self.latest is not None
            lease = dict(self.latest)
            lease["metadata"] = dict(lease.get("metadata") or {})
            lease["spec"] = {**(lease.get("spec") or {}), **self._spec()}
            self._with_owner(lease)
            try:
                self.latest = await self.client.replace(self._item, lease, rate_limited=False)
                return
            except APIError as exc:
                if is_conflict(exc) and attempt + 1 < _MAX_UPDATE_RETRIES:
                    await self._ensure()
                    continue
                if is_not_found(exc) and attempt + 1 < _MAX_UPDATE_RETRIES:
                    if await self._ensure():
                        return
                    continue
                raise

    async def renew_once(self) -> None:
        """One sync of the lease controller."""
        if self.latest is None:
            if not await self._ensure():
                await self._update()
        else:
            await self._update()
        self.renewals += 1
        self.renewed.set()

    async def renew_first(self) -> bool:
        """One renewal outside the loop (at node start-up); True if it succeeded. Failures are counted."""
        try:
            await self.renew_once()
        except (APIError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.failures += 1
            self.latest = None
            log.debug("lease %s: first renewal failed: %r", self.node_name, exc)
            return False
        return True

    async def run(self, *, renewed: bool = False) -> None:
        """Renew forever; `renewed` means a renewal just happened, so the first one waits a period."""
        loop = asyncio.get_running_loop()
        scheduled: float | None = None  # the first renewal has no schedule to be late against
        while True:
            if not renewed:
                try:
                    await self.renew_once()
                    if scheduled is not None and self._on_renewal_lateness is not None:
                        self._on_renewal_lateness(max(0.0, loop.time() - scheduled))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # API or transport failure: try again next period, like the controller
                    self.failures += 1
                    self.latest = None
                    log.debug("lease %s: renewal failed: %r", self.node_name, exc)
            renewed = False
            wait = self.interval * (1 + self.jitter * self._rng.random())
            scheduled = loop.time() + wait
            await asyncio.sleep(wait)
            if self._on_lateness is not None:
                self._on_lateness(max(0.0, loop.time() - scheduled))

    def start(self, *, renewed: bool = False) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(renewed=renewed), name=f"lease {self.node_name}")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

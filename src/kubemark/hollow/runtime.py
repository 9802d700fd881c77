"""The container runtime a hollow kubelet drives: a Protocol, and `HollowRuntime`, which runs nothing.

HollowRuntime simulates latencies drawn from the config's distributions (RNG and sleep injectable), hands
out pod IPs unique within the node's pod range (freed on sandbox removal, reused lowest-first), and container
IDs `hollow://<hex>`. A CNI-backed runtime can implement the same Protocol later.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import ipaddress
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kubemark.hollow.config import NodeConfig

CONTAINER_ID_PREFIX = "hollow://"
IMAGE_ID_PREFIX = "docker-pullable://"


def image_id(image: str) -> str:
    """A stable imageID for an image reference (the same on every node, like a registry digest)."""
    return f"{IMAGE_ID_PREFIX}{image}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


class PodIPExhausted(RuntimeError):
    """The node's pod range has no free address (kubelet reports a sandbox creation failure)."""


@dataclass(slots=True)
class Sandbox:
    id: str
    ip: str
    host_network: bool


class Runtime(Protocol):
    """What a kubelet needs from a container runtime (a CRI subset)."""

    async def run_sandbox(self, pod: dict[str, Any]) -> Sandbox: ...

    async def pull_image(self, image: str) -> str: ...  # returns the image ID

    async def create_container(self, sandbox: Sandbox, container: dict[str, Any]) -> str: ...  # container ID

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, grace_seconds: float) -> None: ...

    async def remove_sandbox(self, sandbox: Sandbox) -> None: ...


class PodIPAllocator:
    """Unique addresses of one pod CIDR; released ones are reused lowest-first (like host-local IPAM's range)."""

    __slots__ = ("_free", "_next", "_size", "_start", "_used", "cidr")

    def __init__(self, cidr: str) -> None:
        net = ipaddress.ip_network(cidr)
        self.cidr = str(net)
        # Skip the network address and the .1 a bridge gateway would take; stop before broadcast.
        self._start = int(net.network_address) + 2
        self._size = max(0, net.num_addresses - 3)
        self._next = 0
        self._free: list[int] = []
        self._used: set[int] = set()

    def allocate(self) -> str:
        if self._free:
            offset = heapq.heappop(self._free)
        elif self._next < self._size:
            offset = self._next
            self._next += 1
        else:
            raise PodIPExhausted(f"no free IP in pod range {self.cidr}")
        self._used.add(offset)
        return str(ipaddress.IPv4Address(self._start + offset))

    def reserve(self, ip: str) -> bool:
        """Mark an address in use (adopting a running pod); False if it is outside the range or taken."""
        try:
            offset = int(ipaddress.IPv4Address(ip)) - self._start
        except ValueError:
            return False
        if not 0 <= offset < self._size or offset in self._used:
            return False
        self._used.add(offset)
        if offset >= self._next:
            self._free.extend(range(self._next, offset))
            heapq.heapify(self._free)
            self._next = offset + 1
        else:
            try:
                self._free.remove(offset)
                heapq.heapify(self._free)
            except ValueError:
                pass
        return True

    def release(self, ip: str) -> None:
        try:
            offset = int(ipaddress.IPv4Address(ip)) - self._start
        except ValueError:
            return
        if offset in self._used:
            self._used.discard(offset)
            heapq.heappush(self._free, offset)

    def __len__(self) -> int:
        return len(self._used)


class HollowRuntime:
    """A runtime without processes: delays, IPs and IDs only."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        node_ip: str,
        pod_cidr: str,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.node_ip = node_ip
        self.ips = PodIPAllocator(pod_cidr)
        self._rng = rng or random.Random()
        self._sleep = sleep
        self.running: set[str] = set()

    def set_pod_cidr(self, cidr: str) -> None:
        """Switch to the range the controller manager assigned; only while no pod holds an address."""
        if cidr != self.ips.cidr and len(self.ips) == 0:
            self.ips = PodIPAllocator(cidr)

    async def _delay(self, dist: Any) -> None:
        seconds = dist.sample(self._rng)
        if seconds > 0:
            await self._sleep(seconds)

    def _new_id(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"

    async def run_sandbox(self, pod: dict[str, Any]) -> Sandbox:
        await self._delay(self.config.delays.sandbox)
        host_network = bool((pod.get("spec") or {}).get("hostNetwork"))
        ip = self.node_ip if host_network else self.ips.allocate()
        return Sandbox(id=self._new_id(), ip=ip, host_network=host_network)

    def adopt_sandbox(self, pod: dict[str, Any]) -> Sandbox:
        """Rebuild a sandbox for a pod that was already running when this kubelet (re)started."""
        status = pod.get("status") or {}
        host_network = bool((pod.get("spec") or {}).get("hostNetwork"))
        ip = status.get("podIP") or ""
        if host_network:
            ip = self.node_ip
        elif not ip or not self.ips.reserve(ip):
            ip = self.ips.allocate()
        return Sandbox(id=self._new_id(), ip=ip, host_network=host_network)

    async def pull_image(self, image: str) -> str:
        await self._delay(self.config.delays.image_pull)
        return image_id(image)

    async def create_container(self, sandbox: Sandbox, container: dict[str, Any]) -> str:
        return CONTAINER_ID_PREFIX + self._new_id()

    async def start_container(self, container_id: str) -> None:
        await self._delay(self.config.delays.container_start)
        self.running.add(container_id)

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        self.running.discard(container_id)
        if grace_seconds > 0:
            await self._sleep(grace_seconds)

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        if not sandbox.host_network:
            self.ips.release(sandbox.ip)

"""Allocators for Service cluster IPs (10.96.0.0/12 by default) and node ports (30000-32767).

In-memory, owned by the Service strategy: seeded from storage at start-up, reserved on create and released
on delete. Allocation walks forward from the last allocated offset, so IPs are unique and spread out
without a random generator. With several API server processes, each hands out only its own share of the
range (`partition`), so their automatic allocations can never collide.
"""

from __future__ import annotations

import contextlib
import ipaddress


class AllocationError(Exception):
    """The requested value is outside the range, taken, or the range is full."""


class RangeAllocator:
    """Unique integers in [first, last]; `reserved` values are never handed out automatically."""

    def __init__(self, first: int, last: int, reserved: frozenset[int] = frozenset()) -> None:
        self.first = first
        self.last = last
        self.reserved = reserved
        self._used: set[int] = set()
        self._next = first
        self._stride = 1
        self._offset = 0

    def partition(self, index: int, count: int) -> None:
        """Hand out automatically only the values first + index, first + index + count, ..."""
        if not 0 <= index < count:
            raise ValueError(f"partition {index} of {count}")
        self._stride, self._offset = count, index
        self._next = self.first + index

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def __contains__(self, value: int) -> bool:
        return value in self._used

    def in_range(self, value: int) -> bool:
        return self.first <= value <= self.last

    def allocate(self, value: int) -> None:
        """Reserve a specific value (raises AllocationError when taken or out of range)."""
        if not self.in_range(value):
            raise AllocationError("out of range")
        if value in self._used:
            raise AllocationError("already allocated")
        self._used.add(value)

    def allocate_next(self) -> int:
        start = self.first + self._offset
        for _ in range(-(-self.size // self._stride)):
            value = self._next
            if value > self.last:  # a share beyond a tiny range
                break
            self._next = start if value + self._stride > self.last else value + self._stride
            if value not in self._used and value not in self.reserved:
                self._used.add(value)
                return value
        raise AllocationError("range is full")

    def release(self, value: int) -> None:
        self._used.discard(value)


class ClusterIPAllocator:
    """Cluster IPs of one IPv4 service CIDR; the first address (10.96.0.1) is kept for `kubernetes`."""

    def __init__(self, cidr: str = "10.96.0.0/12") -> None:
        self.network = ipaddress.IPv4Network(cidr)
        base = int(self.network.network_address)
        # Neither the network nor the broadcast address is handed out.
        self._range = RangeAllocator(base + 1, int(self.network.broadcast_address) - 1, frozenset({base + 1}))

    @property
    def cidr(self) -> str:
        return str(self.network)

    @property
    def kubernetes_ip(self) -> str:
        return str(self.network.network_address + 1)

    def allocate(self, ip: str) -> None:
        try:
            address = ipaddress.IPv4Address(ip)
        except ValueError as err:
            raise AllocationError("must be a valid IP address") from err
        self._range.allocate(int(address))

    def allocate_next(self) -> str:
        return str(ipaddress.IPv4Address(self._range.allocate_next()))

    def partition(self, index: int, count: int) -> None:
        self._range.partition(index, count)

    def release(self, ip: str) -> None:
        with contextlib.suppress(ValueError):
            self._range.release(int(ipaddress.IPv4Address(ip)))

    def __contains__(self, ip: str) -> bool:
        try:
            return int(ipaddress.IPv4Address(ip)) in self._range
        except ValueError:
            return False


class NodePortAllocator(RangeAllocator):
    """Node ports for NodePort and LoadBalancer services."""

    def __init__(self, first: int = 30000, last: int = 32767) -> None:
        super().__init__(first, last)

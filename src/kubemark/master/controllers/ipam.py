"""Node IPAM range allocator (pkg/controller/nodeipam, RangeAllocator): one pod CIDR per node.

Nodes without spec.podCIDR get the next free subnet of the cluster CIDR (default 10.128.0.0/10 cut in /24s:
16,384 nodes, beside the hollow nodes' InternalIPs in 10.64.0.0/10), written as spec.podCIDR and spec.podCIDRs;
subnets are released when nodes are deleted and seeded from the existing nodes when the controller starts.
When the range is full, the nodes left without a CIDR are logged once and retried at their next update.
"""

from __future__ import annotations

import ipaddress
import logging

from kubemark.client import APIError, RestClient, is_not_found, resource_path
from kubemark.master.controllers.base import Controller, Obj, SharedInformers
from kubemark.master.controllers.ownership import meta
from kubemark.master.controllers.workqueue import QueueMetrics

log = logging.getLogger(__name__)

# Large enough for the node counts kubemark is for (a /16 holds only 256 nodes of /24s).
DEFAULT_CLUSTER_CIDR = "10.128.0.0/10"
DEFAULT_NODE_MASK = 24


class CIDRSetFull(Exception):
    """No free subnet is left in the cluster CIDR."""


class CIDRSet:
    """The subnets of one cluster CIDR as a used-set, handed out round-robin like upstream's cidrset."""

    def __init__(self, cluster_cidr: str = DEFAULT_CLUSTER_CIDR, node_mask: int = DEFAULT_NODE_MASK) -> None:
        self.network = ipaddress.ip_network(cluster_cidr, strict=True)
        if node_mask < self.network.prefixlen or node_mask > self.network.max_prefixlen:
            raise ValueError(f"node mask /{node_mask} does not fit in {cluster_cidr}")
        self.node_mask = node_mask
        self.size = 1 << (node_mask - self.network.prefixlen)
        self._step = 1 << (self.network.max_prefixlen - node_mask)
        self._used: set[int] = set()
        self._next = 0

    def _cidr(self, index: int) -> str:
        base = int(self.network.network_address) + index * self._step
        return f"{ipaddress.ip_address(base)}/{self.node_mask}"

    def _index(self, cidr: str) -> int | None:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if net.version != self.network.version or not net.subnet_of(self.network):  # type: ignore[arg-type]
            return None
        return (int(net.network_address) - int(self.network.network_address)) // self._step

    def allocate_next(self) -> str:
        if len(self._used) >= self.size:
            raise CIDRSetFull(f"no free /{self.node_mask} left in {self.network}")
        for offset in range(self.size):
            index = (self._next + offset) % self.size
            if index not in self._used:
                self._used.add(index)
                self._next = (index + 1) % self.size
                return self._cidr(index)
        raise CIDRSetFull(f"no free /{self.node_mask} left in {self.network}")

    def occupy(self, cidr: str) -> bool:
        index = self._index(cidr)
        if index is None:
            return False
        self._used.add(index)
        return True

    def release(self, cidr: str) -> None:
        index = self._index(cidr)
        if index is not None:
            self._used.discard(index)

    @property
    def used(self) -> int:
        return len(self._used)


class NodeIpamController(Controller):
    """Assigns spec.podCIDR(s) to nodes."""

    name = "nodeipam"

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        cluster_cidr: str = DEFAULT_CLUSTER_CIDR,
        node_mask: int = DEFAULT_NODE_MASK,
        workers: int = 4,
        metrics: QueueMetrics | None = None,
    ) -> None:
        super().__init__(client, informers, workers=workers, metrics=metrics)
        self.cidrs = CIDRSet(cluster_cidr, node_mask)
        self._assigned: dict[str, str] = {}  # node -> CIDR we patched in (the cache may not show it yet)
        self._full_reported = False
        self.nodes = self.use("", "v1", "nodes")
        self.nodes.add_handler(self._changed, lambda old, new: self._changed(new), self._deleted)

    def _changed(self, node: Obj) -> None:
        if not (node.get("spec") or {}).get("podCIDR"):
            self.enqueue(node)

    def _deleted(self, node: Obj) -> None:
        name = meta(node).get("name") or ""
        for cidr in (node.get("spec") or {}).get("podCIDRs") or ():
            self.cidrs.release(cidr)
        assigned = self._assigned.pop(name, None)
        if assigned is not None:
            self.cidrs.release(assigned)

    async def on_synced(self) -> None:
        for node in self.nodes.list():
            for cidr in (node.get("spec") or {}).get("podCIDRs") or ():
                if not self.cidrs.occupy(cidr):
                    log.warning("node %s: podCIDR %s is outside %s", meta(node).get("name"), cidr, self.cidrs.network)

    async def sync(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None:
            return
        if (node.get("spec") or {}).get("podCIDR"):
            self._assigned.pop(key, None)
            return
        cidr = self._assigned.get(key)
        fresh = cidr is None
        if cidr is None:
            try:
                cidr = self.cidrs.allocate_next()
            except CIDRSetFull as exc:
                # Once, not per node and update: the node is retried when it next changes (as upstream, which
                # records CIDRNotAvailable and waits for a release).
                if not self._full_reported:
                    log.warning("node %s left without a pod CIDR: %s (set a larger cluster CIDR)", key, exc)
                    self._full_reported = True
                return
            self._full_reported = False
            self._assigned[key] = cidr
        patch = {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}
        try:
            await self.client.patch(resource_path("", "v1", "nodes", None, key), patch, "strategic")
        except APIError as exc:
            if fresh or is_not_found(exc):
                self._assigned.pop(key, None)
                self.cidrs.release(cidr)
            if is_not_found(exc):
                return
            raise

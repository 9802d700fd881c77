"""Service rules (defaults, validation, cluster IP and node port allocation, immutable clusterIP) and the
light Endpoints rules.

Upstream: pkg/registry/core/service/strategy.go and storage/alloc.go, SetDefaults_Service,
ValidateService / ValidateServiceUpdate. Allocation happens after validation passes, like upstream's
BeginCreate; the generic machinery calls `on_deleted` to give addresses back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from dataclasses import field as field_
from typing import Any

from kubemark import codec
from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import field, podspec
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.kinds.service_ips import AllocationError, ClusterIPAllocator, NodePortAllocator
from kubemark.master.apiserver.strategy import Obj
from kubemark.master.storage.base import Storage

log = logging.getLogger(__name__)

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


def _needs_cluster_ip(spec: Obj) -> bool:
    return spec.get("type", "ClusterIP") != "ExternalName"


def default_service(spec: Obj) -> None:
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or ():
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "targetPort" not in port and "port" in port:
                port["targetPort"] = port["port"]
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    if spec["type"] in _NODE_PORT_TYPES:
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    elif spec.get("clusterIPs") and not spec.get("clusterIP"):
        spec["clusterIP"] = spec["clusterIPs"][0]


def validate_service_spec(spec: Obj) -> list[Cause]:
    causes: list[Cause] = []
    kind = spec.get("type")
    if kind not in SERVICE_TYPES:
        causes.append(field.not_supported("spec.type", kind, SERVICE_TYPES))
    affinity = spec.get("sessionAffinity")
    if affinity not in SESSION_AFFINITIES:
        causes.append(field.not_supported("spec.sessionAffinity", affinity, SESSION_AFFINITIES))
    headless = spec.get("clusterIP") == "None"
    if kind == "ExternalName":
        causes += field.dns1123_subdomain("spec.externalName", spec.get("externalName"))
    if headless and kind in _NODE_PORT_TYPES:
        causes.append(field.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services"))
    ports = spec.get("ports") or []
    if not ports and kind != "ExternalName" and not headless:
        causes.append(field.required("spec.ports"))
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        if not isinstance(port, dict):
            causes.append(field.invalid(path, port, "must be an object"))
            continue
        name = port.get("name")
        if len(ports) > 1 and not name:
            causes.append(field.required(f"{path}.name"))
        elif name:
            causes += field.dns1123_label(f"{path}.name", name)
            if name in names:
                causes.append(field.duplicate(f"{path}.name", name))
            names.add(name)
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            causes.append(field.invalid(f"{path}.port", number, "must be between 1 and 65535, inclusive"))
        protocol = port.get("protocol")
        if protocol not in podspec.PROTOCOLS:
            causes.append(field.not_supported(f"{path}.protocol", protocol, podspec.PROTOCOLS))
        elif isinstance(number, int):
            if (number, protocol) in seen:
                causes.append(field.duplicate(path, {"port": number, "protocol": protocol}))
            seen.add((number, protocol))
        node_port = port.get("nodePort")
        if node_port and kind not in _NODE_PORT_TYPES:
            causes.append(field.forbidden(f"{path}.nodePort", f"may not be used when `type` is '{kind}'"))
    return causes


@dataclass
class ServiceStrategy(KindStrategy):
    cluster_ips: ClusterIPAllocator = field_(default_factory=ClusterIPAllocator)
    node_ports: NodePortAllocator = field_(default_factory=NodePortAllocator)

    def prepare_for_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            default_service(spec)
        obj["status"] = {"loadBalancer": {}}

    def validate(self, obj: Obj) -> list[Cause]:
        """Checks the service, then reserves its cluster IP and node ports (released by `on_deleted`)."""
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [field.required("spec")]
        causes = validate_service_spec(spec)
        if causes:
            return causes
        return self._allocate(spec)

    def _allocate(self, spec: Obj) -> list[Cause]:
        allocated_ip: str | None = None
        if _needs_cluster_ip(spec) and spec.get("clusterIP") != "None":
            requested = spec.get("clusterIP")
            try:
                if requested:
                    self.cluster_ips.allocate(requested)
                    allocated_ip = requested
                else:
                    allocated_ip = self.cluster_ips.allocate_next()
            except AllocationError as err:
                return [self._ip_cause(requested, str(err))]
            spec["clusterIP"] = allocated_ip
            spec["clusterIPs"] = [allocated_ip]
        causes = self._allocate_node_ports(spec)
        if causes and allocated_ip:
            self.cluster_ips.release(allocated_ip)
        return causes

    def _ip_cause(self, requested: str | None, why: str) -> Cause:
        if why == "out of range":
            why = f"provided IP is not in the valid range. The range of valid IPs is {self.cluster_ips.cidr}"
        elif why == "already allocated":
            why = "provided IP is already allocated"
        elif why == "range is full":
            return field.invalid("spec.clusterIPs", requested, "failed to allocate a serviceIP: range is full")
        return field.invalid("spec.clusterIPs[0]", requested, f"failed to allocate IP {requested}: {why}")

    def _allocate_node_ports(self, spec: Obj, keep: frozenset[int] = frozenset()) -> list[Cause]:
        """Give every port of a NodePort/LoadBalancer service a node port; all or nothing."""
        if spec.get("type") not in _NODE_PORT_TYPES:
            return []
        taken: list[int] = []
        for i, port in enumerate(spec.get("ports") or ()):
            requested = port.get("nodePort")
            if requested and requested in keep:
                continue
            try:
                if requested:
                    self.node_ports.allocate(requested)
                    value = requested
                else:
                    value = self.node_ports.allocate_next()
            except AllocationError as err:
                for value in taken:
                    self.node_ports.release(value)
                why = str(err)
                if why == "out of range":
                    why = (
                        "provided port is not in the valid range. The range of valid ports is "
                        f"{self.node_ports.first}-{self.node_ports.last}"
                    )
                elif why == "already allocated":
                    why = "provided port is already allocated"
                return [field.invalid(f"spec.ports[{i}].nodePort", requested, why)]
            taken.append(value)
            port["nodePort"] = value
        return []

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
        if not isinstance(spec, dict):
            return
        default_service(spec)
        # Allocated values omitted by the client are carried over (upstream patchAllocatedValues).
        if _needs_cluster_ip(old_spec) and _needs_cluster_ip(spec) and not spec.get("clusterIP"):
            for key in ("clusterIP", "clusterIPs"):
                if key in old_spec:
                    spec[key] = old_spec[key]
        if spec.get("type") in _NODE_PORT_TYPES and old_spec.get("type") in _NODE_PORT_TYPES:
            old_by_key = {(p.get("port"), p.get("protocol")): p.get("nodePort") for p in old_spec.get("ports") or ()}
            for port in spec.get("ports") or ():
                if isinstance(port, dict) and not port.get("nodePort"):
                    previous = old_by_key.get((port.get("port"), port.get("protocol")))
                    if previous:
                        port["nodePort"] = previous

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        spec, old_spec = new.get("spec"), old.get("spec") or {}
        if not isinstance(spec, dict):
            return [field.required("spec")]
        causes = validate_service_spec(spec)
        if (
            _needs_cluster_ip(old_spec)
            and _needs_cluster_ip(spec)
            and old_spec.get("clusterIP")
            and spec.get("clusterIP") != old_spec["clusterIP"]
        ):
            causes.append(field.immutable("spec.clusterIP", spec.get("clusterIP")))
        if causes:
            return causes
        old_ports = frozenset(p.get("nodePort") for p in old_spec.get("ports") or () if p.get("nodePort"))
        return self._allocate_node_ports(spec, keep=old_ports)

    def on_deleted(self, obj: Obj) -> None:
        spec = obj.get("spec") or {}
        for ip in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []):
            if ip != "None":
                self.cluster_ips.release(ip)
        for port in spec.get("ports") or ():
            if isinstance(port, dict) and port.get("nodePort"):
                self.node_ports.release(port["nodePort"])

    def seed(self, obj: Obj) -> None:
        """Mark a stored service's cluster IP and node ports as taken."""
        spec = obj.get("spec") or {}
        ip = spec.get("clusterIP")
        if ip and ip != "None":
            try:
                self.cluster_ips.allocate(ip)
            except AllocationError:
                log.debug("stored service IP %s not seeded (outside range or duplicate)", ip)
        for port in spec.get("ports") or ():
            node_port = port.get("nodePort") if isinstance(port, dict) else None
            if node_port:
                try:
                    self.node_ports.allocate(node_port)
                except AllocationError:
                    log.debug("stored node port %s not seeded", node_port)

    def partition(self, index: int, count: int) -> None:
        """One of `count` API server processes: allocate automatically from share `index` only."""
        self.cluster_ips.partition(index, count)
        self.node_ports.partition(index, count)

    def observe(self, event_type: str, obj: Obj) -> None:
        """A service written by any API server process (from the watch cache): mark what the others allocated
        as taken here too. Releases are not followed: a late DELETED could free an address this process has
        handed out again since; an address freed elsewhere merely stays unavailable here."""
        if event_type in ("ADDED", "MODIFIED"):
            self.seed(obj)

    async def warm_up(self, storage: Storage) -> None:
        start = ""
        prefix = self.rt.storage_prefix()
        while True:
            page = await storage.list(prefix, limit=500, start_key=start)
            for kv in page.kvs:
                self.seed(codec.loads(kv.value))
            if not page.more or not page.kvs:
                return
            start = page.kvs[-1].key + "\x00"


@dataclass
class EndpointsStrategy(KindStrategy):
    def prepare_for_create(self, obj: Obj) -> None:
        _default_endpoints(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        _default_endpoints(new)

    def validate(self, obj: Obj) -> list[Cause]:
        return _validate_endpoints(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return _validate_endpoints(new)


def _default_endpoints(obj: Obj) -> None:
    for subset in _items(obj.get("subsets")):
        for port in _items(subset.get("ports")) if isinstance(subset, dict) else ():
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


def _validate_endpoints(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    subsets = obj.get("subsets")
    if subsets is None:  # omitted (omitempty): an Endpoints without subsets is valid
        return causes
    if not isinstance(subsets, list):
        return [field.invalid("subsets", subsets, "must be a list of objects")]
    for i, subset in enumerate(subsets):
        if not isinstance(subset, dict):
            causes.append(field.invalid(f"subsets[{i}]", subset, "must be an object"))
            continue
        for key in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(_items(subset.get(key))):
                if not (address.get("ip") if isinstance(address, dict) else None):
                    causes.append(field.required(f"subsets[{i}].{key}[{j}].ip"))
        for j, port in enumerate(_items(subset.get("ports"))):
            number = port.get("port") if isinstance(port, dict) else None
            if not isinstance(number, int) or not 1 <= number <= 65535:
                causes.append(
                    field.invalid(f"subsets[{i}].ports[{j}].port", number, "must be between 1 and 65535, inclusive")
                )
    return causes


def _items(value: Any) -> list[Any]:
    """A list field's items; a non-list counts as one bad item (so validation names it, never crashes)."""
    if not value:
        return []
    return value if isinstance(value, list) else [value]

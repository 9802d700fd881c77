"""Resource vectors for scheduling: what a pod requests and what a node offers.

CPU is kept in millicores, everything else in whole units (bytes, pods, devices), as kube-scheduler's
framework.Resource does. Quantity strings are parsed once per pod or node, never on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubemark.kube.quantity import QuantityError, parse_quantity, to_int, to_milli

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
PODS = "pods"

# Scoring treats a container without requests as if it asked for this much (pkg/scheduler/util).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024


@dataclass(slots=True)
class Resources:
    """A resource vector; `scalar` holds extended resources (e.g. example.com/gpu, hugepages-2Mi)."""

    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    pods: int = 0
    scalar: dict[str, int] = field(default_factory=dict)

    def add(self, other: Resources) -> None:
        self.milli_cpu += other.milli_cpu
        self.memory += other.memory
        self.ephemeral_storage += other.ephemeral_storage
        self.pods += other.pods
        for name, value in other.scalar.items():
            self.scalar[name] = self.scalar.get(name, 0) + value

    def subtract(self, other: Resources) -> None:
        self.milli_cpu -= other.milli_cpu
        self.memory -= other.memory
        self.ephemeral_storage -= other.ephemeral_storage
        self.pods -= other.pods
        for name, value in other.scalar.items():
            left = self.scalar.get(name, 0) - value
            if left:
                self.scalar[name] = left
            else:
                self.scalar.pop(name, None)

    def set_max(self, other: Resources) -> None:
        """Element-wise maximum (init containers run one at a time, before the app containers)."""
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        self.ephemeral_storage = max(self.ephemeral_storage, other.ephemeral_storage)
        for name, value in other.scalar.items():
            self.scalar[name] = max(self.scalar.get(name, 0), value)


def _amount(name: str, value: Any) -> int:
    try:
        return to_milli(parse_quantity(value)) if name == CPU else to_int(parse_quantity(value))
    except QuantityError:
        return 0


def resources_from_list(values: dict[str, Any] | None) -> Resources:
    """A v1.ResourceList ({"cpu": "100m", "memory": "1Gi", ...}) as a Resources vector."""
    out = Resources()
    for name, value in (values or {}).items():
        amount = _amount(name, value)
        if name == CPU:
            out.milli_cpu = amount
        elif name == MEMORY:
            out.memory = amount
        elif name == EPHEMERAL_STORAGE:
            out.ephemeral_storage = amount
        elif name == PODS:
            out.pods = amount
        elif amount:
            out.scalar[name] = amount
    return out


def _container_requests(container: dict[str, Any]) -> Resources:
    return resources_from_list((container.get("resources") or {}).get("requests"))


def pod_requests(spec: dict[str, Any]) -> tuple[Resources, int, int]:
    """resource.PodRequests: (requests, non-zero milli-CPU, non-zero memory) of a pod spec.

    Sum of app and sidecar containers, at least the largest init container, plus pod overhead; `pods` is 1.
    The non-zero figures substitute defaults for containers without requests; only scoring uses them.
    """
    total = Resources()
    non_zero_cpu = 0
    non_zero_mem = 0
    for container in spec.get("containers") or ():
        req = _container_requests(container)
        total.add(req)
        non_zero_cpu += req.milli_cpu or DEFAULT_MILLI_CPU_REQUEST
        non_zero_mem += req.memory or DEFAULT_MEMORY_REQUEST
    sidecars = Resources()
    init_max = Resources()
    for container in spec.get("initContainers") or ():
        req = _container_requests(container)
        if container.get("restartPolicy") == "Always":
            # A sidecar keeps running next to the app containers, and next to later init containers.
            sidecars.add(req)
            total.add(req)
            non_zero_cpu += req.milli_cpu or DEFAULT_MILLI_CPU_REQUEST
            non_zero_mem += req.memory or DEFAULT_MEMORY_REQUEST
        else:
            peak = Resources(req.milli_cpu, req.memory, req.ephemeral_storage, 0, dict(req.scalar))
            peak.add(sidecars)
            init_max.set_max(peak)
    total.set_max(init_max)
    non_zero_cpu = max(non_zero_cpu, init_max.milli_cpu)
    non_zero_mem = max(non_zero_mem, init_max.memory)
    overhead = spec.get("overhead")
    if overhead:
        extra = resources_from_list(overhead)
        total.add(extra)
        non_zero_cpu += extra.milli_cpu
        non_zero_mem += extra.memory
    total.pods = 1
    return total, non_zero_cpu, non_zero_mem

"""NodeConfig: the shape and behaviour of hollow nodes, loaded from YAML.

Keys are camelCase in YAML (like Kubernetes config files); every field has the kubelet default, so an empty
file gives reference-kubemark nodes (cpu 1, memory 3.75Gi, 110 pods). Errors raise `NodeConfigError` naming the
field path, for the CLI's exit code 2.
"""

from __future__ import annotations

import ipaddress
import math
import random
import re
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from kubemark.kube.durations import parse_duration
from kubemark.kube.quantity import (
    QuantityError,
    canonical_quantity,
    format_quantity,
    parse_quantity,
    quantity_is_binary,
)

LIFETIME_ANNOTATION = "kubemark.io/lifetime-seconds"
EXIT_CODE_ANNOTATION = "kubemark.io/exit-code"

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class NodeConfigError(ValueError):
    """A node config file is unreadable or invalid; the message names the field path and the reason."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ConstantDelay(_Model):
    kind: Literal["constant"] = "constant"
    value: float = Field(default=0.0, ge=0)

    def sample(self, rng: random.Random) -> float:
        return self.value


class UniformDelay(_Model):
    kind: Literal["uniform"]
    min: float = Field(default=0.0, ge=0)
    max: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> UniformDelay:
        if self.max < self.min:
            raise ValueError("max must be >= min")
        return self

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.min, self.max)


class ExponentialDelay(_Model):
    kind: Literal["exponential"]
    mean: float = Field(gt=0)

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean)


class NormalDelay(_Model):
    kind: Literal["normal"]
    mean: float = Field(ge=0)
    stddev: float = Field(default=0.0, ge=0)

    def sample(self, rng: random.Random) -> float:
        return max(0.0, rng.gauss(self.mean, self.stddev))


Distribution = Annotated[
    ConstantDelay | UniformDelay | ExponentialDelay | NormalDelay,
    Field(discriminator="kind"),
]


def _zero() -> ConstantDelay:
    return ConstantDelay(value=0.0)


class Delays(_Model):
    """Simulated runtime latencies, in seconds."""

    sandbox: Distribution = Field(default_factory=_zero)
    image_pull: Distribution = Field(default_factory=_zero)
    container_start: Distribution = Field(default_factory=_zero)
    readiness: Distribution = Field(default_factory=_zero)


class Taint(_Model):
    key: str = Field(min_length=1)
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Image(_Model):
    names: list[str] = Field(min_length=1)
    size_bytes: int = Field(default=0, ge=0)


def _default_images() -> list[Image]:
    return [
        Image(names=["registry.k8s.io/pause:3.9"], size_bytes=321_520),
        Image(names=["registry.k8s.io/kube-proxy:v1.37.2"], size_bytes=29_978_000),
        Image(names=["registry.k8s.io/node-problem-detector/node-problem-detector:v0.8.19"], size_bytes=47_152_000),
    ]


class Heartbeat(_Model):
    """Kubelet and daemon periods, seconds (kubelet defaults)."""

    lease_duration_seconds: int = Field(default=40, ge=1)
    lease_renew_interval: float | None = Field(default=None, gt=0)  # None: 0.25 x duration, like kubelet
    status_update_frequency: float = Field(default=10.0, gt=0)
    status_report_frequency: float = Field(default=300.0, gt=0)
    npd_period: float = Field(default=300.0, gt=0)
    jitter: float = Field(default=0.04, ge=0, le=1)  # kubelet's wait.JitterUntil factor for lease renewals

    @property
    def renew_interval(self) -> float:
        if self.lease_renew_interval is not None:
            return self.lease_renew_interval
        return 0.25 * self.lease_duration_seconds


class NPDCondition(_Model):
    type: str = Field(min_length=1)
    reason: str
    message: str


def _default_npd_conditions() -> list[NPDCondition]:
    return [
        NPDCondition(type="KernelDeadlock", reason="KernelHasNoDeadlock", message="kernel has no deadlock"),
        NPDCondition(
            type="ReadonlyFilesystem", reason="FilesystemIsNotReadOnly", message="Filesystem is not read-only"
        ),
        NPDCondition(
            type="FrequentKubeletRestart", reason="NoFrequentKubeletRestart", message="kubelet is functioning properly"
        ),
    ]


class ConditionFlip(_Model):
    """Chaos: `after` seconds from start, set condition `type` to `status` (for `duration` seconds if given)."""

    type: str = Field(min_length=1)
    status: Literal["True", "False", "Unknown"] = "True"
    reason: str = "HollowChaos"
    message: str = "condition flipped by kubemark chaos schedule"
    after: float = Field(ge=0)
    duration: float | None = Field(default=None, gt=0)
    node_fraction: float = Field(default=1.0, ge=0, le=1)  # nodes whose index hashes below this fraction flip


class NPD(_Model):
    enabled: bool = True
    conditions: list[NPDCondition] = Field(default_factory=_default_npd_conditions)
    flips: list[ConditionFlip] = Field(default_factory=list)


class Proxy(_Model):
    enabled: bool = True
    min_sync_period: float = Field(default=1.0, ge=0)
    sync_period: float = Field(default=30.0, gt=0)
    # LIST + WATCH all ServiceCIDRs (networking.k8s.io/v1), as kube-proxy does since MultiCIDRServiceAllocator
    # went GA (1.33; locked on since 1.34). One watch per node, holding a process-wide shared copy of each.
    watch_service_cidrs: bool = True


class Client(_Model):
    qps: float = Field(default=10.0, gt=0)
    burst: int = Field(default=20, ge=1)
    timeout: float = Field(default=30.0, gt=0)


def _default_capacity() -> dict[str, str]:
    return {"cpu": "1", "memory": "3.75Gi", "pods": "110", "ephemeral-storage": "100Gi"}


class NodeConfig(_Model):
    """Everything about a hollow node that is not its name and index."""

    capacity: dict[str, str] = Field(default_factory=_default_capacity)
    eviction_reserve: dict[str, str] = Field(default_factory=lambda: {"memory": "100Mi"})
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)
    # The kubelet release whose API behaviour the hollow kubelet follows (its watches, status rules), within the
    # version-skew policy of the real control plane kubemark builds (scripts/kube-binaries.sh).
    kubelet_version: str = "v1.37.2"
    container_runtime_version: str = "hollow://1.0"
    os_image: str = "Debian GNU/Linux 12 (bookworm)"
    kernel_version: str = "6.1.0-hollow"
    images: list[Image] = Field(default_factory=_default_images, max_length=50)
    node_cidr: str = "10.64.0.0/10"  # InternalIPs: node index i gets the (i+1)-th address
    pod_cidr_base: str = "10.128.0.0/9"  # used until the controller manager sets spec.podCIDR
    pod_cidr_mask_size: int = Field(default=24, ge=8, le=30)
    kubelet_port_base: int = Field(default=10250, ge=1, le=65535)
    per_node_port: bool = False  # True: kubelet port = base + index (one listener per node)
    delays: Delays = Field(default_factory=Delays)
    pod_lifetime: Distribution | None = None  # None: pods run until deleted
    grace_fraction: float = Field(default=0.0, ge=0, le=1)  # share of the grace period a stop takes
    events: bool = True
    watch_services: bool = True
    # What a v1.37 kubelet also LISTs and WATCHes (one watch each per node; off to save the connections):
    # all CSIDrivers (storage.k8s.io/v1, its CSI volume plugin's lister), all RuntimeClasses (node.k8s.io/v1,
    # its RuntimeClass manager), and its node's PodCertificateRequests (certificates.k8s.io/v1, all namespaces,
    # fieldSelector spec.nodeName=<node>; the PodCertificateRequest feature, GA and on in 1.37). The first two
    # hold a process-wide shared copy of each object, as the Services do.
    watch_csi_drivers: bool = True
    watch_runtime_classes: bool = True
    watch_pod_certificate_requests: bool = True
    # How the kubelet reads the Secrets / ConfigMaps its pods reference (kubelet's field of that name; see
    # hollow/object_managers.py): Get, Cache (TTL, the default here) or Watch (one watch per object).
    config_map_and_secret_change_detection_strategy: Literal["Get", "Cache", "Watch"] = "Cache"
    sync_frequency: float = Field(default=60.0, gt=0)  # kubelet's pod resync: remounts secret/configmap volumes
    heartbeat: Heartbeat = Field(default_factory=Heartbeat)
    node_padding_bytes: int = Field(default=0, ge=0, le=1_000_000)
    reregister_on_delete: bool = True
    client: Client = Field(default_factory=Client)
    npd: NPD = Field(default_factory=NPD)
    proxy: Proxy = Field(default_factory=Proxy)

    @field_validator("capacity", "eviction_reserve")
    @classmethod
    def _quantities(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            try:
                parse_quantity(str(text))
            except QuantityError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return {k: str(v) for k, v in value.items()}

    @field_validator("node_cidr", "pod_cidr_base")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise ValueError(f"not a CIDR: {exc}") from None
        if net.version != 4:
            raise ValueError("only IPv4 ranges are supported")
        return str(net)

    @model_validator(mode="after")
    def _pod_cidr_fits(self) -> NodeConfig:
        if ipaddress.ip_network(self.pod_cidr_base).prefixlen > self.pod_cidr_mask_size:
            raise ValueError("podCidrMaskSize must not be shorter than podCidrBase's prefix")
        return self

    def canonical_capacity(self) -> dict[str, str]:
        """Capacity as kube-apiserver stores it: canonical quantities ("3.75Gi" -> "3840Mi")."""
        return {name: canonical_quantity(text) for name, text in self.capacity.items()}

    def allocatable(self) -> dict[str, str]:
        """Capacity minus the eviction reserve (kubelet: capacity - reserved - hard eviction threshold).

        Canonical quantities, in the capacity's format (Quantity.Sub keeps it), so they equal what the server
        returns and a status comparison with the stored Node sees no change.
        """
        out: dict[str, str] = {}
        for name, text in self.capacity.items():
            reserve = self.eviction_reserve.get(name)
            if reserve is not None:
                value = max(parse_quantity(text) - parse_quantity(reserve), Fraction(0))
                out[name] = format_quantity(value, binary=quantity_is_binary(text))
            else:
                out[name] = canonical_quantity(text)
        return out

    def kubelet_port(self, index: int) -> int:
        return self.kubelet_port_base + index if self.per_node_port else self.kubelet_port_base

    def node_ip(self, index: int) -> str:
        """The node's InternalIP: unique per index within node_cidr."""
        net = ipaddress.ip_network(self.node_cidr)
        if index + 1 >= net.num_addresses - 1:
            raise ValueError(f"node index {index} does not fit in nodeCidr {self.node_cidr}")
        return str(net.network_address + index + 1)

    def fallback_pod_cidr(self, index: int) -> str:
        """The pod range a node uses while spec.podCIDR is unset (no range allocator running)."""
        base = ipaddress.ip_network(self.pod_cidr_base)
        count = 2 ** (self.pod_cidr_mask_size - base.prefixlen)
        size = 2 ** (32 - self.pod_cidr_mask_size)
        net = ipaddress.ip_network((int(base.network_address) + (index % count) * size, self.pod_cidr_mask_size))
        return str(net)


# clusterloader2's test image that sleeps for its first argument (a Go duration) and exits, as its batch and
# job tests use it.
_SLEEP_IMAGE = re.compile(r"perf-tests/sleep(:|@|$)")
_SLEEP_SECONDS = re.compile(r"^(\d+(?:\.\d*)?)([smhd]?)$")  # coreutils/busybox `sleep N[smhd]`
_SLEEP_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _container_sleep(container: dict[str, Any]) -> float | None:
    """How long a container that only sleeps runs: the perf-tests sleep image's duration argument, or a
    `sleep N` command; None for anything else (it runs until stopped)."""
    command = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    if not command and _SLEEP_IMAGE.search(str(container.get("image") or "")) and args:
        try:
            return parse_duration(args[0])
        except ValueError:
            return None
    argv = command + args
    if len(argv) == 2 and argv[0].rsplit("/", 1)[-1] == "sleep":
        m = _SLEEP_SECONDS.match(argv[1])
        if m:
            return float(m.group(1)) * _SLEEP_UNITS[m.group(2)]
    return None


def sleep_lifetime(pod: dict[str, Any]) -> float | None:
    """A pod whose every container only sleeps (see `_container_sleep`) exits after the longest sleep, as its
    processes would; None when any container runs until stopped."""
    containers = (pod.get("spec") or {}).get("containers") or []
    sleeps = [_container_sleep(c) for c in containers]
    if not sleeps or any(s is None for s in sleeps):
        return None
    return max(s for s in sleeps if s is not None)


def lifetime_of(pod: dict[str, Any], config: NodeConfig, rng: random.Random) -> float | None:
    """Seconds a pod's containers run before exiting, or None (forever). The annotation wins, then a command
    that only sleeps (clusterloader2's sleep image, `sleep N`), then the config's distribution."""
    text = ((pod.get("metadata") or {}).get("annotations") or {}).get(LIFETIME_ANNOTATION)
    if text is not None:
        try:
            value = float(text)
        except ValueError:
            return None
        return value if math.isfinite(value) and value >= 0 else None
    slept = sleep_lifetime(pod)
    if slept is not None:
        return slept
    if config.pod_lifetime is None:
        return None
    return config.pod_lifetime.sample(rng)


def exit_code_of(pod: dict[str, Any]) -> int:
    text = ((pod.get("metadata") or {}).get("annotations") or {}).get(EXIT_CODE_ANNOTATION)
    try:
        return int(text) if text is not None else 0
    except ValueError:
        return 0


def _format_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def node_config_from_dict(data: Any, *, source: str = "node config") -> NodeConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise NodeConfigError(f"{source}: top level must be a mapping")
    try:
        return NodeConfig.model_validate(data)
    except ValidationError as exc:
        raise NodeConfigError(f"{source}: {_format_errors(exc)}") from None


def load_node_config(path: str | Path | None) -> NodeConfig:
    """Read a NodeConfig from YAML; None gives the defaults."""
    if path is None:
        return NodeConfig()
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise NodeConfigError(f"{p}: cannot read file: {exc.strerror or exc}") from None
    try:
        data = yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        raise NodeConfigError(f"{p}: not valid YAML: {exc}") from None
    return node_config_from_dict(data, source=str(p))

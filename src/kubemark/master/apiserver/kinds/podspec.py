"""Pod spec rules shared by Pods and every pod template (Deployment, ReplicaSet, RC, Job).

Defaulting follows pkg/apis/core/v1/defaults.go (PodSpec, Container, ContainerPort); validation follows
the subset of pkg/apis/core/validation that clients actually trip over: containers, names, images,
enums, ports, resource quantities and requests <= limits.
"""

from __future__ import annotations

from typing import Any

from kubemark.kube.quantity import parse_quantity
from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import field
from kubemark.master.apiserver.strategy import Obj

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PROTOCOLS = ("SCTP", "TCP", "UDP")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_OPERATORS = ("Equal", "Exists")
_CONTAINER_LISTS = ("initContainers", "containers")


def default_pull_policy(image: str) -> str:
    """Always for an untagged or :latest image, else IfNotPresent (digests count as tags)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def default_container(container: Obj) -> None:
    image = container.get("image")
    if "imagePullPolicy" not in container and isinstance(image, str) and image:
        container["imagePullPolicy"] = default_pull_policy(image)
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or ():
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec + containers: what every pod template gets."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    if spec.get("hostNetwork"):
        for container in _containers(spec):
            if isinstance(container.get("ports"), list):
                for port in container["ports"]:
                    if isinstance(port, dict) and "hostPort" not in port and "containerPort" in port:
                        port["hostPort"] = port["containerPort"]
    for key in _CONTAINER_LISTS:
        for container in spec.get(key) or ():
            if isinstance(container, dict):
                default_container(container)


def _containers(spec: Obj) -> list[Obj]:
    """The containers of every container list that are objects (the rest fail validation)."""
    return [c for key in _CONTAINER_LISTS if isinstance(spec.get(key), list) for c in spec[key] if isinstance(c, dict)]


def default_requests_from_limits(spec: Obj) -> None:
    """SetDefaults_Pod: a limit without a request makes the request equal to the limit (pods only)."""
    for container in _containers(spec):
        resources = container.get("resources") or {}
        limits = resources.get("limits") if isinstance(resources, dict) else None
        if not isinstance(limits, dict) or not limits or not isinstance(resources.get("requests") or {}, dict):
            continue  # nothing to default from (or not a ResourceRequirements: validation says so)
        requests = resources.setdefault("requests", {})
        for name, value in limits.items():
            requests.setdefault(name, value)
        container["resources"] = resources


def qos_class(spec: Obj) -> str:
    """Guaranteed / Burstable / BestEffort from the cpu and memory requests and limits (GetPodQOS)."""
    compute = ("cpu", "memory")
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    for container in _containers(spec):
        resources = container.get("resources") or {}
        if not isinstance(resources, dict) or not all(
            isinstance(resources.get(k) or {}, dict) for k in ("requests", "limits")
        ):
            guaranteed = False
            continue
        c_requests = {k: _amount(v) for k, v in (resources.get("requests") or {}).items() if k in compute}
        c_limits = {k: _amount(v) for k, v in (resources.get("limits") or {}).items() if k in compute}
        for name, amount in c_requests.items():
            if amount:
                requests[name] = requests.get(name, 0) + amount
        for name, amount in c_limits.items():
            if amount:
                limits[name] = limits.get(name, 0) + amount
        if set(k for k, v in c_limits.items() if v) != set(compute):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and requests.keys() == limits.keys() and all(requests[k] == limits[k] for k in requests):
        return "Guaranteed"
    return "Burstable"


def _amount(value: Any) -> Any:
    try:
        return parse_quantity(str(value))
    except ValueError:
        return 0


def validate_pod_spec(spec: Any, path: str, *, require_image: bool) -> list[Cause]:
    """Validation of a PodSpec at `path` ("spec" or "spec.template.spec")."""
    if not isinstance(spec, dict):
        return [field.required(path)]
    causes: list[Cause] = []
    containers = spec.get("containers")
    if not containers:
        causes.append(field.required(f"{path}.containers"))
    names: set[str] = set()
    for key in _CONTAINER_LISTS:
        for i, container in enumerate(spec.get(key) or ()):
            causes += _validate_container(container, f"{path}.{key}[{i}]", names, require_image)
    restart = spec.get("restartPolicy")
    if restart not in RESTART_POLICIES:
        causes.append(
            field.required(f"{path}.restartPolicy")
            if restart is None
            else field.not_supported(f"{path}.restartPolicy", restart, RESTART_POLICIES)
        )
    dns = spec.get("dnsPolicy")
    if dns is not None and dns not in DNS_POLICIES:
        causes.append(field.not_supported(f"{path}.dnsPolicy", dns, DNS_POLICIES))
    causes += field.non_negative(f"{path}.terminationGracePeriodSeconds", spec.get("terminationGracePeriodSeconds"))
    causes += field.positive(f"{path}.activeDeadlineSeconds", spec.get("activeDeadlineSeconds"))
    node_name = spec.get("nodeName")
    if node_name:
        causes += field.dns1123_subdomain(f"{path}.nodeName", node_name)
    for i, toleration in enumerate(spec.get("tolerations") or ()):
        causes += validate_toleration(toleration, f"{path}.tolerations[{i}]")
    return causes


def validate_toleration(toleration: Any, path: str) -> list[Cause]:
    if not isinstance(toleration, dict):
        return [field.invalid(path, toleration, "must be an object")]
    causes = []
    operator = toleration.get("operator") or "Equal"
    if operator not in TOLERATION_OPERATORS:
        causes.append(field.not_supported(f"{path}.operator", operator, TOLERATION_OPERATORS))
    if operator == "Exists" and toleration.get("value"):
        causes.append(
            field.invalid(f"{path}.operator", toleration["value"], "value must be empty when `operator` is 'Exists'")
        )
    if not toleration.get("key") and operator != "Exists":
        causes.append(
            field.invalid(
                f"{path}.operator",
                operator,
                'operator must be Exists when `key` is empty, which means "match all values and all keys"',
            )
        )
    effect = toleration.get("effect")
    if effect and effect not in TAINT_EFFECTS:
        causes.append(field.not_supported(f"{path}.effect", effect, TAINT_EFFECTS))
    if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
        causes.append(
            field.invalid(f"{path}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set")
        )
    return causes


def _validate_container(container: Any, path: str, names: set[str], require_image: bool) -> list[Cause]:
    if not isinstance(container, dict):
        return [field.invalid(path, container, "must be an object")]
    causes: list[Cause] = []
    name = container.get("name")
    if not name:
        causes.append(field.required(f"{path}.name"))
    elif not isinstance(name, str):
        causes.append(field.invalid(f"{path}.name", name, "must be a string"))
    else:
        causes += field.dns1123_label(f"{path}.name", name)
        if name in names:
            causes.append(field.duplicate(f"{path}.name", name))
        names.add(name)
    image = container.get("image")
    if require_image and (not isinstance(image, str) or not image.strip()):
        causes.append(field.required(f"{path}.image"))
    policy = container.get("imagePullPolicy")
    if policy is not None and policy not in PULL_POLICIES:
        causes.append(field.not_supported(f"{path}.imagePullPolicy", policy, PULL_POLICIES))
    for i, port in enumerate(container.get("ports") or ()):
        causes += _validate_port(port, f"{path}.ports[{i}]")
    causes += validate_resources(container.get("resources"), f"{path}.resources")
    return causes


def _validate_port(port: Any, path: str) -> list[Cause]:
    if not isinstance(port, dict):
        return [field.invalid(path, port, "must be an object")]
    causes = []
    number = port.get("containerPort")
    if number is None:
        causes.append(field.required(f"{path}.containerPort"))
    elif not isinstance(number, int) or not 1 <= number <= 65535:
        causes.append(field.invalid(f"{path}.containerPort", number, "must be between 1 and 65535, inclusive"))
    protocol = port.get("protocol")
    if protocol not in PROTOCOLS:
        causes.append(
            field.required(f"{path}.protocol")
            if protocol is None
            else field.not_supported(f"{path}.protocol", protocol, PROTOCOLS)
        )
    return causes


def validate_resources(resources: Any, path: str) -> list[Cause]:
    """Quantities must parse and be non-negative; each request must not exceed its limit."""
    if not resources:
        return []
    if not isinstance(resources, dict):
        return [field.invalid(path, resources, "must be an object")]
    causes: list[Cause] = []
    parsed: dict[str, dict[str, Any]] = {}
    for part in ("limits", "requests"):
        amounts = parsed.setdefault(part, {})
        for name, value in (resources.get(part) or {}).items():
            try:
                amount = parse_quantity(str(value))
            except ValueError:
                causes.append(
                    field.invalid(
                        f"{path}.{part}[{name}]",
                        value,
                        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                    )
                )
                continue
            if amount < 0:
                causes.append(field.invalid(f"{path}.{part}[{name}]", value, "must be greater than or equal to 0"))
            amounts[name] = amount
    for name, request in parsed["requests"].items():
        limit = parsed["limits"].get(name)
        if limit is not None and request > limit:
            raw_limit = resources["limits"][name]
            causes.append(
                field.invalid(
                    f"{path}.requests",
                    resources["requests"][name],
                    f"must be less than or equal to {name} limit of {raw_limit}",
                )
            )
    return causes

"""meta.k8s.io/v1 Table output, as kube-apiserver's printers produce it for `kubectl get`.

Columns, cell values and the pod STATUS logic follow pkg/printers/internalversion; the server always renders
the wide columns (priority 1 marks what kubectl shows only with -o wide).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubemark.kube.meta import parse_rfc3339
from kubemark.kube.resources import ResourceType

Obj = dict[str, Any]
Column = dict[str, Any]
RowCells = Callable[[Obj, float], list[Any]]

_NAME_DESC = (
    "Name must be unique within a namespace. Is required when creating resources, although some resources "
    "may allow a client to request the generation of an appropriate name automatically."
)
_AGE_DESC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is represented in RFC3339 form and is in UTC."
)


def _col(name: str, description: str, priority: int = 0, type_: str = "string", fmt: str = "") -> Column:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


NAME = _col("Name", _NAME_DESC, fmt="name")
AGE = _col("Age", _AGE_DESC)
_CONTAINERS = _col("Containers", "Names of each container in the template.", 1)
_IMAGES = _col("Images", "Images referenced by each container in the template.", 1)
_SELECTOR = _col("Selector", "Label selector over pods; objects matching it are counted as replicas.", 1)


# --- time -----------------------------------------------------------------------------------------


def parse_time(value: str | None) -> float | None:
    """RFC3339 (metav1.Time) or RFC3339 with microseconds (MicroTime) to a Unix timestamp; None if unset."""
    if not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration: "45s", "5m3s", "3h20m", "5d2h", "2y30d"."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rem = s % 60
        return f"{minutes}m" if rem == 0 else f"{minutes}m{rem}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rem = minutes % 60
        return f"{hours}h" if rem == 0 else f"{hours}h{rem}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rem = hours % 24
        return f"{hours // 24}d" if rem == 0 else f"{hours // 24}d{rem}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _since(value: str | None, now: float) -> str:
    ts = parse_time(value)
    return "<unknown>" if ts is None else human_duration(now - ts)


def _age(obj: Obj, now: float) -> str:
    return _since(obj.get("metadata", {}).get("creationTimestamp"), now)


def _name(obj: Obj) -> str:
    return obj.get("metadata", {}).get("name", "")


# --- shared formatting ----------------------------------------------------------------------------


def format_labels(labels: dict[str, str] | None) -> str:
    """labels.FormatLabels: sorted k=v pairs, or <none>."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def format_selector(selector: dict[str, Any] | None) -> str:
    """metav1.LabelSelectorAsSelector(...).String(): requirements sorted by key."""
    if not selector:
        return "<none>" if selector is None else ""
    reqs: list[tuple[str, str]] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), sorted(expr.get("values") or [])
        if op == "In":
            reqs.append((key, f"{key} in ({','.join(values)})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({','.join(values)})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
    reqs.sort(key=lambda r: r[0])
    return ",".join(r[1] for r in reqs)


def _container_cells(pod_spec: dict[str, Any]) -> list[str]:
    containers = pod_spec.get("containers") or []
    return [",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)]


def _template_spec(obj: Obj) -> dict[str, Any]:
    return obj.get("spec", {}).get("template", {}).get("spec", {}) or {}


def _more(items: list[str], count: int, limit: int = 3) -> str:
    ret = ",".join(items)
    if count > limit:
        return f"{ret} + {count - limit} more..."
    return ret


# --- pods -----------------------------------------------------------------------------------------

POD_COLUMNS = [
    NAME,
    _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "The aggregate status of the containers in this pod."),
    _col(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the last container in "
        "this pod has restarted.",
    ),
    AGE,
    _col("IP", "podIP address allocated to the pod. Routable at least within the cluster.", 1),
    _col("Node", "NodeName indicates in which node this pod is scheduled.", 1),
    _col("Nominated Node", "nominatedNodeName is set when this pod preempts other pods on the node.", 1),
    _col("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.", 1),
]


def _restartable_init(container: dict[str, Any] | None) -> bool:
    return bool(container) and container.get("restartPolicy") == "Always"  # type: ignore[union-attr]


def _condition_true(conditions: list[dict[str, Any]] | None, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in conditions or [])


def pod_status_reason(pod: Obj, now: float | None = None) -> tuple[str, int, int, int, float | None]:
    """kubectl's pod STATUS column logic.

    Returns (reason, ready containers, total containers, restarts, last restart time).
    """
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    phase = status.get("phase", "")
    reason = status.get("reason") or phase
    conditions = status.get("conditions") or []
    for cond in conditions:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total = len(spec.get("containers") or []) + sum(1 for c in init_specs.values() if _restartable_init(c))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: float | None = None
    last_sidecar_restart: float | None = None

    def later(current: float | None, cstatus: dict[str, Any]) -> float | None:
        finished = parse_time(((cstatus.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        if finished is not None and (current is None or finished > current):
            return finished
        return current

    init_statuses = status.get("initContainerStatuses") or []
    initializing = False
    for i, cs in enumerate(init_statuses):
        restarts += cs.get("restartCount", 0)
        last_restart = later(last_restart, cs)
        sidecar = _restartable_init(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += cs.get("restartCount", 0)
            last_sidecar_restart = later(last_sidecar_restart, cs)
        state = cs.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and terminated.get("exitCode", 0) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            if not terminated.get("reason"):
                if terminated.get("signal"):
                    reason = f"Init:Signal:{terminated['signal']}"
                else:
                    reason = f"Init:ExitCode:{terminated.get('exitCode', 0)}"
            else:
                reason = "Init:" + terminated["reason"]
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break

    if not initializing or _condition_true(conditions, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            last_restart = later(last_restart, cs)
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                if terminated.get("signal"):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{terminated.get('exitCode', 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    if pod.get("metadata", {}).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return reason, ready, total, restarts, last_restart


def _pod_cells(pod: Obj, now: float) -> list[Any]:
    reason, ready, total, restarts, last_restart = pod_status_reason(pod, now)
    restarts_str = str(restarts)
    if restarts and last_restart is not None:
        restarts_str = f"{restarts} ({human_duration(now - last_restart)} ago)"
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    pod_ips = status.get("podIPs") or []
    gates = spec.get("readinessGates") or []
    gates_str = "<none>"
    if gates:
        conditions = {c.get("type"): c.get("status") for c in reversed(status.get("conditions") or [])}
        true_count = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
        gates_str = f"{true_count}/{len(gates)}"
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_str,
        _age(pod, now),
        (pod_ips[0].get("ip") if pod_ips else "") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_str,
    ]


def _pod_conditions(pod: Obj) -> list[dict[str, Any]] | None:
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return [
            {
                "type": "Completed",
                "status": "True",
                "reason": "Succeeded",
                "message": "The pod has completed successfully.",
            }
        ]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


# --- nodes ----------------------------------------------------------------------------------------

NODE_COLUMNS = [
    NAME,
    _col("Status", "The status of the node"),
    _col("Roles", "The roles of the node"),
    AGE,
    _col("Version", "Kubelet Version reported by the node."),
    _col("Internal-IP", "List of addresses reachable to the node.", 1),
    _col("External-IP", "List of addresses reachable to the node.", 1),
    _col("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1),
    _col("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
    _col("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API.", 1),
]


def node_roles(node: Obj) -> list[str]:
    roles: set[str] = set()
    for key, value in (node.get("metadata", {}).get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key[len("node-role.kubernetes.io/") :]
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return sorted(roles)


def _node_address(node: Obj, kind: str) -> str:
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") == kind:
            return addr.get("address", "")
    return "<none>"


def _node_cells(node: Obj, now: float) -> list[Any]:
    status = node.get("status") or {}
    states = []
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            states = ["Ready" if cond.get("status") == "True" else "NotReady"]
    if not states:
        states = ["Unknown"]
    if (node.get("spec") or {}).get("unschedulable"):
        states.append("SchedulingDisabled")
    info = status.get("nodeInfo") or {}
    return [
        _name(node),
        ",".join(states),
        ",".join(node_roles(node)) or "<none>",
        _age(node, now),
        info.get("kubeletVersion", ""),
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


# --- workloads ------------------------------------------------------------------------------------

DEPLOYMENT_COLUMNS = [
    NAME,
    _col("Ready", "Number of the pod with ready state"),
    _col(
        "Up-to-date",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    _col(
        "Available", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."
    ),
    AGE,
    _CONTAINERS,
    _IMAGES,
    _SELECTOR,
]


def _deployment_cells(obj: Obj, now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        _name(obj),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(obj, now),
        *_container_cells(_template_spec(obj)),
        format_selector(spec.get("selector")),
    ]


REPLICA_COLUMNS = [
    NAME,
    _col("Desired", "Replicas is the number of desired replicas.", type_="integer"),
    _col("Current", "Replicas is the most recently observed number of replicas.", type_="integer"),
    _col("Ready", "The number of ready replicas for this replica set.", type_="integer"),
    AGE,
    _CONTAINERS,
    _IMAGES,
    _SELECTOR,
]


def _replicaset_cells(obj: Obj, now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        _name(obj),
        spec.get("replicas", 0),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(obj, now),
        *_container_cells(_template_spec(obj)),
        format_selector(spec.get("selector")),
    ]


def _rc_cells(obj: Obj, now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    selector = spec.get("selector") or {}
    return [
        _name(obj),
        spec.get("replicas", 0),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(obj, now),
        *_container_cells(_template_spec(obj)),
        ",".join(f"{k}={selector[k]}" for k in sorted(selector)),
    ]


JOB_COLUMNS = [
    NAME,
    _col("Status", "Status of the job."),
    _col("Completions", "The desired number of successfully finished pods the job should be run with."),
    _col("Duration", "Time required to complete the job."),
    AGE,
    _CONTAINERS,
    _IMAGES,
    _SELECTOR,
]


def _job_cells(obj: Obj, now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = ""
    if start is not None:
        duration = human_duration((end if end is not None else now) - start)
    conditions = status.get("conditions") or []
    if _condition_true(conditions, "Complete"):
        state = "Complete"
    elif _condition_true(conditions, "Failed"):
        state = "Failed"
    elif obj.get("metadata", {}).get("deletionTimestamp"):
        state = "Terminating"
    elif _condition_true(conditions, "Suspended"):
        state = "Suspended"
    elif _condition_true(conditions, "FailureTarget"):
        state = "FailureTarget"
    elif _condition_true(conditions, "SuccessCriteriaMet"):
        state = "SuccessCriteriaMet"
    else:
        state = "Running"
    return [
        _name(obj),
        state,
        completions,
        duration,
        _age(obj, now),
        *_container_cells(_template_spec(obj)),
        format_selector(spec.get("selector")),
    ]


# --- services and endpoints -----------------------------------------------------------------------

SERVICE_COLUMNS = [
    NAME,
    _col("Type", "type determines how the Service is exposed."),
    _col("Cluster-IP", "clusterIP is the IP address of the service and is usually assigned randomly."),
    _col(
        "External-IP",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
    ),
    _col("Port(s)", "The list of ports that are exposed by this service."),
    AGE,
    _col("Selector", "Route service traffic to pods with label keys and values matching this selector.", 1),
]


def _service_external_ip(svc: Obj) -> str:
    spec, status = svc.get("spec") or {}, svc.get("status") or {}
    svc_type = spec.get("type", "ClusterIP")
    external = spec.get("externalIPs") or []
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if svc_type == "LoadBalancer":
        ingress = (status.get("loadBalancer") or {}).get("ingress") or []
        lb = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
        if external:
            return ",".join([*lb, *external])
        return ",".join(lb) if lb else "<pending>"
    if svc_type == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def _service_cells(svc: Obj, now: float) -> list[Any]:
    spec = svc.get("spec") or {}
    ports = []
    for p in spec.get("ports") or []:
        proto = p.get("protocol", "TCP")
        if p.get("nodePort"):
            ports.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            ports.append(f"{p.get('port')}/{proto}")
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [
        _name(svc),
        spec.get("type", ""),
        cluster_ips[0] if cluster_ips else "<none>",
        _service_external_ip(svc),
        ",".join(ports) or "<none>",
        _age(svc, now),
        format_labels(spec.get("selector")),
    ]


ENDPOINTS_COLUMNS = [NAME, _col("Endpoints", "Endpoints of the service"), AGE]


def _join_host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def format_endpoints(obj: Obj) -> str:
    subsets = obj.get("subsets") or []
    if not subsets:
        return "<none>"
    items: list[str] = []
    count = 0
    for ss in subsets:
        addresses = ss.get("addresses") or []
        ports = ss.get("ports") or []
        if not ports:
            count += len(addresses)
            items.extend(a.get("ip", "") for a in addresses[: max(0, 3 - len(items))])
            continue
        for port in ports:
            count += len(addresses)
            items.extend(
                _join_host_port(a.get("ip", ""), port.get("port")) for a in addresses[: max(0, 3 - len(items))]
            )
    return _more(items, count)


def _endpoints_cells(obj: Obj, now: float) -> list[Any]:
    return [_name(obj), format_endpoints(obj), _age(obj, now)]


ENDPOINTSLICE_COLUMNS = [
    NAME,
    _col("AddressType", "The IP protocol for this slice"),
    _col("Ports", "The ports of this slice"),
    _col("Endpoints", "The endpoints of this slice"),
    AGE,
]


def _endpointslice_cells(obj: Obj, now: float) -> list[Any]:
    ports = obj.get("ports") or []
    port_names = []
    for p in ports[:3]:
        if p.get("port") is not None:
            port_names.append(str(p["port"]))
        else:
            port_names.append(p.get("name") or "*")
    addresses = [a for ep in obj.get("endpoints") or [] for a in ep.get("addresses") or []]
    return [
        _name(obj),
        obj.get("addressType", ""),
        _more(port_names, len(ports)) or "<unset>",
        _more(addresses[:3], len(addresses)) or "<unset>",
        _age(obj, now),
    ]


# --- events ---------------------------------------------------------------------------------------

EVENT_COLUMNS = [
    _col("Last Seen", "Time when last event occurred"),
    _col("Type", "Type of this event."),
    _col("Reason", "Reason why this event was generated."),
    _col("Object", "Object this event is about."),
    _col("Subobject", "Subobject this event is about.", 1),
    _col("Source", "Source of this event.", 1),
    _col("Message", "Message of this event."),
    _col("First Seen", "Time when first event occurred", 1),
    _col("Count", "Number of times this event occurred.", 1),
    _col("Name", _NAME_DESC, 1, fmt="name"),
]


def _event_row(
    obj: Obj,
    now: float,
    *,
    first: str | None,
    last: str | None,
    event_time: str | None,
    series: dict[str, Any] | None,
    count: int,
    involved: dict[str, Any],
    component: str,
    host: str,
    message: str,
) -> list[Any]:
    first_seen = _since(first, now) if first else _since(event_time, now)
    last_seen = _since(last, now) if last else first_seen
    if series:
        last_seen = _since(series.get("lastObservedTime"), now)
        count = series.get("count", 0)
    elif not count:
        count = 1  # singleton events carry no count in the new API
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = f"{component}, {host}" if component and host else component
    return [
        last_seen,
        obj.get("type", ""),
        obj.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        source,
        message.strip(),
        first_seen,
        count,
        _name(obj),
    ]


# Where each Event version keeps the fields the EVENTS table shows: core/v1 names, then events.k8s.io/v1 names.
_CORE_EVENT_FIELDS = (
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "involvedObject",
    "reportingComponent",
    "message",
)
_EVENTS_V1_FIELDS = (
    "deprecatedSource",
    "deprecatedFirstTimestamp",
    "deprecatedLastTimestamp",
    "deprecatedCount",
    "regarding",
    "reportingController",
    "note",
)


def _event_cells(obj: Obj, now: float, fields: tuple[str, ...]) -> list[Any]:
    source, first, last, count, involved, component, message = fields
    src = obj.get(source) or {}
    return _event_row(
        obj,
        now,
        first=obj.get(first),
        last=obj.get(last),
        event_time=obj.get("eventTime"),
        series=obj.get("series"),
        count=obj.get(count) or 0,
        involved=obj.get(involved) or {},
        component=src.get("component") or obj.get(component, ""),
        host=src.get("host") or obj.get("reportingInstance", ""),
        message=obj.get(message, ""),
    )


def _core_event_cells(obj: Obj, now: float) -> list[Any]:
    return _event_cells(obj, now, _CORE_EVENT_FIELDS)


def _events_v1_cells(obj: Obj, now: float) -> list[Any]:
    return _event_cells(obj, now, _EVENTS_V1_FIELDS)


# --- small kinds ----------------------------------------------------------------------------------

LEASE_COLUMNS = [NAME, _col("Holder", "The holder of the lease."), AGE]
NAMESPACE_COLUMNS = [NAME, _col("Status", "The status of the namespace"), AGE]
CONFIGMAP_COLUMNS = [NAME, _col("Data", "Number of data entries in the ConfigMap."), AGE]
SECRET_COLUMNS = [
    NAME,
    _col("Type", "The type of the secret"),
    _col("Data", "The number of entries in the secret"),
    AGE,
]
SERVICEACCOUNT_COLUMNS = [NAME, _col("Secrets", "The number of secrets referenced by the service account."), AGE]
DEFAULT_COLUMNS = [NAME, AGE]


def _lease_cells(obj: Obj, now: float) -> list[Any]:
    return [_name(obj), (obj.get("spec") or {}).get("holderIdentity") or "", _age(obj, now)]


def _namespace_cells(obj: Obj, now: float) -> list[Any]:
    return [_name(obj), (obj.get("status") or {}).get("phase", ""), _age(obj, now)]


def _configmap_cells(obj: Obj, now: float) -> list[Any]:
    return [_name(obj), len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), _age(obj, now)]


def _secret_cells(obj: Obj, now: float) -> list[Any]:
    return [_name(obj), obj.get("type", ""), len(obj.get("data") or {}), _age(obj, now)]


def _serviceaccount_cells(obj: Obj, now: float) -> list[Any]:
    return [_name(obj), len(obj.get("secrets") or []), _age(obj, now)]


STATEFULSET_COLUMNS = [NAME, _col("Ready", "Number of the pod with ready state"), AGE, _CONTAINERS, _IMAGES]


def _statefulset_cells(obj: Obj, now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ready = f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}"
    return [_name(obj), ready, _age(obj, now), *_container_cells(_template_spec(obj))]


DAEMONSET_COLUMNS = [
    NAME,
    _col("Desired", "The desired number of pods.", type_="integer"),
    _col("Current", "The current number of pods.", type_="integer"),
    _col("Ready", "The number of pods ready.", type_="integer"),
    _col("Up-to-date", "The number of pods updated.", type_="integer"),
    _col("Available", "The number of pods available.", type_="integer"),
    _col("Node Selector", "Which nodes should this daemon set run on."),
    AGE,
    _CONTAINERS,
    _IMAGES,
    _SELECTOR,
]


def _daemonset_cells(obj: Obj, now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector")
    return [
        _name(obj),
        status.get("desiredNumberScheduled", 0),
        status.get("currentNumberScheduled", 0),
        status.get("numberReady", 0),
        status.get("updatedNumberScheduled", 0),
        status.get("numberAvailable", 0),
        format_labels(node_selector),
        _age(obj, now),
        *_container_cells(_template_spec(obj)),
        format_selector(spec.get("selector")),
    ]


CONTROLLERREVISION_COLUMNS = [
    NAME,
    _col("Controller", "Controller of the object."),
    _col("Revision", "Revision of the ControllerRevision.", type_="integer"),
    AGE,
]


def _controllerrevision_cells(obj: Obj, now: float) -> list[Any]:
    refs = [r for r in (obj.get("metadata") or {}).get("ownerReferences") or () if r.get("controller")]
    controller = "<none>"
    if refs:
        group = (refs[0].get("apiVersion") or "").split("/")[0] if "/" in (refs[0].get("apiVersion") or "") else ""
        kind = refs[0].get("kind", "").lower()
        controller = f"{kind}.{group}/{refs[0].get('name', '')}" if group else f"{kind}/{refs[0].get('name', '')}"
    return [_name(obj), controller, obj.get("revision", 0), _age(obj, now)]


PRIORITYCLASS_COLUMNS = [
    NAME,
    _col("Value", "The value of this priority class.", type_="integer"),
    _col(
        "Global-Default",
        "globalDefault specifies whether this PriorityClass should be considered as the default priority.",
        type_="boolean",
    ),
    AGE,
    _col("PreemptionPolicy", "PreemptionPolicy is the Policy for preempting pods with lower priority."),
]


def _priorityclass_cells(obj: Obj, now: float) -> list[Any]:
    return [
        _name(obj),
        obj.get("value", 0),
        bool(obj.get("globalDefault")),
        _age(obj, now),
        obj.get("preemptionPolicy", ""),
    ]


ROLE_COLUMNS = [NAME, _col("Created At", "Time when the role was created.", type_="date")]


def _role_cells(obj: Obj, now: float) -> list[Any]:
    return [_name(obj), (obj.get("metadata") or {}).get("creationTimestamp") or ""]


BINDING_COLUMNS = [
    NAME,
    _col("Role", "Role referenced by the binding."),
    AGE,
    _col("Users", "Users in the binding.", priority=1),
    _col("Groups", "Groups in the binding.", priority=1),
    _col("ServiceAccounts", "ServiceAccounts in the binding.", priority=1),
]


def _binding_cells(obj: Obj, now: float) -> list[Any]:
    ref = obj.get("roleRef") or {}
    users, groups, accounts = [], [], []
    for subject in obj.get("subjects") or ():
        kind, name = subject.get("kind"), subject.get("name", "")
        if kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
        elif kind == "ServiceAccount":
            accounts.append(f"{subject.get('namespace', '')}/{name}")
    return [
        _name(obj),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        _age(obj, now),
        ", ".join(users),
        ", ".join(groups),
        ", ".join(accounts),
    ]


PDB_COLUMNS = [
    NAME,
    _col("Min Available", "The minimum number of pods that must be available."),
    _col("Max Unavailable", "The maximum number of pods that may be unavailable."),
    _col("Allowed Disruptions", "Calculated number of pods that may be disrupted at this time.", type_="integer"),
    AGE,
]


def _pdb_cells(obj: Obj, now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    return [
        _name(obj),
        "N/A" if min_available is None else str(min_available),
        "N/A" if max_unavailable is None else str(max_unavailable),
        status.get("disruptionsAllowed", 0),
        _age(obj, now),
    ]


NETWORKPOLICY_COLUMNS = [NAME, _col("Pod-Selector", "Pod selector on which the policy is applied."), AGE]


def _networkpolicy_cells(obj: Obj, now: float) -> list[Any]:
    selector = (obj.get("spec") or {}).get("podSelector")
    return [_name(obj), format_selector(selector) or "<none>", _age(obj, now)]


_ACCESS_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}


def _access_modes(modes: Any) -> str:
    """helper.GetAccessModesAsString: the short forms in a fixed order, each once."""
    present = set(modes or ())
    return ",".join(short for mode, short in _ACCESS_MODES.items() if mode in present)


_VOLUME_MODE = _col("VolumeMode", "The volume mode of the volume.", 1)
_STORAGE_CLASS = _col("StorageClass", "StorageClass of the volume.")
_VAC = _col("VolumeAttributesClass", "VolumeAttributesClass of the volume.")

PVC_COLUMNS = [
    NAME,
    _col("Status", "The phase of the claim."),
    _col("Volume", "The volume bound to the claim."),
    _col("Capacity", "The actual resources of the underlying volume."),
    _col("Access Modes", "The access modes of the underlying volume."),
    _STORAGE_CLASS,
    _VAC,
    AGE,
    _VOLUME_MODE,
]


def _pvc_cells(obj: Obj, now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    bound = bool(spec.get("volumeName"))
    capacity = (status.get("capacity") or {}).get("storage", "") if bound else ""
    return [
        _name(obj),
        status.get("phase", ""),
        spec.get("volumeName", ""),
        capacity,
        _access_modes(status.get("accessModes")) if bound else "",
        spec.get("storageClassName", ""),
        spec.get("volumeAttributesClassName") or "<unset>",
        _age(obj, now),
        spec.get("volumeMode") or "<unset>",
    ]


PV_COLUMNS = [
    NAME,
    _col("Capacity", "The capacity of the volume."),
    _col("Access Modes", "The access modes of the volume."),
    _col("Reclaim Policy", "What happens to the volume when released from its claim."),
    _col("Status", "The phase of the volume."),
    _col("Claim", "The claim bound to the volume."),
    _STORAGE_CLASS,
    _VAC,
    _col("Reason", "Why the volume is in this phase."),
    AGE,
    _VOLUME_MODE,
]


def _pv_cells(obj: Obj, now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("claimRef") or {}
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""
    return [
        _name(obj),
        (spec.get("capacity") or {}).get("storage", ""),
        _access_modes(spec.get("accessModes")),
        spec.get("persistentVolumeReclaimPolicy", ""),
        status.get("phase", ""),
        claim,
        spec.get("storageClassName", ""),
        spec.get("volumeAttributesClassName") or "<unset>",
        status.get("reason", ""),
        _age(obj, now),
        spec.get("volumeMode") or "<unset>",
    ]


STORAGECLASS_COLUMNS = [
    NAME,
    _col("Provisioner", "provisioner indicates the type of the provisioner."),
    _col("ReclaimPolicy", "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes."),
    _col(
        "VolumeBindingMode", "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound."
    ),
    _col("AllowVolumeExpansion", "allowVolumeExpansion shows whether the storage class allow volume expand."),
    AGE,
]


def _storageclass_cells(obj: Obj, now: float) -> list[Any]:
    """printStorageClass (one object: the list printer's "(default)" mark is not added)."""
    return [
        _name(obj),
        obj.get("provisioner", ""),
        obj.get("reclaimPolicy") or "Delete",
        obj.get("volumeBindingMode") or "Immediate",
        bool(obj.get("allowVolumeExpansion")),
        _age(obj, now),
    ]


def _default_cells(obj: Obj, now: float) -> list[Any]:
    return [_name(obj), _age(obj, now)]


PRINTERS: dict[tuple[str, str], tuple[list[Column], RowCells]] = {
    ("", "pods"): (POD_COLUMNS, _pod_cells),
    ("", "nodes"): (NODE_COLUMNS, _node_cells),
    ("", "namespaces"): (NAMESPACE_COLUMNS, _namespace_cells),
    ("", "services"): (SERVICE_COLUMNS, _service_cells),
    ("", "endpoints"): (ENDPOINTS_COLUMNS, _endpoints_cells),
    ("", "configmaps"): (CONFIGMAP_COLUMNS, _configmap_cells),
    ("", "secrets"): (SECRET_COLUMNS, _secret_cells),
    ("", "serviceaccounts"): (SERVICEACCOUNT_COLUMNS, _serviceaccount_cells),
    ("", "events"): (EVENT_COLUMNS, _core_event_cells),
    ("", "replicationcontrollers"): (REPLICA_COLUMNS, _rc_cells),
    ("apps", "deployments"): (DEPLOYMENT_COLUMNS, _deployment_cells),
    ("apps", "replicasets"): (REPLICA_COLUMNS, _replicaset_cells),
    ("batch", "jobs"): (JOB_COLUMNS, _job_cells),
    ("apps", "statefulsets"): (STATEFULSET_COLUMNS, _statefulset_cells),
    ("apps", "daemonsets"): (DAEMONSET_COLUMNS, _daemonset_cells),
    ("apps", "controllerrevisions"): (CONTROLLERREVISION_COLUMNS, _controllerrevision_cells),
    ("scheduling.k8s.io", "priorityclasses"): (PRIORITYCLASS_COLUMNS, _priorityclass_cells),
    ("rbac.authorization.k8s.io", "roles"): (ROLE_COLUMNS, _role_cells),
    ("rbac.authorization.k8s.io", "clusterroles"): (ROLE_COLUMNS, _role_cells),
    ("rbac.authorization.k8s.io", "rolebindings"): (BINDING_COLUMNS, _binding_cells),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): (BINDING_COLUMNS, _binding_cells),
    ("policy", "poddisruptionbudgets"): (PDB_COLUMNS, _pdb_cells),
    ("networking.k8s.io", "networkpolicies"): (NETWORKPOLICY_COLUMNS, _networkpolicy_cells),
    ("", "persistentvolumeclaims"): (PVC_COLUMNS, _pvc_cells),
    ("", "persistentvolumes"): (PV_COLUMNS, _pv_cells),
    ("storage.k8s.io", "storageclasses"): (STORAGECLASS_COLUMNS, _storageclass_cells),
    ("coordination.k8s.io", "leases"): (LEASE_COLUMNS, _lease_cells),
    ("discovery.k8s.io", "endpointslices"): (ENDPOINTSLICE_COLUMNS, _endpointslice_cells),
    ("events.k8s.io", "events"): (EVENT_COLUMNS, _events_v1_cells),
}


SCALE_COLUMNS = [
    NAME,
    _col("Desired", "replicas is the desired number of instances for the scaled object.", type_="integer"),
    _col("Available", "replicas is the actual number of observed instances of the scaled object.", type_="integer"),
    AGE,
]


def scale_table(scale: Obj, include_object: str = "Metadata", *, now: float | None = None) -> Obj:
    """The Table of one autoscaling/v1 Scale (`kubectl get deploy X --subresource=scale`): upstream's printScale."""
    cells = [
        _name(scale),
        (scale.get("spec") or {}).get("replicas", 0),
        (scale.get("status") or {}).get("replicas", 0),
        _age(scale, time.time() if now is None else now),
    ]
    row: Obj = {"cells": cells}
    if include_object == "Object":
        row["object"] = scale
    elif include_object != "None":
        row["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": scale.get("metadata", {}),
        }
    rv = (scale.get("metadata") or {}).get("resourceVersion", "")
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": SCALE_COLUMNS,
        "rows": [row],
    }


def columns(rt: ResourceType) -> list[Column]:
    """The columnDefinitions for a resource."""
    return PRINTERS.get((rt.group, rt.plural), (DEFAULT_COLUMNS, _default_cells))[0]


def partial_object_metadata(rt: ResourceType, obj: Obj) -> Obj:
    """meta.k8s.io/v1 PartialObjectMetadata of an object (what includeObject=Metadata embeds)."""
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def table_row(rt: ResourceType, obj: Obj, include_object: str = "Metadata", *, now: float | None = None) -> Obj:
    """One Table row: cells, (for finished pods) conditions, and the object as asked by includeObject."""
    cells_of = PRINTERS.get((rt.group, rt.plural), (DEFAULT_COLUMNS, _default_cells))[1]
    when = time.time() if now is None else now
    try:
        cells = cells_of(obj, when)
    except (TypeError, AttributeError, ValueError, KeyError, IndexError):
        # A stored object with a field of an unexpected type (only metadata is type-checked on the way in):
        # still listed by name, the kind's other columns left empty.
        columns = PRINTERS.get((rt.group, rt.plural), (DEFAULT_COLUMNS, _default_cells))[0]
        cells = [_name(obj)] + [""] * (len(columns) - 1)
    row: Obj = {"cells": cells}
    if rt.group == "" and rt.plural == "pods":
        conditions = _pod_conditions(obj)
        if conditions:
            row["conditions"] = conditions
    if include_object == "Object":
        row["object"] = obj
    elif include_object != "None":
        row["object"] = partial_object_metadata(rt, obj)
    return row


def to_table(
    rt: ResourceType,
    objs: list[Obj],
    list_meta: dict[str, Any],
    include_object: str = "Metadata",
    *,
    now: float | None = None,
    with_headers: bool = True,
) -> Obj:
    """A meta.k8s.io/v1 Table of objs; list_meta (resourceVersion, continue, ...) becomes its metadata."""
    at = time.time() if now is None else now
    table: Obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta}
    if with_headers:
        table["columnDefinitions"] = columns(rt)
    table["rows"] = [table_row(rt, obj, include_object, now=at) for obj in objs]
    return table

"""Deployment rollout arithmetic (pkg/controller/deployment/util), pure functions over plain dicts.

maxSurge rounds up and maxUnavailable rounds down when given as percentages; both zero means one
unavailable. Proportional scaling follows upstream's fractions with Go's math.Round.
"""

from __future__ import annotations

import math
from typing import Any

from kubemark import codec
from kubemark.kube.meta import parse_time

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
POD_TEMPLATE_HASH = "pod-template-hash"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Deployment annotations not copied onto its ReplicaSets (annotationsToSkip).
SKIPPED_ANNOTATIONS = frozenset(
    {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, "deprecated.deployment.rollback.to"}
)

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def go_round(value: float) -> int:
    """Go's math.Round: halves away from zero (Python's round() is banker's rounding)."""
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        return int(text)
    percent = int(text[:-1])
    scaled = percent * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


def replicas_of(obj: Obj | None) -> int:
    if obj is None:
        return 0
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def status_int(obj: Obj | None, field: str) -> int:
    if obj is None:
        return 0
    return int((obj.get("status") or {}).get(field) or 0)


def is_rolling(d: Obj) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    """deploymentutil.ResolveFenceposts: (surge, unavailable); both zero becomes (0, 1)."""
    surge = int_or_percent(max_surge if max_surge is not None else 0, desired, True)
    unavailable = int_or_percent(max_unavailable if max_unavailable is not None else 0, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _rolling_params(d: Obj) -> tuple[int, int]:
    rolling = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    return resolve_fenceposts(rolling.get("maxSurge", "25%"), rolling.get("maxUnavailable", "25%"), replicas_of(d))


def max_surge(d: Obj) -> int:
    if not is_rolling(d):
        return 0
    return _rolling_params(d)[0]


def max_unavailable(d: Obj) -> int:
    replicas = replicas_of(d)
    if not is_rolling(d) or replicas == 0:
        return 0
    return min(_rolling_params(d)[1], replicas)


def new_rs_new_replicas(d: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    """deploymentutil.NewRSNewReplicas: how big the new ReplicaSet may be right now."""
    replicas = replicas_of(d)
    if not is_rolling(d):
        return replicas
    new_size = replicas_of(new_rs)
    if new_size >= replicas:
        return replicas
    current = sum(replicas_of(rs) for rs in all_rss)
    max_total = replicas + max_surge(d)
    if current >= max_total:
        return new_size
    scale_up = min(max_total - current, replicas - new_size)
    return new_size + scale_up


def _annotation_int(rs: Obj, name: str) -> int | None:
    value = ((rs.get("metadata") or {}).get("annotations") or {}).get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def replicaset_fraction(rs: Obj, d: Obj) -> int:
    """deploymentutil.getReplicaSetFraction."""
    replicas = replicas_of(d)
    if replicas == 0:
        return -replicas_of(rs)
    deployment_replicas = replicas + max_surge(d)
    annotated = _annotation_int(rs, MAX_REPLICAS)
    if annotated is None:
        annotated = status_int(d, "replicas")
    if annotated == 0:
        return 0
    new_size = replicas_of(rs) * deployment_replicas / annotated
    return go_round(new_size) - replicas_of(rs)


def replicaset_proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    """deploymentutil.GetReplicaSetProportion."""
    if replicas_of(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replicaset_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def created_at(obj: Obj) -> float:
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    try:
        return parse_time(stamp) if stamp else 0.0
    except ValueError:
        return 0.0


def by_creation(rss: list[Obj]) -> list[Obj]:
    """controller.ReplicaSetsByCreationTimestamp (oldest first, then by name)."""
    return sorted(rss, key=lambda rs: (created_at(rs), (rs.get("metadata") or {}).get("name", "")))


def proportional_sizes(d: Obj, active: list[Obj]) -> list[tuple[Obj, int]]:
    """The proportional-scaling part of DeploymentController.scale: (rs, new size) in the order to apply."""
    replicas = replicas_of(d)
    allowed = replicas + max_surge(d) if replicas > 0 else 0
    to_add = allowed - sum(replicas_of(rs) for rs in active)
    if to_add > 0:  # ReplicaSetsBySizeNewer: biggest first, newer first on ties
        ordered = sorted(active, key=lambda rs: (-replicas_of(rs), -created_at(rs)))
    elif to_add < 0:  # ReplicaSetsBySizeOlder: biggest first, older first on ties
        ordered = sorted(active, key=lambda rs: (-replicas_of(rs), created_at(rs)))
    else:
        ordered = list(active)
    added = 0
    sizes: list[int] = []
    for rs in ordered:
        if to_add != 0:
            proportion = replicaset_proportion(rs, d, to_add, added)
            sizes.append(replicas_of(rs) + proportion)
            added += proportion
        else:
            sizes.append(replicas_of(rs))
    if ordered and to_add != 0:
        sizes[0] = max(0, sizes[0] + to_add - added)
    return list(zip(ordered, sizes, strict=True))


def revision_of(rs: Obj) -> int:
    return _annotation_int(rs, REVISION) or 0


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def pod_template_hash(template: Obj, collision_count: int | None = None) -> str:
    """controller.ComputeHash: fnv32a of the template (+ collision count), as rand.SafeEncodeString."""
    data = codec.dumps(_canonical(template))
    if collision_count is not None:
        data += int(collision_count).to_bytes(4, "little", signed=False)
    digits = str(_fnv32a(data))
    return "".join(_SAFE_ALPHABET[ord(ch) % len(_SAFE_ALPHABET)] for ch in digits)


def template_without_hash(template: Obj) -> Obj:
    md = dict(template.get("metadata") or {})
    labels = dict(md.get("labels") or {})
    labels.pop(POD_TEMPLATE_HASH, None)
    md["labels"] = labels
    return {**template, "metadata": md}


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """deploymentutil.EqualIgnoreHash."""
    return _canonical(template_without_hash(a)) == _canonical(template_without_hash(b))


def deployment_complete(d: Obj, status: dict[str, Any]) -> bool:
    """deploymentutil.DeploymentComplete."""
    replicas = replicas_of(d)
    return (
        int(status.get("updatedReplicas") or 0) == replicas
        and int(status.get("replicas") or 0) == replicas
        and int(status.get("availableReplicas") or 0) == replicas
        and int(status.get("observedGeneration") or 0) >= int((d.get("metadata") or {}).get("generation") or 0)
    )


def deployment_progressing(d: Obj, new_status: dict[str, Any]) -> bool:
    """deploymentutil.DeploymentProgressing: any rollout progress since the stored status."""
    old = d.get("status") or {}

    def g(s: dict[str, Any], k: str) -> int:
        return int(s.get(k) or 0)

    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(new_status, "replicas") - g(new_status, "updatedReplicas")
    return (
        g(new_status, "updatedReplicas") > g(old, "updatedReplicas")
        or new_old < old_old
        or g(new_status, "readyReplicas") > g(old, "readyReplicas")
        or g(new_status, "availableReplicas") > g(old, "availableReplicas")
    )

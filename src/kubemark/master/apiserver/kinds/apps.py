"""StatefulSet, DaemonSet and ControllerRevision rules (apps/v1).

Upstream: SetDefaults_StatefulSet / SetDefaults_DaemonSet (pkg/apis/apps/v1/defaults.go, with
MaxUnavailableStatefulSet on as in v1.37), ValidateStatefulSet(Update|Status), ValidateDaemonSet(Update|Status),
ValidateControllerRevision(Create|Update), and pkg/registry/apps/{statefulset,daemonset} strategies: status is
dropped on create, a DaemonSet's template generation (kept in v1 as the
`deprecated.daemonset.template.generation` annotation) starts at 1 and goes up with every template change.
Selector, template and replica rules shared with Deployments come from `workloads`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubemark.kube.daemonset import TEMPLATE_GENERATION_ANNOTATION, template_generation
from kubemark.kube.intstr import PERCENT_RE, int_or_percent_value
from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import field, scale, storage
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.kinds.workloads import (
    _default_template,
    _immutable_selector,
    _validate_label_selector,
    _validate_replicas,
    _validate_template,
)
from kubemark.master.apiserver.strategy import Obj

POD_MANAGEMENT_POLICIES = ("OrderedReady", "Parallel")
STATEFULSET_UPDATE_TYPES = ("RollingUpdate", "OnDelete")
DAEMONSET_UPDATE_TYPES = ("RollingUpdate", "OnDelete")
RETENTION_POLICIES = ("Retain", "Delete")


def _validate_positive_int_or_percent(value: Any, path: str) -> list[Cause]:
    """ValidatePositiveIntOrPercent + IsNotMoreThan100Percent."""
    if isinstance(value, str):
        if not PERCENT_RE.match(value):
            return [
                field.invalid(
                    path,
                    value,
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                )
            ]
        if int(value[:-1]) > 100:
            return [field.invalid(path, value, "must not be greater than 100%")]
        return []
    if isinstance(value, int) and not isinstance(value, bool):
        return field.non_negative(path, value)
    return [field.invalid(path, value, "must be an integer or percentage (e.g '5%')")]


def _no_active_deadline(spec: Obj, kind: str) -> list[Cause]:
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    if isinstance(pod_spec, dict) and pod_spec.get("activeDeadlineSeconds") is not None:
        return [
            field.forbidden(
                "spec.template.spec.activeDeadlineSeconds", f"activeDeadlineSeconds in {kind} is not Supported"
            )
        ]
    return []


# --- StatefulSet -------------------------------------------------------------------------------------------


def default_statefulset(spec: Obj) -> None:
    """SetDefaults_StatefulSet, plus the claim defaults of each volumeClaimTemplate."""
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {})
    if isinstance(strategy, dict):
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            strategy.setdefault("rollingUpdate", {})
        rolling = strategy.get("rollingUpdate")
        if strategy["type"] == "RollingUpdate" and isinstance(rolling, dict):
            rolling.setdefault("partition", 0)
            rolling.setdefault("maxUnavailable", 1)
    retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    if isinstance(retention, dict):
        retention["whenDeleted"] = retention.get("whenDeleted") or "Retain"
        retention["whenScaled"] = retention.get("whenScaled") or "Retain"
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    for claim in spec.get("volumeClaimTemplates") or ():
        if isinstance(claim, dict):
            claim.setdefault("apiVersion", "v1")
            claim.setdefault("kind", "PersistentVolumeClaim")
            storage.default_claim(claim)
    _default_template(spec)


def _validate_statefulset(spec: Any) -> list[Cause]:
    if not isinstance(spec, dict):
        return [field.required("spec")]
    causes: list[Cause] = []
    policy = spec.get("podManagementPolicy")
    if not policy:
        causes.append(field.required("spec.podManagementPolicy"))
    elif policy not in POD_MANAGEMENT_POLICIES:
        causes.append(field.invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = spec.get("updateStrategy") or {}
    kind = strategy.get("type") if isinstance(strategy, dict) else None
    rolling = strategy.get("rollingUpdate") if isinstance(strategy, dict) else None
    if not kind:
        causes.append(field.required("spec.updateStrategy"))
    elif kind == "OnDelete" and rolling is not None:
        causes.append(
            field.invalid(
                "spec.updateStrategy.rollingUpdate", rolling, "only allowed for updateStrategy 'RollingUpdate'"
            )
        )
    elif kind == "RollingUpdate" and isinstance(rolling, dict):
        path = "spec.updateStrategy.rollingUpdate"
        causes += field.non_negative(f"{path}.partition", rolling.get("partition"))
        if rolling.get("maxUnavailable") is not None:
            value = rolling["maxUnavailable"]
            causes += _validate_positive_int_or_percent(value, f"{path}.maxUnavailable")
            if int_or_percent_value(value) == 0:
                causes.append(field.invalid(f"{path}.maxUnavailable", value, "cannot be 0"))
    elif kind not in STATEFULSET_UPDATE_TYPES:
        causes.append(field.invalid("spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'"))
    retention = spec.get("persistentVolumeClaimRetentionPolicy") or {}
    for key in ("whenDeleted", "whenScaled"):
        value = retention.get(key) if isinstance(retention, dict) else None
        if value not in RETENTION_POLICIES:
            causes.append(
                field.not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{key}", value, RETENTION_POLICIES)
            )
    for i, claim in enumerate(spec.get("volumeClaimTemplates") or ()):
        claim_spec = claim.get("spec") if isinstance(claim, dict) else None
        causes += storage.validate_claim_spec(claim_spec, f"spec.volumeClaimTemplates[{i}].spec")
    causes += _validate_replicas(spec)
    causes += field.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    ordinals = spec.get("ordinals")
    if isinstance(ordinals, dict):
        causes += field.non_negative("spec.ordinals.start", ordinals.get("start"))
    service = spec.get("serviceName")
    if service:
        causes += field.dns1123_label("spec.serviceName", service)
    causes += _validate_label_selector(spec, "statefulset")
    causes += _validate_template(spec, ("Always",))
    causes += _no_active_deadline(spec, "StatefulSet")
    causes += field.non_negative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    return causes


def _validate_workload_status(status: Any, keys: tuple[str, ...]) -> list[Cause]:
    if not isinstance(status, dict):
        return []
    causes: list[Cause] = []
    for key in keys:
        causes += field.non_negative(f"status.{key}", status.get(key))
    return causes


_STS_STATUS_COUNTS = (
    "replicas",
    "readyReplicas",
    "currentReplicas",
    "updatedReplicas",
    "availableReplicas",
    "observedGeneration",
    "collisionCount",
)


def validate_statefulset_status(new: Obj, old: Obj) -> list[Cause]:
    """ValidateStatefulSetStatusUpdate: counts non-negative and bounded by replicas; collisionCount never down."""
    status = new.get("status") or {}
    causes = _validate_workload_status(status, _STS_STATUS_COUNTS)
    if causes or not isinstance(status, dict):
        return causes
    replicas = status.get("replicas") or 0
    for key in ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"):
        if (status.get(key) or 0) > replicas:
            causes.append(field.invalid(f"status.{key}", status.get(key), "cannot be greater than status.replicas"))
    if (status.get("availableReplicas") or 0) > (status.get("readyReplicas") or 0):
        causes.append(
            field.invalid(
                "status.availableReplicas",
                status.get("availableReplicas"),
                "cannot be greater than status.readyReplicas",
            )
        )
    return causes + _collision_count_kept(status, old.get("status") or {})


def _collision_count_kept(status: Obj, old_status: Obj) -> list[Cause]:
    new_count, old_count = status.get("collisionCount"), old_status.get("collisionCount")
    if old_count is not None and (new_count is None or new_count < old_count):
        return [field.invalid("status.collisionCount", new_count or 0, "cannot be decremented")]
    return []


@dataclass
class StatefulSetStrategy(KindStrategy):
    def __post_init__(self) -> None:
        self.subresources.setdefault("scale", scale.ScaleSubresource(self.rt).handle)

    def prepare_for_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            default_statefulset(spec)
        obj["status"] = {"replicas": 0, "availableReplicas": 0}

    def validate(self, obj: Obj) -> list[Cause]:
        return _validate_statefulset(obj.get("spec"))

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        if isinstance(new.get("spec"), dict):
            default_statefulset(new["spec"])

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = _validate_statefulset(new.get("spec")) + _immutable_selector(new, old)
        new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        for key in ("volumeClaimTemplates", "serviceName", "podManagementPolicy"):
            if new_spec.get(key) != old_spec.get(key):
                causes.append(field.immutable(f"spec.{key}", new_spec.get(key)))
        return causes

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validate_statefulset_status(new, old)


# --- DaemonSet ---------------------------------------------------------------------------------------------


def default_daemonset(spec: Obj) -> None:
    strategy = spec.setdefault("updateStrategy", {})
    if isinstance(strategy, dict):
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.get("rollingUpdate")
            if rolling is None:
                rolling = strategy["rollingUpdate"] = {}
            if isinstance(rolling, dict):
                rolling.setdefault("maxUnavailable", 1)
                rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec)


def _validate_daemonset(spec: Any) -> list[Cause]:
    if not isinstance(spec, dict):
        return [field.required("spec")]
    causes = _validate_label_selector(spec, "daemonset")
    causes += _validate_template(spec, ("Always",))
    causes += _no_active_deadline(spec, "DaemonSet")
    causes += field.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    causes += field.non_negative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    strategy = spec.get("updateStrategy") or {}
    kind = strategy.get("type") if isinstance(strategy, dict) else None
    if kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        path = "spec.updateStrategy.rollingUpdate"
        if not isinstance(rolling, dict):
            causes.append(field.required(path))
        else:
            unavailable, surge = rolling.get("maxUnavailable", 0), rolling.get("maxSurge", 0)
            causes += _validate_positive_int_or_percent(unavailable, f"{path}.maxUnavailable")
            causes += _validate_positive_int_or_percent(surge, f"{path}.maxSurge")
            has_unavailable = int_or_percent_value(unavailable) not in (0, None)
            has_surge = int_or_percent_value(surge) not in (0, None)
            if has_unavailable and has_surge:
                causes.append(
                    field.invalid(f"{path}.maxSurge", surge, "may not be set when maxUnavailable is non-zero")
                )
            elif not has_unavailable and not has_surge:
                causes.append(field.required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    elif kind != "OnDelete":
        causes.append(field.not_supported("spec.updateStrategy", strategy, DAEMONSET_UPDATE_TYPES))
    return causes


def _set_template_generation(obj: Obj, value: int) -> None:
    metadata = obj.setdefault("metadata", {})
    annotations = metadata.get("annotations") or {}
    annotations[TEMPLATE_GENERATION_ANNOTATION] = str(value)
    metadata["annotations"] = annotations


_DS_STATUS_COUNTS = (
    "currentNumberScheduled",
    "numberMisscheduled",
    "desiredNumberScheduled",
    "numberReady",
    "observedGeneration",
    "updatedNumberScheduled",
    "numberAvailable",
    "numberUnavailable",
    "collisionCount",
)


@dataclass
class DaemonSetStrategy(KindStrategy):
    def prepare_for_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            default_daemonset(spec)
        _set_template_generation(obj, max(1, template_generation(obj)))
        obj["status"] = {
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
        }

    def validate(self, obj: Obj) -> list[Cause]:
        return _validate_daemonset(obj.get("spec"))

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        if isinstance(new.get("spec"), dict):
            default_daemonset(new["spec"])
        generation = template_generation(old)
        if (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
            generation += 1
        _set_template_generation(new, generation)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return _validate_daemonset(new.get("spec")) + _immutable_selector(new, old)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        status = new.get("status") or {}
        causes = _validate_workload_status(status, _DS_STATUS_COUNTS)
        if isinstance(status, dict):
            causes += _collision_count_kept(status, old.get("status") or {})
        return causes


# --- ControllerRevision ------------------------------------------------------------------------------------


def _validate_revision(obj: Obj) -> list[Cause]:
    return field.non_negative("revision", obj.get("revision"))


@dataclass
class ControllerRevisionStrategy(KindStrategy):
    """Immutable snapshots of a StatefulSet's or DaemonSet's template: `data` must be a JSON object."""

    def validate(self, obj: Obj) -> list[Cause]:
        causes = _validate_revision(obj)
        data = obj.get("data")
        if data is None:
            causes.append(field.required("data", "data is mandatory"))
        elif not isinstance(data, dict):
            causes.append(field.required("data", "data must be a valid JSON object"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = _validate_revision(new)
        if new.get("data") != old.get("data"):
            causes.append(field.immutable("data", new.get("data")))
        return causes

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        return False

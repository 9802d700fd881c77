"""PersistentVolumeClaim and PersistentVolume rules, and the claim-spec rules StatefulSet templates share.

Upstream: SetDefaults_PersistentVolumeClaim / _PersistentVolume (pkg/apis/core/v1/defaults.go),
ValidatePersistentVolumeClaimSpec / ValidatePersistentVolumeClaimUpdate and ValidatePersistentVolume
(pkg/apis/core/validation), and the registry strategies that keep status out of create. clusterloader2's load
test gets its claims from StatefulSet volumeClaimTemplates (CL2_ENABLE_PVS) and deletes them by label at the
end, so claims must exist as objects; nothing here binds them (no PV controller runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubemark.kube.quantity import parse_quantity
from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import field
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.strategy import Obj

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
VOLUME_MODES = ("Block", "Filesystem")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
# PersistentVolumeSpec members that are not a volume source.
_PV_NON_SOURCE = frozenset(
    {
        "accessModes",
        "capacity",
        "claimRef",
        "mountOptions",
        "nodeAffinity",
        "persistentVolumeReclaimPolicy",
        "storageClassName",
        "volumeAttributesClassName",
        "volumeMode",
    }
)
_PVC_UPDATE_FORBIDDEN = (
    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
)


def default_claim_spec(spec: Obj) -> None:
    """SetDefaults_PersistentVolumeClaimSpec: volumeMode Filesystem."""
    spec.setdefault("volumeMode", "Filesystem")


def default_claim(claim: Obj) -> None:
    """SetDefaults_PersistentVolumeClaim: the spec defaults, and phase Pending."""
    spec = claim.setdefault("spec", {})
    if isinstance(spec, dict):
        default_claim_spec(spec)
    status = claim.setdefault("status", {})
    if isinstance(status, dict):
        status.setdefault("phase", "Pending")


def _validate_access_modes(modes: Any, path: str) -> list[Cause]:
    if not modes:
        return [field.required(path, "at least 1 access mode is required")]
    if not isinstance(modes, list):
        return [field.invalid(path, modes, "must be a list of strings")]
    causes = [field.not_supported(path, m, ACCESS_MODES) for m in modes if m not in ACCESS_MODES]
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        causes.append(field.forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return causes


def _validate_storage(resources: Any, path: str) -> list[Cause]:
    """A claim's spec.resources: requests[storage] is required and must be a positive quantity."""
    requests = resources.get("requests") if isinstance(resources, dict) else None
    storage = requests.get("storage") if isinstance(requests, dict) else None
    key = f"{path}.requests[storage]"
    if storage is None:
        return [field.required(key)]
    try:
        amount = parse_quantity(str(storage))
    except ValueError:
        return [field.invalid(key, storage, "quantities must match the regular expression")]
    if amount <= 0:
        return [field.invalid(key, storage, "must be greater than zero")]
    return []


def validate_claim_spec(spec: Any, path: str) -> list[Cause]:
    """ValidatePersistentVolumeClaimSpec: access modes, storage request, volume mode."""
    if not isinstance(spec, dict):
        return [field.required(path)]
    causes = _validate_access_modes(spec.get("accessModes"), f"{path}.accessModes")
    if not spec.get("dataSource") and not spec.get("dataSourceRef"):
        causes += _validate_storage(spec.get("resources"), f"{path}.resources")
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        causes.append(field.not_supported(f"{path}.volumeMode", mode, VOLUME_MODES))
    return causes


def _claim_spec_view(spec: Obj) -> Obj:
    """The claim spec without the fields an update may change (storage requests, volumeName once set)."""
    view = dict(spec)
    resources = dict(view.get("resources") or {})
    resources.pop("requests", None)
    view["resources"] = resources
    view.pop("volumeAttributesClassName", None)
    return view


@dataclass
class PersistentVolumeClaimStrategy(KindStrategy):
    def prepare_for_create(self, obj: Obj) -> None:
        obj.pop("status", None)
        default_claim(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_claim_spec(obj.get("spec"), "spec")

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        if isinstance(new.get("spec"), dict):
            default_claim_spec(new["spec"])

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = validate_claim_spec(new.get("spec"), "spec")
        new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        if not causes and isinstance(new_spec, dict):
            candidate = dict(new_spec)
            if not old_spec.get("volumeName"):
                candidate["volumeName"] = old_spec.get("volumeName")  # binding sets it once
                if candidate["volumeName"] is None:
                    candidate.pop("volumeName")
            if _claim_spec_view(candidate) != _claim_spec_view(old_spec):
                causes.append(field.forbidden("spec", _PVC_UPDATE_FORBIDDEN))
        return causes

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        phase = (new.get("status") or {}).get("phase")
        phases = ("Bound", "Lost", "Pending")
        if phase is not None and phase not in phases:
            return [field.not_supported("status.phase", phase, phases)]
        return []


def default_volume(obj: Obj) -> None:
    """SetDefaults_PersistentVolume: reclaim policy Retain, volumeMode Filesystem, phase Pending."""
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict):
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        spec.setdefault("volumeMode", "Filesystem")
    status = obj.setdefault("status", {})
    if isinstance(status, dict):
        status.setdefault("phase", "Pending")


def validate_volume(obj: Obj) -> list[Cause]:
    """ValidatePersistentVolume: capacity[storage], access modes, reclaim policy, exactly one volume source."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [field.required("spec")]
    causes = _validate_access_modes(spec.get("accessModes"), "spec.accessModes")
    capacity = spec.get("capacity")
    if not isinstance(capacity, dict) or "storage" not in capacity:
        causes.append(field.required("spec.capacity"))
    else:
        causes += _validate_storage({"requests": {"storage": capacity["storage"]}}, "spec.capacity")
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy not in RECLAIM_POLICIES:
        causes.append(field.not_supported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES))
    sources = [k for k in spec if k not in _PV_NON_SOURCE]
    if not sources:
        causes.append(field.required("spec", "must specify a volume type"))
    elif len(sources) > 1:
        causes.append(field.forbidden(f"spec.{sources[1]}", "may not specify more than 1 volume type"))
    return causes


@dataclass
class PersistentVolumeStrategy(KindStrategy):
    def prepare_for_create(self, obj: Obj) -> None:
        obj.pop("status", None)
        default_volume(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_volume(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        spec = new.get("spec")
        if isinstance(spec, dict):
            spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
            spec.setdefault("volumeMode", "Filesystem")

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = validate_volume(new)
        new_mode = (new.get("spec") or {}).get("volumeMode")
        if new_mode != (old.get("spec") or {}).get("volumeMode"):
            causes.append(field.immutable("spec.volumeMode", new_mode))
        return causes

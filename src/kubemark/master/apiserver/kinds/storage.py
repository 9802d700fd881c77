"""PersistentVolumeClaim and PersistentVolume rules, and the claim-spec rules StatefulSet templates share.

Upstream: SetDefaults_PersistentVolumeClaim / _PersistentVolume (pkg/apis/core/v1/defaults.go),
ValidatePersistentVolumeClaimSpec / ValidatePersistentVolumeClaimUpdate and ValidatePersistentVolume
(pkg/apis/core/validation), and the registry strategies that keep status out of create. clusterloader2's load
test gets its claims from StatefulSet volumeClaimTemplates (CL2_ENABLE_PVS) without a storageClassName, so the
DefaultStorageClass admission plugin (plugin/pkg/admission/storage/storageclass/setdefault) gives them the
cluster's default class here; the PV controller (controllers/persistentvolume.py) binds them.

StorageClasses (storage.k8s.io/v1): SetDefaults_StorageClass (reclaimPolicy Delete, volumeBindingMode
Immediate) and ValidateStorageClass / ValidateStorageClassUpdate (provisioner a qualified name; parameters,
provisioner, reclaimPolicy and volumeBindingMode immutable). `default_storage_class_object` is the class the
master installs at start-up, as a cluster's storage addon does (GCE's, kind's `standard`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as field_
from typing import Any

from kubemark.kube import volumes
from kubemark.kube.meta import validate_qualified_name
from kubemark.kube.quantity import parse_quantity
from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import field
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.kinds.scheduling import PriorityClassLister
from kubemark.master.apiserver.strategy import Obj, ObjectStore

CLASS_RECLAIM_POLICIES = ("Delete", "Retain")
BINDING_MODES = (volumes.BINDING_IMMEDIATE, volumes.BINDING_WAIT_FOR_FIRST_CONSUMER)
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
    """Claims, with the DefaultStorageClass admission plugin on create."""

    storage_classes: PriorityClassLister | None = field_(default=None, repr=False)

    def bind_stores(self, lookup: Callable[[str, str], ObjectStore | None]) -> None:
        store = lookup("storage.k8s.io", "storageclasses")
        # The lister reads any cluster-scoped kind: the watch cache, then storage for a name not seen yet.
        self.storage_classes = PriorityClassLister(store) if store is not None else None

    async def admit_create(self, obj: Obj) -> None:
        """DefaultStorageClass: a claim that asks for no class (neither spec.storageClassName nor the beta
        annotation) gets the default class, when there is one."""
        if self.storage_classes is None or volumes.claim_has_class(obj):
            return
        default = volumes.default_storage_class(await self.storage_classes.list())
        spec = obj.get("spec")
        if default is not None and isinstance(spec, dict):
            spec["storageClassName"] = (default.get("metadata") or {}).get("name")

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
            old_annotations = (old.get("metadata") or {}).get("annotations") or {}
            if old_spec.get("storageClassName") is None and volumes.ANN_BETA_STORAGE_CLASS not in old_annotations:
                candidate.pop("storageClassName", None)  # validateStorageClassUpgradeFromNil: set once, retroactively
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


def default_storage_class(obj: Obj) -> None:
    """SetDefaults_StorageClass."""
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", volumes.BINDING_IMMEDIATE)


def validate_storage_class(obj: Obj) -> list[Cause]:
    """ValidateStorageClass (without allowedTopologies' term checks)."""
    causes: list[Cause] = []
    provisioner = obj.get("provisioner")
    if not provisioner or not isinstance(provisioner, str):
        causes.append(field.required("provisioner"))
    else:
        causes += [field.invalid("provisioner", provisioner, m) for m in validate_qualified_name(provisioner.lower())]
    parameters = obj.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, dict):
            causes.append(field.invalid("parameters", parameters, "must be a map of strings"))
        elif len(parameters) > 512:
            causes.append(field.too_long("parameters", "", 512))
        elif any(not k for k in parameters):
            causes.append(field.invalid("parameters", "", "field can not be empty."))
    policy = obj.get("reclaimPolicy")
    if policy and policy not in CLASS_RECLAIM_POLICIES:
        causes.append(field.not_supported("reclaimPolicy", policy, CLASS_RECLAIM_POLICIES))
    mode = obj.get("volumeBindingMode")
    if mode is None:
        causes.append(field.required("volumeBindingMode"))
    elif mode not in BINDING_MODES:
        causes.append(field.not_supported("volumeBindingMode", mode, BINDING_MODES))
    return causes


@dataclass
class StorageClassStrategy(KindStrategy):
    def prepare_for_create(self, obj: Obj) -> None:
        default_storage_class(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_storage_class(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        default_storage_class(new)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = validate_storage_class(new)
        for key in ("parameters", "provisioner", "reclaimPolicy", "volumeBindingMode"):
            if new.get(key) != old.get(key):
                causes.append(field.immutable(key, new.get(key)))
        return causes


def default_storage_class_object() -> Obj:
    """The default StorageClass the master installs at start-up: the hollow provisioner, Immediate binding."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": volumes.DEFAULT_STORAGE_CLASS,
            "annotations": {volumes.ANN_IS_DEFAULT_CLASS: "true"},
            "labels": {"addonmanager.kubernetes.io/mode": "EnsureExists"},
        },
        "provisioner": volumes.HOLLOW_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": volumes.BINDING_IMMEDIATE,
    }

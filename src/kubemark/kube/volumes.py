"""Persistent volume rules shared by the API server's admission and the volume controllers.

Upstream: k8s.io/component-helpers/storage/volume (the binder annotations, GetPersistentVolumeClaimClass,
IsVolumeBoundToClaim, FindMatchingVolume, CheckAccessModes, CheckVolumeModeMismatches) and
pkg/volume/util/storageclass.go (GetDefaultClass, IsDefaultAnnotation). The DefaultStorageClass admission
plugin and the PV controller's retroactive default both pick the default class with `default_storage_class`;
the binder and the hollow provisioner agree on what "bound to this claim" means through
`volume_bound_to_claim`. Kept here, outside the API server and the controllers, so both sides read one rule.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from fractions import Fraction
from typing import Any

from kubemark.kube.labels import Selector, selector_from_label_selector
from kubemark.kube.meta import parse_time
from kubemark.kube.quantity import parse_quantity

Obj = dict[str, Any]

# The binder's annotations (component-helpers/storage/volume/pv_helpers.go).
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_DYNAMICALLY_PROVISIONED = "pv.kubernetes.io/provisioned-by"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
# v1.BetaStorageClassAnnotation: still read before spec.storageClassName.
ANN_BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
# storageutil.IsDefaultStorageClassAnnotation and its beta form.
ANN_IS_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
ANN_BETA_IS_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"

# The hollow CSI driver: the master's default class's provisioner and its volumes' csi.driver.
HOLLOW_PROVISIONER = "hollow.csi.kubemark.k8s.io"
DEFAULT_STORAGE_CLASS = "standard"

BINDING_IMMEDIATE = "Immediate"
BINDING_WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"


def _meta(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _annotations(obj: Obj) -> dict[str, str]:
    return _meta(obj).get("annotations") or {}


def claim_has_class(claim: Obj) -> bool:
    """PersistentVolumeClaimHasClass: the beta annotation or spec.storageClassName set (even to "")."""
    return (
        ANN_BETA_STORAGE_CLASS in _annotations(claim) or (claim.get("spec") or {}).get("storageClassName") is not None
    )


def claim_class(claim: Obj) -> str:
    """GetPersistentVolumeClaimClass: the requested class, "" for none."""
    annotations = _annotations(claim)
    if ANN_BETA_STORAGE_CLASS in annotations:
        return str(annotations[ANN_BETA_STORAGE_CLASS])
    return str((claim.get("spec") or {}).get("storageClassName") or "")


def volume_class(volume: Obj) -> str:
    """GetPersistentVolumeClass."""
    annotations = _annotations(volume)
    if ANN_BETA_STORAGE_CLASS in annotations:
        return str(annotations[ANN_BETA_STORAGE_CLASS])
    return str((volume.get("spec") or {}).get("storageClassName") or "")


def is_default_class(storage_class: Obj) -> bool:
    """IsDefaultAnnotation: the GA or beta annotation is exactly "true"."""
    annotations = _annotations(storage_class)
    return annotations.get(ANN_IS_DEFAULT_CLASS) == "true" or annotations.get(ANN_BETA_IS_DEFAULT_CLASS) == "true"


def _created(obj: Obj) -> float:
    stamp = _meta(obj).get("creationTimestamp")
    try:
        return parse_time(stamp) if stamp else 0.0
    except ValueError:
        return 0.0


def default_storage_class(classes: Iterable[Obj]) -> Obj | None:
    """GetDefaultClass: of the default-annotated classes the newest (creationTimestamp), ties by name."""
    defaults = [c for c in classes if is_default_class(c)]
    if not defaults:
        return None
    defaults.sort(key=lambda c: (-_created(c), str(_meta(c).get("name") or "")))
    return defaults[0]


def binding_mode(storage_class: Obj | None) -> str:
    """The class's volumeBindingMode (defaulted to Immediate on create); Immediate without a class."""
    if storage_class is None:
        return BINDING_IMMEDIATE
    return str(storage_class.get("volumeBindingMode") or BINDING_IMMEDIATE)


def requested_storage(claim: Obj) -> Fraction:
    """spec.resources.requests[storage] (validation makes it present and positive)."""
    requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
    try:
        return parse_quantity(str(requests.get("storage", 0)))
    except ValueError:
        return Fraction(0)


def volume_capacity(volume: Obj) -> Fraction:
    capacity = (volume.get("spec") or {}).get("capacity") or {}
    try:
        return parse_quantity(str(capacity.get("storage", 0)))
    except ValueError:
        return Fraction(0)


def claim_reference(claim: Obj) -> dict[str, Any]:
    """reference.GetReference of a claim, as the binder, the provisioner and the scheduler write spec.claimRef."""
    md = _meta(claim)
    return {
        "kind": "PersistentVolumeClaim",
        "namespace": md.get("namespace"),
        "name": md.get("name"),
        "uid": md.get("uid"),
        "apiVersion": "v1",
        "resourceVersion": md.get("resourceVersion"),
    }


def claim_fully_bound(claim: Obj) -> bool:
    """isPVCFullyBound (the scheduler's test): spec.volumeName set and the binder's bind-completed annotation."""
    return bool((claim.get("spec") or {}).get("volumeName")) and ANN_BIND_COMPLETED in (
        _meta(claim).get("annotations") or {}
    )


def volume_bound_to_claim(volume: Obj, claim: Obj) -> bool:
    """IsVolumeBoundToClaim: the volume's claimRef names the claim (and its UID, when the ref has one)."""
    ref = (volume.get("spec") or {}).get("claimRef")
    if not ref:
        return False
    md = _meta(claim)
    if ref.get("name") != md.get("name") or ref.get("namespace") != md.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == md.get("uid")


def volume_mode_mismatch(claim: Obj, volume: Obj) -> bool:
    """CheckVolumeModeMismatches (an unset mode is Filesystem on both sides)."""
    wanted = (claim.get("spec") or {}).get("volumeMode") or "Filesystem"
    have = (volume.get("spec") or {}).get("volumeMode") or "Filesystem"
    return wanted != have


def access_modes_satisfied(claim: Obj, volume: Obj) -> bool:
    """CheckAccessModes: the volume offers every mode the claim asks for."""
    offered = set((volume.get("spec") or {}).get("accessModes") or ())
    return all(m in offered for m in (claim.get("spec") or {}).get("accessModes") or ())


def _claim_selector(claim: Obj) -> Selector | None:
    raw = (claim.get("spec") or {}).get("selector")
    return selector_from_label_selector(raw) if raw else None


def _vac(obj: Obj) -> str:
    return str((obj.get("spec") or {}).get("volumeAttributesClassName") or "")


def find_matching_volume(
    claim: Obj,
    volumes: Iterable[Obj],
    *,
    delay_binding: bool = False,
    node_admits: Callable[[Obj], bool] | None = None,
    excluded: Collection[str] = (),
) -> Obj | None:
    """FindMatchingVolume: a volume pre-bound to the claim wins; otherwise the smallest Available one of the
    claim's class, size, volume mode, attributes class and label selector.

    On the PV controller's path there is no node (`node_admits` None) and a WaitForFirstConsumer claim
    (`delay_binding`) gets only a volume pre-bound to it. On the scheduler's path `node_admits` says whether a
    volume's node affinity admits the node being filtered; `excluded` are volumes already chosen for the pod's
    other claims.

    The controller's index only offers volumes whose access modes include the claim's (listByAccessModes, the
    smallest sets first); that filter is applied here, and among equal sizes the smaller mode set wins.
    """
    requested = requested_storage(claim)
    wanted_class = claim_class(claim)
    selector = _claim_selector(claim)
    best: Obj | None = None
    best_key: tuple[Fraction, int] | None = None
    for volume in volumes:
        if _meta(volume).get("name") in excluded or not access_modes_satisfied(claim, volume):
            continue
        spec = volume.get("spec") or {}
        if spec.get("claimRef") and not volume_bound_to_claim(volume, claim):
            continue
        capacity = volume_capacity(volume)
        if capacity < requested or volume_mode_mismatch(claim, volume) or _vac(claim) != _vac(volume):
            continue
        if _meta(volume).get("deletionTimestamp"):
            continue
        admitted = node_admits is None or node_admits(volume)
        if volume_bound_to_claim(volume, claim):
            return volume if admitted else None
        if delay_binding and node_admits is None:
            continue  # the scheduler binds unbound volumes of WaitForFirstConsumer claims
        if (volume.get("status") or {}).get("phase") != "Available":
            continue
        if selector is not None and not selector.matches(_meta(volume).get("labels") or {}):
            continue
        if volume_class(volume) != wanted_class or not admitted:
            continue
        key = (capacity, len(spec.get("accessModes") or ()))
        if best_key is None or key < best_key:
            best, best_key = volume, key
    return best

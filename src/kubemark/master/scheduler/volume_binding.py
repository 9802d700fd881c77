"""VolumeBinding: kube-scheduler's volume binding plugin, as pure decisions over the scheduler's claim, volume
and storage-class caches (the scheduler does the API calls).

PreFilter (`pod_claims`): a pod's claims are its `persistentVolumeClaim` volumes and its generic ephemeral
volumes' claims (`<pod>-<volume>`). A claim that does not exist, is Lost or is being deleted makes the pod
unschedulable with upstream's message; so does a claim not fully bound (volumeName + bind-completed) whose class
binds Immediately (or that has no class, or names a missing one): "pod has unbound immediate
PersistentVolumeClaims", until the PV controller binds it. Unbound claims of a WaitForFirstConsumer class are
the scheduler's to bind.

Filter (`node_volumes`): a bound claim's volume must exist and its node affinity admit the node; each delayed
claim needs, on that node, an Available volume of its class that the node affinity admits (a static binding,
smallest first, none chosen twice) or else a class whose provisioner can provision there (not
`kubernetes.io/no-provisioner`; the class's allowedTopologies admit the node) — reasons are upstream's.

PreBind (the scheduler): static bindings write the volume's claimRef, claims to provision get the
selected-node annotation, and binding waits until every claim is fully bound (`claims_bound`).

Not modelled: storage capacity tracking (CSIStorageCapacity) and the plugin's scoring of static volumes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubemark.kube import volumes
from kubemark.master.scheduler.cache import NodeInfo
from kubemark.master.scheduler.filters import node_matches_term

__all__ = [
    "REASON_BIND_CONFLICT",
    "REASON_NODE_CONFLICT",
    "REASON_PV_NOT_EXIST",
    "REASON_UNBOUND_IMMEDIATE",
    "NodeVolumes",
    "PodClaims",
    "VolumeUnresolvable",
    "claim_names",
    "claims_bound",
    "has_claims",
    "node_volumes",
    "pod_claims",
    "volume_admits",
    "volume_bound_to",
]

Obj = dict[str, Any]

REASON_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
REASON_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
REASON_NODE_CONFLICT = "node(s) didn't match PersistentVolume's node affinity"
REASON_PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
NO_PROVISIONER = "kubernetes.io/no-provisioner"


class VolumeUnresolvable(Exception):
    """PreFilter's UnschedulableAndUnresolvable: str() is the message that follows "0/N nodes are available:"."""


@dataclass(slots=True)
class PodClaims:
    bound: list[Obj] = field(default_factory=list)
    delayed: list[Obj] = field(default_factory=list)  # unbound, WaitForFirstConsumer


@dataclass(slots=True)
class NodeVolumes:
    """What PreBind does for the pod on one node."""

    static: list[tuple[Obj, Obj]] = field(default_factory=list)  # (claim, volume) to bind
    provision: list[Obj] = field(default_factory=list)  # claims to annotate with the selected node

    @property
    def empty(self) -> bool:
        return not self.static and not self.provision


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def claim_names(pod: Obj) -> list[tuple[str, bool]]:
    """(claim name, is it a generic ephemeral volume's) for each volume of the pod that uses a claim."""
    pod_name = str(_meta(pod).get("name") or "")
    out: list[tuple[str, bool]] = []
    for vol in (pod.get("spec") or {}).get("volumes") or ():
        if vol.get("persistentVolumeClaim"):
            out.append((str(vol["persistentVolumeClaim"].get("claimName") or ""), False))
        elif vol.get("ephemeral"):
            out.append((f"{pod_name}-{vol.get('name')}", True))  # ephemeral.VolumeClaimName
    return out


def has_claims(pod: Obj) -> bool:
    return any(
        v.get("persistentVolumeClaim") or v.get("ephemeral") for v in (pod.get("spec") or {}).get("volumes") or ()
    )


def _owned_by(claim: Obj, pod: Obj) -> bool:
    uid = _meta(pod).get("uid")
    return any(ref.get("controller") and ref.get("uid") == uid for ref in _meta(claim).get("ownerReferences") or ())


def pod_claims(
    pod: Obj, claim_of: Callable[[str], Obj | None], class_of: Callable[[str], Obj | None]
) -> PodClaims | None:
    """PreFilter: None when the pod uses no claim; raises VolumeUnresolvable when it cannot be scheduled yet."""
    names = claim_names(pod)
    if not names:
        return None
    namespace = str(_meta(pod).get("namespace") or "")
    result = PodClaims()
    for name, ephemeral in names:
        claim = claim_of(f"{namespace}/{name}")
        if claim is None:
            if ephemeral:
                raise VolumeUnresolvable(
                    f'waiting for ephemeral volume controller to create the persistentvolumeclaim "{name}"'
                )
            raise VolumeUnresolvable(f'persistentvolumeclaim "{name}" not found')
        if (claim.get("status") or {}).get("phase") == "Lost":
            volume = (claim.get("spec") or {}).get("volumeName") or ""
            raise VolumeUnresolvable(
                f'persistentvolumeclaim "{name}" bound to non-existent persistentvolume "{volume}"'
            )
        if _meta(claim).get("deletionTimestamp"):
            raise VolumeUnresolvable(f'persistentvolumeclaim "{name}" is being deleted')
        if ephemeral and not _owned_by(claim, pod):
            raise VolumeUnresolvable(
                f"PVC {namespace}/{name} was not created for pod {namespace}/{_meta(pod).get('name')} (pod is not owner)"
            )
        if volumes.claim_fully_bound(claim):
            result.bound.append(claim)
            continue
        class_name = volumes.claim_class(claim)
        storage_class = class_of(class_name) if class_name else None
        delayed = volumes.binding_mode(storage_class) == volumes.BINDING_WAIT_FOR_FIRST_CONSUMER
        if delayed and not (claim.get("spec") or {}).get("volumeName"):
            result.delayed.append(claim)
        else:
            raise VolumeUnresolvable(REASON_UNBOUND_IMMEDIATE)  # pre-bound claims wait for the PV controller too
    return result


def _terms_admit(terms: Iterable[Obj], node: NodeInfo) -> bool:
    return any(node_matches_term(term, node.labels, node.name) for term in terms)


def volume_admits(volume: Obj, node: NodeInfo) -> bool:
    """CheckNodeAffinity: the volume's required node affinity (if any) matches the node."""
    required = ((volume.get("spec") or {}).get("nodeAffinity") or {}).get("required")
    if not required:
        return True
    return _terms_admit(required.get("nodeSelectorTerms") or (), node)


def _topology_admits(storage_class: Obj, node: NodeInfo) -> bool:
    """The class's allowedTopologies (any term; each term's expressions all hold on the node's labels)."""
    terms = storage_class.get("allowedTopologies") or ()
    if not terms:
        return True
    for term in terms:
        if all(
            node.labels.get(str(e.get("key"))) in (e.get("values") or ())
            for e in term.get("matchLabelExpressions") or ()
        ):
            return True
    return False


def node_volumes(
    claims: PodClaims,
    node: NodeInfo,
    volume_of: Callable[[str], Obj | None],
    all_volumes: Callable[[], list[Obj]],
    class_of: Callable[[str], Obj | None],
) -> NodeVolumes | list[str]:
    """Filter for one node: what PreBind would do there, or the reasons the node does not fit."""
    reasons: list[str] = []
    for claim in claims.bound:
        volume = volume_of(str((claim.get("spec") or {}).get("volumeName")))
        if volume is None:
            reasons.append(REASON_PV_NOT_EXIST)
        elif not volume_admits(volume, node):
            reasons.append(REASON_NODE_CONFLICT)
    if reasons:
        return sorted(set(reasons))
    out = NodeVolumes()
    chosen: set[str] = set()
    for claim in claims.delayed:
        volume = volumes.find_matching_volume(
            claim, all_volumes(), delay_binding=True, node_admits=lambda v: volume_admits(v, node), excluded=chosen
        )
        if volume is not None:
            chosen.add(str(_meta(volume).get("name")))
            out.static.append((claim, volume))
            continue
        storage_class = class_of(volumes.claim_class(claim))
        provisioner = (storage_class or {}).get("provisioner")
        if storage_class is None or not provisioner or provisioner == NO_PROVISIONER:
            reasons.append(REASON_BIND_CONFLICT)
        elif not _topology_admits(storage_class, node):
            reasons.append(REASON_NODE_CONFLICT)
        else:
            out.provision.append(claim)
    return sorted(set(reasons)) if reasons else out


def claims_bound(
    node_vols: NodeVolumes, claim_of: Callable[[str], Obj | None], volume_of: Callable[[str], Obj | None]
) -> bool:
    """checkBindings: every claim PreBind touched is fully bound (raises if provisioning was given up on)."""
    for claim, _ in node_vols.static:
        current = claim_of(_key(claim))
        if current is None:
            raise RuntimeError(f'persistentvolumeclaim "{_meta(claim).get("name")}" was deleted')
        if not volumes.claim_fully_bound(current):
            return False
    for claim in node_vols.provision:
        current = claim_of(_key(claim))
        if current is None:
            raise RuntimeError(f'persistentvolumeclaim "{_meta(claim).get("name")}" was deleted')
        if volumes.ANN_SELECTED_NODE not in (_meta(current).get("annotations") or {}):
            raise RuntimeError(f"selectedNode annotation reset for PVC {_meta(claim).get('name')!r}")
        if not volumes.claim_fully_bound(current):
            return False
        if volume_of(str(current["spec"]["volumeName"])) is None:
            return False
    return True


def _key(claim: Obj) -> str:
    return f"{_meta(claim).get('namespace') or ''}/{_meta(claim).get('name')}"


def volume_bound_to(volume: Obj, claim: Obj) -> Obj:
    """GetBindVolumeToClaim: the volume with its claimRef set to the claim and bound-by-controller."""
    out = dict(volume)
    md = dict(_meta(volume))
    md["annotations"] = {**(md.get("annotations") or {}), volumes.ANN_BOUND_BY_CONTROLLER: "yes"}
    out["metadata"] = md
    out["spec"] = {**(volume.get("spec") or {}), "claimRef": volumes.claim_reference(claim)}
    return out

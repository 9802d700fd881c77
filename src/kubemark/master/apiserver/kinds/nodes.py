"""Node rules: defaulting (allocatable from capacity), validation (podCIDRs, taints), the spec/status split,
the fields that may only be set once (podCIDR, podCIDRs, providerID), and canonical quantities in
status.capacity / status.allocatable (kube-apiserver decodes them into resource.Quantity and writes them back
canonical: "3.75Gi" is stored and returned as "3840Mi").

Upstream: pkg/registry/core/node/strategy.go, ValidateNode / ValidateNodeUpdate.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from kubemark.kube.quantity import canonicalize_quantities
from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import field, podspec
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.strategy import Obj


def canonicalize_node_status(status: object) -> None:
    """capacity and allocatable as Quantity.String() prints them (already canonical strings are left alone)."""
    if isinstance(status, dict):
        canonicalize_quantities(status.get("capacity"))
        canonicalize_quantities(status.get("allocatable"))


def default_node(obj: Obj) -> None:
    """SetDefaults_Node + SetDefaults_NodeStatus: spec {}, allocatable copies capacity when missing."""
    if obj.get("spec") is None:
        obj["spec"] = {}
    status = obj.get("status")
    canonicalize_node_status(status)
    if isinstance(status, dict) and isinstance(status.get("capacity"), dict) and not status.get("allocatable"):
        status["allocatable"] = dict(status["capacity"])


def _sync_pod_cidrs(spec: Obj) -> None:
    """Upstream conversion keeps spec.podCIDR and spec.podCIDRs[0] in sync."""
    if not isinstance(spec, dict) or not isinstance(spec.get("podCIDRs") or [], list):
        return  # not a NodeSpec: validation refuses it
    if spec.get("podCIDR") and not spec.get("podCIDRs"):
        spec["podCIDRs"] = [spec["podCIDR"]]
    elif spec.get("podCIDRs") and not spec.get("podCIDR"):
        spec["podCIDR"] = spec["podCIDRs"][0]


def _validate_spec(spec: Obj) -> list[Cause]:
    causes: list[Cause] = []
    cidrs = spec.get("podCIDRs") or []
    for i, cidr in enumerate(cidrs):
        try:
            ipaddress.ip_network(cidr, strict=False)
            if "/" not in cidr:
                raise ValueError(cidr)
        except (TypeError, ValueError):
            causes.append(
                field.invalid(
                    f"spec.podCIDRs[{i}]", cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
                )
            )
    if len(cidrs) > 2:
        causes.append(field.invalid("spec.podCIDRs", cidrs, "may specify no more than one CIDR for each IP family"))
    pod_cidr = spec.get("podCIDR")
    if pod_cidr and cidrs and cidrs[0] != pod_cidr:
        causes.append(field.invalid("spec.podCIDRs", cidrs, "the first CIDR must match spec.podCIDR"))
    seen: set[tuple[object, object]] = set()
    for i, taint in enumerate(spec.get("taints") or ()):
        path = f"spec.taints[{i}]"
        if not isinstance(taint, dict):
            causes.append(field.invalid(path, taint, "must be an object"))
            continue
        key = taint.get("key")
        if not key:
            causes.append(field.required(f"{path}.key"))
        effect = taint.get("effect")
        if not effect:
            causes.append(field.required(f"{path}.effect"))
        elif effect not in podspec.TAINT_EFFECTS:
            causes.append(field.not_supported(f"{path}.effect", effect, podspec.TAINT_EFFECTS))
        if (key, effect) in seen:
            causes.append(field.duplicate(f"{path}", f"{key}:{effect}"))
        seen.add((key, effect))
    return causes


@dataclass
class NodeStrategy(KindStrategy):
    def prepare_for_create(self, obj: Obj) -> None:
        default_node(obj)
        _sync_pod_cidrs(obj["spec"])

    def validate(self, obj: Obj) -> list[Cause]:
        name = (obj.get("metadata") or {}).get("name")
        causes = field.dns1123_subdomain("metadata.name", name) if name else []
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [*causes, field.invalid("spec", spec, "must be an object")]
        return causes + _validate_spec(spec)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        _sync_pod_cidrs(new.setdefault("spec", {}))
        canonicalize_node_status(new.get("status"))  # kept from `old`: a no-op unless stored before this rule

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        if not isinstance(new_spec, dict):
            return [field.invalid("spec", new_spec, "must be an object")]
        causes = _validate_spec(new_spec)
        if old_spec.get("podCIDR") and new_spec.get("podCIDR") != old_spec["podCIDR"]:
            causes.append(
                field.forbidden("spec.podCIDR", 'node updates may not change podCIDR except from "" to valid')
            )
        if old_spec.get("podCIDRs") and new_spec.get("podCIDRs") != old_spec["podCIDRs"]:
            causes.append(
                field.forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid')
            )
        if old_spec.get("providerID") and new_spec.get("providerID") != old_spec["providerID"]:
            causes.append(
                field.forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid')
            )
        return causes

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_status_update(new, old)
        status = new.get("status")
        canonicalize_node_status(status)
        if isinstance(status, dict) and status.get("capacity") and not status.get("allocatable"):
            status["allocatable"] = dict(status["capacity"])

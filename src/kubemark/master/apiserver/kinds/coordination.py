"""Lease rules (coordination.k8s.io/v1): durations and transitions are non-negative; Leases have no status.

Upstream: pkg/apis/coordination/validation ValidateLeaseSpec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import field
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.strategy import Obj


def validate_lease_spec(spec: Any) -> list[Cause]:
    if spec is None:
        return []
    if not isinstance(spec, dict):
        return [field.invalid("spec", spec, "must be an object")]
    causes = field.positive("spec.leaseDurationSeconds", spec.get("leaseDurationSeconds"))
    causes += field.non_negative("spec.leaseTransitions", spec.get("leaseTransitions"))
    holder = spec.get("holderIdentity")
    if holder is not None and not isinstance(holder, str):
        causes.append(field.invalid("spec.holderIdentity", holder, "must be a string"))
    return causes


@dataclass
class LeaseStrategy(KindStrategy):
    def validate(self, obj: Obj) -> list[Cause]:
        return validate_lease_spec(obj.get("spec"))

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validate_lease_spec(new.get("spec"))

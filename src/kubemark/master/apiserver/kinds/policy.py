"""PodDisruptionBudget rules (policy/v1).

Upstream: ValidatePodDisruptionBudget(Spec|StatusUpdate) in pkg/apis/policy/validation and the registry
strategy (status dropped on create, spec changes bump metadata.generation). A v1 budget with no disruption
controller to fill its status keeps disruptionsAllowed 0, as a real cluster before that controller's first
sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubemark.kube.labels import LabelSelectorError, selector_from_label_selector
from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import field
from kubemark.master.apiserver.kinds.apps import _validate_positive_int_or_percent
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.strategy import Obj

UNHEALTHY_POD_EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")
_STATUS_COUNTS = ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods", "observedGeneration")


def validate_selector(selector: Any, path: str) -> list[Cause]:
    """ValidateLabelSelector: a metav1.LabelSelector whose keys, operators and values are valid (nil allowed)."""
    if selector is None:
        return []
    if not isinstance(selector, dict):
        return [field.invalid(path, selector, "must be a label selector")]
    try:
        selector_from_label_selector(selector)
    except LabelSelectorError as err:
        return [field.invalid(path, selector, str(err))]
    return []


def _validate_spec(spec: Any) -> list[Cause]:
    if spec is None:
        return []
    if not isinstance(spec, dict):
        return [field.invalid("spec", spec, "must be an object")]
    causes: list[Cause] = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        causes.append(field.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
    for key in ("minAvailable", "maxUnavailable"):
        if spec.get(key) is not None:
            causes += _validate_positive_int_or_percent(spec[key], f"spec.{key}")
    causes += validate_selector(spec.get("selector"), "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
        causes.append(field.not_supported("spec.unhealthyPodEvictionPolicy", policy, UNHEALTHY_POD_EVICTION_POLICIES))
    return causes


def _empty_status() -> Obj:
    return {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}


@dataclass
class PodDisruptionBudgetStrategy(KindStrategy):
    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = _empty_status()

    def validate(self, obj: Obj) -> list[Cause]:
        return _validate_spec(obj.get("spec"))

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return _validate_spec(new.get("spec"))

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        status = new.get("status") or {}
        causes: list[Cause] = []
        if isinstance(status, dict):
            for key in _STATUS_COUNTS:
                causes += field.non_negative(f"status.{key}", status.get(key))
        return causes

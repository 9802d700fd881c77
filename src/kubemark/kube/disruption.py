"""PodDisruptionBudget rules shared by the eviction subresource and the disruption controller
(pkg/apis/policy/helper, pkg/controller/disruption)."""

from __future__ import annotations

from typing import Any

__all__ = ["DELETION_TIMEOUT_SECONDS", "disruption_allowed_condition"]

DELETION_TIMEOUT_SECONDS = 120.0  # how long an eviction counts as a disruption before the pod must be gone


def disruption_allowed_condition(allowed: int, observed_generation: int) -> dict[str, Any]:
    """UpdateDisruptionAllowedCondition: True/SufficientPods with disruptions left, else False/InsufficientPods."""
    if allowed > 0:
        return {
            "type": "DisruptionAllowed",
            "status": "True",
            "reason": "SufficientPods",
            "observedGeneration": observed_generation,
        }
    return {
        "type": "DisruptionAllowed",
        "status": "False",
        "reason": "InsufficientPods",
        "observedGeneration": observed_generation,
    }

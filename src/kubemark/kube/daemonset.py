"""A DaemonSet's template generation: the API server bumps it, the DaemonSet controller reads it."""

from __future__ import annotations

from typing import Any

__all__ = ["TEMPLATE_GENERATION_ANNOTATION", "template_generation"]

# apps/v1 keeps the (deprecated) spec.templateGeneration of extensions/v1beta1 in this annotation.
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"


def template_generation(obj: dict[str, Any]) -> int:
    """A DaemonSet's template generation (the v1 annotation; 0 when missing or unparsable)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    try:
        return int(annotations.get(TEMPLATE_GENERATION_ANNOTATION, 0))
    except (TypeError, ValueError):
        return 0

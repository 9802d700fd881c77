"""Event rules for core/v1 Events and events.k8s.io/v1 Events (each stored under its own resource).

Upstream: pkg/apis/core/validation/events.go. core/v1 keeps the legacy checks (involved object namespace
must match the event's); events.k8s.io/v1 requires the new-style fields. Lenient on purpose where
clients differ: an event about a cluster-scoped object may live in "default" or "kube-system".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import field
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.strategy import Obj

EVENT_TYPES = ("Normal", "Warning")
_FIELD_MAX = 128
NOTE_MAX_BYTES = 1024
_CLUSTER_OBJECT_NAMESPACES = ("", "default", "kube-system")


def _namespace_matches(path: str, event_namespace: str, reference: Any) -> list[Cause]:
    if not isinstance(reference, dict):
        return []
    target = reference.get("namespace") or ""
    if (target and target != event_namespace) or (not target and event_namespace not in _CLUSTER_OBJECT_NAMESPACES):
        return [field.invalid(f"{path}.namespace", target, "does not match event.namespace")]
    return []


def _bounded(path: str, value: Any, *, required: bool) -> list[Cause]:
    if not value:
        return [field.required(path)] if required else []
    if len(str(value)) > _FIELD_MAX:
        return [field.invalid(path, value, f"can have at most {_FIELD_MAX} characters")]
    return []


def validate_core_event(obj: Obj) -> list[Cause]:
    namespace = (obj.get("metadata") or {}).get("namespace", "")
    involved = obj.get("involvedObject")
    if not isinstance(involved, dict) or not involved:
        return [field.required("involvedObject")]
    causes = _namespace_matches("involvedObject", namespace, involved)
    event_type = obj.get("type")
    if event_type and event_type not in EVENT_TYPES:
        causes.append(field.invalid("type", event_type, f"has invalid value: {event_type}"))
    if obj.get("reportingComponent"):
        causes += _bounded("reportingComponent", obj["reportingComponent"], required=False)
    causes += _bounded("reason", obj.get("reason"), required=False)
    return causes


def validate_new_event(obj: Obj) -> list[Cause]:
    """events.k8s.io/v1: the fields a structured event must carry."""
    namespace = (obj.get("metadata") or {}).get("namespace", "")
    causes: list[Cause] = []
    if not obj.get("eventTime"):
        causes.append(field.required("eventTime"))
    event_type = obj.get("type")
    if event_type not in EVENT_TYPES:
        causes.append(field.invalid("type", event_type or "", f"has invalid value: {event_type or ''}"))
    for key in ("reportingController", "reportingInstance", "action", "reason"):
        causes += _bounded(key, obj.get(key), required=True)
    causes += _namespace_matches("regarding", namespace, obj.get("regarding"))
    note = obj.get("note")
    if isinstance(note, str) and len(note.encode()) > NOTE_MAX_BYTES:
        causes.append(field.too_long("note", "", NOTE_MAX_BYTES))
    return causes


@dataclass
class CoreEventStrategy(KindStrategy):
    def validate(self, obj: Obj) -> list[Cause]:
        return validate_core_event(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validate_core_event(new)


@dataclass
class EventStrategy(KindStrategy):
    """events.k8s.io/v1 Event."""

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_new_event(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = validate_new_event(new)
        for key in ("action", "reason", "reportingController", "reportingInstance", "regarding", "eventTime"):
            if new.get(key) != old.get(key):
                causes.append(field.immutable(key, new.get(key)))
        return causes

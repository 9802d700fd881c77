"""Generic object-metadata validation (ValidateObjectMeta of k8s.io/apimachinery) for every kind.

Kind-specific rules live in the strategies; this module checks what all objects share: name format (per
kind), namespace presence, labels, annotations (keys and total size), finalizers, and the update rules of
metadata (immutable fields, no new finalizers on an object being deleted).
"""

from __future__ import annotations

from typing import Any

from kubemark.kube import meta
from kubemark.kube.resources import ResourceType
from kubemark.master.apiserver.errors import Cause

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
# Nesting levels a request body (or a JSON-patched object) may have. Upstream decodes into typed structs, which
# bound the depth of every served kind far below this; our JSON encoder gives up at 254 levels, so a deeper
# object could be accepted but never stored or answered.
MAX_OBJECT_DEPTH = 100

# ObjectMeta fields of a fixed JSON type (upstream: the Go type a body is decoded into; a mismatch is a 400).
_META_STRINGS = (
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "selfLink",
    "creationTimestamp",
    "deletionTimestamp",
)
_META_INTEGERS = ("generation", "deletionGracePeriodSeconds")
_OWNER_STRINGS = ("apiVersion", "kind", "name", "uid")
_OWNER_BOOLS = ("controller", "blockOwnerDeletion")

# Kinds whose names must be DNS labels rather than DNS subdomains (upstream per-kind name validators).
_DNS1123_LABEL_NAMES = frozenset({"namespaces"})
_DNS1035_LABEL_NAMES = frozenset({"services"})
# ValidateRBACName: any path segment name ("system:discovery" has a colon).
_PATH_SEGMENT_NAMES = frozenset({"roles", "rolebindings", "clusterroles", "clusterrolebindings"})

_DNS1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def _invalid(field: str, value: Any, message: str) -> Cause:
    return Cause(field, f'Invalid value: "{value}": {message}', "FieldValueInvalid")


def name_errors(rt: ResourceType, name: str) -> list[str]:
    """Why `name` is not a valid object name for this kind (empty when valid)."""
    if rt.plural in _DNS1123_LABEL_NAMES and not rt.group:
        return list(meta.validate_dns1123_label(name))
    if rt.plural in _DNS1035_LABEL_NAMES and not rt.group:
        errors = list(meta.validate_dns1123_label(name))
        if not errors and not name[:1].isalpha():
            errors.append(_DNS1035_MESSAGE)
        return errors
    return path_segment_name_errors(name) or (
        []
        if rt.plural in _PATH_SEGMENT_NAMES and rt.group == "rbac.authorization.k8s.io"
        else list(meta.validate_dns1123_subdomain(name))
    )


def path_segment_name_errors(name: str) -> list[str]:
    """IsValidPathSegmentName."""
    if name in (".", ".."):
        return [f'may not be "{name}"']
    return [f"may not contain '{c}'" for c in "/%" if c in name]


def validate_object_meta(rt: ResourceType, obj: dict[str, Any], *, check_names: bool = True) -> list[Cause]:
    """Causes (422) for the metadata of a new object, after name generation and defaulting.

    check_names=False skips name and namespace (an update cannot change them).
    """
    md = obj.get("metadata")
    if not isinstance(md, dict):
        return [Cause("metadata", "Required value", "FieldValueRequired")]
    causes: list[Cause] = []
    if check_names:
        causes.extend(_name_causes(rt, md))
    causes.extend(_label_causes(md.get("labels")))
    causes.extend(_annotation_causes(md.get("annotations")))
    causes.extend(_finalizer_causes(md.get("finalizers")))
    return causes


def _name_causes(rt: ResourceType, md: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    name = md.get("name") or ""
    if not name:
        causes.append(Cause("metadata.name", "Required value: name or generateName is required", "FieldValueRequired"))
    else:
        causes.extend(_invalid("metadata.name", name, msg) for msg in name_errors(rt, name))
    namespace = md.get("namespace") or ""
    if rt.namespaced:
        if not namespace:
            causes.append(Cause("metadata.namespace", "Required value", "FieldValueRequired"))
        else:
            causes.extend(
                _invalid("metadata.namespace", namespace, msg) for msg in meta.validate_dns1123_label(namespace)
            )
    elif namespace:
        causes.append(Cause("metadata.namespace", "Forbidden: not allowed on this type", "FieldValueForbidden"))
    return causes


def _label_causes(labels: Any) -> list[Cause]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [Cause("metadata.labels", "Invalid value: must be a map of strings")]
    causes: list[Cause] = []
    for key, value in labels.items():
        causes.extend(_invalid("metadata.labels", key, msg) for msg in meta.validate_qualified_name(key))
        if not isinstance(value, str):
            causes.append(_invalid("metadata.labels", value, "must be a string"))
            continue
        causes.extend(_invalid("metadata.labels", value, msg) for msg in meta.validate_label_value(value))
    return causes


def _annotation_causes(annotations: Any) -> list[Cause]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [Cause("metadata.annotations", "Invalid value: must be a map of strings")]
    causes: list[Cause] = []
    total = 0
    for key, value in annotations.items():
        causes.extend(_invalid("metadata.annotations", key, msg) for msg in meta.validate_qualified_name(key.lower()))
        if not isinstance(value, str):
            causes.append(_invalid("metadata.annotations", key, "value must be a string"))
            continue
        total += len(key) + len(value)
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(
            Cause(
                "metadata.annotations",
                f"Too long: must have at most {TOTAL_ANNOTATION_SIZE_LIMIT} bytes",
                "FieldValueTooLong",
            )
        )
    return causes


def _finalizer_causes(finalizers: Any) -> list[Cause]:
    if finalizers is None:
        return []
    if not isinstance(finalizers, list):
        return [Cause("metadata.finalizers", "Invalid value: must be a list of strings")]
    causes: list[Cause] = []
    for i, finalizer in enumerate(finalizers):
        if not isinstance(finalizer, str):
            causes.append(_invalid(f"metadata.finalizers[{i}]", finalizer, "must be a string"))
            continue
        causes.extend(
            _invalid(f"metadata.finalizers[{i}]", finalizer, msg) for msg in meta.validate_qualified_name(finalizer)
        )
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        causes.append(
            _invalid(
                "metadata.finalizers",
                finalizers,
                'finalizer "orphan" and "foregroundDeletion" cannot be both set',
            )
        )
    return causes


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _decode_error(path: str, value: Any, go_type: str) -> str:
    return f"json: cannot unmarshal {_json_type(value)} into Go struct field {path} of type {go_type}"


def meta_type_error(obj: Any) -> str:
    """Why `obj`'s type header or metadata could not be decoded into kube's typed ObjectMeta ("" when it can),
    worded as Go's decoder: `json: cannot unmarshal number into Go struct field ObjectMeta.metadata.name ...`.

    Every later rule (names, keys, selectors, field indexes) assumes these types; upstream answers a mismatch with
    400 BadRequest before anything else runs. null stands for "unset" everywhere, as in Go.
    """
    if not isinstance(obj, dict):
        return ""
    for key in ("apiVersion", "kind"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            return _decode_error(f"TypeMeta.{key}", obj[key], "string")
    md = obj.get("metadata")
    if md is None:
        return ""
    if not isinstance(md, dict):
        return _decode_error("TypeMeta.metadata", md, "v1.ObjectMeta")
    for key in _META_STRINGS:
        value = md.get(key)
        if value is not None and not isinstance(value, str):
            return _decode_error(f"ObjectMeta.metadata.{key}", value, "string")
    for key in _META_INTEGERS:
        value = md.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            return _decode_error(f"ObjectMeta.metadata.{key}", value, "int64")
    for key in ("labels", "annotations"):
        value = md.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            return _decode_error(f"ObjectMeta.metadata.{key}", value, "map[string]string")
        for item in value.values():
            if item is not None and not isinstance(item, str):
                return _decode_error(f"ObjectMeta.metadata.{key}", item, "string")
    finalizers = md.get("finalizers")
    if finalizers is not None:
        if not isinstance(finalizers, list):
            return _decode_error("ObjectMeta.metadata.finalizers", finalizers, "[]string")
        for item in finalizers:
            if item is not None and not isinstance(item, str):
                return _decode_error("ObjectMeta.metadata.finalizers", item, "string")
    for key in ("ownerReferences", "managedFields"):
        value = md.get(key)
        if value is not None and not isinstance(value, list):
            return _decode_error(f"ObjectMeta.metadata.{key}", value, "[]v1.OwnerReference")
    for ref in md.get("ownerReferences") or ():
        if not isinstance(ref, dict):
            return _decode_error("ObjectMeta.metadata.ownerReferences", ref, "v1.OwnerReference")
        for key in _OWNER_STRINGS:
            if ref.get(key) is not None and not isinstance(ref[key], str):
                return _decode_error(f"OwnerReference.metadata.ownerReferences.{key}", ref[key], "string")
        for key in _OWNER_BOOLS:
            if ref.get(key) is not None and not isinstance(ref[key], bool):
                return _decode_error(f"OwnerReference.metadata.ownerReferences.{key}", ref[key], "bool")
    return ""


def shape_error(value: Any, max_values: int | None = None) -> str:
    """Why a decoded document cannot be served ("" when it can): nested deeper than MAX_OBJECT_DEPTH, or more than
    `max_values` values once shared parts are counted each time they occur (YAML aliases: a "billion laughs"
    document of a few hundred bytes expands to gigabytes when encoded)."""
    stack = [(value, 1)]
    seen = 0
    while stack:
        current, depth = stack.pop()
        seen += 1
        if max_values is not None and seen > max_values:
            return f"the document expands to more than {max_values} values (excessive aliasing)"
        if isinstance(current, dict):
            children: Any = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        if depth > MAX_OBJECT_DEPTH:
            return f"the document is nested deeper than {MAX_OBJECT_DEPTH} levels"
        stack.extend((child, depth + 1) for child in children)
    return ""


def validate_object_meta_update(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """Causes (422) for metadata changes an update may not make, plus the usual metadata rules."""
    new_md, old_md = new.get("metadata") or {}, old.get("metadata") or {}
    causes = validate_object_meta(rt, new, check_names=False)
    if old_md.get("deletionTimestamp"):
        old_finalizers = set(old_md.get("finalizers") or ())
        added = [f for f in new_md.get("finalizers") or () if f not in old_finalizers]
        if added:
            causes.append(
                Cause(
                    "metadata.finalizers",
                    f"Forbidden: no new finalizers can be added if the object is being deleted, found new "
                    f"finalizers {added!r}".replace("'", '"'),
                    "FieldValueForbidden",
                )
            )
    return causes

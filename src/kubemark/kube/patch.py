"""Patches: RFC 7386 JSON merge patch, RFC 6902 JSON patch and Kubernetes strategic merge patch.

The strategic merge patch follows k8s.io/apimachinery/pkg/util/strategicpatch (apply path, i.e.
MergeParallelList + IgnoreUnmatchedNulls) using a compact schema table of the served kinds: for
each API type, the fields whose patch strategy is not the default. Lists not in the table are
replaced atomically, as upstream does for lists without a patch strategy.

No function mutates its inputs: the target is deep-copied first and the copy is edited in place.
"""

from __future__ import annotations

import copy
from typing import Any

from kubemark import codec

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"

_MERGE = "merge"
_MERGE_RETAIN = "merge,retainKeys"
_RETAIN = "retainKeys"

# type name -> field -> (element/child type, patch strategy, merge key).
# Only fields that need a type (to reach a nested rule) or a non-default strategy are listed.
_FieldRule = tuple[str | None, str | None, str | None]
_TYPES: dict[str, dict[str, _FieldRule]] = {
    "ObjectMeta": {
        "ownerReferences": (None, _MERGE, "uid"),
        "finalizers": (None, _MERGE, None),
    },
    "PodTemplateSpec": {"metadata": ("ObjectMeta", None, None), "spec": ("PodSpec", None, None)},
    "PodSpec": {
        "volumes": (None, _MERGE_RETAIN, "name"),
        "initContainers": ("Container", _MERGE, "name"),
        "containers": ("Container", _MERGE, "name"),
        "ephemeralContainers": ("Container", _MERGE, "name"),
        "imagePullSecrets": (None, _MERGE, "name"),
        "hostAliases": (None, _MERGE, "ip"),
        "topologySpreadConstraints": (None, _MERGE, "topologyKey"),
        "resourceClaims": (None, _MERGE_RETAIN, "name"),
        "schedulingGates": (None, _MERGE, "name"),
    },
    "Container": {
        "ports": (None, _MERGE, "containerPort"),
        "env": (None, _MERGE, "name"),
        "volumeMounts": (None, _MERGE, "mountPath"),
        "volumeDevices": (None, _MERGE, "devicePath"),
    },
    # containerStatuses / initContainerStatuses carry no patch strategy upstream: atomic.
    "PodStatus": {
        "conditions": (None, _MERGE, "type"),
        "podIPs": (None, _MERGE, "ip"),
        "hostIPs": (None, _MERGE, "ip"),
        "resourceClaimStatuses": (None, _MERGE_RETAIN, "name"),
    },
    # taints, images and volumesAttached carry no patch strategy upstream: atomic.
    "NodeSpec": {"podCIDRs": (None, _MERGE, None)},
    "NodeStatus": {
        "conditions": (None, _MERGE, "type"),
        "addresses": (None, _MERGE, "type"),
    },
    "ServiceSpec": {"ports": (None, _MERGE, "port")},
    "ConditionsStatus": {"conditions": (None, _MERGE, "type")},
    "TemplateSpec": {"template": ("PodTemplateSpec", None, None)},
    "DeploymentSpec": {
        "template": ("PodTemplateSpec", None, None),
        "strategy": (None, _RETAIN, None),
    },
}


def _root(spec: str | None = None, status: str | None = None, **extra: _FieldRule) -> dict[str, _FieldRule]:
    fields: dict[str, _FieldRule] = {"metadata": ("ObjectMeta", None, None)}
    if spec:
        fields["spec"] = (spec, None, None)
    if status:
        fields["status"] = (status, None, None)
    fields.update(extra)
    return fields


_KINDS: dict[str, dict[str, _FieldRule]] = {
    "Pod": _root("PodSpec", "PodStatus"),
    "PodTemplate": _root(template=("PodTemplateSpec", None, None)),
    "Node": _root("NodeSpec", "NodeStatus"),
    "Service": _root("ServiceSpec", "ConditionsStatus"),
    "Endpoints": _root(),
    "ConfigMap": _root(),
    "Secret": _root(),
    "ServiceAccount": _root(secrets=(None, _MERGE, "name")),
    "Event": _root(),
    "ReplicationController": _root("TemplateSpec", "ConditionsStatus"),
    "Lease": _root(),
    "Deployment": _root("DeploymentSpec", "ConditionsStatus"),
    "ReplicaSet": _root("TemplateSpec", "ConditionsStatus"),
    "DaemonSet": _root("TemplateSpec", "ConditionsStatus"),
    "StatefulSet": _root("TemplateSpec", "ConditionsStatus"),
    "EndpointSlice": _root(),
    "Job": _root("TemplateSpec", "ConditionsStatus"),
    "Namespace": _root(None, "ConditionsStatus"),
    "PriorityClass": _root(),
    "ControllerRevision": _root(),
    "PodDisruptionBudget": _root(None, "ConditionsStatus"),
    "NetworkPolicy": _root(),
    "PersistentVolumeClaim": _root(None, "ConditionsStatus"),
    "PersistentVolume": _root(),
    "CSIDriver": _root(),
    "RuntimeClass": _root(),
    "PodCertificateRequest": _root(None, "ConditionsStatus"),
    "ServiceCIDR": _root(None, "ConditionsStatus"),  # spec.cidrs is atomic
}

_EMPTY: dict[str, _FieldRule] = {}

# Root tables live beside the type tables under a prefix no Go type name can have.
_KIND_PREFIX = "kind/"
_TYPES.update({_KIND_PREFIX + kind: fields for kind, fields in _KINDS.items()})


class PatchError(ValueError):
    """A patch cannot be applied (malformed, or it does not fit the target)."""


def strategic_merge_supported(kind: str) -> bool:
    """Whether `kind` has a strategic-merge schema (upstream refuses SMP for custom resources)."""
    return kind in _KINDS


def _deepcopy(value: Any) -> Any:
    try:
        return codec.loads(codec.dumps(value))
    except (TypeError, ValueError):
        return copy.deepcopy(value)


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: unlike ==, true/1 and 1/1.0-as-bool are distinct, like Go's reflect.DeepEqual."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_json_equal, a, b))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


# --- RFC 7386 ----------------------------------------------------------------------------------


def _merge_patch_into(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return _deepcopy(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch_into(result.get(key), value)
    return result


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge recursively, null deletes, anything else replaces."""
    return _merge_patch_into(_deepcopy(target), patch)


def create_merge_patch(original: dict[str, Any], modified: dict[str, Any]) -> dict[str, Any]:
    """The RFC 7386 patch that turns `original` into `modified` (empty when they are equal)."""
    patch: dict[str, Any] = {}
    for key in original:
        if key not in modified:
            patch[key] = None
    for key, value in modified.items():
        if key not in original:
            patch[key] = _deepcopy(value)
            continue
        old = original[key]
        if _json_equal(old, value):
            continue
        if isinstance(old, dict) and isinstance(value, dict):
            patch[key] = create_merge_patch(old, value)
        else:
            patch[key] = _deepcopy(value)
    return patch


# --- RFC 6902 ----------------------------------------------------------------------------------


def _pointer_tokens(pointer: Any) -> list[str]:
    if not isinstance(pointer, str):
        raise PatchError(f"JSON pointer must be a string, not {pointer!r}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"JSON pointer {pointer!r} must start with '/'")
    tokens = []
    for raw in pointer[1:].split("/"):
        if "~" in raw:
            check = raw.replace("~0", "").replace("~1", "")
            if "~" in check:
                raise PatchError(f"JSON pointer {pointer!r} has an invalid '~' escape")
            raw = raw.replace("~1", "/").replace("~0", "~")
        tokens.append(raw)
    return tokens


def _list_index(token: str, length: int, pointer: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f"invalid array index {token!r} in {pointer!r}")
    index = int(token)
    if index > length or (index == length and not allow_end):
        raise PatchError(f"array index {index} out of bounds in {pointer!r}")
    return index


def _resolve(doc: Any, tokens: list[str], pointer: str) -> Any:
    cur = doc
    for token in tokens:
        if isinstance(cur, dict):
            if token not in cur:
                raise PatchError(f"path {pointer!r} does not exist: missing key {token!r}")
            cur = cur[token]
        elif isinstance(cur, list):
            cur = cur[_list_index(token, len(cur), pointer, allow_end=False)]
        else:
            raise PatchError(f"path {pointer!r} does not exist: cannot index a scalar")
    return cur


def _add(doc: Any, tokens: list[str], value: Any, pointer: str) -> Any:
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_list_index(last, len(parent), pointer, allow_end=True), value)
    else:
        raise PatchError(f"cannot add at {pointer!r}: parent is not an object or array")
    return doc


def _remove(doc: Any, tokens: list[str], pointer: str) -> tuple[Any, Any]:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _resolve(doc, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"cannot remove {pointer!r}: it does not exist")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_list_index(last, len(parent), pointer, allow_end=False))
    raise PatchError(f"cannot remove {pointer!r}: parent is not an object or array")


def apply_json_patch(target: Any, ops: list[Any]) -> Any:
    """RFC 6902 JSON patch: add, remove, replace, move, copy, test."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = _deepcopy(target)
    for i, op in enumerate(ops):
        if not isinstance(op, dict):
            raise PatchError(f"operation {i} is not an object")
        name = op.get("op")
        path = op.get("path")
        if not isinstance(path, str):
            raise PatchError(f"operation {i} ({name}): 'path' must be a string, not {path!r}")
        tokens = _pointer_tokens(path)
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {i} ({name}) is missing 'value'")
        if name == "add":
            doc = _add(doc, tokens, _deepcopy(op["value"]), path)
        elif name == "remove":
            doc, _ = _remove(doc, tokens, path)
        elif name == "replace":
            if tokens:
                doc, _ = _remove(doc, tokens, path)
            doc = _add(doc, tokens, _deepcopy(op["value"]), path)
        elif name in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchError(f"operation {i} ({name}): 'from' must be a string, not {source!r}")
            from_tokens = _pointer_tokens(source)
            if name == "move":
                if from_tokens == tokens:
                    continue
                if tokens[: len(from_tokens)] == from_tokens:
                    raise PatchError(f"cannot move {source!r} into its own child {path!r}")
                doc, value = _remove(doc, from_tokens, source)
            else:
                value = _deepcopy(_resolve(doc, from_tokens, source))
            doc = _add(doc, tokens, value, path)
        elif name == "test":
            if not _json_equal(_resolve(doc, tokens, path), op["value"]):
                raise PatchError(f"test operation {i} failed: value at {path!r} differs")
        else:
            raise PatchError(f"operation {i} has unknown op {name!r}")
    return doc


# --- strategic merge patch ---------------------------------------------------------------------


def _fields_of(type_name: str | None) -> dict[str, _FieldRule]:
    return _TYPES.get(type_name, _EMPTY) if type_name else _EMPTY


def _merge_key_value(item: Any, merge_key: str) -> Any:
    if not isinstance(item, dict) or merge_key not in item:
        raise PatchError(f"map: {item!r} does not contain declared merge key: {merge_key}")
    return item[merge_key]


def _index_of(order: list[Any], item: Any, merge_key: str | None) -> int:
    for i, candidate in enumerate(order):
        if merge_key:
            if isinstance(candidate, dict) and _json_equal(candidate.get(merge_key), item.get(merge_key)):
                return i
        elif _json_equal(candidate, item):
            return i
    return -1


def _sort_by(items: list[Any], order: list[Any], merge_key: str | None) -> list[Any]:
    """normalizeSliceOrder: stable sort by position in `order`; unknown items go last."""
    keyed = [(_index_of(order, item, merge_key), n, item) for n, item in enumerate(items)]
    keyed.sort(key=lambda t: (t[0] < 0, t[0], t[1]))
    return [item for _, _, item in keyed]


def _normalize_order(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str | None,
) -> list[Any]:
    """normalizeElementOrder + mergeSortedSlice: patch order wins, server-only items interleave."""
    right = _sort_by(patch_items, patch_order, merge_key)
    left = _sort_by(server_only, server_order, merge_key)
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index_of(server_order, left[i], merge_key)
            ri = _index_of(server_order, right[j], merge_key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _partition(merged: list[Any], listed: list[Any], merge_key: str | None) -> tuple[list[Any], list[Any]]:
    present: list[Any] = []
    absent: list[Any] = []
    for item in merged:
        found = (not merge_key or isinstance(item, dict)) and _index_of(listed, item, merge_key) >= 0
        (present if found else absent).append(item)
    return present, absent


def _is_map_list(original: list[Any], patch: list[Any]) -> bool:
    sample = original[0] if original else (patch[0] if patch else None)
    return isinstance(sample, dict)


def _merge_list(
    original: list[Any],
    patch: list[Any],
    element_type: str | None,
    merge_key: str | None,
    delete_list: bool = False,
) -> list[Any]:
    """mergeSlice for a list whose strategy is merge; returns a new list in upstream's order."""
    if not original and not patch:
        return []
    if not _is_map_list(original, patch):
        if delete_list:
            return [v for v in original if not any(_json_equal(v, p) for p in patch)]
        merged: list[Any] = []
        for v in original + patch:
            if not any(_json_equal(v, m) for m in merged):
                merged.append(v)
        present, server_only = _partition(merged, patch, None)
        return _normalize_order(present, server_only, patch, original, None)
    if not merge_key:
        raise PatchError("cannot merge lists of maps without a merge key")
    original, patch = _apply_list_directives(original, patch, merge_key)
    merged = list(original)
    for item in patch:
        key_value = _merge_key_value(item, merge_key)
        for n, existing in enumerate(merged):
            if isinstance(existing, dict) and _json_equal(existing.get(merge_key), key_value):
                merged[n] = _merge_map(existing, item, element_type)
                break
        else:
            merged.append(_merge_map({}, item, element_type))
    present, server_only = _partition(merged, patch, merge_key)
    return _normalize_order(present, server_only, patch, original, merge_key)


def _apply_list_directives(original: list[Any], patch: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """mergeSliceWithSpecialElements: handle `$patch: delete` / `$patch: replace` items."""
    plain: list[Any] = []
    replace = False
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"list item {item!r} is not an object but the list merges by {merge_key}")
        directive = item.get(DIRECTIVE)
        if directive is None:
            plain.append(item)
        elif directive == "delete":
            key_value = _merge_key_value(item, merge_key)
            original = [o for o in original if not (isinstance(o, dict) and _json_equal(o.get(merge_key), key_value))]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise PatchError(f"unknown patch type: {directive} in map: {item!r}")
    if replace:
        return [_merge_map({}, p, None) for p in plain], []
    return original, plain


def _merge_field_list(original: Any, patch: list[Any], rule: _FieldRule, delete_list: bool = False) -> list[Any]:
    element_type, strategy, merge_key = rule
    if strategy not in (_MERGE, _MERGE_RETAIN):
        return _clean(patch, None)
    return _merge_list(original if isinstance(original, list) else [], patch, element_type, merge_key, delete_list)


def _merge_map(original: dict[str, Any], patch: dict[str, Any], type_name: str | None) -> dict[str, Any]:
    """mergeMap: `original` is edited in place and returned."""
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == "replace":
            return _clean({k: v for k, v in patch.items() if k != DIRECTIVE}, type_name)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise PatchError(f"unknown patch type: {directive} in map: {patch!r}")
    fields = _fields_of(type_name)
    patch = {k: v for k, v in patch.items() if k != DIRECTIVE}

    if RETAIN_KEYS in patch:
        retain = patch.pop(RETAIN_KEYS)
        if not isinstance(retain, list):
            raise PatchError(f"{RETAIN_KEYS} must be a list, not {retain!r}")
        keep = set(retain)
        for key, value in patch.items():
            if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
                continue
            if key not in keep:
                raise PatchError(
                    "invalid patch: the patch should not contain fields that are not present in retainKeys"
                )
        for key in [k for k in original if k not in keep]:
            del original[key]

    # $setElementOrder lists carry the final order and are merged together with their list.
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        field = key[len(SET_ELEMENT_ORDER) :]
        if not isinstance(order, list):
            raise PatchError(f"{key} must be a list")
        rule = fields.get(field, (None, None, None))
        merge_key = rule[2]
        orig_list = original.get(field)
        orig_list = orig_list if isinstance(orig_list, list) else None
        has_patch = isinstance(patch.get(field), list)
        if orig_list is None and not has_patch:
            continue
        if has_patch:
            merged = _merge_field_list(orig_list, patch.pop(field), rule)
        else:
            merged = orig_list or []
        map_list = bool(merged) and isinstance(merged[0], dict)
        key_for_order = merge_key if map_list else None
        present, server_only = _partition(merged, order, key_for_order)
        original[field] = _normalize_order(present, server_only, order, orig_list or [], key_for_order)

    for key in [k for k in patch if k.startswith(DELETE_FROM_PRIMITIVE_LIST)]:
        values = patch.pop(key)
        field = key[len(DELETE_FROM_PRIMITIVE_LIST) :]
        if not isinstance(values, list):
            raise PatchError(f"{key} must be a list")
        current = original.get(field)
        if isinstance(current, list):
            original[field] = [v for v in current if not any(_json_equal(v, d) for d in values)]

    for key, value in patch.items():
        if value is None:
            original.pop(key, None)
            continue
        rule = fields.get(key, (None, None, None))
        current = original.get(key)
        if isinstance(value, dict):
            original[key] = _merge_map(current if isinstance(current, dict) else {}, value, rule[0])
        elif isinstance(value, list):
            original[key] = (
                _merge_field_list(current, value, rule) if isinstance(current, list) else _clean(value, rule[0], rule)
            )
        else:
            original[key] = value
    return original


def _clean(value: Any, type_name: str | None, rule: _FieldRule | None = None) -> Any:
    """A patch value landing where there is no original: apply its directives to nothing."""
    if isinstance(value, dict):
        return _merge_map({}, value, type_name)
    if isinstance(value, list):
        if rule is not None and rule[1] in (_MERGE, _MERGE_RETAIN):
            return _merge_list([], value, rule[0], rule[2])
        return [_clean(v, type_name) for v in value]
    return value


def apply_strategic_merge_patch(target: dict[str, Any], patch: dict[str, Any], kind: str) -> dict[str, Any]:
    """Kubernetes strategic merge patch of an object of `kind` (unknown kinds: lists replace)."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    if not isinstance(target, dict):
        raise PatchError("a strategic merge patch applies to a JSON object")
    return _merge_map(_deepcopy(target), patch, _KIND_PREFIX + kind)


def create_strategic_merge_patch(original: dict[str, Any], modified: dict[str, Any], kind: str) -> dict[str, Any]:
    """Two-way strategic merge patch (like strategicpatch.CreateTwoWayMergePatch) for `kind`.

    Merge lists are diffed item by item with `$patch: delete` for removed items and a
    `$setElementOrder/<field>` list, so applying the patch to `original` yields `modified`.
    """
    return _diff_map(original, modified, _KIND_PREFIX + kind)


def _diff_map(original: dict[str, Any], modified: dict[str, Any], type_name: str | None) -> dict[str, Any]:
    fields = _fields_of(type_name)
    patch: dict[str, Any] = {key: None for key in original if key not in modified}
    for key, new in modified.items():
        if key not in original:
            patch[key] = _deepcopy(new)
            continue
        old = original[key]
        if _json_equal(old, new):
            continue
        rule = fields.get(key, (None, None, None))
        if isinstance(old, dict) and isinstance(new, dict):
            sub = _diff_map(old, new, rule[0])
            if rule[1] == _RETAIN:
                sub[RETAIN_KEYS] = sorted(new)
            patch[key] = sub
        elif isinstance(old, list) and isinstance(new, list) and rule[1] in (_MERGE, _MERGE_RETAIN):
            _diff_list(patch, key, old, new, rule)
        else:
            patch[key] = _deepcopy(new)
    return patch


def _diff_list(patch: dict[str, Any], key: str, old: list[Any], new: list[Any], rule: _FieldRule) -> None:
    element_type, strategy, merge_key = rule
    if not _is_map_list(old, new):
        added = [v for v in new if not any(_json_equal(v, o) for o in old)]
        removed = [v for v in old if not any(_json_equal(v, n) for n in new)]
        if added:
            patch[key] = _deepcopy(added)
        if removed:
            patch[DELETE_FROM_PRIMITIVE_LIST + key] = _deepcopy(removed)
        patch[SET_ELEMENT_ORDER + key] = _deepcopy(new)
        return
    keys = [item.get(merge_key) if isinstance(item, dict) and merge_key else None for item in new]
    old_keys = [item.get(merge_key) if isinstance(item, dict) and merge_key else None for item in old]
    serial = [codec.dumps(k) for k in keys]
    if None in keys or None in old_keys or len(set(serial)) != len(serial):
        patch[key] = _deepcopy(new)  # not diffable by merge key: send the whole list
        return
    assert merge_key is not None  # else every key is None and the list was sent whole above
    items: list[Any] = []
    for item, key_value in zip(new, keys, strict=True):
        previous = next((o for o, k in zip(old, old_keys, strict=True) if _json_equal(k, key_value)), None)
        if previous is None:
            items.append(_deepcopy(item))
        elif not _json_equal(previous, item):
            sub = _diff_map(previous, item, element_type)
            sub[merge_key] = key_value
            if strategy == _MERGE_RETAIN:
                sub[RETAIN_KEYS] = sorted(item)
            items.append(sub)
    for key_value in old_keys:
        if not any(_json_equal(key_value, k) for k in keys):
            items.append({merge_key: key_value, DIRECTIVE: "delete"})
    if items:
        patch[key] = items
    patch[SET_ELEMENT_ORDER + key] = [{merge_key: k} for k in keys]

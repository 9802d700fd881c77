"""Field selectors: k8s.io/apimachinery/pkg/fields syntax and the selectable fields of each kind.

`object_fields` builds the same fields.Set the kube-apiserver registries build (ToSelectableFields);
`convert_field_selector` applies the per-kind field-label conversion, rejecting unknown fields with
upstream's wording so the API server can answer 400 BadRequest with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_OPERATORS = ("!=", "==", "=")  # upstream termOperators order: longest match wins at a position

_META_FIELDS = frozenset({"metadata.name", "metadata.namespace"})

# Fields each kind accepts in a fieldSelector (pkg/apis/*/v1/conversion.go).
_SUPPORTED: dict[str, frozenset[str]] = {
    "Pod": _META_FIELDS
    | {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    },
    "Node": frozenset({"metadata.name", "spec.unschedulable"}),
    "Namespace": frozenset({"metadata.name", "status.phase"}),
    "Secret": _META_FIELDS | {"type"},
    "Service": _META_FIELDS | {"spec.clusterIP", "spec.type"},
    "ReplicationController": _META_FIELDS | {"status.replicas"},
    "ReplicaSet": _META_FIELDS | {"status.replicas"},
    "Job": _META_FIELDS | {"status.successful"},
    # No metadata.namespace: upstream's conversion func for this kind lists exactly these four.
    "PodCertificateRequest": frozenset({"metadata.name", "spec.signerName", "spec.podName", "spec.nodeName"}),
    "Event": _META_FIELDS
    | {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
}

# Old v1 clients send spec.host for pods; the server rewrites it.
_ALIASES: dict[str, dict[str, str]] = {"Pod": {"spec.host": "spec.nodeName"}}


class FieldSelectorError(ValueError):
    """A field selector string is malformed, or names a field the kind does not support."""


def escape_value(value: str) -> str:
    """fields.EscapeValue: backslash-escape `\\`, `,` and `=`."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_value(text: str) -> str:
    """fields.UnescapeValue: undo escape_value; bare `,`/`=` and unknown escapes are errors."""
    if "\\" not in text and "," not in text and "=" not in text:
        return text
    out: list[str] = []
    in_slash = False
    for ch in text:
        if in_slash:
            if ch not in "\\,=":
                raise FieldSelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            raise FieldSelectorError(f"invalid field selector: unescaped character in value: {ch}")
        else:
            out.append(ch)
    if in_slash:
        raise FieldSelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not backslash-escaped."""
    if not text:
        return []
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in _OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """An AND of (field, op, value) terms; op is "=" or "!=" ("==" is normalised to "=")."""

    requirements: tuple[tuple[str, str, str], ...] = ()

    def matches(self, fields: dict[str, str]) -> bool:
        for field, op, value in self.requirements:
            have = fields.get(field, "")
            if (have == value) != (op == "="):
                return False
        return True

    @property
    def empty(self) -> bool:
        return not self.requirements

    def value_for(self, field: str) -> str | None:
        """The value `field` must equal to match, if the selector requires one (for indexing)."""
        for f, op, value in self.requirements:
            if f == field and op == "=":
                return value
        return None

    def __str__(self) -> str:
        return ",".join(f"{f}{op}{escape_value(v)}" for f, op, v in self.requirements)


def parse_field_selector(text: str) -> FieldSelector:
    """fields.ParseSelector: comma-separated `field=value`, `field==value`, `field!=value`."""
    if not isinstance(text, str):
        raise FieldSelectorError(f"field selector must be a string, not {type(text).__name__}")
    requirements: list[tuple[str, str, str]] = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise FieldSelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, raw = split
        requirements.append((field, "!=" if op == "!=" else "=", unescape_value(raw)))
    return FieldSelector(tuple(requirements))


def supported_fields(kind: str) -> frozenset[str]:
    """The field labels `kind` accepts (metadata.name/namespace for kinds without their own list)."""
    return _SUPPORTED.get(kind, _META_FIELDS)


def _unsupported_message(kind: str, field: str) -> str:
    if kind in _SUPPORTED:
        return f"field label not supported: {field}"
    # runtime.DefaultMetaV1FieldSelectorConversion words it differently.
    return f'"{field}" is not a known field selector: only "metadata.name", "metadata.namespace"'


def unsupported_fields(kind: str, selector: FieldSelector) -> list[str]:
    """Fields in `selector` that `kind` cannot be selected by (aliases such as spec.host are fine)."""
    allowed = supported_fields(kind)
    aliases = _ALIASES.get(kind, {})
    return [f for f, _, _ in selector.requirements if f not in allowed and f not in aliases]


def convert_field_selector(kind: str, selector: FieldSelector) -> FieldSelector:
    """Apply the kind's field-label conversion: rewrite aliases, reject unsupported fields.

    Raises FieldSelectorError carrying upstream's message (the server answers 400 with it).
    """
    bad = unsupported_fields(kind, selector)
    if bad:
        raise FieldSelectorError(_unsupported_message(kind, bad[0]))
    aliases = _ALIASES.get(kind)
    if not aliases:
        return selector
    return FieldSelector(tuple((aliases.get(f, f), op, v) for f, op, v in selector.requirements))


def _get(obj: dict[str, Any], *path: str) -> Any:
    cur: Any = obj
    for part in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def _bool(value: Any) -> str:
    return "true" if value else "false"


def _int(value: Any) -> str:
    return str(int(value or 0))


def _pod_fields(obj: dict[str, Any]) -> dict[str, str]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    pod_ips = [p.get("ip", "") for p in status.get("podIPs") or [] if isinstance(p, dict)]
    pod_ip = pod_ips[0] if pod_ips else _s(status.get("podIP"))
    return {
        "spec.nodeName": _s(spec.get("nodeName")),
        "spec.restartPolicy": _s(spec.get("restartPolicy")),
        "spec.schedulerName": _s(spec.get("schedulerName")),
        "spec.serviceAccountName": _s(spec.get("serviceAccountName")),
        "spec.hostNetwork": _bool(spec.get("hostNetwork")),
        "status.phase": _s(status.get("phase")),
        "status.podIP": pod_ip,
        "status.podIPs": ",".join(pod_ips) if pod_ips else pod_ip,
        "status.nominatedNodeName": _s(status.get("nominatedNodeName")),
    }


def _event_fields(obj: dict[str, Any]) -> dict[str, str]:
    involved = obj.get("involvedObject") or {}
    fields = {f"involvedObject.{k}": _s(involved.get(k)) for k in _INVOLVED_OBJECT_KEYS}
    fields["reason"] = _s(obj.get("reason"))
    fields["reportingComponent"] = _s(obj.get("reportingComponent"))
    fields["source"] = _s(_get(obj, "source", "component"))
    fields["type"] = _s(obj.get("type"))
    return fields


_INVOLVED_OBJECT_KEYS = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")

_KIND_FIELDS: dict[str, Callable[[dict[str, Any]], dict[str, str]]] = {
    "Pod": _pod_fields,
    "Event": _event_fields,
    "Node": lambda o: {"spec.unschedulable": _bool(_get(o, "spec", "unschedulable"))},
    "Namespace": lambda o: {"status.phase": _s(_get(o, "status", "phase"))},
    "Secret": lambda o: {"type": _s(o.get("type"))},
    "Service": lambda o: {
        "spec.clusterIP": _s(_get(o, "spec", "clusterIP")),
        "spec.type": _s(_get(o, "spec", "type")),
    },
    "ReplicationController": lambda o: {"status.replicas": _int(_get(o, "status", "replicas"))},
    "ReplicaSet": lambda o: {"status.replicas": _int(_get(o, "status", "replicas"))},
    "Job": lambda o: {"status.successful": _int(_get(o, "status", "succeeded"))},
    "PodCertificateRequest": lambda o: {
        "spec.signerName": _s(_get(o, "spec", "signerName")),
        "spec.podName": _s(_get(o, "spec", "podName")),
        "spec.nodeName": _s(_get(o, "spec", "nodeName")),
    },
}


def object_fields(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    """The selectable fields of `obj` (a `kind`), as strings, like upstream ToSelectableFields."""
    meta = obj.get("metadata") or {}
    fields = {"metadata.name": _s(meta.get("name")), "metadata.namespace": _s(meta.get("namespace"))}
    extra = _KIND_FIELDS.get(kind)
    if extra is not None:
        fields.update(extra(obj))
    return fields


def selected_name(field_selector: str) -> str:
    """The name an exact `metadata.name=<name>` term of a field selector requires, else "" (as upstream's
    RequestInfoFactory takes a list/watch's name from it, when it is a valid path segment)."""
    if "metadata.name" not in field_selector:
        return ""
    if field_selector.startswith("metadata.name=") and not ("," in field_selector or "\\" in field_selector):
        name: str | None = field_selector[len("metadata.name=") :].removeprefix("=")  # the kubelet's form
    else:
        try:
            name = parse_field_selector(field_selector).value_for("metadata.name")
        except FieldSelectorError:
            return ""
    if not name or name in (".", "..") or "/" in name or "%" in name:
        return ""
    return name

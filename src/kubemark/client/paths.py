"""Build Kubernetes REST paths (from names, or from an object's apiVersion and kind) and classify them
(resource, subresource, scope) for request metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kubemark.kube import resources
from kubemark.kube.request_scope import request_scope


def _seg(value: str) -> str:
    return quote(value, safe="")


def resource_path(
    group: str,
    version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """E.g. ("", "v1", "pods", "ns", "p", "status") -> /api/v1/namespaces/ns/pods/p/status."""
    parts = ["/api", version] if not group else ["/apis", group, version]
    if namespace:
        parts += ["namespaces", _seg(namespace)]
    parts.append(plural)
    if name:
        parts.append(_seg(name))
        if subresource:
            parts.append(subresource)
    elif subresource:
        raise ValueError("a subresource needs a name")
    return "/".join(parts)


def object_path(obj: Mapping[str, Any], namespace: str, name: str | None = None) -> str:
    """The REST path of `obj`'s collection (or of the object, given `name`), from its apiVersion and kind."""
    api_version = str(obj.get("apiVersion") or "")
    kind = str(obj.get("kind") or "")
    if not api_version or not kind:
        raise ValueError("the rendered object has no apiVersion or kind")
    group, _, version = api_version.rpartition("/")
    served = resources.by_kind(group, kind)
    plural = served.plural if served is not None else kind.lower() + "s"
    namespaced = served.namespaced if served is not None else True
    return resource_path(group, version, plural, namespace if namespaced else None, name)


@dataclass(frozen=True, slots=True)
class PathInfo:
    """What a request path addresses. `scope` (resource, namespace or cluster) is a GET's of the path; a create's
    or a selector's may differ (kubemark.kube.request_scope)."""

    resource: str
    subresource: str
    namespace: str
    name: str
    scope: str


def describe_path(path: str) -> PathInfo:
    """Classify an API path; non-resource paths (/healthz, /version) give resource ''."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        rest = parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        rest = parts[3:]
    else:
        return PathInfo("", "", "", "", "cluster")
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return PathInfo("", "", namespace, "", "cluster")
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    return PathInfo(resource, subresource, namespace, name, request_scope(namespace=namespace, name=name, create=False))

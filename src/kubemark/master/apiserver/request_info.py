"""What a request is about (kube-apiserver's RequestInfo) and who makes it (UserInfo).

Parsed once per request from the URL path, method and query; authorization, metrics and the handlers all
read the same value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web

from kubemark.kube.request_scope import request_scope

# Subresources that hold a connection open or proxy; excluded from latency SLIs, like upstream.
LONG_RUNNING_SUBRESOURCES = frozenset({"proxy", "log", "exec", "attach", "portforward"})


@dataclass(frozen=True, slots=True)
class UserInfo:
    """An authenticated identity: e.g. name "system:node:n1" with groups ("system:nodes",)."""

    name: str
    groups: tuple[str, ...] = ()
    # What authentication knows beyond name and groups (user.Info's GetUID / GetExtra), e.g. a service
    # account's UID and its token's pod-name / credential-id: shown by SelfSubjectReview.
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def node_name(self) -> str | None:
        """The node this identity speaks for, when it is a node credential."""
        if "system:nodes" in self.groups and self.name.startswith("system:node:"):
            return self.name[len("system:node:") :]
        return None


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The Kubernetes meaning of an HTTP request.

    verb is one of get, list, watch, create, update, patch, delete, deletecollection for resource requests,
    or the lower-case HTTP method for non-resource requests (/healthz, /version, ...).
    """

    is_resource_request: bool
    path: str
    verb: str
    api_prefix: str = ""  # "api" or "apis"
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = field(default=())
    # The raw ?fieldSelector= of a collection request (list, watch, deletecollection); "" otherwise. Upstream
    # takes an exact metadata.name from it as the request's name for authorization (see auth.py).
    field_selector: str = ""

    @property
    def scope(self) -> str:
        """The metrics' scope label: resource (a named object or a create), namespace, or cluster."""
        selector = self.field_selector if self.verb in ("list", "watch") else ""
        return request_scope(
            namespace=self.namespace, name=self.name, create=self.verb == "create", field_selector=selector
        )

    @property
    def is_long_running(self) -> bool:
        return self.verb == "watch" or self.subresource in LONG_RUNNING_SUBRESOURCES


_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


def parse_request_info(method: str, path: str, query: Mapping[str, str] | None = None) -> RequestInfo:
    """Parse like k8s.io/apiserver's RequestInfoFactory.

    /api/v1/namespaces/{ns}/{resource}/{name}/{sub}, /apis/{group}/{version}/..., cluster-scoped forms,
    namespaces themselves (/api/v1/namespaces/{name}[/status]), and ?watch=true on lists.
    """
    query = query or {}
    segments = tuple(s for s in path.strip("/").split("/") if s)
    if not segments or segments[0] not in ("api", "apis"):
        return RequestInfo(False, path, method.lower(), parts=segments)
    prefix = segments[0]
    rest = list(segments[1:])
    if prefix == "api":
        if not rest:
            return RequestInfo(False, path, method.lower(), parts=segments)
        group, version, rest = "", rest[0], rest[1:]
    else:
        if len(rest) < 2:
            return RequestInfo(False, path, method.lower(), parts=segments)
        group, version, rest = rest[0], rest[1], rest[2:]
    if not rest:
        return RequestInfo(False, path, method.lower(), prefix, group, version, parts=segments)

    verb = _METHOD_VERBS.get(method.upper(), method.lower())
    # The legacy /watch/ path prefix is deprecated but still served upstream.
    if rest and rest[0] == "watch":
        verb, rest = "watch", rest[1:]
        if not rest:  # /api/v1/watch alone names no resource (it used to raise IndexError: a 500)
            return RequestInfo(False, path, method.lower(), prefix, group, version, parts=segments)

    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        # /namespaces/{ns}/{resource}...; but /namespaces/{name}[/status|/finalize] is the namespace object,
        # whose own namespace upstream records as its name.
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]

    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""

    if not name:
        if verb == "get":
            verb = "watch" if query.get("watch") in ("1", "true", "True") else "list"
        elif verb == "delete":
            verb = "deletecollection"
    elif verb == "get" and query.get("watch") in ("1", "true", "True") and not subresource:
        verb = "watch"
    selector = "" if name else query.get("fieldSelector", "")
    return RequestInfo(
        True, path, verb, prefix, group, version, namespace, resource, subresource, name, segments, selector
    )


# Where the filter chain leaves its findings on each aiohttp request, for every later stage to read.
REQUEST_INFO = web.RequestKey("kubemark_request_info", RequestInfo)
REQUEST_USER = web.RequestKey("kubemark_request_user", UserInfo)

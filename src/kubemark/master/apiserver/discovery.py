"""API discovery as kube-apiserver serves it: /version, /api, /apis (legacy and aggregated), health checks.

Documents are built once from the resource table and served as cached bytes. kubectl 1.30+ asks /api and
/apis for the aggregated APIGroupDiscoveryList (apidiscovery.k8s.io/v2) through the Accept header; older
clients get APIVersions / APIGroupList and then walk each group-version.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kubemark import codec
from kubemark.kube.resources import ResourceType

log = logging.getLogger(__name__)

DEFAULT_VERSION_INFO: dict[str, str] = {
    # One minor below kubectl 1.37: inside the supported +/-1 skew, so kubectl prints no warning.
    "major": "1",
    "minor": "36",
    "emulationMajor": "1",
    "emulationMinor": "36",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "35",
    "gitVersion": "v1.36.0-kubemark",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

JSON = "application/json"
_AGG_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
_AGG_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

HealthCheck = Callable[[], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class SubresourceInfo:
    """How discovery describes one subresource: the kind it takes/returns and its verbs."""

    kind: str  # "" means the parent's kind
    verbs: tuple[str, ...]
    group: str | None = None  # None means the parent's group and version
    version: str | None = None


_STATUS_VERBS = ("get", "patch", "update")
_PROXY_VERBS = ("create", "delete", "get", "patch", "update")

SUBRESOURCES: dict[str, SubresourceInfo] = {
    "status": SubresourceInfo("", _STATUS_VERBS),
    "scale": SubresourceInfo("Scale", _STATUS_VERBS, "autoscaling", "v1"),
    "binding": SubresourceInfo("Binding", ("create",)),
    "eviction": SubresourceInfo("Eviction", ("create",), "policy", "v1"),
    "log": SubresourceInfo("", ("get",)),
    "finalize": SubresourceInfo("", ("update",)),
    "token": SubresourceInfo("TokenRequest", ("create",), "authentication.k8s.io", "v1"),
    "proxy": SubresourceInfo("{kind}ProxyOptions", _PROXY_VERBS),
    "exec": SubresourceInfo("PodExecOptions", ("create", "get")),
    "attach": SubresourceInfo("PodAttachOptions", ("create", "get")),
    "portforward": SubresourceInfo("PodPortForwardOptions", ("create", "get")),
}


def storage_version_hash(rt: ResourceType) -> str:
    """Upstream's hash of group/version/kind: base64 of the first 8 bytes of its SHA-256."""
    digest = hashlib.sha256(f"{rt.group}/{rt.version}/{rt.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _subresource_kind(rt: ResourceType, info: SubresourceInfo) -> str:
    return info.kind.format(kind=rt.kind) if info.kind else rt.kind


def _sub_info(name: str) -> SubresourceInfo:
    return SUBRESOURCES.get(name, SubresourceInfo("", ("get",)))


def api_resource_list(group_version: str, resources: Sequence[ResourceType]) -> dict[str, Any]:
    """metav1.APIResourceList for one group-version, subresources included, sorted by name like upstream."""
    entries: list[dict[str, Any]] = []
    for rt in resources:
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        entry["storageVersionHash"] = storage_version_hash(rt)
        entries.append(entry)
        for sub in rt.subresources:
            info = _sub_info(sub)
            sub_entry: dict[str, Any] = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced}
            if info.group is not None:
                sub_entry["group"] = info.group
                sub_entry["version"] = info.version
            sub_entry["kind"] = _subresource_kind(rt, info)
            sub_entry["verbs"] = list(info.verbs)
            entries.append(sub_entry)
    entries.sort(key=lambda e: e["name"])
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        out["shortNames"] = list(rt.short_names)
    if rt.categories:
        out["categories"] = list(rt.categories)
    subs = []
    for sub in sorted(rt.subresources):
        info = _sub_info(sub)
        subs.append(
            {
                "subresource": sub,
                "responseKind": {
                    "group": rt.group if info.group is None else info.group,
                    "version": rt.version if info.version is None else info.version,
                    "kind": _subresource_kind(rt, info),
                },
                "verbs": list(info.verbs),
            }
        )
    if subs:
        out["subresources"] = subs
    return out


class DiscoveryDocuments:
    """All discovery documents of one resource table, serialised once."""

    def __init__(self, resources: Sequence[ResourceType], version_info: Mapping[str, str] | None = None) -> None:
        # group -> version -> resources, in table order (the first version seen is the preferred one).
        self.groups: dict[str, dict[str, list[ResourceType]]] = {}
        for rt in resources:
            self.groups.setdefault(rt.group, {}).setdefault(rt.version, []).append(rt)
        self.version = codec.dumps(dict(version_info or DEFAULT_VERSION_INFO))
        core_versions = list(self.groups.get("", {}))
        self.api_versions = codec.dumps(
            {
                "kind": "APIVersions",
                "versions": core_versions,
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
            }
        )
        named = [g for g in self.groups if g]
        self.api_group_list = codec.dumps(
            {"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._api_group(g) for g in named]}
        )
        self.api_group: dict[str, bytes] = {g: codec.dumps(self._api_group(g, with_kind=True)) for g in named}
        self.resource_lists: dict[str, bytes] = {}
        for group, versions in self.groups.items():
            for version, rts in versions.items():
                gv = f"{group}/{version}" if group else version
                self.resource_lists[gv] = codec.dumps(api_resource_list(gv, rts))
        self.aggregated: dict[tuple[bool, str], bytes] = {}
        for legacy in (True, False):
            for api_version in ("v2", "v2beta1"):
                self.aggregated[(legacy, api_version)] = codec.dumps(self._aggregated(legacy, api_version))

    def _api_group(self, group: str, *, with_kind: bool = False) -> dict[str, Any]:
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in self.groups[group]]
        doc: dict[str, Any] = {"kind": "APIGroup", "apiVersion": "v1"} if with_kind else {}
        doc.update({"name": group, "versions": versions, "preferredVersion": versions[0]})
        return doc

    def _aggregated(self, legacy: bool, api_version: str) -> dict[str, Any]:
        items = []
        for group, versions in self.groups.items():
            if (group == "") != legacy:
                continue
            items.append(
                {
                    "metadata": {"name": group, "creationTimestamp": None},
                    "versions": [
                        {
                            "version": version,
                            "resources": [_aggregated_resource(rt) for rt in sorted(rts, key=lambda r: r.plural)],
                            "freshness": "Current",
                        }
                        for version, rts in versions.items()
                    ],
                }
            )
        return {
            "kind": "APIGroupDiscoveryList",
            "apiVersion": f"apidiscovery.k8s.io/{api_version}",
            "metadata": {},
            "items": items,
        }


def aggregated_version_wanted(accept: str) -> str | None:
    """Which APIGroupDiscoveryList version the Accept header asks for first ("v2", "v2beta1"), or None.

    Clients list media types in preference order; the first one we can serve wins.
    """
    for part in accept.split(","):
        params = {}
        pieces = [p.strip() for p in part.split(";")]
        if pieces[0] not in (JSON, "*/*", "application/*"):
            continue
        for p in pieces[1:]:
            key, _, value = p.partition("=")
            params[key.strip()] = value.strip()
        if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io":
            if params.get("v") in ("v2", "v2beta1"):
                return params["v"]
            continue
        if pieces[0] in (JSON, "*/*", "application/*") and "as" not in params:
            return None  # plain JSON preferred over the aggregated form
    return None


def _json(body: bytes, content_type: str = JSON) -> web.Response:
    # Content-Type set by header so the media-type parameters (g=, v=, as=) survive verbatim.
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _run_checks(checks: Mapping[str, HealthCheck]) -> list[tuple[str, bool]]:
    results = []
    for name, check in checks.items():
        try:
            ok = await check()
        except Exception:  # a crashing check is a failing check, as upstream reports it
            log.exception("health check %s failed", name)
            ok = False
        results.append((name, ok))
    return results


def _health_handler(endpoint: str, checks: Mapping[str, HealthCheck]) -> Callable[..., Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        only = request.match_info.get("check")
        selected = dict(checks)
        if only is not None:
            if only not in selected:
                return web.Response(status=404, text="404 page not found\n")
            selected = {only: selected[only]}
        exclude = set(request.query.getall("exclude", []))
        results = [(n, ok) for n, ok in await _run_checks(selected) if n not in exclude]
        healthy = all(ok for _, ok in results)
        if "verbose" in request.query or not healthy:
            lines = [f"[+]{n} ok" if ok else f"[-]{n} failed: reason withheld" for n, ok in results]
            lines.append(f"{endpoint} check passed" if healthy else f"{endpoint} check failed")
            text = "\n".join(lines) + "\n"
        else:
            text = "ok"
        return web.Response(status=200 if healthy else 500, text=text)

    return handle


async def _always_ok() -> bool:
    return True


def discovery_routes(
    resources: Sequence[ResourceType],
    *,
    version_info: dict[str, str] | None = None,
    health_checks: Mapping[str, HealthCheck] | None = None,
) -> list[web.RouteDef]:
    """aiohttp routes for /version, /api, /api/v1, /apis, /apis/{group}[/{version}], /healthz, /livez, /readyz.

    health_checks adds named checks (e.g. {"etcd": ping}) next to the always-passing "ping".
    """
    docs = DiscoveryDocuments(resources, version_info)
    checks: dict[str, HealthCheck] = {"ping": _always_ok, "log": _always_ok}
    checks.update(health_checks or {})

    async def version(request: web.Request) -> web.Response:
        return _json(docs.version)

    async def api(request: web.Request) -> web.Response:
        wanted = aggregated_version_wanted(request.headers.get("Accept", ""))
        if wanted:
            return _json(docs.aggregated[(True, wanted)], _AGG_V2 if wanted == "v2" else _AGG_V2BETA1)
        return _json(docs.api_versions)

    async def apis(request: web.Request) -> web.Response:
        wanted = aggregated_version_wanted(request.headers.get("Accept", ""))
        if wanted:
            return _json(docs.aggregated[(False, wanted)], _AGG_V2 if wanted == "v2" else _AGG_V2BETA1)
        return _json(docs.api_group_list)

    async def core_version(request: web.Request) -> web.Response:
        body = docs.resource_lists.get(request.match_info["version"])
        if body is None:
            return _not_found(request.path)
        return _json(body)

    async def group(request: web.Request) -> web.Response:
        body = docs.api_group.get(request.match_info["group"])
        if body is None:
            return _not_found(request.path)
        return _json(body)

    async def group_version(request: web.Request) -> web.Response:
        body = docs.resource_lists.get(f"{request.match_info['group']}/{request.match_info['version']}")
        if body is None:
            return _not_found(request.path)
        return _json(body)

    routes = [
        web.get("/version", version),
        web.get("/version/", version),
        web.get("/api", api),
        web.get("/api/", api),
        web.get("/api/{version}", core_version),
        web.get("/api/{version}/", core_version),
        web.get("/apis", apis),
        web.get("/apis/", apis),
        web.get("/apis/{group}", group),
        web.get("/apis/{group}/", group),
        web.get("/apis/{group}/{version}", group_version),
        web.get("/apis/{group}/{version}/", group_version),
    ]
    for endpoint in ("healthz", "livez", "readyz"):
        handler = _health_handler(endpoint, checks)
        routes.append(web.get(f"/{endpoint}", handler))
        routes.append(web.get(f"/{endpoint}/{{check}}", handler))
    return routes


def _not_found(path: str) -> web.Response:
    # Upstream answers unknown group/versions with a 404 Status, which kubectl reads as "not served".
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server could not find the requested resource",
        "reason": "NotFound",
        "details": {},
        "code": 404,
    }
    return web.Response(status=404, body=codec.dumps(status), headers={"Content-Type": JSON})

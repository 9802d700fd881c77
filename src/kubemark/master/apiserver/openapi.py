"""OpenAPI documents of the served API: /openapi/v2 (Swagger 2.0) and /openapi/v3 (one OpenAPI 3.0 per group-version).

Schemas come from openapi_data/definitions.json (generated from the official client's models, see
tools/openapi_generate.py); paths and operations are built here from the resource table, carrying the
x-kubernetes-group-version-kind and query parameters kubectl looks for (fieldValidation, dryRun) and the
strategic-merge-patch content type kubectl apply needs. Documents are built once and served as bytes with
ETags.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources as package_files
from typing import Any

from aiohttp import web

from kubemark import codec
from kubemark.kube.resources import ResourceType

log = logging.getLogger(__name__)

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
PACKAGES = {
    "": "io.k8s.api.core.v1",
    "apps": "io.k8s.api.apps.v1",
    "batch": "io.k8s.api.batch.v1",
    "coordination.k8s.io": "io.k8s.api.coordination.v1",
    "discovery.k8s.io": "io.k8s.api.discovery.v1",
    "events.k8s.io": "io.k8s.api.events.v1",
    "autoscaling": "io.k8s.api.autoscaling.v1",
    "policy": "io.k8s.api.policy.v1",
    "storage.k8s.io": "io.k8s.api.storage.v1",
    "node.k8s.io": "io.k8s.api.node.v1",
    "certificates.k8s.io": "io.k8s.api.certificates.v1",
    "networking.k8s.io": "io.k8s.api.networking.v1",
    "scheduling.k8s.io": "io.k8s.api.scheduling.v1",
    "rbac.authorization.k8s.io": "io.k8s.api.rbac.v1",
}
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
PROTOBUF_V2 = "application/com.github.proto-openapi.spec.v2"
_EXTRA_DEFINITIONS: dict[str, dict[str, Any]] = {
    f"{META}.Patch": {
        "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
        "type": "object",
    },
    f"{META}.WatchEvent": {
        "description": "Event represents a single event to a watched resource.",
        "type": "object",
        "required": ["type", "object"],
        "properties": {
            "object": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.runtime.RawExtension"},
            "type": {"type": "string"},
        },
    },
}


def load_definitions() -> dict[str, dict[str, Any]]:
    """The shipped Swagger definitions plus the few meta types operations refer to."""
    data = package_files.files("kubemark.master.apiserver.openapi_data").joinpath("definitions.json").read_bytes()
    definitions: dict[str, dict[str, Any]] = codec.loads(data)
    definitions.update(copy.deepcopy(_EXTRA_DEFINITIONS))
    return definitions


# --- operations -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Operation:
    """One HTTP operation of one path, in a form both Swagger 2.0 and OpenAPI 3.0 can be rendered from."""

    method: str  # get, post, put, patch, delete
    operation_id: str
    action: str  # x-kubernetes-action
    gvk: dict[str, str]
    body: str | None  # definition name of the request body, "Patch" bodies included
    response: str  # definition name of the 200 response
    query: tuple[str, ...]
    group_version: str


def _q(name: str, description: str, type_: str = "string", unique: bool = True) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "description": description, "type": type_}
    if unique:
        param["uniqueItems"] = True
    return param


QUERY_PARAMETERS: dict[str, dict[str, Any]] = {
    p["name"]: p
    for p in (
        _q("pretty", "If 'true', then the output is pretty printed."),
        _q("dryRun", "When present, indicates that modifications should not be persisted. Valid value: All"),
        _q("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
        _q(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or "
            "duplicate fields. Valid values are: Ignore, Warn, Strict.",
        ),
        _q("force", 'Force is going to "force" Apply requests.', "boolean"),
        _q("allowWatchBookmarks", 'allowWatchBookmarks requests watch events with type "BOOKMARK".', "boolean"),
        _q("continue", "The continue option should be set when retrieving more results from the server."),
        _q("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
        _q("labelSelector", "A selector to restrict the list of returned objects by their labels."),
        _q("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
        _q(
            "resourceVersion",
            "resourceVersion sets a constraint on what resource versions a request may be served from.",
        ),
        _q("resourceVersionMatch", "resourceVersionMatch determines how resourceVersion is applied to list calls."),
        _q("sendInitialEvents", "`sendInitialEvents=true` may be set together with `watch=true`.", "boolean"),
        _q("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
        _q("watch", "Watch for changes to the described resources and return them as a stream.", "boolean"),
        _q("gracePeriodSeconds", "The duration in seconds before the object should be deleted.", "integer"),
        _q("propagationPolicy", "Whether and how garbage collection will be performed."),
        _q("orphanDependents", "Deprecated: please use the PropagationPolicy.", "boolean"),
        _q("ignoreStoreReadErrorWithClusterBreakingPotential", "Delete even if the object is corrupt.", "boolean"),
    )
}
_LIST_Q = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)
_WRITE_Q = ("dryRun", "fieldManager", "fieldValidation")
_DELETE_Q = (
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
)


def _camel_group_version(rt: ResourceType) -> str:
    group = rt.group.split(".")[0] if rt.group else "core"
    return group[:1].upper() + group[1:] + rt.version[:1].upper() + rt.version[1:]


def _definition(group: str, kind: str) -> str:
    if kind in ("Status", "DeleteOptions", "Patch", "WatchEvent"):
        return f"{META}.{kind}"
    return f"{PACKAGES[group]}.{kind}"


# Subresource -> (group, version, kind) of its body/response, None meaning the parent's kind; and its methods.
_SUBRESOURCE_OPS: dict[str, tuple[tuple[str, str, str] | None, tuple[str, ...]]] = {
    "status": (None, ("get", "put", "patch")),
    "scale": (("autoscaling", "v1", "Scale"), ("get", "put", "patch")),
    "binding": (("", "v1", "Binding"), ("post",)),
    "eviction": (("policy", "v1", "Eviction"), ("post",)),
}
_VERB_PREFIX = {"get": "read", "put": "replace", "patch": "patch", "post": "create", "delete": "delete"}


def _operations(rt: ResourceType) -> Iterator[tuple[str, list[Operation]]]:
    """(path, operations) of one resource, named the way upstream's operation ids are."""
    gv = _camel_group_version(rt)
    prefix = f"/api/{rt.version}" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    ns = "Namespaced" if rt.namespaced else ""
    collection = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
    gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    obj, lst = _definition(rt.group, rt.kind), _definition(rt.group, rt.list_kind_name)
    status, patch = f"{META}.Status", f"{META}.Patch"
    verbs = set(rt.verbs)

    def op(
        method: str,
        oid: str,
        action: str,
        body: str | None,
        resp: str,
        query: Iterable[str],
        kind: dict[str, str] = gvk,
    ) -> Operation:
        return Operation(method, oid, action, kind, body, resp, ("pretty", *query), rt.group_version)

    ops = []
    if "list" in verbs:
        ops.append(op("get", f"list{gv}{ns}{rt.kind}", "list", None, lst, _LIST_Q))
    if "create" in verbs:
        ops.append(op("post", f"create{gv}{ns}{rt.kind}", "post", obj, obj, _WRITE_Q))
    if "deletecollection" in verbs:
        ops.append(
            op(
                "delete",
                f"deletecollection{gv}{ns}{rt.kind}",
                "deletecollection",
                f"{META}.DeleteOptions",
                status,
                (*_LIST_Q, *_DELETE_Q),
            )
        )
    yield collection, ops

    ops = []
    if "get" in verbs:
        ops.append(op("get", f"read{gv}{ns}{rt.kind}", "get", None, obj, ()))
    if "update" in verbs:
        ops.append(op("put", f"replace{gv}{ns}{rt.kind}", "put", obj, obj, _WRITE_Q))
    if "patch" in verbs:
        ops.append(op("patch", f"patch{gv}{ns}{rt.kind}", "patch", patch, obj, (*_WRITE_Q, "force")))
    if "delete" in verbs:
        ops.append(op("delete", f"delete{gv}{ns}{rt.kind}", "delete", f"{META}.DeleteOptions", obj, _DELETE_Q))
    yield f"{collection}/{{name}}", ops

    if rt.namespaced and "list" in verbs:
        yield f"{prefix}/{rt.plural}", [op("get", f"list{gv}{rt.kind}ForAllNamespaces", "list", None, lst, _LIST_Q)]

    for sub in rt.subresources:
        spec = _SUBRESOURCE_OPS.get(sub)
        if spec is None:
            continue  # connect-style subresources (log, proxy, exec) carry no schema kubectl reads
        target, methods = spec
        sub_gvk = gvk if target is None else {"group": target[0], "version": target[1], "kind": target[2]}
        sub_def = obj if target is None else _definition(target[0], target[2])
        suffix = sub[:1].upper() + sub[1:]
        ops = []
        for method in methods:
            oid = f"{_VERB_PREFIX[method]}{gv}{ns}{rt.kind}{suffix}"
            body = None if method == "get" else (patch if method == "patch" else sub_def)
            query: tuple[str, ...] = () if method == "get" else (*_WRITE_Q, *(("force",) if method == "patch" else ()))
            action = {"get": "get", "put": "put", "patch": "patch", "post": "post"}[method]
            ops.append(op(method, oid, action, body, sub_def, query, sub_gvk))
        yield f"{collection}/{{name}}/{sub}", ops


def _path_params(path: str) -> list[dict[str, Any]]:
    params = []
    if "{name}" in path:
        params.append(
            {
                "name": "name",
                "in": "path",
                "description": "name of the object",
                "required": True,
                "type": "string",
                "uniqueItems": True,
            }
        )
    if "{namespace}" in path:
        params.append(
            {
                "name": "namespace",
                "in": "path",
                "description": "object name and auth scope, such as for teams and projects",
                "required": True,
                "type": "string",
                "uniqueItems": True,
            }
        )
    return params


def _tag(group_version: str) -> str:
    group, _, version = group_version.rpartition("/")
    name = group.split(".")[0] if group else "core"
    return f"{name}_{version}"


# --- Swagger 2.0 ----------------------------------------------------------------------------------


def _v2_operation(op: Operation) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    if op.body is not None:
        params.append(
            {
                "name": "body",
                "in": "body",
                "required": op.method != "delete",
                "schema": {"$ref": f"#/definitions/{op.body}"},
            }
        )
    params.extend(QUERY_PARAMETERS[q] for q in op.query)
    out: dict[str, Any] = {
        "description": f"{op.action} {op.gvk['kind']}",
        "consumes": list(PATCH_TYPES) if op.method == "patch" else ["*/*"],
        "produces": ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"],
        "schemes": ["https"],
        "tags": [_tag(op.group_version)],
        "operationId": op.operation_id,
        "parameters": params,
        "responses": {
            "200": {"description": "OK", "schema": {"$ref": f"#/definitions/{op.response}"}},
            "401": {"description": "Unauthorized"},
        },
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": op.gvk,
    }
    if op.method in ("post", "put"):
        out["responses"]["201"] = {"description": "Created", "schema": {"$ref": f"#/definitions/{op.response}"}}
    return out


def swagger_v2(resources: Sequence[ResourceType], definitions: dict[str, Any], version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for rt in resources:
        for path, ops in _operations(rt):
            if not ops:
                continue
            item: dict[str, Any] = {op.method: _v2_operation(op) for op in ops}
            params = _path_params(path)
            if params:
                item["parameters"] = params
            paths[path] = item
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": version},
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "type": "apiKey",
                "name": "authorization",
                "in": "header",
            }
        },
        "security": [{"BearerToken": []}],
    }


# --- OpenAPI 3.0 ----------------------------------------------------------------------------------


def _v3_schema(schema: Any) -> Any:
    """Swagger 2.0 schema -> OpenAPI 3.0: component refs, and a described $ref wrapped in allOf as upstream does."""
    if isinstance(schema, list):
        return [_v3_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _v3_schema(v) for k, v in schema.items() if k != "$ref"}
    ref = schema.get("$ref")
    if ref is None:
        return out
    ref = ref.replace("#/definitions/", "#/components/schemas/")
    if not out:
        return {"$ref": ref}
    out["allOf"] = [{"$ref": ref}]
    return out


def _refs(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            yield ref.rsplit("/", 1)[-1]
        for v in schema.values():
            yield from _refs(v)
    elif isinstance(schema, list):
        for v in schema:
            yield from _refs(v)


def _closure(definitions: dict[str, Any], roots: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    todo = [r for r in roots if r in definitions]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(r for r in _refs(definitions[name]) if r in definitions and r not in seen)
    return sorted(seen)


def _v3_param(param: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in param.items() if k not in ("type", "uniqueItems")}
    out["schema"] = (
        {"type": param["type"], "uniqueItems": True} if param.get("uniqueItems") else {"type": param["type"]}
    )
    return out


def _v3_operation(op: Operation) -> dict[str, Any]:
    response_ref = {"$ref": f"#/components/schemas/{op.response}"}
    media = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
    out: dict[str, Any] = {
        "tags": [_tag(op.group_version)],
        "description": f"{op.action} {op.gvk['kind']}",
        "operationId": op.operation_id,
        "parameters": [_v3_param(QUERY_PARAMETERS[q]) for q in op.query],
        "responses": {
            "200": {"description": "OK", "content": {m: {"schema": response_ref} for m in media}},
            "401": {"description": "Unauthorized"},
        },
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": op.gvk,
    }
    if op.body is not None:
        body_ref = {"$ref": f"#/components/schemas/{op.body}"}
        types = PATCH_TYPES if op.method == "patch" else ("*/*",)
        out["requestBody"] = {"content": {t: {"schema": body_ref} for t in types}, "required": op.method != "delete"}
    if op.method in ("post", "put"):
        out["responses"]["201"] = {"description": "Created", "content": {m: {"schema": response_ref} for m in media}}
    return out


def openapi_v3(
    group_version: str, resources: Sequence[ResourceType], definitions: dict[str, Any], version: str
) -> dict[str, Any]:
    """The OpenAPI 3.0 document of one group-version: its paths and the schemas they reach."""
    paths: dict[str, Any] = {}
    roots: set[str] = set()
    for rt in resources:
        for path, ops in _operations(rt):
            if not ops:
                continue
            item: dict[str, Any] = {op.method: _v3_operation(op) for op in ops}
            params = _path_params(path)
            if params:
                item["parameters"] = [_v3_param(p) for p in params]
            paths[path] = item
            for op in ops:
                roots.add(op.response)
                if op.body:
                    roots.add(op.body)
    roots.add(f"{META}.WatchEvent")
    schemas = {name: _v3_schema(definitions[name]) for name in _closure(definitions, roots)}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer Token authentication",
                    "name": "authorization",
                    "in": "header",
                }
            },
        },
        "security": [{"BearerToken": []}],
    }


# --- serving --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Document:
    """A serialised document and its hash (also the ETag)."""

    body: bytes
    hash: str

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Document:
        body = codec.dumps(doc)
        return cls(body, hashlib.sha512(body).hexdigest().upper())


class OpenAPIDocuments:
    """Every OpenAPI document of one resource table, built once."""

    def __init__(self, resources: Sequence[ResourceType], version: str = "v1.36.0-kubemark") -> None:
        definitions = load_definitions()
        self.v2 = Document.of(swagger_v2(resources, definitions, version))
        by_gv: dict[str, list[ResourceType]] = {}
        for rt in resources:
            by_gv.setdefault(rt.group_version, []).append(rt)
        self.v3: dict[str, Document] = {}
        for gv, rts in by_gv.items():
            key = f"api/{gv}" if "/" not in gv else f"apis/{gv}"
            self.v3[key] = Document.of(openapi_v3(gv, rts, definitions, version))
        self.v3_index = codec.dumps(
            {
                "paths": {
                    key: {"serverRelativeURL": f"/openapi/{'v3'}/{key}?hash={doc.hash}"} for key, doc in self.v3.items()
                }
            }
        )


def _accepts(accept: str, media_type: str) -> bool:
    for part in accept.split(","):
        mt = part.split(";")[0].strip()
        if mt in (media_type, "*/*", "application/*"):
            return True
    return False


def _serve(request: web.Request, doc: Document, *, immutable: bool = False) -> web.Response:
    etag = f'"{doc.hash}"'
    headers = {"Content-Type": "application/json", "ETag": etag, "Vary": "Accept"}
    if immutable:
        headers["Cache-Control"] = "public, immutable"
    else:
        headers["Cache-Control"] = "no-cache, private"
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
    return web.Response(body=doc.body, headers=headers)


def openapi_routes(resources: Sequence[ResourceType], *, version: str = "v1.36.0-kubemark") -> list[web.RouteDef]:
    """aiohttp routes for /openapi/v2, /openapi/v3 and /openapi/v3/{api|apis/group}/{version}."""
    docs = OpenAPIDocuments(resources, version)

    async def v2(request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")
        # We only have JSON; a client asking for protobuf alone gets 406, as kube-apiserver would for an
        # unsupported type, and client-go then falls back to the next endpoint or to JSON.
        if accept and not _accepts(accept, "application/json"):
            return web.Response(status=406, text="406: Not Acceptable\n")
        return _serve(request, docs.v2)

    async def v3_index(request: web.Request) -> web.Response:
        return web.Response(
            body=docs.v3_index, headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
        )

    async def v3_doc(request: web.Request) -> web.Response:
        key = request.match_info["path"].strip("/")
        doc = docs.v3.get(key)
        if doc is None:
            return web.Response(status=404, text="404 page not found\n")
        wanted = request.query.get("hash")
        if wanted is not None and wanted != doc.hash:
            # Upstream redirects a stale hash to the current one so caches refetch.
            raise web.HTTPMovedPermanently(f"/openapi/v3/{key}?hash={doc.hash}")
        return _serve(request, doc, immutable=wanted is not None)

    return [
        web.get("/openapi/v2", v2),
        web.get("/openapi/v3", v3_index),
        web.get("/openapi/v3/", v3_index),
        web.get("/openapi/v3/{path:.+}", v3_doc),
    ]

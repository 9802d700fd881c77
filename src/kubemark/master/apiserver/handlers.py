"""HTTP handlers of every resource verb: URL + method -> ResourceStore call -> JSON (or Table) response.

One catch-all handler serves /api/v1/... and /apis/{group}/{version}/... using the RequestInfo parsed by the
filter chain; it checks scope and verbs, negotiates content types (JSON, YAML bodies, the patch types,
Table output for kubectl), limits bodies to 3 MiB, and answers errors as metav1.Status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from kubemark import codec
from kubemark.master.apiserver import errors
from kubemark.master.apiserver.errors import Cause, StatusError
from kubemark.master.apiserver.object_store import ResourceStore
from kubemark.master.apiserver.options import parse_delete_options, parse_dry_run, parse_list_options
from kubemark.master.apiserver.protobuf import PROTOBUF_CONTENT_TYPE, ProtobufDecodeError, decode_protobuf_body
from kubemark.master.apiserver.request_info import REQUEST_INFO, REQUEST_USER, RequestInfo, UserInfo, parse_request_info
from kubemark.master.apiserver.strategy import Obj, SubresourceRequest
from kubemark.master.apiserver.validation import MAX_OBJECT_DEPTH, meta_type_error, shape_error
from kubemark.master.apiserver.watch import WatchStreams, encode_event, serve_watch

log = logging.getLogger(__name__)

MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024
JSON = "application/json"
PATCH_TYPES = frozenset(
    {
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    }
)
_BODY_TYPES = frozenset({JSON, "application/yaml", "text/yaml", "application/x-yaml", PROTOBUF_CONTENT_TYPE, ""})
DEFAULT_USER = UserInfo("system:admin", ("system:masters", "system:authenticated"))
ObjectAuthorizer = Callable[[UserInfo, RequestInfo, Obj | None], str | None]
# RBAC's escalation check of a role or binding write (Authorizer.authorize_rbac_write): None or the 403 reason.
RBACWriteAuthorizer = Callable[[UserInfo, RequestInfo, Obj], str | None]
RBAC_GROUP = "rbac.authorization.k8s.io"
_METHOD_VERB = {"POST": "create", "PUT": "update", "PATCH": "patch", "GET": "get", "HEAD": "get"}


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=codec.dumps(obj), status=status, content_type=JSON)


def status_response(err: StatusError) -> web.Response:
    return web.Response(
        body=codec.dumps(err.to_status()), status=err.code, content_type=JSON, headers=err.headers or None
    )


def path_not_found() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource", {})


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """What the client asked for in Accept: plain JSON, a Table, or PartialObjectMetadata."""

    as_kind: str = ""  # "", "Table" or "PartialObjectMetadata"
    include_object: str = "Metadata"


_PLAIN = OutputFormat()


def negotiate_output(accept: str, query: Mapping[str, str]) -> OutputFormat:
    """Pick the first acceptable alternative of the Accept header (kubectl sends several, comma-separated)."""
    if not accept:
        return _PLAIN
    for alternative in accept.split(","):
        parts = [p.strip() for p in alternative.split(";")]
        media = parts[0].lower()
        params = {}
        for p in parts[1:]:
            if "=" in p:
                k, v = p.split("=", 1)
                params[k.strip()] = v.strip()
        if media not in (JSON, "*/*", "application/*", ""):
            continue
        as_kind = params.get("as", "")
        if not as_kind:
            return _PLAIN
        if params.get("g") != "meta.k8s.io" or params.get("v") not in ("v1", "v1beta1"):
            continue
        if as_kind in ("Table", "PartialObjectMetadata", "PartialObjectMetadataList"):
            include = query.get("includeObject", "Metadata") or "Metadata"
            if include not in ("None", "Metadata", "Object"):
                raise errors.bad_request(f'includeObject: Unsupported value: "{include}"')
            return OutputFormat("Table" if as_kind == "Table" else "PartialObjectMetadata", include)
    raise StatusError(
        406,
        "NotAcceptable",
        f"only the following media types are accepted: application/json, application/yaml (got {accept!r})",
    )


def _check_depth(data: bytes, obj: Any) -> None:
    """400 for a JSON body nested deeper than MAX_OBJECT_DEPTH (walked only when it has that many brackets)."""
    if data.count(b"{") + data.count(b"[") > MAX_OBJECT_DEPTH:
        problem = shape_error(obj)
        if problem:
            raise errors.bad_request(f"the object provided is unrecognized: {problem}")


def _decode_yaml(data: bytes) -> Any:
    """A YAML body as the JSON value it stands for; 400 for what JSON cannot carry or expands without bound.

    Upstream converts YAML to JSON first (sigs.k8s.io/yaml), limiting alias expansion (CVE-2019-11253): so here,
    aliases may not expand a document to more values than it has bytes (plus some slack), YAML-only values (sets,
    binary, integers past 64 bits) are refused, dates become strings and non-string keys are stringified.
    """
    if not data.strip():
        return None
    try:
        obj = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error converting YAML to JSON: malformed YAML: {exc}") from None
    except (TypeError, ValueError, RecursionError) as exc:  # e.g. an unhashable (list) key
        raise errors.bad_request(f"error converting YAML to JSON: {exc}") from None
    problem = shape_error(obj, max_values=len(data) + 10_000)
    if problem:
        raise errors.bad_request(f"error converting YAML to JSON: {problem}")
    try:
        return codec.loads(codec.dumps(obj))
    except TypeError as exc:
        raise errors.bad_request(f"error converting YAML to JSON: {exc}") from None


def _partial(obj: Obj) -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


class ResourceHandlers:
    """The catch-all resource endpoint of the app."""

    def __init__(
        self,
        stores: Iterable[ResourceStore],
        streams: WatchStreams,
        object_authorizer: ObjectAuthorizer | None = None,
        rbac_write_authorizer: RBACWriteAuthorizer | None = None,
    ) -> None:
        # Node writes need a second, object-level check (NodeRestriction): which node a pod is bound to, which
        # Node or Lease a create names. The request line alone cannot tell.
        self.object_authorizer = object_authorizer
        # Role and binding writes need RBAC's escalation check on the object as it would be stored.
        self.rbac_write_authorizer = rbac_write_authorizer
        self.stores: dict[tuple[str, str, str], ResourceStore] = {}
        self.by_group_resource: dict[tuple[str, str], ResourceStore] = {}
        for store in stores:
            rt = store.rt
            self.stores[(rt.group, rt.version, rt.plural)] = store
            self.by_group_resource[(rt.group, rt.plural)] = store
        self.streams = streams

    def store_for(self, group: str, plural: str) -> ResourceStore:
        store = self.by_group_resource.get((group, plural))
        if store is None:
            raise path_not_found()
        return store

    # --- entry point ---------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except StatusError as err:
            response = status_response(err)
        except web.HTTPRequestEntityTooLarge:
            response = status_response(errors.too_large(MAX_REQUEST_BODY_BYTES))
        if response.status == 413:
            response.force_close()  # do not keep a connection whose request body was left unread
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        info: RequestInfo | None = request.get(REQUEST_INFO)
        if info is None:
            info = parse_request_info(request.method, request.path, request.query)  # type: ignore[arg-type]
        if not info.is_resource_request:
            raise path_not_found()
        store = self.stores.get((info.group, info.version, info.resource))
        if store is None:
            raise path_not_found()
        rt = store.rt
        namespace, name = info.namespace, info.name
        if not rt.namespaced:
            if namespace and rt.plural != "namespaces":
                raise path_not_found()
            namespace = ""
        elif name and not namespace:
            raise path_not_found()
        user: UserInfo = request.get(REQUEST_USER) or DEFAULT_USER
        method = request.method
        if info.verb == "watch" and method not in ("GET", "HEAD"):
            # /api/v1/watch/... with POST/PUT/DELETE: authorization was asked about "watch", so acting on the
            # method would let a watcher write (upstream serves that prefix for GET only).
            raise errors.method_not_allowed()
        if self.object_authorizer is not None and user.node_name is not None and name and method not in ("GET", "HEAD"):
            # Pods' nodeName never changes once set, so the watch cache's copy is good enough to decide on.
            cached = store.cache.get(store.key(namespace, name)) if store.cache is not None else None
            self._authorize_object(user, info, cached.obj if cached is not None else None)
        if info.subresource:
            return await self._subresource(request, info, store, namespace, name, user)
        query = request.query
        if not name:
            if method in ("GET", "HEAD"):
                return await self._list_or_watch(request, store, namespace, info.verb == "watch")
            if method == "POST":
                if rt.namespaced and not namespace:
                    raise errors.method_not_allowed()
                return await self._create(request, store, namespace, user)
            if method == "DELETE":
                if "deletecollection" not in rt.verbs or (rt.namespaced and not namespace):
                    raise errors.method_not_allowed()
                body = await self._read_optional_json(request)
                delete_opts = parse_delete_options(query, body)
                list_opts = parse_list_options(query)
                result = await store.delete_collection(namespace, list_opts, delete_opts)
                return json_response(result)
            raise errors.method_not_allowed()
        if method in ("GET", "HEAD"):
            if info.verb == "watch":
                return await self._list_or_watch(request, store, namespace, True, name)
            output = negotiate_output(request.headers.get("Accept", ""), query)
            obj = await store.get(namespace, name, query.get("resourceVersion", ""))
            return json_response(self._render_one(store, obj, output))
        if method == "PUT":
            return await self._update(request, store, namespace, name, user, status_only=False)
        if method == "PATCH":
            return await self._patch(request, store, namespace, name, user, status_only=False)
        if method == "DELETE":
            return await self._delete(request, store, namespace, name)
        raise errors.method_not_allowed()

    # --- body decoding -------------------------------------------------------------------------------------

    async def _read(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_REQUEST_BODY_BYTES:
            raise errors.too_large(MAX_REQUEST_BODY_BYTES)
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise errors.too_large(MAX_REQUEST_BODY_BYTES) from None

    def _content_type(self, request: web.Request) -> str:
        if "Content-Type" not in request.headers:
            return ""
        return request.content_type.lower()

    def _decode(self, data: bytes, content_type: str, kind: str) -> Any:
        if content_type == PROTOBUF_CONTENT_TYPE:
            # kubectl's typed clients (create <kind>, drain's Eviction) send protobuf and never fall back to JSON.
            try:
                return decode_protobuf_body(data)
            except ProtobufDecodeError as exc:
                if "no protobuf schema" in str(exc):
                    raise errors.unsupported_media_type(content_type) from None
                raise errors.bad_request(
                    f"the object provided is unrecognized (must be of type {kind}): {exc}"
                ) from None
        if content_type in ("application/yaml", "text/yaml", "application/x-yaml", "application/apply-patch+yaml"):
            return _decode_yaml(data)
        try:
            obj = codec.loads(data)
        except codec.JSONDecodeError as exc:
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; "
                f"json parse error: malformed JSON: {exc}"
            ) from None
        _check_depth(data, obj)
        return obj

    async def _read_object(self, request: web.Request, store: ResourceStore, check_kind: bool = True) -> Obj:
        content_type = self._content_type(request)
        if content_type not in _BODY_TYPES:
            raise errors.unsupported_media_type(content_type)
        data = await self._read(request)
        if not data.strip():
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {store.rt.kind}): Object 'Kind' is missing in ''"
            )
        obj = self._decode(data, content_type, store.rt.kind)
        if not isinstance(obj, dict):
            raise errors.bad_request(
                f"json: cannot unmarshal {type(obj).__name__.replace('list', 'array')} into Go value of type "
                f"v1.{store.rt.kind}"
            )
        problem = meta_type_error(obj)
        if problem:
            rt = store.rt
            raise errors.bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {problem}')
        if check_kind:
            self._check_kind(obj, store)
        md = obj.get("metadata")
        if md is None:
            obj["metadata"] = {}
        elif not isinstance(md, dict):
            raise errors.bad_request(
                "json: cannot unmarshal into Go struct field "
                f"{store.rt.kind}.metadata of type v1.ObjectMeta (malformed metadata)"
            )
        return obj

    @staticmethod
    def _check_kind(obj: Obj, store: ResourceStore) -> None:
        rt = store.rt
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version and api_version != rt.group_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.group_version})"
            )
        if kind and kind != rt.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")

    async def _read_optional_json(self, request: web.Request) -> Obj | None:
        if not request.body_exists:
            return None
        data = await self._read(request)
        if not data.strip():
            return None
        body = self._decode(data, self._content_type(request), "DeleteOptions")
        if body is not None and not isinstance(body, dict):
            raise errors.bad_request("json: cannot unmarshal array into Go value of type v1.DeleteOptions")
        return body

    # --- verbs ---------------------------------------------------------------------------------------------

    def _render_one(self, store: ResourceStore, obj: Obj, output: OutputFormat) -> Obj:
        if output.as_kind == "Table":
            from kubemark.master.apiserver.tables import to_table

            rv = (obj.get("metadata") or {}).get("resourceVersion", "")
            return to_table(store.rt, [obj], {"resourceVersion": rv}, output.include_object)
        if output.as_kind == "PartialObjectMetadata":
            return _partial(obj)
        return obj

    async def _list_or_watch(
        self, request: web.Request, store: ResourceStore, namespace: str, is_watch: bool, name: str = ""
    ) -> web.StreamResponse:
        if "watch" not in store.rt.verbs and is_watch:
            raise errors.method_not_allowed()
        opts = parse_list_options(request.query, is_watch=is_watch)
        output = negotiate_output(request.headers.get("Accept", ""), request.query)
        if opts.watch:
            return await serve_watch(
                request, store, opts, namespace, name, self.streams, self._event_encoder(store, output)
            )
        page = await store.list(namespace, opts)
        list_obj = store.list_object(page)
        if output.as_kind == "Table":
            from kubemark.master.apiserver.tables import to_table

            return json_response(to_table(store.rt, page.items, list_obj["metadata"], output.include_object))
        if output.as_kind == "PartialObjectMetadata":
            list_obj = {
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": list_obj["metadata"],
                "items": [_partial(o) for o in page.items],
            }
        return json_response(list_obj)

    def _event_encoder(self, store: ResourceStore, output: OutputFormat) -> Callable[[str, Any], bytes]:
        if output.as_kind == "":
            return encode_event
        if output.as_kind == "PartialObjectMetadata":
            return lambda event_type, obj: encode_event(event_type, _partial(obj))
        from kubemark.master.apiserver.tables import to_table

        first = [True]

        def encode(event_type: str, obj: Any) -> bytes:
            rv = (obj.get("metadata") or {}).get("resourceVersion", "")
            table = to_table(store.rt, [obj], {"resourceVersion": rv}, output.include_object, with_headers=first[0])
            first[0] = False
            return encode_event(event_type, table)

        return encode

    def _authorize_object(self, user: UserInfo, info: RequestInfo, obj: Obj | None) -> None:
        assert self.object_authorizer is not None
        reason = self.object_authorizer(user, info, obj)
        if reason:
            # Worded as kube-apiserver's NodeRestriction admission: the object named, not the user and verb.
            name = info.name or str(((obj or {}).get("metadata") or {}).get("name") or "")
            raise errors.admission_forbidden(info.group, info.resource, name, reason)

    async def _create(self, request: web.Request, store: ResourceStore, namespace: str, user: UserInfo) -> web.Response:
        dry_run = parse_dry_run(request.query)
        obj = await self._read_object(request, store)
        if self.object_authorizer is not None and user.node_name is not None:
            info: RequestInfo = request.get(REQUEST_INFO) or parse_request_info(
                request.method, request.path, request.query
            )
            self._authorize_object(user, info, obj)
        if self.rbac_write_authorizer is not None and store.rt.group == RBAC_GROUP and isinstance(obj, dict):
            self._authorize_rbac_write(request, user, obj)
        created = await store.create(obj, user, namespace=namespace, dry_run=dry_run)
        return json_response(created, 201)

    def _authorize_rbac_write(self, request: web.Request, user: UserInfo, obj: Obj) -> None:
        assert self.rbac_write_authorizer is not None
        info: RequestInfo = request.get(REQUEST_INFO) or parse_request_info(request.method, request.path, request.query)
        name = info.name or str((obj.get("metadata") or {}).get("name") or "")
        try:
            reason = self.rbac_write_authorizer(user, info, obj)
        except KeyError as missing:  # the binding's role does not exist (GetRoleReferenceRules: NotFound)
            ref = obj.get("roleRef") or {}
            raise errors.not_found(RBAC_GROUP, str(missing.args[0]), str(ref.get("name") or "")) from None
        if reason:
            raise errors.admission_forbidden(info.group, info.resource, name, reason)

    async def _update(
        self,
        request: web.Request,
        store: ResourceStore,
        namespace: str,
        name: str,
        user: UserInfo,
        *,
        status_only: bool,
    ) -> web.Response:
        dry_run = parse_dry_run(request.query)
        obj = await self._read_object(request, store)
        if self.rbac_write_authorizer is not None and store.rt.group == RBAC_GROUP and isinstance(obj, dict):
            self._authorize_rbac_write(request, user, obj)
        updated, created = await store.update(namespace, name, obj, user, status_only=status_only, dry_run=dry_run)
        return json_response(updated, 201 if created else 200)

    async def _patch(
        self,
        request: web.Request,
        store: ResourceStore,
        namespace: str,
        name: str,
        user: UserInfo,
        *,
        status_only: bool,
    ) -> web.Response:
        content_type = self._content_type(request)
        if content_type not in PATCH_TYPES:
            raise errors.unsupported_media_type(content_type)
        dry_run = parse_dry_run(request.query)
        if content_type == "application/apply-patch+yaml" and not request.query.get("fieldManager"):
            raise errors.invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                [Cause("fieldManager", "Required value: is required for apply patch", "FieldValueRequired")],
            )
        data = await self._read(request)
        if not data.strip():
            raise errors.bad_request("the body of the request was empty")
        if content_type == "application/apply-patch+yaml":
            patch = self._decode(data, content_type, store.rt.kind)
            if isinstance(patch, dict):
                self._check_kind(patch, store)
        else:
            try:
                patch = codec.loads(data)
            except codec.JSONDecodeError as exc:
                raise errors.bad_request(f"error decoding patch: malformed JSON: {exc}") from None
            _check_depth(data, patch)
        if self.rbac_write_authorizer is not None and store.rt.group == RBAC_GROUP:
            # The escalation check needs the patched object: compute it without writing, check, then write.
            would_be, _ = await store.patch(
                namespace, name, content_type, patch, user, status_only=status_only, dry_run=True
            )
            self._authorize_rbac_write(request, user, would_be)
        obj, created = await store.patch(
            namespace, name, content_type, patch, user, status_only=status_only, dry_run=dry_run
        )
        return json_response(obj, 201 if created else 200)

    async def _delete(self, request: web.Request, store: ResourceStore, namespace: str, name: str) -> web.Response:
        body = await self._read_optional_json(request)
        opts = parse_delete_options(request.query, body)
        result = await store.delete_object(namespace, name, opts)
        code = 202 if not result.deleted and opts.orphan_dependents is False else 200
        return json_response(store.delete_response(result), code)

    # --- subresources --------------------------------------------------------------------------------------

    async def _subresource(
        self,
        request: web.Request,
        info: RequestInfo,
        store: ResourceStore,
        namespace: str,
        name: str,
        user: UserInfo,
    ) -> web.StreamResponse:
        sub = info.subresource
        rt = store.rt
        if sub not in rt.subresources or not name:
            raise path_not_found()
        method = request.method
        handler = store.strategy.subresources.get(sub)
        if handler is not None:
            return await self._custom_subresource(request, store, namespace, name, user, handler)
        if sub != "status":
            raise path_not_found()
        if method in ("GET", "HEAD"):
            output = negotiate_output(request.headers.get("Accept", ""), request.query)
            obj = await store.get(namespace, name, request.query.get("resourceVersion", ""))
            return json_response(self._render_one(store, obj, output))
        if method == "PUT":
            return await self._update(request, store, namespace, name, user, status_only=True)
        if method == "PATCH":
            return await self._patch(request, store, namespace, name, user, status_only=True)
        raise errors.method_not_allowed()

    async def _custom_subresource(
        self,
        request: web.Request,
        store: ResourceStore,
        namespace: str,
        name: str,
        user: UserInfo,
        handler: Any,
    ) -> web.Response:
        method = request.method
        verb = _METHOD_VERB.get(method)
        if verb is None:
            raise errors.method_not_allowed()
        content_type = self._content_type(request)
        raw = b""
        body: Obj | None = None
        if method in ("POST", "PUT", "PATCH"):
            if method == "PATCH":
                if content_type not in PATCH_TYPES:
                    raise errors.unsupported_media_type(content_type)
            elif content_type not in _BODY_TYPES:
                raise errors.unsupported_media_type(content_type)
            raw = await self._read(request)
            if raw.strip():
                decoded = self._decode(raw, content_type or JSON, store.rt.kind)
                if method != "PATCH" and not isinstance(decoded, dict):
                    raise errors.bad_request(
                        "json: cannot unmarshal array into Go value of type map[string]interface {}"
                    )
                body = decoded if isinstance(decoded, dict) else None
        req = SubresourceRequest(
            verb=verb,
            namespace=namespace,
            name=name,
            body=body,
            user=user,
            query=dict(request.query),
            stores=self.store_for,
            patch_type=content_type if method == "PATCH" else "",
            raw_body=raw,
        )
        result = await handler(req)
        code = 201 if method == "POST" else 200
        if isinstance(result, dict) and result.get("kind") == "Status" and isinstance(result.get("code"), int):
            code = result["code"]
        if method in ("GET", "HEAD") and isinstance(result, dict) and result.get("kind") == "Scale":
            # `kubectl get deploy X --subresource=scale` asks for a Table (upstream's printScale columns).
            output = negotiate_output(request.headers.get("Accept", ""), request.query)
            if output.as_kind == "Table":
                from kubemark.master.apiserver.tables import scale_table

                result = scale_table(result, output.include_object)
        return json_response(result, code)

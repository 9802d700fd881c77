"""`ResourceStore`: the generic registry of one resource (kube-apiserver's genericregistry.Store).

It turns verbs into storage operations with upstream semantics: name generation, system metadata,
namespace lifecycle admission, optimistic concurrency, status/spec separation, graceful deletion,
finalizers, propagation policies, consistent and paginated lists, and dry runs. Kind rules come from the
resource's `Strategy`; reads are served by the `WatchCache` wherever upstream serves them from its cache.

Objects are plain dicts. Stored bytes omit metadata.resourceVersion; it is the key's mod_revision.
Objects from the cache are shared and immutable: they are copied (orjson round trip) before any mutation.
Writes start from the newest state known without a storage read: the cache's object, or this store's own
latest write of the key while the cache has not caught up; etcd's revision guard catches any staleness.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kubemark import codec
from kubemark.kube import fields as kfields
from kubemark.kube import labels as klabels
from kubemark.kube import meta as kmeta
from kubemark.kube import patch as kpatch
from kubemark.kube.resources import ResourceType
from kubemark.master.apiserver import errors
from kubemark.master.apiserver.errors import Cause, StatusError
from kubemark.master.apiserver.options import DeleteOptions, ListOptions, parse_delete_options
from kubemark.master.apiserver.request_info import UserInfo
from kubemark.master.apiserver.strategy import Obj, Strategy
from kubemark.master.apiserver.validation import (
    meta_type_error,
    shape_error,
    validate_object_meta,
    validate_object_meta_update,
)
from kubemark.master.storage.base import (
    KV,
    CompactedError,
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    Storage,
    StorageError,
    UnavailableError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Predicate = Callable[[Obj], bool]

CONFLICT_MESSAGE = "the object has been modified; please apply your changes to the latest version and try again"
CONTINUE_EXPIRED_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
    "that were created, modified, or deleted between the time the first chunk was returned and now may show "
    "up in the list."
)
# How long a read waits for the watch cache to reach a requested revision (upstream: 3 s, then 504).
FRESHNESS_TIMEOUT_SECONDS = 3.0
GENERATE_NAME_ATTEMPTS = 8
MAX_UPDATE_RETRIES = 32
# Writes remembered per resource (stored bytes + revision) for the moment the watch cache has not caught up.
RECENT_WRITES = 2048

# Kinds that track metadata.generation (their spec drives a controller or the kubelet).
_GENERATION_KINDS = frozenset(
    {
        "deployments.apps",
        "replicasets.apps",
        "replicationcontrollers",
        "jobs.batch",
        "pods",
        "statefulsets.apps",
        "daemonsets.apps",
        "poddisruptionbudgets.policy",
        "networkpolicies.networking.k8s.io",
        "priorityclasses.scheduling.k8s.io",
    }
)
# Kinds whose DELETE returns the deleted object rather than a Status (upstream ReturnDeletedObject).
_RETURNS_DELETED_OBJECT = frozenset({"pods", "services", "namespaces"})
# Kinds where a PUT on a missing object creates it (upstream AllowCreateOnUpdate).
_CREATE_ON_UPDATE = frozenset(
    {"endpoints", "leases.coordination.k8s.io", "events", "events.events.k8s.io"}
    | {f"{r}.rbac.authorization.k8s.io" for r in ("roles", "rolebindings", "clusterroles", "clusterrolebindings")}
)
# What a kind rule raises when it meets a field of an unexpected type (see ResourceStore._malformed).
_MALFORMED = (TypeError, AttributeError, ValueError, KeyError, IndexError)
# System metadata kept from the stored object on any update.
_IMMUTABLE_META = ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")


def copy_obj(obj: Obj) -> Obj:
    """A private deep copy (an orjson round trip is the fastest deep copy of JSON data)."""
    return codec.loads(codec.dumps(obj))


def encode_obj(obj: Obj) -> bytes:
    """Stored bytes: the object without metadata.resourceVersion (that is the key's mod_revision)."""
    md = obj.get("metadata")
    if isinstance(md, dict) and "resourceVersion" in md:
        rv = md.pop("resourceVersion")
        try:
            return codec.dumps(obj)
        finally:
            md["resourceVersion"] = rv
    return codec.dumps(obj)


def decode_kv(kv: KV) -> Obj:
    """A private object from a stored KV, with metadata.resourceVersion set."""
    obj = codec.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def _with_rv(obj: Obj, revision: int) -> Obj:
    md = obj.get("metadata")
    if md is not None and md.get("resourceVersion") != str(revision):
        obj = copy_obj(obj)
        obj["metadata"]["resourceVersion"] = str(revision)
    return obj


def _meta(obj: Obj) -> dict[str, Any]:
    md = obj.get("metadata")
    if not isinstance(md, dict):
        md = obj["metadata"] = {}
    return md


def _parse_rv(value: Any, what: str = "resourceVersion") -> int:
    try:
        rv = int(value)
    except (TypeError, ValueError):
        raise errors.bad_request(f'{what}: Invalid value: "{value}": must be a decimal integer') from None
    if rv < 0:
        raise errors.bad_request(f'{what}: Invalid value: "{value}": must be non-negative')
    return rv


def _epoch_to_rfc3339(epoch: float) -> str:
    return kmeta.format_rfc3339(epoch)


@dataclass(slots=True)
class DeleteResult:
    """The outcome of a delete: the object as last seen, and whether it left storage."""

    obj: Obj
    deleted: bool


@dataclass(slots=True)
class ListPage:
    """Objects of one list response plus its ListMeta fields."""

    items: list[Obj]
    revision: int
    continue_token: str = ""
    remaining: int | None = None


@dataclass(slots=True)
class Selection:
    """A parsed label+field selection (with the field values an index may serve)."""

    predicate: Predicate | None
    field_selector: Any = None
    label_selector: Any = None


def encode_continue(revision: int, start: str) -> str:
    """Upstream continue token: base64url (no padding) of {"v":"meta.k8s.io/v1","rv":N,"start":"..."}."""
    raw = codec.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_continue(token: str) -> tuple[int, str]:
    """(revision, start key relative to the list prefix); 400 BadRequest when malformed."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = codec.loads(raw)
        if not isinstance(data, dict) or data.get("v") != "meta.k8s.io/v1":
            raise ValueError(
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
            )
        revision, start = data.get("rv"), data.get("start")
        if not isinstance(revision, int) or not isinstance(start, str) or not start:
            raise ValueError("continue key is not valid: invalid start key")
        if start.startswith("/") or ".." in start.split("/"):
            raise ValueError("continue key is not valid: key path is not valid")
    except (ValueError, binascii.Error, codec.JSONDecodeError) as exc:
        message = str(exc) if str(exc).startswith("continue key") else f"continue key is not valid: {exc}"
        raise errors.bad_request(message) from None
    return revision, start


class ResourceStore:
    """Every verb of one resource type over (Storage, WatchCache, Strategy); implements `ObjectStore`."""

    def __init__(
        self,
        rt: ResourceType,
        storage: Storage,
        cache: Any,
        strategy: Strategy | None = None,
        *,
        namespaces: ResourceStore | None = None,
        metrics: Any = None,
        index_fields: tuple[str, ...] = (),
        freshness_timeout: float = FRESHNESS_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rt = rt
        self.storage = storage
        self.cache = cache
        self.strategy = strategy or Strategy(rt)
        self.namespaces = namespaces
        self.metrics = metrics
        # Field names the cache has an index for (index name == field), e.g. pods' spec.nodeName.
        self.index_fields = index_fields
        self.freshness_timeout = freshness_timeout
        self.clock = clock
        self.prefix = rt.storage_prefix()
        self._tracks_generation = rt.group_resource in _GENERATION_KINDS
        self._returns_deleted = rt.group_resource in _RETURNS_DELETED_OBJECT
        self._create_on_update = rt.group_resource in _CREATE_ON_UPDATE
        # key -> (stored bytes, mod_revision) of this server's latest writes, oldest first. A client that
        # writes again right after a write (a busy kubelet, a controller) often beats the watch cache to it;
        # the bytes it wrote are the object at that revision, so no storage read is needed to know it.
        self._recent: dict[str, tuple[bytes, int]] = {}

    # --- helpers -------------------------------------------------------------------------------------------

    def key(self, namespace: str, name: str) -> str:
        return self.rt.storage_key(namespace, name)

    def list_prefix(self, namespace: str) -> str:
        if self.rt.namespaced and namespace:
            return f"{self.prefix}{namespace}/"
        return self.prefix

    def not_found(self, name: str) -> StatusError:
        return errors.not_found(self.rt.group, self.rt.plural, name)

    def conflict(self, name: str, why: str = CONFLICT_MESSAGE) -> StatusError:
        return errors.conflict(self.rt.group, self.rt.plural, name, why)

    def _invalid(self, name: str, causes: builtins.list[Cause]) -> StatusError:
        # Generic and kind validation may report the same problem (e.g. a namespace's name): say it once.
        unique = list(dict.fromkeys(causes))
        return errors.invalid(self.rt.group, self.rt.kind, name, unique)

    async def _storage_call(self, operation: str, call: Awaitable[T]) -> T:
        """Await a storage call, translating backend failures and recording etcd latency when measured."""
        start = time.perf_counter() if self.metrics is not None else 0.0
        try:
            return await call
        except UnavailableError as exc:
            raise errors.service_unavailable(f"storage is unavailable: {exc}") from exc
        finally:
            if self.metrics is not None:
                self.metrics.observe_etcd(operation, self.rt.kind, time.perf_counter() - start)

    def _hook(self, name: str) -> Callable[..., Any] | None:
        """Optional KindStrategy hooks (admit_delete, prepare_for_delete, should_delete_during_update, on_deleted)."""
        return getattr(self.strategy, name, None)

    def _now(self) -> str:
        return _epoch_to_rfc3339(self.clock())

    async def _current(self, key: str) -> tuple[Obj, int] | None:
        """The stored object (private copy) and its mod_revision, read from storage."""
        kv = await self._storage_call("get", self.storage.get(key))
        if kv is None:
            return None
        return decode_kv(kv), kv.mod_revision

    def _cached(self, key: str) -> tuple[Obj, int] | None:
        """A private copy of the newest known state (possibly stale) as a first guess for writes: the watch
        cache's object, or this server's own later write of it when the cache has not caught up yet."""
        cached = self.cache.get(key) if self.cache is not None else None
        recent = self._recent.get(key)
        if recent is not None and (cached is None or recent[1] > cached.revision):
            return decode_kv(KV(key, recent[0], 0, recent[1])), recent[1]
        if cached is None:
            return None
        obj = copy_obj(cached.obj)
        _meta(obj)["resourceVersion"] = str(cached.revision)
        return obj, cached.revision

    def _remember(self, key: str, value: bytes, revision: int) -> None:
        recent = self._recent
        recent.pop(key, None)  # re-inserted last: the dict stays ordered oldest write first
        recent[key] = (value, revision)
        if len(recent) > RECENT_WRITES:
            del recent[next(iter(recent))]

    def _forget(self, key: str) -> None:
        self._recent.pop(key, None)

    async def _wait_fresh(self, revision: int) -> None:
        """Wait until the cache has applied `revision`; 504 Timeout (as upstream) when it does not in time."""
        if self.cache is None:
            return
        try:
            await self.cache.wait_until_fresh(revision, self.freshness_timeout)
        except UnavailableError:
            raise StatusError(
                504,
                "Timeout",
                f"Timeout: Too large resource version: {revision}, current: {self.cache.revision}",
                {
                    "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                    "retryAfterSeconds": 1,
                },
            ) from None

    # --- get -----------------------------------------------------------------------------------------------

    async def get(self, namespace: str, name: str, resource_version: str = "") -> Obj:
        """GET: RV unset reads storage (consistent); RV "0" or N is served from the watch cache."""
        key = self.key(namespace, name)
        if resource_version == "" or self.cache is None:
            current = await self._current(key)
            if current is None:
                raise self.not_found(name)
            return current[0]
        rv = _parse_rv(resource_version)
        if rv > 0:
            await self._wait_fresh(rv)
        cached = self.cache.get(key)
        if cached is None:
            raise self.not_found(name)
        return _with_rv(cached.obj, cached.revision)

    # --- list ----------------------------------------------------------------------------------------------

    def selection(self, opts: ListOptions, name: str = "") -> Selection:
        """The predicate of a list/watch: label selector, field selector, and a named object."""
        label_sel = None
        field_sel = None
        if opts.label_selector:
            try:
                label_sel = klabels.parse_label_selector(opts.label_selector)
            except klabels.LabelSelectorError as exc:
                # labels.Parse's own error already starts with "unable to parse requirement: ".
                raise errors.bad_request(str(exc)) from None
            if label_sel.empty:
                label_sel = None
        text = opts.field_selector
        if name:
            text = f"metadata.name={name}" + (f",{text}" if text else "")
        if text:
            try:
                field_sel = kfields.convert_field_selector(self.rt.kind, kfields.parse_field_selector(text))
            except kfields.FieldSelectorError as exc:
                raise errors.bad_request(str(exc)) from None
        if label_sel is None and field_sel is None:
            return Selection(None)
        kind = self.rt.kind

        def predicate(obj: Obj) -> bool:
            if label_sel is not None and not label_sel.matches((obj.get("metadata") or {}).get("labels")):
                return False
            return field_sel is None or field_sel.matches(kfields.object_fields(kind, obj))

        return Selection(predicate, field_sel, label_sel)

    async def list(self, namespace: str, opts: ListOptions) -> ListPage:
        """LIST with upstream resourceVersion / resourceVersionMatch / limit / continue semantics."""
        prefix = self.list_prefix(namespace)
        sel = self.selection(opts)
        if opts.continue_token:
            revision, start = decode_continue(opts.continue_token)
            return await self._list_storage(prefix, sel.predicate, revision, opts.limit, prefix + start, True)
        rv_text, match = opts.resource_version, opts.resource_version_match
        if match == "Exact" or self.cache is None:
            revision = _parse_rv(rv_text) if rv_text else 0
            return await self._list_storage(prefix, sel.predicate, revision, opts.limit, prefix, False)
        if rv_text == "":
            fresh = await self._storage_call("get", self.storage.current_revision())
            try:
                await self._wait_fresh(fresh)
            except StatusError as exc:
                if exc.code != 504:
                    raise
                # A cache too far behind (a busy server): read storage instead, as kube-apiserver's consistent
                # list from cache falls back to etcd, rather than failing the request.
                return await self._list_storage(prefix, sel.predicate, 0, opts.limit, prefix, False)
        elif rv_text != "0":
            await self._wait_fresh(_parse_rv(rv_text))
        cached, revision = self._cache_list(prefix, sel)
        if opts.limit > 0 and rv_text != "0":
            return self._page_from_cache(prefix, cached, revision, opts.limit, sel.predicate is None)
        return ListPage([_with_rv(c.obj, c.revision) for c in cached], revision)

    def cache_index(self, sel: Selection) -> tuple[str, str] | None:
        """(index name, value) of the cache index that serves this selection, if any (e.g. pods by node)."""
        if sel.field_selector is None:
            return None
        for name in self.index_fields:
            value = sel.field_selector.value_for(name)
            # The indexes leave out empty values (unscheduled pods), so `spec.nodeName=` must scan.
            if value:
                return name, value
        return None

    def _cache_list(self, prefix: str, sel: Selection) -> tuple[builtins.list[Any], int]:
        index = self.cache_index(sel)
        if index is not None:
            candidates, revision = self.cache.list_by_index(*index)
            pred = sel.predicate
            return [c for c in candidates if c.key.startswith(prefix) and (pred is None or pred(c.obj))], revision
        return self.cache.list(prefix, sel.predicate)

    def _page_from_cache(
        self, prefix: str, cached: builtins.list[Any], revision: int, limit: int, unfiltered: bool
    ) -> ListPage:
        page = cached[:limit]  # the cache lists in key order, as storage does
        items = [_with_rv(c.obj, c.revision) for c in page]
        if len(cached) <= limit:
            return ListPage(items, revision)
        token = encode_continue(revision, page[-1].key[len(prefix) :] + "\x00")
        return ListPage(items, revision, token, len(cached) - limit if unfiltered else None)

    async def _list_storage(
        self, prefix: str, predicate: Predicate | None, revision: int, limit: int, start_key: str, continuing: bool
    ) -> ListPage:
        """A (paginated) list read from storage at `revision` (0 = latest), filtered by `predicate`."""
        items: builtins.list[Obj] = []
        last_key = ""
        batch = max(limit, 500) if predicate is not None else limit
        more = False
        try:
            while True:
                result = await self._storage_call(
                    "list", self.storage.list(prefix, revision=revision, limit=batch, start_key=start_key)
                )
                revision = result.revision
                stop = False
                for i, kv in enumerate(result.kvs):
                    obj = decode_kv(kv)
                    if predicate is None or predicate(obj):
                        items.append(obj)
                        last_key = kv.key
                        if limit and len(items) == limit:
                            more = i + 1 < len(result.kvs) or result.more
                            stop = True
                            break
                if stop or not result.more or not result.kvs:
                    break
                start_key = result.kvs[-1].key + "\x00"
        except CompactedError as exc:
            if continuing:
                raise errors.gone(CONTINUE_EXPIRED_MESSAGE) from None
            raise errors.gone(f"too old resource version: {exc.requested} ({exc.compacted})") from None
        except StorageError as exc:
            if isinstance(exc, UnavailableError):
                raise
            if "future revision" in str(exc):
                raise StatusError(
                    504, "Timeout", f"Timeout: Too large resource version: {revision}", {"retryAfterSeconds": 1}
                ) from None
            raise errors.internal_error(str(exc)) from None
        if not more:
            return ListPage(items, revision)
        return ListPage(items, revision, encode_continue(revision, last_key[len(prefix) :] + "\x00"))

    def list_object(self, page: ListPage) -> Obj:
        """The wire list object (e.g. PodList) of a page."""
        md: dict[str, Any] = {"resourceVersion": str(page.revision)}
        if page.continue_token:
            md["continue"] = page.continue_token
        if page.remaining is not None:
            md["remainingItemCount"] = page.remaining
        return {
            "kind": self.rt.list_kind_name,
            "apiVersion": self.rt.group_version,
            "metadata": md,
            "items": page.items,
        }

    # --- create --------------------------------------------------------------------------------------------

    async def _check_namespace(self, namespace: str, name: str) -> None:
        """NamespaceLifecycle admission: 404 for a missing namespace, 403 while it is terminating."""
        if self.namespaces is None or not self.rt.namespaced:
            return
        key = self.namespaces.key("", namespace)
        cached = self.namespaces.cache.get(key) if self.namespaces.cache is not None else None
        ns = cached.obj if cached is not None else None
        if ns is None:  # the cache may lag a namespace created a moment ago: ask storage like upstream
            current = await self.namespaces._current(key)
            ns = current[0] if current else None
        if ns is None:
            raise errors.not_found("", "namespaces", namespace)
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            raise StatusError(
                403,
                "Forbidden",
                f'{self.rt.group_resource} "{name}" is forbidden: unable to create new content in namespace '
                f"{namespace} because it is being terminated",
                {"name": name, "kind": self.rt.plural, **({"group": self.rt.group} if self.rt.group else {})},
            )

    async def create(
        self, obj: Obj, user: UserInfo | None = None, *, namespace: str = "", dry_run: bool = False
    ) -> Obj:
        """POST: the full create path; returns the stored object (201)."""
        md = _meta(obj)
        if self.rt.namespaced:
            body_ns = md.get("namespace") or ""
            if namespace and body_ns and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            namespace = namespace or body_ns
            if namespace:
                md["namespace"] = namespace
        else:
            md.pop("namespace", None)
        if md.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        name = md.get("name") or ""
        if namespace:
            await self._check_namespace(namespace, name or md.get("generateName", ""))
        admit = self._hook("admit_create")
        if admit is not None:
            await admit(obj)  # mutating/validating admission that reads other objects (Priority): a StatusError
        generate = md.get("generateName") or "" if not name else ""
        attempts = GENERATE_NAME_ATTEMPTS if generate else 1
        for attempt in range(attempts):
            candidate = copy_obj(obj) if attempts > 1 else obj
            cmd = _meta(candidate)
            if generate:
                cmd["name"] = (generate[: 63 - 5] if len(generate) > 58 else generate) + kmeta.generate_name_suffix()
            self._prepare_create(candidate)
            if dry_run:
                self._release(candidate)  # nothing was stored: give back what defaulting reserved
                return candidate
            key = self.key(namespace, cmd.get("name", ""))
            try:
                value = encode_obj(candidate)
                kv = await self._storage_call("create", self.storage.create(key, value))
            except KeyExistsError:
                self._release(candidate)
                if generate and attempt + 1 < attempts:
                    continue
                raise errors.already_exists(self.rt.group, self.rt.plural, cmd.get("name", "")) from None
            except BaseException:
                self._release(candidate)
                raise
            cmd["resourceVersion"] = str(kv.mod_revision)
            self._remember(key, value, kv.mod_revision)
            return candidate
        raise AssertionError("unreachable")

    def _malformed(self, what: str, exc: Exception) -> StatusError:
        """400 for a body whose field types the kind's rules tripped over.

        Upstream decodes bodies into typed structs, so a wrongly typed field is refused (400) before any rule
        runs; our rules read plain dicts and may meet such a field first. Logged with its traceback: each one is
        a rule to harden (the fuzzing suite in tests/security counts these warnings as findings).
        """
        log.warning("%s %s: a rule failed on a malformed object: %r", self.rt.group_resource, what, exc, exc_info=True)
        return errors.bad_request(
            f"the object provided is unrecognized (must be of type {self.rt.kind}): a field has an unexpected type"
        )

    def _release(self, obj: Obj) -> None:
        on_deleted = self._hook("on_deleted")
        if on_deleted is not None:
            try:
                on_deleted(obj)
            except Exception:
                log.exception("on_deleted hook failed for %s", self.rt.group_resource)

    def _prepare_create(self, obj: Obj) -> None:
        """System fields, strategy defaulting, and validation (422) of a new object."""
        obj["apiVersion"] = self.rt.group_version
        obj["kind"] = self.rt.kind
        md = obj["metadata"]
        for field in (
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ):
            md.pop(field, None)
        md["uid"] = kmeta.new_uid()
        md["creationTimestamp"] = self._now()
        if self._tracks_generation:
            md["generation"] = 1
        else:
            md.pop("generation", None)
        try:
            self.strategy.prepare_for_create(obj)
            causes = validate_object_meta(self.rt, obj) + self.strategy.validate(obj)
        except _MALFORMED as exc:
            raise self._malformed("create", exc) from None
        if causes:
            raise self._invalid(md.get("name") or md.get("generateName") or "", causes)

    # --- update --------------------------------------------------------------------------------------------

    def _prepare_update(self, new: Obj, old: Obj, status_only: bool) -> Obj:
        """Apply system metadata, strategy hooks and validation to a replacement object (mutates `new`)."""
        old_md = old["metadata"]
        new["apiVersion"] = self.rt.group_version
        new["kind"] = self.rt.kind
        if status_only:
            # Upstream ResetObjectMetaForStatus: a status write changes nothing in metadata.
            md = new["metadata"] = {k: v for k, v in old_md.items()}
        else:
            md = _meta(new)
            for field in _IMMUTABLE_META:
                if field in old_md:
                    md[field] = old_md[field]
                else:
                    md.pop(field, None)
            md.pop("managedFields", None)
            md.pop("selfLink", None)
            if "generation" in old_md:
                md["generation"] = old_md["generation"]
            else:
                md.pop("generation", None)
        try:
            if status_only:
                self.strategy.prepare_for_status_update(new, old)
                causes = self.strategy.validate_status_update(new, old)
            else:
                self.strategy.prepare_for_update(new, old)
                causes = _meta_update_causes(self.rt, new, old) + self.strategy.validate_update(new, old)
                if "generation" in old_md and self.strategy.spec_changed(new, old):
                    md["generation"] = old_md["generation"] + 1
        except _MALFORMED as exc:
            raise self._malformed("update", exc) from None
        if causes:
            raise self._invalid(old_md.get("name", ""), causes)
        md["resourceVersion"] = old_md.get("resourceVersion", "")
        return new

    def _should_delete(self, obj: Obj) -> bool:
        md = obj["metadata"]
        if md.get("deletionTimestamp") and not md.get("finalizers") and md.get("deletionGracePeriodSeconds") == 0:
            return True
        hook = self._hook("should_delete_during_update")
        return bool(hook(obj)) if hook is not None else False

    async def _write(self, key: str, new: Obj, old: Obj, old_rev: int, dry_run: bool) -> Obj:
        """Persist `new` over `old` (guarded by old_rev); no-ops and finished deletions are handled here.

        Raises ConflictError (storage) when old_rev is stale, for the caller's retry policy.
        """
        if new == old:
            return new  # upstream skips the write of a no-op update: same resourceVersion
        if self._should_delete(new):
            if not dry_run:
                self._forget(key)
                try:
                    await self._storage_call("delete", self.storage.delete(key, old_rev))
                except KeyNotFoundError:
                    raise self.not_found(new["metadata"].get("name", "")) from None
                self._release(new)
            return new
        if dry_run:
            return new
        value = encode_obj(new)
        try:
            kv = await self._storage_call("update", self.storage.update(key, value, old_rev))
        except KeyNotFoundError:
            self._forget(key)
            raise self.not_found(new["metadata"].get("name", "")) from None
        new["metadata"]["resourceVersion"] = str(kv.mod_revision)
        self._remember(key, value, kv.mod_revision)
        return new

    async def _fresh_after_conflict(self, key: str, exc: ConflictError) -> tuple[Obj, int] | None:
        if exc.current is not None:
            return decode_kv(exc.current), exc.current.mod_revision
        return await self._current(key)

    async def update(
        self,
        namespace: str,
        name: str,
        body: Obj,
        user: UserInfo | None = None,
        *,
        status_only: bool = False,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """PUT (main resource or /status). Returns (object, created)."""
        md = _meta(body)
        if md.get("name") and md["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({md['name']}) does not match the name on the URL ({name})"
            )
        if self.rt.namespaced:
            if md.get("namespace") and namespace and md["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
        else:
            md.pop("namespace", None)
        md["name"] = name
        if self.rt.namespaced:
            md["namespace"] = namespace
        rv_text = md.get("resourceVersion") or ""
        expected = _parse_rv(rv_text, "metadata.resourceVersion") if rv_text else 0
        key = self.key(namespace, name)
        # Hot path (lease renewals): the cache (or this server's own last write) holds the revision the client read.
        current = self._cached(key) if expected else None
        if current is None or current[1] != expected:
            current = await self._current(key)
        for _ in range(MAX_UPDATE_RETRIES):
            if current is None:
                if self._create_on_update and not status_only:
                    md.pop("resourceVersion", None)
                    return await self.create(body, user, namespace=namespace, dry_run=dry_run), True
                raise self.not_found(name)
            old, old_rev = current
            if expected and expected != old_rev:
                raise self.conflict(name)
            uid = md.get("uid")
            if uid and uid != old["metadata"].get("uid"):
                raise self.conflict(
                    name,
                    f"Precondition failed: UID in precondition: {uid}, UID in object meta: {old['metadata'].get('uid')}",
                )
            new = self._prepare_update(copy_obj(body) if not expected else body, old, status_only)
            try:
                return await self._write(key, new, old, old_rev, dry_run), False
            except ConflictError as exc:
                if expected:
                    raise self.conflict(name) from None
                current = await self._fresh_after_conflict(key, exc)
        raise self.conflict(name)

    async def guaranteed_update(
        self,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj | None],
        *,
        status_only: bool = False,
        dry_run: bool = False,
    ) -> Obj:
        """Read-modify-write retried on conflict; `mutate` gets a private copy, None means no change."""
        key = self.key(namespace, name)
        current = self._cached(key) or await self._current(key)
        for _ in range(MAX_UPDATE_RETRIES):
            if current is None:
                raise self.not_found(name)
            old, old_rev = current
            candidate = mutate(copy_obj(old))
            if candidate is None:
                return old
            new = self._prepare_update(candidate, old, status_only)
            try:
                return await self._write(key, new, old, old_rev, dry_run)
            except ConflictError as exc:
                current = await self._fresh_after_conflict(key, exc)
        raise self.conflict(name)

    # --- patch ---------------------------------------------------------------------------------------------

    def _apply_patch(self, current: Obj, patch_type: str, patch: Any) -> Obj:
        try:
            if patch_type == "application/json-patch+json":
                if not isinstance(patch, list):
                    raise errors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
                result = kpatch.apply_json_patch(current, patch)
            elif patch_type == "application/merge-patch+json":
                result = kpatch.apply_merge_patch(current, patch)
            elif patch_type in ("application/strategic-merge-patch+json", "application/apply-patch+yaml"):
                if not isinstance(patch, dict):
                    raise errors.bad_request(
                        "json: cannot unmarshal array into Go value of type map[string]interface {}"
                    )
                result = kpatch.apply_strategic_merge_patch(current, patch, self.rt.kind)
            else:
                raise errors.unsupported_media_type(patch_type)
        except kpatch.PatchError as exc:
            raise StatusError(422, "Invalid", str(exc)) from None
        if not isinstance(result, dict):
            raise errors.bad_request("the patch produced a value that is not an object")
        # The patched object must still decode as the kind (upstream converts it back into the typed object).
        problem = meta_type_error(result)
        if not problem and patch_type == "application/json-patch+json":
            problem = shape_error(result)  # JSON patch ops may nest a value below the deepest existing field
        if problem:
            raise StatusError(422, "Invalid", f"the patched {self.rt.kind} cannot be decoded: {problem}")
        return result

    async def patch(
        self,
        namespace: str,
        name: str,
        patch_type: str,
        patch: Any,
        user: UserInfo | None = None,
        *,
        status_only: bool = False,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """PATCH (json, merge, strategic; apply as a simplified strategic merge). Returns (object, created)."""
        key = self.key(namespace, name)
        current = self._cached(key) or await self._current(key)
        is_apply = patch_type == "application/apply-patch+yaml"
        for _ in range(MAX_UPDATE_RETRIES):
            if current is None:
                if is_apply and not status_only:
                    return await self._apply_create(namespace, name, patch, user, dry_run), True
                raise self.not_found(name)
            old, old_rev = current
            patched = self._apply_patch(copy_obj(old), patch_type, patch)
            pmd = _meta(patched)
            # Only a resourceVersion the patch itself sets is a precondition; the patched copy always carries
            # the old object's, and treating that as one would turn a retryable conflict into a 409.
            wanted = (pmd.get("resourceVersion") or "") if _patch_sets_resource_version(patch) else ""
            if wanted and _parse_rv(wanted, "metadata.resourceVersion") != old_rev:
                raise self.conflict(name)
            if pmd.get("name", name) != name:
                raise errors.bad_request(
                    f"the name of the object ({pmd.get('name')}) does not match the name on the URL ({name})"
                )
            if self.rt.namespaced and pmd.get("namespace", namespace) != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            uid = pmd.get("uid")
            if uid and uid != old["metadata"].get("uid"):
                raise self.conflict(
                    name,
                    f"Precondition failed: UID in precondition: {uid}, UID in object meta: {old['metadata'].get('uid')}",
                )
            new = self._prepare_update(patched, old, status_only)
            try:
                return await self._write(key, new, old, old_rev, dry_run), False
            except ConflictError as exc:
                if wanted:
                    raise self.conflict(name) from None
                current = await self._fresh_after_conflict(key, exc)
        raise self.conflict(name)

    async def _apply_create(self, namespace: str, name: str, patch: Any, user: UserInfo | None, dry_run: bool) -> Obj:
        if not isinstance(patch, dict):
            raise errors.bad_request("the applied configuration must be an object")
        obj = copy_obj(patch)
        md = _meta(obj)
        if md.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({md.get('name')}) does not match the name on the URL ({name})"
            )
        md["name"] = name
        md.pop("resourceVersion", None)
        return await self.create(obj, user, namespace=namespace, dry_run=dry_run)

    # --- delete --------------------------------------------------------------------------------------------

    async def delete(self, namespace: str, name: str, options: Obj, user: UserInfo | None = None) -> Obj:
        """ObjectStore protocol: delete with DeleteOptions given as a JSON dict."""
        opts = parse_delete_options({}, options or {})
        return (await self.delete_object(namespace, name, opts)).obj

    def _check_preconditions(self, name: str, obj: Obj, opts: DeleteOptions) -> None:
        md = obj["metadata"]
        if opts.precondition_uid is not None and opts.precondition_uid != md.get("uid"):
            raise self.conflict(
                name,
                f"Precondition failed: UID in precondition: {opts.precondition_uid}, UID in object meta: {md.get('uid')}",
            )
        if opts.precondition_resource_version is not None and opts.precondition_resource_version != md.get(
            "resourceVersion"
        ):
            raise self.conflict(
                name,
                "Precondition failed: ResourceVersion in precondition: "
                f"{opts.precondition_resource_version}, ResourceVersion in object meta: {md.get('resourceVersion')}",
            )

    def _propagation_finalizers(self, md: dict[str, Any], opts: DeleteOptions) -> None:
        orphan: bool | None = None
        foreground: bool | None = None
        if opts.propagation_policy == "Orphan" or opts.orphan_dependents is True:
            orphan, foreground = True, False
        elif opts.propagation_policy == "Foreground" or opts.orphan_dependents is False:
            orphan, foreground = False, True
        elif opts.propagation_policy == "Background":
            orphan, foreground = False, False
        if orphan is None:
            return
        finalizers = [f for f in md.get("finalizers") or [] if f not in ("orphan", "foregroundDeletion")]
        if orphan:
            finalizers.append("orphan")
        if foreground:
            finalizers.append("foregroundDeletion")
        if finalizers:
            md["finalizers"] = finalizers
        else:
            md.pop("finalizers", None)

    def _before_delete(self, obj: Obj, opts: DeleteOptions) -> tuple[bool, bool]:
        """Upstream rest.BeforeDelete: (graceful, pending). Mutates obj's deletion metadata."""
        md = obj["metadata"]
        requested = opts.grace_period_seconds
        if md.get("deletionTimestamp"):
            current = md.get("deletionGracePeriodSeconds")
            if not current:
                return False, False
            if requested is None:
                return False, True
            period = self.strategy.graceful_delete_seconds(obj, requested)
            if period >= current:
                return False, True
            # Only a shorter grace period may be set; the deadline moves by the difference.
            started = kmeta.parse_time(md["deletionTimestamp"]) - current
            md["deletionTimestamp"] = _epoch_to_rfc3339(started + period)
            md["deletionGracePeriodSeconds"] = period
            return True, False
        period = self.strategy.graceful_delete_seconds(obj, requested)
        if period <= 0:
            return False, False
        md["deletionTimestamp"] = _epoch_to_rfc3339(self.clock() + period)
        md["deletionGracePeriodSeconds"] = period
        if md.get("generation"):
            md["generation"] += 1
        prepare = self._hook("prepare_for_delete")
        if prepare is not None:
            prepare(obj)
        return True, False

    async def delete_object(self, namespace: str, name: str, opts: DeleteOptions) -> DeleteResult:
        """DELETE: graceful deletion, finalizers and propagation policy, then removal when nothing is pending."""
        key = self.key(namespace, name)
        # As upstream's Delete with the watch cache's object: start from the cached state (the write compares
        # mod_revision, so a stale guess is a conflict and a re-read); answers decided without a write (errors,
        # no-ops, dry runs) are only given from a fresh read.
        current = self._cached(key)
        fresh = current is None
        if current is None:
            current = await self._current(key)
        for _ in range(MAX_UPDATE_RETRIES):
            if current is None:
                raise self.not_found(name)
            old, old_rev = current
            try:
                self._check_preconditions(name, old, opts)
                admit = self._hook("admit_delete")
                if admit is not None:
                    admit(old)  # delete admission (NamespaceLifecycle's immortal namespaces): raises a StatusError
            except StatusError:
                if fresh:
                    raise
                current, fresh = await self._current(key), True
                continue
            obj = copy_obj(old)
            graceful, pending = self._before_delete(obj, opts)
            md = obj["metadata"]
            keeps = False
            if not pending:
                self._propagation_finalizers(md, opts)
                has_finalizers = bool(md.get("finalizers"))
                keeps = bool(has_finalizers or (graceful and md.get("deletionGracePeriodSeconds")))
                if has_finalizers and not md.get("deletionTimestamp"):
                    # markAsDeleting: an object kept by finalizers is "being deleted" from now on.
                    md["deletionTimestamp"] = self._now()
                    md["deletionGracePeriodSeconds"] = 0
                    if md.get("generation"):
                        md["generation"] += 1
                    prepare = self._hook("prepare_for_delete")
                    if prepare is not None:
                        prepare(obj)
            if not fresh and (pending or opts.dry_run or (keeps and obj == old)):
                current, fresh = await self._current(key), True
                continue
            if pending:
                return DeleteResult(old, False)
            try:
                if keeps:
                    if obj == old or opts.dry_run:
                        return DeleteResult(obj, False)
                    self._forget(key)
                    kv = await self._storage_call("update", self.storage.update(key, encode_obj(obj), old_rev))
                    md["resourceVersion"] = str(kv.mod_revision)
                    return DeleteResult(obj, False)
                if opts.dry_run:
                    return DeleteResult(old, True)
                self._forget(key)
                await self._storage_call("delete", self.storage.delete(key, old_rev))
            except ConflictError as exc:
                if opts.precondition_resource_version is not None:
                    raise self.conflict(name) from None
                current, fresh = await self._fresh_after_conflict(key, exc), True
                continue
            except KeyNotFoundError:
                raise self.not_found(name) from None
            self._release(old)
            return DeleteResult(old, True)
        raise self.conflict(name)

    def delete_response(self, result: DeleteResult) -> Obj:
        """What DELETE answers: the object while it remains (or for ReturnDeletedObject kinds), else Status."""
        if not result.deleted or self._returns_deleted:
            return result.obj
        md = result.obj.get("metadata") or {}
        details: dict[str, Any] = {"name": md.get("name", ""), "kind": self.rt.plural, "uid": md.get("uid", "")}
        if self.rt.group:
            details["group"] = self.rt.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    async def delete_collection(self, namespace: str, list_opts: ListOptions, opts: DeleteOptions) -> Obj:
        """DELETE on a collection: delete every selected object; answers the list of what was deleted."""
        page = await self.list(
            namespace, ListOptions(label_selector=list_opts.label_selector, field_selector=list_opts.field_selector)
        )
        deleted: builtins.list[Obj] = []
        for item in page.items:
            md = item["metadata"]
            try:
                result = await self.delete_object(md.get("namespace", ""), md["name"], opts)
            except StatusError as exc:
                if exc.code == 404:
                    continue
                raise
            deleted.append(result.obj)
        return self.list_object(ListPage(deleted, page.revision))

    # --- watch ---------------------------------------------------------------------------------------------

    def watch_prefix(self, namespace: str) -> str:
        return self.list_prefix(namespace)


def _meta_update_causes(rt: ResourceType, new: Obj, old: Obj) -> list[Cause]:
    """validate_object_meta_update, skipped when labels, annotations and finalizers are unchanged: they were
    validated when stored, and the update rule (no new finalizers while deleting) needs a change too."""
    new_md, old_md = new["metadata"], old["metadata"]
    if (
        new_md.get("labels") == old_md.get("labels")
        and new_md.get("annotations") == old_md.get("annotations")
        and new_md.get("finalizers") == old_md.get("finalizers")
    ):
        return []
    return validate_object_meta_update(rt, new, old)


def _patch_sets_resource_version(patch: Any) -> bool:
    """Whether a patch body (merge/strategic/apply dict, or a JSON patch op list) sets metadata.resourceVersion."""
    if isinstance(patch, dict):
        md = patch.get("metadata")
        return isinstance(md, dict) and md.get("resourceVersion") is not None
    if isinstance(patch, list):
        return any(
            isinstance(op, dict)
            and op.get("op") in ("add", "replace")
            and op.get("path") == "/metadata/resourceVersion"
            for op in patch
        )
    return False

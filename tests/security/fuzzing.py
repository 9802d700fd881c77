"""Property-based fuzzing of the embedded API server: request generators, a target server and the oracle.

Used by tests/security/test_fuzz.py (a bounded run) and benchmarks/fuzz_apiserver.py (a long one).

- `FuzzServer` runs an `APIServer` on a real etcd with the production filter chain (request info, metrics,
  priority and fairness), in its own thread and event loop, so that a request that blocks the server's loop
  shows up as a client-side timeout instead of stalling the fuzzer. The client side (this thread) talks plain
  HTTP on loopback and reads etcd's keyspace through the project's etcd client.
- `requests()` is the hypothesis strategy of one request. Most requests are plausibly formed but wrong in one
  or a few places (a mutated valid object, a patch op on a real field, a selector with one bad token), to get
  past the first checks into the deep code paths; a fraction is valid (creates, updates, patches, deletes of
  the seeded objects), so that the state the fuzzer works on keeps changing.
- `FuzzServer.run(request)` sends one request and returns every broken rule (`Finding`): an answer not within
  the per-request timeout, a 5xx, a non-2xx that is not a metav1.Status with a matching code and a reason,
  a storage change by a request that was rejected (or was a read or a dry run), an answered object that is not
  the one the URL named, and errors the server logged while serving it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import dataclasses
import hashlib
import json
import logging
import threading
import time
import traceback
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yarl
from hypothesis import strategies as st
from tests.master.apiserver.test_server_etcd import etcd_config

from kubemark import codec
from kubemark.kube.resources import RESOURCES, ResourceType
from kubemark.master.apiserver.filters import build_filters, metrics_route
from kubemark.master.apiserver.flowcontrol import PriorityAndFairness
from kubemark.master.apiserver.metrics import APIServerMetrics
from kubemark.master.apiserver.request_info import parse_request_info
from kubemark.master.apiserver.server import APIServer
from kubemark.master.storage.etcd import EtcdStorage
from kubemark.master.storage.etcd_server import EtcdServer

# Seconds one request may take before it counts as a hang (the server's freshness wait is cut to 0.5 s).
REQUEST_TIMEOUT = 5.0
# How long a watch that was accepted (200) is read before the fuzzer hangs up.
WATCH_READ_SECONDS = 0.3
NAMESPACE = "default"
FUZZ_NAMESPACE = "fuzz"
NODE = "fz-node"
MUTATING_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})

# --- valid objects, one per served kind ---------------------------------------------------------------------

_CONTAINERS = [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]
_TEMPLATE = {"metadata": {"labels": {"app": "fz"}}, "spec": {"containers": _CONTAINERS}}


def _spec_of(rt: ResourceType) -> dict[str, Any]:
    """The body (without apiVersion/kind/metadata) of a valid object of `rt`."""
    match (rt.group, rt.plural):
        case ("", "pods"):
            return {"spec": {"containers": _CONTAINERS}}
        case ("", "services"):
            return {"spec": {"selector": {"app": "fz"}, "ports": [{"port": 80, "targetPort": 8080}]}}
        case ("", "endpoints"):
            return {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 8080}]}]}
        case ("", "configmaps"):
            return {"data": {"a": "1", "b.txt": "two"}}
        case ("", "secrets"):
            return {"type": "Opaque", "data": {"a": base64.b64encode(b"secret").decode()}}
        case ("", "events"):
            return {
                "involvedObject": {"kind": "Pod", "name": "fz-pod", "namespace": NAMESPACE},
                "reason": "Fuzzed",
                "message": "m",
                "type": "Normal",
            }
        case ("", "replicationcontrollers"):
            return {"spec": {"replicas": 1, "selector": {"app": "fz"}, "template": _TEMPLATE}}
        case ("", "nodes"):
            return {"spec": {"podCIDR": "10.1.0.0/24"}, "status": {"capacity": {"cpu": "1", "pods": "110"}}}
        case ("", "namespaces") | ("", "serviceaccounts"):
            return {}
        case ("coordination.k8s.io", "leases"):
            return {"spec": {"holderIdentity": "fz", "leaseDurationSeconds": 40}}
        case ("apps", "deployments") | ("apps", "replicasets") | ("apps", "statefulsets"):
            return {"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "fz"}}, "template": _TEMPLATE}}
        case ("apps", "daemonsets"):
            return {"spec": {"selector": {"matchLabels": {"app": "fz"}}, "template": _TEMPLATE}}
        case ("apps", "controllerrevisions"):
            return {"data": {"spec": {"template": _TEMPLATE}}, "revision": 1}
        case ("", "persistentvolumeclaims"):
            return {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
        case ("", "persistentvolumes"):
            return {
                "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/fz"}}
            }
        case ("storage.k8s.io", "storageclasses"):
            return {"provisioner": "example.com/fz"}
        case ("scheduling.k8s.io", "priorityclasses"):
            return {"value": 10}
        case ("policy", "poddisruptionbudgets"):
            return {"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "fz"}}}}
        case ("rbac.authorization.k8s.io", "roles" | "clusterroles"):
            return {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
        case ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings"):
            kind = "Role" if rt.plural == "rolebindings" else "ClusterRole"
            return {
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": "fz"},
                "subjects": [{"kind": "ServiceAccount", "name": "fz", "namespace": NAMESPACE}],
            }
        case ("networking.k8s.io", "networkpolicies"):
            return {"spec": {"podSelector": {"matchLabels": {"app": "fz"}}, "ingress": [{"ports": [{"port": 80}]}]}}
        case ("discovery.k8s.io", "endpointslices"):
            return {
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            }
        case ("batch", "jobs"):
            template = {"metadata": {}, "spec": {"containers": _CONTAINERS, "restartPolicy": "Never"}}
            return {"spec": {"template": template}}
        case ("events.k8s.io", "events"):
            return {
                "eventTime": "2024-01-01T00:00:00.000000Z",
                "type": "Normal",
                "reportingController": "fuzz",
                "reportingInstance": "fuzz-1",
                "action": "Fuzz",
                "reason": "Fuzzed",
                "regarding": {"kind": "Pod", "name": "fz-pod", "namespace": NAMESPACE},
            }
    return {}


def valid_object(rt: ResourceType, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "labels": {"fuzz": "yes"}}
    if rt.namespaced:
        md["namespace"] = namespace
    return {"apiVersion": rt.group_version, "kind": rt.kind, "metadata": md, **copy.deepcopy(_spec_of(rt))}


def collection_path(rt: ResourceType, namespace: str = NAMESPACE) -> str:
    base = f"/api/{rt.version}" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    if rt.namespaced:
        return f"{base}/namespaces/{namespace}/{rt.plural}"
    return f"{base}/{rt.plural}"


def seed_name(rt: ResourceType) -> str:
    """The name of the object of `rt` that the fuzzer keeps in place (re-created whenever it is gone)."""
    if rt.plural == "namespaces":
        return FUZZ_NAMESPACE
    if rt.plural == "nodes":
        return NODE
    return f"fz-{rt.kind.lower()}"


SEEDS: tuple[tuple[ResourceType, str], ...] = tuple((rt, seed_name(rt)) for rt in RESOURCES)
# One more pod, bound to the seeded node: its deletion is graceful (kept with a deletionTimestamp).
BOUND_POD = "fz-bound"
_RT = {(rt.group, rt.plural): rt for rt in RESOURCES}
POD_RT = _RT[("", "pods")]


def seed_objects() -> list[tuple[ResourceType, dict[str, Any]]]:
    out = [(rt, valid_object(rt, name)) for rt, name in SEEDS]
    bound = valid_object(POD_RT, BOUND_POD)
    bound["spec"]["nodeName"] = NODE
    out.append((POD_RT, bound))
    return out


# --- requests -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FuzzRequest:
    """One HTTP request as generated: `path` is already percent-encoded (sent as is)."""

    family: str  # what the generator meant: create, update, patch, get, list, watch, delete, ...
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    @property
    def url(self) -> str:
        if not self.query:
            return self.path
        return self.path + "?" + urllib.parse.urlencode(self.query, quote_via=urllib.parse.quote)

    def describe(self, limit: int = 600) -> str:
        body = b"" if self.body is None else self.body
        shown = body[:limit].decode(errors="replace") + (f"... ({len(body)} bytes)" if len(body) > limit else "")
        headers = "".join(f"\n  {k}: {v}" for k, v in self.headers)
        return (
            f"{self.method} {self.url}{headers}\n  body: {shown!r}"
            if self.body is not None
            else (f"{self.method} {self.url}{headers}")
        )


# Values of the wrong type, the wrong size or odd content, for any field.
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
ODD_STRINGS = st.one_of(
    _TEXT,
    st.sampled_from(
        [
            "",
            " ",
            "..",
            "../../etc/passwd",
            "a/b",
            "%2F",
            "UPPER",
            "-lead",
            "trail-",
            "a" * 64,
            "b" * 254,
            "é",
            "\u202e",
            "\x00",
            "null",
            "true",
            "1",
            "-1",
            "1e400",
            "${x}",
            "*",
            "a,b",
            "a=b",
            "!x",
            "()",
            "2024-01-01T00:00:00Z",
            "not-a-date",
            "100Mi",
            "1.5",
            "0x10",
        ]
    ),
)
ODD_NUMBERS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**64, 10**30, 0.5, -0.0, 1e308, 1.5e-300]),
    st.floats(allow_nan=False, allow_infinity=False),
)
SCALARS = st.one_of(st.none(), st.booleans(), ODD_NUMBERS, ODD_STRINGS)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.one_of(_TEXT, st.sampled_from(["", "$patch"])), children, max_size=3),
    ),
    max_leaves=6,
)


def _deep(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = {"a": value} if i % 2 else [value]
    return value


def _copy(value: Any) -> Any:
    """A private copy of a drawn value: sampled values are shared, and generated documents get edited."""
    return copy.deepcopy(value)


def dumps(doc: Any) -> bytes:
    """JSON of a generated document, also where orjson refuses: integers past 64 bits, nesting past 254."""
    try:
        return codec.dumps(doc)
    except TypeError:
        pass
    try:
        return json.dumps(doc, ensure_ascii=False).encode()
    except (RecursionError, ValueError):
        return b'{"a":' * 300 + b"1" + b"}" * 300


WEIRD_VALUES = st.one_of(
    JSON_VALUES,
    st.integers(min_value=1, max_value=300).map(_deep),
    st.sampled_from(["x" * 70_000, ["x"] * 2000, {f"k{i}": i for i in range(500)}]).map(_copy),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every location in a JSON document (keys of objects, indexes of arrays), parents first."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, (*prefix, i))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


@st.composite
def mutated(draw: st.DrawFn, doc: dict[str, Any], max_mutations: int = 3) -> Any:
    """`doc` with a few edits at random locations: a wrong value, a removed or an unknown field, null."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(min_value=1, max_value=max_mutations))):
        if not isinstance(doc, dict):
            break
        locations = list(_paths(doc))
        where = draw(st.sampled_from(locations))
        parent_path, leaf = where[:-1], where[-1] if where else None
        action = draw(st.sampled_from(["replace", "replace", "replace", "remove", "add", "null", "wrap"]))
        if not where:
            if action in ("replace", "wrap"):
                doc = draw(WEIRD_VALUES) if action == "replace" else [doc]
            continue
        parent = _get(doc, parent_path)
        if action == "replace":
            parent[leaf] = draw(WEIRD_VALUES)
        elif action == "null":
            parent[leaf] = None
        elif action == "wrap":
            parent[leaf] = [parent[leaf]]
        elif action == "remove":
            del parent[leaf]
        else:
            target = _get(doc, where)
            if isinstance(target, dict):
                target[draw(st.one_of(_TEXT, st.sampled_from(["status", "spec", "metadata", "$patch"])))] = draw(
                    WEIRD_VALUES
                )
            elif isinstance(target, list):
                target.append(draw(WEIRD_VALUES))
            else:
                parent[leaf] = draw(WEIRD_VALUES)
    return doc


# Edits of the fields every request touches first: metadata and the type header.
META_EDITS = st.sampled_from(
    [
        ("metadata", "name"),
        ("metadata", "generateName"),
        ("metadata", "namespace"),
        ("metadata", "uid"),
        ("metadata", "resourceVersion"),
        ("metadata", "generation"),
        ("metadata", "labels"),
        ("metadata", "annotations"),
        ("metadata", "finalizers"),
        ("metadata", "ownerReferences"),
        ("metadata", "deletionTimestamp"),
        ("metadata", "deletionGracePeriodSeconds"),
        ("metadata", "creationTimestamp"),
        ("metadata", "managedFields"),
        ("metadata",),
        ("apiVersion",),
        ("kind",),
        ("status",),
    ]
)
META_VALUES = st.one_of(
    WEIRD_VALUES,
    st.sampled_from(
        [
            {"fuzz": "yes", "a/b": "c"},
            {"": "x"},
            {"x": 1},
            ["orphan", "foregroundDeletion"],
            ["kubernetes"],
            ["a/b/c"],
            [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u", "controller": True}],
            [{"uid": 5}],
            "v1",
            "apps/v1",
            "v2",
            "Pod",
            "Status",
            "List",
            "fz-configmap",
            "fz-pod",
            "1",
            "999999999",
            "00000000-0000-0000-0000-000000000000",
        ]
    ).map(_copy),
)


@st.composite
def meta_edited(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    path = draw(META_EDITS)
    value = draw(META_VALUES)
    target = doc
    for part in path[:-1]:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    if draw(st.booleans()) and path[-1] in target:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@st.composite
def object_body(draw: st.DrawFn, rt: ResourceType, name: str, namespace: str) -> Any:
    """A body for POST/PUT of `rt`: valid, or a valid one with metadata and/or deeper edits."""
    doc = valid_object(rt, name, namespace if rt.namespaced else NAMESPACE)
    if not name:
        doc["metadata"].pop("name")
        doc["metadata"]["generateName"] = "fz-gen-"
    how = draw(st.sampled_from(["valid", "meta", "deep", "deep", "meta+deep", "other-kind"]))
    if how in ("meta", "meta+deep"):
        doc = draw(meta_edited(doc))
    if how in ("deep", "meta+deep"):
        doc = draw(mutated(doc))
    if how == "other-kind":
        other = draw(st.sampled_from(RESOURCES))
        doc = valid_object(other, name or "fz-x", namespace)
        if draw(st.booleans()):
            doc["apiVersion"], doc["kind"] = rt.group_version, rt.kind
    return doc


def _bomb(levels: int) -> bytes:
    """A YAML document whose aliases expand to 10**levels strings (a "billion laughs")."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines.append(f"data: {{x: *a{levels - 1}}}")
    return ("\n".join(lines) + "\n").encode()


RAW_BODIES = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"",
            b"   ",
            b"null",
            b"[]",
            b"{}",
            b'"str"',
            b"123",
            b"{",
            b'{"a":',
            b"\xff\xfe\x00",
            b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fz-raw"},"data":{"a":"\xff"}}',
            b'{"metadata":{"name":"dup"},"metadata":{"name":"dup2"}}',
            b'{"metadata":{"name":"fz-big"},"data":{"a":"1"},"spec":{"replicas":1e999}}',
            b'{"metadata":{"name":"fz-big"},"spec":{"replicas":123456789012345678901234567890}}',
            b"[" * 300 + b"]" * 300,
            b'{"a":' * 300 + b"1" + b"}" * 300,
            b"[" * 2000 + b"]" * 2000,
            b"\x6b\x38\x73\x00garbage",  # the protobuf magic, then nonsense
            b"k8s\x00\n\x0f\n\x02v1\x12\tConfigMap\x12\x00",
            b"\n\x02v1\x12\tConfigMap",
            _bomb(3),
            _bomb(9),
            b"a: !!set {x, y}\n",
            b"metadata: {name: fz-yaml}\ndata: !!binary aGVsbG8=\n",
            b"metadata: {name: fz-yaml, labels: {1: 2}}\n",
            b"metadata: {name: fz-yaml}\ndata: {a: 2024-01-01}\n",
            b"metadata: {name: fz-yaml}\nspec: {replicas: 123456789012345678901234567890}\n",
            b"metadata:\n  name: fz-yaml\n  name: twice\n",
            b"--- {}\n--- {}\n",
            b"? [a, b]\n: c\n",
            b"!!python/object:os.system {}\n",
        ]
    ),
)

CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json",
        "application/json",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
        "application/json; charset=utf-8",
        "text/plain",
        "",
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
    ]
)
PATCH_CONTENT_TYPES = st.sampled_from(
    [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ]
)
ACCEPTS = st.sampled_from(
    [
        "",
        "",
        "application/json",
        "*/*",
        "application/json;as=Table;v=v1;g=meta.k8s.io",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
        "application/json;as=PartialObjectMetadataList;v=v1beta1;g=meta.k8s.io",
        "application/json;as=Table;v=v9;g=other",
        "application/vnd.kubernetes.protobuf",
        "application/yaml",
        "text/html",
        "application/json;as=",
        ";;;,",
    ]
)

# Namespaces and names in URLs: the seeded ones (to reach existing objects), fresh valid ones, odd ones.
NAMESPACES = st.one_of(
    st.sampled_from([NAMESPACE] * 6 + [FUZZ_NAMESPACE, "kube-system", "kube-node-lease", "nope"]),
    ODD_STRINGS,
)
FRESH_NAMES = st.integers(min_value=0, max_value=30).map(lambda i: f"fz-new-{i}")


def names_for(rt: ResourceType) -> st.SearchStrategy[str]:
    known = [seed_name(rt)] * 4 + ([BOUND_POD] * 2 if rt.plural == "pods" else [])
    return st.one_of(st.sampled_from(known), FRESH_NAMES, ODD_STRINGS)


def quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


@st.composite
def odd_path(draw: st.DrawFn) -> str:
    """Paths around the served ones: unknown groups, versions and resources, odd segments, encodings."""
    rt = draw(st.sampled_from(RESOURCES))
    group = draw(st.sampled_from([rt.group, rt.group, "", "apps", "nope.example.com", "..", "%2e%2e", "API"]))
    version = draw(st.sampled_from([rt.version, rt.version, "v2", "v1beta1", "", "..", "V1", "v1%00"]))
    prefix = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    parts = [prefix]
    if draw(st.booleans()):
        parts.append("watch")
    if rt.namespaced or draw(st.booleans()):
        parts += ["namespaces", quote(draw(NAMESPACES))]
    parts.append(draw(st.sampled_from([rt.plural, rt.plural, rt.kind, rt.singular, "nope", "namespaces", ""])))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        parts.append(
            draw(
                st.one_of(
                    st.sampled_from(["..", ".", "%2e%2e", "%2F", "status", "scale", "binding", "x", "", "%00", "%"]),
                    ODD_STRINGS.map(quote),
                )
            )
        )
    path = "/".join(parts)
    return draw(st.sampled_from([path, path, path + "/", path.replace("/", "//", 1), "/" + path.lstrip("/")]))


# --- query parameters ------------------------------------------------------------------------------------------

LABEL_SELECTORS = st.one_of(
    st.sampled_from(
        [
            "fuzz=yes",
            "fuzz!=yes",
            "fuzz",
            "!fuzz",
            "fuzz in (yes,no)",
            "fuzz notin ()",
            "fuzz in ()",
            "app=fz,fuzz=yes",
            "a.b/c=d",
            "a/b/c=d",
            "x>1",
            "x<a",
            "=",
            "==",
            "!",
            ",",
            "fuzz=yes,",
            "(",
            "a=" + "b" * 70,
            "k" * 70 + "=v",
            "fuzz in (yes",
            "fuzz=yes)",
            "fuzz=a=b",
        ]
    ),
    _TEXT,
)
FIELD_SELECTORS = st.one_of(
    st.sampled_from(
        [
            "metadata.name=fz-pod",
            "metadata.name!=fz-pod",
            "metadata.name==x",
            "metadata.namespace=default",
            "spec.nodeName=" + NODE,
            "spec.nodeName=",
            "status.phase=Running",
            "involvedObject.name=fz-pod",
            "type=Opaque",
            "spec.unschedulable=false",
            "foo.bar=1",
            "metadata.name",
            "=x",
            "metadata.name=a,metadata.name=b",
            "metadata.name=a\\,b",
            "metadata.name=a\\",
            "metadata.name=\\x",
            "metadata.labels.fuzz=yes",
            ",",
            "metadata.name in (a)",
        ]
    ),
    _TEXT,
)
RESOURCE_VERSIONS = st.one_of(
    st.sampled_from(["", "0", "1", "2", "999999999", "-1", "abc", "1.5", "18446744073709551616", " 1"]),
    st.integers(min_value=0, max_value=10**20).map(str),
)


def _continue_token(revision: int, start: str, version: str = "meta.k8s.io/v1") -> str:
    raw = dumps({"v": version, "rv": revision, "start": start})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


CONTINUE_TOKENS = st.one_of(
    st.sampled_from(["", "x", "!!!", "e30", base64.urlsafe_b64encode(b"[]").decode(), "eyJ2Ijoi"]),
    st.builds(
        _continue_token,
        st.one_of(st.integers(min_value=-5, max_value=10**6), st.just(2**70)),
        st.sampled_from(["fz-a\x00", "", "../x", "/abs", "default/fz-x", "a/../../b", "\x00"]),
        st.sampled_from(["meta.k8s.io/v1", "v2", ""]),
    ),
    _TEXT,
)
BOOL_TEXTS = st.sampled_from(["true", "false", "1", "0", "True", "", "yes", "2"])
INT_TEXTS = st.one_of(
    st.sampled_from(["0", "1", "-1", "", "abc", "1.5", "9223372036854775808", "-9223372036854775809"]),
    st.integers(min_value=-10, max_value=10**12).map(str),
)


@st.composite
def query_params(draw: st.DrawFn, family: str) -> tuple[tuple[str, str], ...]:
    """A few query parameters fitting the request family, some of them wrong."""
    pool: dict[str, st.SearchStrategy[str]] = {
        "pretty": BOOL_TEXTS,
        "dryRun": st.sampled_from(["All", "All", "None", "", "all"]),
        "fieldManager": st.sampled_from(["fuzzer", "", "x" * 200, "\u00e9"]),
        "fieldValidation": st.sampled_from(["Strict", "Warn", "Ignore", "Bogus"]),
    }
    if family in ("list", "watch", "deletecollection"):
        pool |= {
            "labelSelector": LABEL_SELECTORS,
            "fieldSelector": FIELD_SELECTORS,
            "resourceVersion": RESOURCE_VERSIONS,
            "resourceVersionMatch": st.sampled_from(["", "Exact", "NotOlderThan", "exact", "Bogus"]),
            "limit": INT_TEXTS,
            "continue": CONTINUE_TOKENS,
            "timeoutSeconds": st.sampled_from(["0", "1", "-1", "abc", "99999999999"]),
            "allowWatchBookmarks": BOOL_TEXTS,
            "sendInitialEvents": BOOL_TEXTS,
            "watch": BOOL_TEXTS,
            "includeObject": st.sampled_from(["None", "Metadata", "Object", "Bogus"]),
        }
    if family in ("get", "watch"):
        pool |= {"resourceVersion": RESOURCE_VERSIONS, "watch": BOOL_TEXTS}
    if family in ("delete", "deletecollection", "subresource"):
        pool |= {
            "gracePeriodSeconds": INT_TEXTS,
            "propagationPolicy": st.sampled_from(["Orphan", "Background", "Foreground", "", "Bogus"]),
            "orphanDependents": BOOL_TEXTS,
        }
    if family == "patch":
        pool |= {"force": BOOL_TEXTS}
    keys = draw(st.lists(st.sampled_from(sorted(pool)), max_size=4, unique=True))
    params = [(key, draw(pool[key])) for key in keys]
    if family == "watch":
        # A watch that is accepted is read for WATCH_READ_SECONDS; let the server end most of them by itself.
        params = [p for p in params if p[0] != "timeoutSeconds"]
        params.append(("timeoutSeconds", draw(st.sampled_from(["1", "1", "0", "-1", "x", "3600"]))))
        if draw(st.integers(min_value=0, max_value=3)):
            params.append(("watch", "true"))
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        params.append(draw(st.sampled_from([("limit", "1"), ("limit", "2")])))  # repeated parameters
    return tuple(params)


# --- patches ---------------------------------------------------------------------------------------------------

POINTERS = st.one_of(
    st.sampled_from(
        [
            "",
            "/",
            "/metadata",
            "/metadata/name",
            "/metadata/namespace",
            "/metadata/uid",
            "/metadata/resourceVersion",
            "/metadata/generation",
            "/metadata/labels",
            "/metadata/labels/fuzz",
            "/metadata/labels/a~1b",
            "/metadata/annotations/x",
            "/metadata/finalizers",
            "/metadata/finalizers/0",
            "/metadata/finalizers/-",
            "/metadata/deletionTimestamp",
            "/metadata/ownerReferences/0/uid",
            "/apiVersion",
            "/kind",
            "/spec",
            "/spec/containers/0/image",
            "/spec/containers/-",
            "/spec/containers/1",
            "/spec/containers/99",
            "/spec/containers/-1",
            "/spec/containers/01",
            "/spec/nodeName",
            "/spec/replicas",
            "/spec/selector",
            "/spec/ports/0/port",
            "/spec/holderIdentity",
            "/status",
            "/status/phase",
            "/data",
            "/data/a",
            "/data/~0",
            "/data/~2",
            "/endpoints/0/addresses/0",
            "/subsets/0/addresses",
            "metadata/name",
            "/a/b/c/d",
        ]
    ),
    _TEXT.map(lambda s: "/" + s),
)
JSON_PATCH_OPS = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "bogus", ""]), "path": POINTERS},
    optional={"value": META_VALUES, "from": POINTERS},
)
JSON_PATCHES = st.one_of(
    st.lists(JSON_PATCH_OPS, min_size=1, max_size=4),
    st.lists(st.one_of(JSON_PATCH_OPS, WEIRD_VALUES), max_size=3),
    WEIRD_VALUES,
)
SMP_DIRECTIVES = st.sampled_from(
    [
        {"$patch": "delete"},
        {"$patch": "replace"},
        {"$patch": "merge"},
        {"$patch": "bogus"},
        {"$patch": 5},
        {"spec": {"$patch": "delete"}},
        {"spec": {"containers": [{"name": "c", "$patch": "delete"}]}},
        {"spec": {"containers": [{"$patch": "delete"}]}},
        {"spec": {"containers": [{"name": "c", "$patch": "replace"}]}},
        {"spec": {"containers": [{"name": "new", "image": "x"}], "$setElementOrder/containers": [{"name": "new"}]}},
        {"spec": {"$setElementOrder/containers": [{"name": 5}, "x"]}},
        {"spec": {"$setElementOrder/containers": "x"}},
        {"spec": {"containers": {"name": "c"}}},
        {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": "x"}]}]}},
        {"spec": {"containers": [{"image": "no-name"}]}},
        {"spec": {"containers": [5, "x", None]}},
        {"spec": {"ports": [{"port": 80, "$patch": "delete"}]}},
        {"spec": {"ports": [{"port": "80"}]}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        {"spec": {"strategy": {"$retainKeys": "type"}}},
        {"spec": {"$retainKeys": [5]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}},
        {"metadata": {"finalizers": ["a/b"], "$setElementOrder/finalizers": ["a/b", "c/d"]}},
        {"metadata": {"ownerReferences": [{"uid": "u", "$patch": "delete"}]}},
        {"metadata": {"ownerReferences": [{"name": "no-uid"}]}},
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        {"status": {"conditions": [{"status": "True"}]}},
        {"status": {"conditions": [{"type": ["x"], "status": "True"}]}},
        {"status": {"conditions": "Ready"}},
        {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": None}]}},
        {"status": {"$patch": "replace", "phase": "Running"}},
        {"metadata": {"$patch": "delete"}},
        {"metadata": None},
        {"spec": None},
    ]
).map(_copy)


@st.composite
def patch_request_body(draw: st.DrawFn, rt: ResourceType, name: str) -> tuple[str, bytes]:
    """(content type, body) of a PATCH: JSON patch ops, merge patches and strategic patches with directives."""
    content_type = draw(st.one_of(PATCH_CONTENT_TYPES, PATCH_CONTENT_TYPES, CONTENT_TYPES))
    if draw(st.integers(min_value=0, max_value=15)) == 0:
        return content_type, draw(RAW_BODIES)
    if content_type == "application/json-patch+json":
        doc: Any = draw(JSON_PATCHES)
    elif content_type == "application/apply-patch+yaml" and draw(st.booleans()):
        obj = draw(object_body(rt, name, NAMESPACE))
        return content_type, dumps(obj)  # JSON is YAML
    else:
        base = valid_object(rt, name)
        base.pop("apiVersion")
        base.pop("kind")
        choice = draw(st.sampled_from(["directive", "meta", "deep", "valid", "weird", "labels"]))
        if choice == "directive":
            doc = draw(SMP_DIRECTIVES)
        elif choice == "meta":
            doc = {"metadata": {draw(META_EDITS)[-1]: draw(META_VALUES)}}
        elif choice == "deep":
            doc = draw(mutated(base))
        elif choice == "valid":
            doc = {"metadata": {"labels": {"fuzz": draw(st.sampled_from(["yes", "no", "again"]))}}}
        elif choice == "labels":
            doc = {"metadata": {"labels": {draw(_TEXT): draw(st.one_of(_TEXT, st.none()))}}}
        else:
            doc = draw(WEIRD_VALUES)
    return content_type, dumps(doc)


DELETE_OPTIONS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "kind": st.sampled_from(["DeleteOptions", "Pod", ""]),
            "apiVersion": st.sampled_from(["v1", "meta.k8s.io/v1", "bogus"]),
            "gracePeriodSeconds": st.one_of(st.integers(min_value=-5, max_value=10**6), WEIRD_VALUES),
            "propagationPolicy": st.one_of(st.sampled_from(["Orphan", "Background", "Foreground", "x"]), WEIRD_VALUES),
            "orphanDependents": st.one_of(st.booleans(), WEIRD_VALUES),
            "preconditions": st.one_of(
                st.fixed_dictionaries({}, optional={"uid": META_VALUES, "resourceVersion": META_VALUES}), WEIRD_VALUES
            ),
            "dryRun": st.one_of(st.just(["All"]), st.just("All"), WEIRD_VALUES),
        },
    ),
    WEIRD_VALUES,
)


# --- requests ---------------------------------------------------------------------------------------------------

FAMILIES = st.sampled_from(
    ["create"] * 5
    + ["update"] * 4
    + ["patch"] * 6
    + ["get"] * 2
    + ["list"] * 2
    + ["watch"] * 2
    + ["delete"] * 3
    + ["deletecollection"]
    + ["subresource"] * 4
    + ["raw"] * 3
)


def item_path(rt: ResourceType, namespace: str, name: str, sub: str = "") -> str:
    base = collection_path(rt, quote(namespace))
    path = f"{base}/{quote(name)}"
    if not rt.namespaced and rt.plural == "namespaces":
        path = f"{base}/{quote(name)}"
    return f"{path}/{sub}" if sub else path


@st.composite
def requests(draw: st.DrawFn) -> FuzzRequest:
    """One request; see the module docstring for the mix."""
    family = draw(FAMILIES)
    rt = draw(st.sampled_from(RESOURCES))
    namespace = draw(NAMESPACES)
    name = draw(names_for(rt))
    query = draw(query_params(family))
    headers: list[tuple[str, str]] = []
    accept = draw(ACCEPTS)
    if accept:
        headers.append(("Accept", accept))
    body: bytes | None = None

    json_body = dumps

    def with_content_type(default: str = "application/json") -> None:
        content_type = draw(st.one_of(st.just(default), st.just(default), CONTENT_TYPES))
        if content_type:
            headers.append(("Content-Type", content_type))

    if family == "create":
        method, path = "POST", collection_path(rt, quote(namespace))
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            body = draw(RAW_BODIES)
        else:
            body = json_body(draw(object_body(rt, draw(st.one_of(FRESH_NAMES, names_for(rt), st.just(""))), namespace)))
        with_content_type()
    elif family == "update":
        method, path = "PUT", item_path(rt, namespace, name)
        doc = draw(object_body(rt, name, namespace))
        if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict) and draw(st.booleans()):
            doc["metadata"]["resourceVersion"] = draw(RESOURCE_VERSIONS)
        body = json_body(doc) if draw(st.integers(min_value=0, max_value=9)) else draw(RAW_BODIES)
        with_content_type()
    elif family == "patch":
        method, path = "PATCH", item_path(rt, namespace, name)
        if draw(st.integers(min_value=0, max_value=3)) == 0 and "status" in rt.subresources:
            path += "/status"
        content_type, body = draw(patch_request_body(rt, name))
        if content_type:
            headers.append(("Content-Type", content_type))
    elif family in ("get", "watch") and draw(st.booleans()):
        method, path = "GET", item_path(rt, namespace, name)
    elif family in ("get", "list", "watch"):
        method, path = "GET", collection_path(rt, quote(namespace))
        if family == "watch" and draw(st.booleans()):
            path = path.replace(f"/{rt.version}/", f"/{rt.version}/watch/", 1)
    elif family == "delete":
        method, path = "DELETE", item_path(rt, namespace, name)
        options = draw(DELETE_OPTIONS)
        if options is not None:
            body = json_body(options)
            with_content_type()
    elif family == "deletecollection":
        method, path = "DELETE", collection_path(rt, quote(namespace))
        if not any(k in ("labelSelector", "fieldSelector") for k, _ in query):
            query = (*query, ("labelSelector", "fuzz=nothing-has-this"))
    elif family == "subresource":
        sub = draw(st.sampled_from([*rt.subresources, "status", "scale", "binding", "eviction", "finalize", "nope"]))
        method = draw(st.sampled_from(["GET", "PUT", "PATCH", "POST", "DELETE"]))
        path = item_path(rt, namespace, name, sub)
        if method == "PATCH":
            content_type, body = draw(patch_request_body(rt, name))
            if content_type:
                headers.append(("Content-Type", content_type))
        elif method in ("PUT", "POST"):
            if sub == "binding":
                doc = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name}, "target": {"name": NODE}}
            elif sub == "eviction":
                doc = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}
            elif sub == "scale":
                doc = {
                    "apiVersion": "autoscaling/v1",
                    "kind": "Scale",
                    "metadata": {"name": name},
                    "spec": {"replicas": 2},
                }
            elif sub == "finalize":
                doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {"finalizers": []}}
            else:
                doc = valid_object(rt, name, namespace)
            how = draw(st.sampled_from(["valid", "meta", "deep", "raw"]))
            if how == "meta":
                doc = draw(meta_edited(doc))
            elif how == "deep":
                doc = draw(mutated(doc))
            body = json_body(doc) if how != "raw" else draw(RAW_BODIES)
            with_content_type()
    else:  # raw: any method on any path with any body
        method = draw(
            st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND"])
        )
        path = draw(
            st.one_of(
                odd_path(),
                st.sampled_from(
                    [
                        "/",
                        "/api",
                        "/apis",
                        "/api/v1",
                        "/apis/apps",
                        "/version",
                        "/healthz",
                        "/readyz",
                        "/livez",
                        "/metrics",
                        "/openapi/v2",
                        "/openapi/v3",
                        "/openapi/v3/api/v1",
                        "/apis/apps/v1",
                        "/%",
                        "/api/v1/%ZZ",
                        "/..",
                        "/api/v1/namespaces/default/pods/..%2f..%2fx",
                    ]
                ),
            )
        )
        if method in ("POST", "PUT", "PATCH") or draw(st.integers(min_value=0, max_value=4)) == 0:
            body = draw(st.one_of(RAW_BODIES, st.builds(json_body, object_body(rt, name, namespace))))
            with_content_type()
    return FuzzRequest(family, method, path, query, tuple(headers), body)


# --- storage snapshots ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keyspace:
    """etcd's keyspace at one moment: its revision and a digest of every key, value and mod revision."""

    revision: int
    digest: str
    keys: frozenset[str]

    def changed_keys(self, other: Keyspace, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
        return sorted(k for k in self.keys | other.keys if before.get(k) != after.get(k))


# --- the target and the oracle ------------------------------------------------------------------------------


@dataclass
class Outcome:
    status: int | None  # None: no answer (timeout, connection error)
    reason: str = ""
    elapsed: float = 0.0
    error: str = ""
    body: bytes = b""
    content_type: str = ""
    watch_lines: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class Finding:
    """A broken rule: what kind of finding (e.g. "5xx", "storage-changed"), the request and what was seen."""

    kind: str
    request: FuzzRequest
    detail: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.detail}\n{self.request.describe()}"


class _ErrorLog(logging.Handler):
    """Collects the server's error logs (and the API server's warnings) while a request is served."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.name.startswith("kubemark.master.apiserver"):
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                frames = traceback.extract_tb(record.exc_info[2])
                where = [f"{Path(f.filename).name}:{f.lineno}" for f in frames if "kubemark" in f.filename]
                text += f": {record.exc_info[1]!r} at {' < '.join(reversed(where[-4:]))}"
            self.records.append(f"{record.name}: {text}"[:2000])


def _expected_504(outcome: Outcome, status: dict[str, Any]) -> bool:
    """kube-apiserver's answer to a resourceVersion the cache has not reached: 504 with ResourceVersionTooLarge."""
    causes = (status.get("details") or {}).get("causes") or []
    return outcome.status == 504 and (
        any(c.get("reason") == "ResourceVersionTooLarge" for c in causes if isinstance(c, dict))
        or "Too large resource version" in str(status.get("message", ""))
    )


@dataclass
class Stats:
    """What a run saw: requests, outcomes (method, status, reason), findings by kind, storage writes."""

    requests: int = 0
    outcomes: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    families: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    first_findings: list[str] = field(default_factory=list)
    server_errors: int = 0  # 5xx answers other than the expected 504
    expected_504: int = 0
    rejected: int = 0
    rejected_with_storage_change: int = 0
    accepted_writes: int = 0
    reseeds: int = 0
    max_elapsed: float = 0.0

    def add(self, request: FuzzRequest, outcome: Outcome, findings: list[Finding]) -> None:
        self.requests += 1
        self.families[request.family] += 1
        status = "timeout" if outcome.status is None else str(outcome.status)
        self.outcomes[(request.method, status, outcome.reason)] += 1
        self.max_elapsed = max(self.max_elapsed, outcome.elapsed)
        for finding in findings:
            self.findings[finding.kind] += 1
            if len(self.first_findings) < 20:
                self.first_findings.append(str(finding))

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "families": dict(sorted(self.families.items())),
            "distinct_outcomes": len(self.outcomes),
            "outcomes": {" ".join(k): v for k, v in sorted(self.outcomes.items())},
            "server_errors_5xx": self.server_errors,
            "expected_504_resource_version_too_large": self.expected_504,
            "rejected": self.rejected,
            "rejected_with_storage_change": self.rejected_with_storage_change,
            "accepted_writes": self.accepted_writes,
            "reseeds": self.reseeds,
            "max_request_seconds": round(self.max_elapsed, 3),
            "findings": dict(self.findings),
            "first_findings": self.first_findings,
        }


class FuzzServer:
    """The API server under test (own thread and loop, etcd storage) plus the client side of the fuzzer."""

    def __init__(self, data_dir: Path, *, request_timeout: float = REQUEST_TIMEOUT) -> None:
        self.data_dir = data_dir
        self.request_timeout = request_timeout
        self.stats = Stats()
        self.loop = asyncio.new_event_loop()
        self.etcd: EtcdServer | None = None
        self.server: APIServer | None = None
        self._server_loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._storage: EtcdStorage | None = None
        self._log = _ErrorLog()
        self._last_kvs: dict[str, Any] = {}
        self._snapshot: Keyspace | None = None

    # --- lifecycle ---

    def __enter__(self) -> FuzzServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        # etcd is started from this (main) thread so that it dies with the test process if that is killed.
        self.etcd = EtcdServer(self.data_dir / "etcd", unsafe_no_fsync=True)
        self.loop.run_until_complete(self.etcd.start())
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, args=(ready, failure), name="fuzz-apiserver", daemon=True)
        self._thread.start()
        if not ready.wait(60) or failure:
            raise RuntimeError(f"the API server did not start: {failure}")
        logging.getLogger().addHandler(self._log)
        self.loop.run_until_complete(self._open_client())
        self.reseed()

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._server_loop = loop
        assert self.etcd is not None
        metrics = APIServerMetrics(process_metrics=False)
        config = dataclasses.replace(
            etcd_config(self.data_dir / "unused"),
            etcd_endpoint=self.etcd.endpoint,
            freshness_timeout=0.5,
            metrics=metrics,
            middlewares=build_filters(
                authenticator=None, authorizer=None, metrics=metrics, limiter=PriorityAndFairness(600, metrics=metrics)
            ),
            extra_routes=[metrics_route(metrics)],
            shutdown_timeout=1.0,
        )
        server = APIServer(config)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        self.server = server
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(server.stop())
            loop.close()

    async def _open_client(self) -> None:
        assert self.server is not None and self.etcd is not None
        self._session = aiohttp.ClientSession(
            base_url=self.server.url, timeout=aiohttp.ClientTimeout(total=self.request_timeout)
        )
        self._storage = EtcdStorage(self.etcd.endpoint)
        await self._storage.start()

    def stop(self) -> None:
        logging.getLogger().removeHandler(self._log)

        async def close_client() -> None:
            if self._session is not None:
                await self._session.close()
            if self._storage is not None:
                await self._storage.close()

        with contextlib.suppress(Exception):
            self.loop.run_until_complete(close_client())
        if self._server_loop is not None and self._thread is not None:
            self._server_loop.call_soon_threadsafe(self._server_loop.stop)
            self._thread.join(30)
        if self.etcd is not None:
            self.loop.run_until_complete(self.etcd.stop())
            self.etcd = None
        self.loop.close()

    # --- storage ---

    async def _keyspace(self) -> tuple[Keyspace, dict[str, Any]]:
        assert self._storage is not None
        result = await self._storage.list("/", limit=0)
        entries = {kv.key: (kv.value, kv.mod_revision) for kv in result.kvs}
        digest = hashlib.sha256()
        for key in sorted(entries):
            value, mod = entries[key]
            digest.update(key.encode() + b"\0" + value + b"\0" + str(mod).encode() + b"\n")
        return Keyspace(result.revision, digest.hexdigest(), frozenset(entries)), entries

    def keyspace(self) -> Keyspace:
        return self.loop.run_until_complete(self._keyspace())[0]

    # --- seeding ---

    def reseed(self) -> None:
        """(Re-)create every seed object that is gone, so that requests keep finding objects to act on."""
        space, _ = self.loop.run_until_complete(self._keyspace())
        for rt, obj in seed_objects():
            md = obj["metadata"]
            if rt.storage_key(md.get("namespace", ""), md["name"]) in space.keys:
                continue
            status, payload = self.loop.run_until_complete(self._json("POST", collection_path(rt), obj))
            if status not in (201, 409, 403):  # 403: its namespace is being deleted (kept by the fuzzer's own ops)
                raise AssertionError(f"seeding {rt.plural}/{md['name']} failed: {status} {payload}")
            self.stats.reseeds += 1
        self._snapshot = None

    async def _json(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        assert self._session is not None
        async with self._session.request(
            method, path, data=codec.dumps(body), headers={"Content-Type": "application/json"}
        ) as resp:
            return resp.status, await resp.read()

    # --- one request ---

    async def _send(self, request: FuzzRequest) -> Outcome:
        assert self._session is not None
        url = yarl.URL(self.server.url + request.url, encoded=True)  # type: ignore[union-attr]
        start = time.monotonic()
        outcome = Outcome(None)
        try:
            async with asyncio.timeout(self.request_timeout):
                async with self._session.request(
                    request.method,
                    url,
                    data=request.body,
                    headers=dict(request.headers) or None,
                    skip_auto_headers=("Content-Type",)
                    if not any(k == "Content-Type" for k, _ in request.headers)
                    else (),
                    allow_redirects=False,
                ) as resp:
                    outcome.status = resp.status
                    outcome.content_type = resp.headers.get("Content-Type", "")
                    streaming = resp.status == 200 and "watch" in _verb_of(request)
                    if streaming:
                        deadline = time.monotonic() + WATCH_READ_SECONDS
                        while time.monotonic() < deadline:
                            try:
                                line = await asyncio.wait_for(resp.content.readline(), deadline - time.monotonic())
                            except TimeoutError:
                                break
                            if not line:
                                break
                            outcome.watch_lines.append(line)
                    else:
                        outcome.body = await resp.read()
        except TimeoutError:
            outcome.error = f"no complete answer within {self.request_timeout} s"
        except aiohttp.ClientError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.elapsed = time.monotonic() - start
        return outcome

    def run(self, request: FuzzRequest) -> list[Finding]:
        """Send `request`, check every rule, record the outcome; returns the findings (empty when all held)."""
        return self.loop.run_until_complete(self._run(request))

    async def _run(self, request: FuzzRequest) -> list[Finding]:
        before, before_kvs = (self._snapshot, self._last_kvs) if self._snapshot is not None else await self._keyspace()
        self._log.records.clear()
        outcome = await self._send(request)
        await asyncio.sleep(0)
        after, after_kvs = await self._keyspace()
        self._snapshot, self._last_kvs = after, after_kvs
        findings = self._check(request, outcome, before, after, before_kvs, after_kvs)
        self.stats.add(request, outcome, findings)
        return findings

    def _check(
        self,
        request: FuzzRequest,
        outcome: Outcome,
        before: Keyspace,
        after: Keyspace,
        before_kvs: dict[str, Any],
        after_kvs: dict[str, Any],
    ) -> list[Finding]:
        found: list[Finding] = []

        def finding(kind: str, detail: str) -> None:
            found.append(Finding(kind, request, detail))

        status: dict[str, Any] = {}
        if outcome.status is None:
            finding("no-answer", outcome.error)
        else:
            if outcome.body and outcome.status >= 300 and request.method != "HEAD":
                try:
                    decoded = codec.loads(outcome.body)
                except codec.JSONDecodeError:
                    decoded = None
                if isinstance(decoded, dict):
                    status = decoded
            outcome.reason = str(status.get("reason", "")) if status else ""
            if outcome.status >= 500:
                if _expected_504(outcome, status):
                    self.stats.expected_504 += 1
                else:
                    self.stats.server_errors += 1
                    finding("5xx", f"{outcome.status}: {outcome.body[:500]!r}")
            if outcome.status >= 300 and request.method != "HEAD":
                problems = _status_problems(outcome, status)
                if problems:
                    finding("not-a-status", f"{outcome.status} {problems}: {outcome.body[:300]!r}")
            if 200 <= outcome.status < 300 and request.method != "HEAD":
                found.extend(Finding(k, request, d) for k, d in _success_problems(request, outcome))
        verb = _verb_of(request)
        accepted_write = (
            outcome.status is not None
            and 200 <= outcome.status < 300
            and verb in MUTATING_VERBS
            and ("dryRun", "All") not in request.query
        )
        # An unanswered request may still have been carried out (the server did not hang up): no judgement then.
        if before.digest != after.digest or before.revision != after.revision:
            if accepted_write:
                self.stats.accepted_writes += 1
            elif outcome.status is not None:
                changed = before.changed_keys(after, before_kvs, after_kvs)
                if outcome.status >= 300:
                    self.stats.rejected_with_storage_change += 1
                finding(
                    "storage-changed",
                    f"{outcome.status} ({verb}) changed storage: revision {before.revision} -> {after.revision}, "
                    f"keys {changed[:5]}",
                )
        if outcome.status is not None and outcome.status >= 400:
            self.stats.rejected += 1
        if self._log.records:
            finding("server-logged", "; ".join(self._log.records[:3]))
        return found


def _first_values(query: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The query as the server reads it: the first value of a repeated parameter (aiohttp's and Go's Get)."""
    first: dict[str, str] = {}
    for key, value in query:
        first.setdefault(key, value)
    return first


def _verb_of(request: FuzzRequest) -> str:
    path = urllib.parse.unquote(request.path)
    try:
        return parse_request_info(request.method, path, _first_values(request.query)).verb
    except Exception:  # the server's own parse fails too: its answer (a 5xx) is the finding
        return "?"


def _status_problems(outcome: Outcome, status: dict[str, Any]) -> str:
    if not outcome.content_type.startswith("application/json"):
        return f"content type {outcome.content_type!r}"
    if not status:
        return "body is not a JSON object"
    if status.get("kind") != "Status" or status.get("apiVersion") != "v1":
        return f"kind/apiVersion {status.get('kind')!r}/{status.get('apiVersion')!r}"
    if status.get("code") != outcome.status:
        return f"code {status.get('code')!r} != HTTP {outcome.status}"
    if not isinstance(status.get("reason"), str) or not status["reason"]:
        return "no reason"
    if status.get("status") != "Failure" or not isinstance(status.get("message"), str):
        return "status/message"
    return ""


def _success_problems(request: FuzzRequest, outcome: Outcome) -> list[tuple[str, str]]:
    """A 2xx must be JSON; a watch a stream of events (errors among them as Status); an object the named one."""
    problems: list[tuple[str, str]] = []
    if outcome.watch_lines:
        for line in outcome.watch_lines:
            try:
                event = codec.loads(line)
            except codec.JSONDecodeError:
                problems.append(("bad-watch-event", f"not JSON: {line[:200]!r}"))
                continue
            if not isinstance(event, dict) or "type" not in event or not isinstance(event.get("object"), dict):
                problems.append(("bad-watch-event", f"{line[:200]!r}"))
            elif event["type"] == "ERROR":
                code = event["object"].get("code")
                if event["object"].get("kind") != "Status" or not isinstance(code, int) or code >= 500:
                    problems.append(("watch-error-event", f"{line[:300]!r}"))
        return problems
    if not outcome.body:
        return problems
    if not outcome.content_type.startswith("application/json"):
        return problems  # e.g. /metrics, /healthz
    try:
        obj = codec.loads(outcome.body)
    except codec.JSONDecodeError:
        return [("bad-json", f"{outcome.body[:200]!r}")]
    try:
        info = parse_request_info(request.method, urllib.parse.unquote(request.path), _first_values(request.query))
    except Exception:
        return problems
    if not info.is_resource_request or info.subresource or not isinstance(obj, dict):
        return problems
    if obj.get("kind") == "Status" or str(obj.get("kind", "")).endswith("List") or obj.get("kind") == "Table":
        return problems
    md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    rt = _RT.get((info.group, info.resource))
    if rt is None or obj.get("kind") not in (rt.kind, "PartialObjectMetadata"):
        return [("wrong-object", f"{info.group}/{info.resource}: answered kind {obj.get('kind')!r}")]
    # The object acted on must be the one the URL named (which is what authorization was asked about).
    if info.name and md.get("name") != info.name:
        problems.append(("wrong-object", f"URL names {info.name!r}, answer is {md.get('name')!r}"))
    expected_ns = info.namespace if rt.namespaced else ""
    if rt.plural == "namespaces":
        expected_ns = ""
        if info.namespace and info.name and info.namespace != info.name:
            problems.append(("wrong-object", f"namespace {info.name!r} served under namespaces/{info.namespace}"))
    if (md.get("namespace") or "") != expected_ns:
        problems.append(("wrong-object", f"URL namespace {expected_ns!r}, answer in {md.get('namespace')!r}"))
    return problems

"""Regressions found by fuzzing the API server (tests/security): malformed requests get a 4xx Status, never a 500,
a hang or an out-of-memory; and the server keeps serving afterwards."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from kubemark import codec
from kubemark.master.apiserver.filters import build_filters
from kubemark.master.apiserver.server import APIServer, APIServerConfig

if TYPE_CHECKING:
    from conftest import Rest

CMS = "/api/v1/namespaces/default/configmaps"


def is_status(code: int, body: Any, expected: int) -> bool:
    return code == expected and isinstance(body, dict) and body.get("kind") == "Status" and body["code"] == expected


async def alive(api: Rest) -> bool:
    code, _ = await api.call("GET", CMS)
    return code == 200


async def test_yaml_alias_bomb_is_refused_without_expanding_it(api: Rest) -> None:
    # A "billion laughs": ~700 bytes whose aliases expand to 10**9 strings. It used to be expanded when the object
    # was copied: the API server grew past 20 GB and was killed.
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = ("\n".join(lines) + "\nmetadata: {name: bomb}\ndata: {x: *a8}\n").encode()
    start = time.monotonic()
    code, body = await api.call("POST", CMS, raw=bomb, content_type="application/yaml")
    assert is_status(code, body, 400) and "excessive aliasing" in body["message"]
    assert time.monotonic() - start < 5
    # Aliases that expand moderately are still fine.
    small = b"x: &v hello\nmetadata: {name: aliased}\ndata: {a: *v, b: *v}\n"
    code, body = await api.call("POST", CMS, raw=small, content_type="application/yaml")
    assert code == 201 and body["data"] == {"a": "hello", "b": "hello"}


@pytest.mark.parametrize(
    "doc",
    [
        b"metadata: {name: y}\ndata: !!set {a, b}\n",
        b"metadata: {name: y}\ndata: {a: !!binary aGVsbG8=}\n",
        b"metadata: {name: y}\ndata: {a: 123456789012345678901234567890}\n",
        b"? [a, b]\n: c\n",
    ],
    ids=["set", "binary", "huge-int", "list-key"],
)
async def test_yaml_values_json_cannot_carry_are_a_400(api: Rest, doc: bytes) -> None:
    code, body = await api.call("POST", CMS, raw=doc, content_type="application/yaml")
    assert is_status(code, body, 400), (code, body)
    assert await alive(api)


async def test_yaml_dates_become_strings(api: Rest) -> None:
    doc = b"metadata: {name: dated, annotations: {when: 2024-01-02}}\ndata: {a: b}\n"
    code, body = await api.call("POST", CMS, raw=doc, content_type="application/yaml")
    assert code == 201 and body["metadata"]["annotations"] == {"when": "2024-01-02"}


async def test_deeply_nested_json_is_a_400_not_a_500(api: Rest) -> None:
    # 300 levels decode, but cannot be encoded again (the encoder stops at 254): it used to answer 500.
    deep = b'{"a":' * 300 + b"1" + b"}" * 300
    raw = b'{"metadata":{"name":"deep"},"data":{"a":"1"},"extra":' + deep + b"}"
    code, body = await api.call("POST", CMS, raw=raw)
    assert is_status(code, body, 400) and "nested deeper" in body["message"]
    assert (await api.call("POST", CMS, {"metadata": {"name": "shallow"}, "data": {"a": "1"}}))[0] == 201
    # Nor may JSON patches push an object past the limit, a value at a time.
    value: Any = 1
    for _ in range(60):
        value = {"a": value}
    ops = [{"op": "add", "path": "/extra", "value": value}]
    code, _ = await api.call("PATCH", f"{CMS}/shallow", ops, content_type="application/json-patch+json")
    assert code == 200
    path = "/extra" + "/a" * 59
    code, body = await api.call(
        "PATCH",
        f"{CMS}/shallow",
        [{"op": "replace", "path": path, "value": value}],
        content_type="application/json-patch+json",
    )
    assert is_status(code, body, 422) and "nested deeper" in body["message"]
    assert await alive(api)


@pytest.mark.parametrize(
    ("path", "metadata"),
    [
        ("/api/v1/namespaces", {"name": [1]}),
        ("/apis/batch/v1/namespaces/default/jobs", {"name": {"k": 0}}),
        (CMS, {"name": "ok", "namespace": 5}),
        (CMS, {"name": "ok", "labels": ["a"]}),
        (CMS, {"name": "ok", "annotations": {"a": 1}}),
        (CMS, {"name": "ok", "finalizers": "x"}),
        (CMS, {"name": "ok", "ownerReferences": [{"uid": 5}]}),
        (CMS, {"name": "ok", "generation": "1"}),
    ],
)
async def test_wrongly_typed_metadata_is_a_400(api: Rest, path: str, metadata: dict[str, Any]) -> None:
    code, body = await api.call("POST", path, {"metadata": metadata})
    assert is_status(code, body, 400) and "cannot unmarshal" in body["message"], (code, body)


async def test_patch_that_breaks_metadata_types_is_refused(api: Rest) -> None:
    assert (await api.call("POST", CMS, {"metadata": {"name": "p"}}))[0] == 201
    for doc in ({"metadata": {"labels": ["x"]}}, {"metadata": {"name": 5}}, {"metadata": [1]}):
        code, body = await api.call("PATCH", f"{CMS}/p", doc, content_type="application/merge-patch+json")
        assert 400 <= code < 500 and body["kind"] == "Status", (doc, code, body)


async def test_wrongly_typed_delete_options_are_a_400(api: Rest) -> None:
    assert (await api.call("POST", CMS, {"metadata": {"name": "d"}}))[0] == 201
    for options in (
        {"propagationPolicy": ["Orphan"]},
        {"propagationPolicy": {"k": 1}},
        {"orphanDependents": "yes"},
        {"preconditions": "x"},
        {"preconditions": {"uid": 5}},
        {"gracePeriodSeconds": True},
        {"dryRun": [1]},
    ):
        code, body = await api.call("DELETE", f"{CMS}/d", options)
        assert is_status(code, body, 400), (options, code, body)
    assert (await api.call("GET", f"{CMS}/d"))[0] == 200


@pytest.mark.parametrize(
    ("path", "obj"),
    [
        ("/api/v1/nodes", {"metadata": {"name": "n1"}, "status": {"capacity": ["x"]}}),
        ("/api/v1/nodes", {"metadata": {"name": "n2"}, "spec": None}),
        ("/api/v1/nodes", {"metadata": {"name": "n3"}, "spec": {"podCIDRs": {"a": 1}}}),
        (
            "/apis/apps/v1/namespaces/default/deployments",
            {
                "metadata": {"name": "d"},
                "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": [1], "spec": [1]}},
            },
        ),
        (
            "/apis/apps/v1/namespaces/default/replicasets",
            {
                "metadata": {"name": "r"},
                "spec": {"selector": {"matchLabels": [{"a": "b"}]}, "template": {"spec": [{"containers": []}]}},
            },
        ),
        ("/api/v1/namespaces/default/pods", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": ["c"]}]}}),
        (
            "/api/v1/namespaces/default/pods",
            {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i", "resources": ["x"]}]}},
        ),
        (
            "/api/v1/namespaces/default/pods",
            {"metadata": {"name": "p"}, "spec": {"hostNetwork": True, "containers": [{"name": "c", "ports": "x"}]}},
        ),
    ],
)
async def test_wrongly_typed_fields_of_kinds_are_never_a_5xx(api: Rest, path: str, obj: dict[str, Any]) -> None:
    # Each used to be a 500 (a TypeError or AttributeError in a kind's defaulting or validation). Fields no rule
    # reads are still stored as sent (upstream's typed decoding would refuse them): never a 5xx, though.
    code, body = await api.call("POST", path, obj)
    assert code < 500 and (code < 300 or body["kind"] == "Status"), (code, body)
    assert await alive(api)


async def test_unroutable_paths_answer_a_status_through_the_filter_chain() -> None:
    # A newline in a path matches no route (aiohttp's patterns stop at it): aiohttp's text/plain 404 came back.
    middlewares = build_filters(authenticator=None, authorizer=None, metrics=None, limiter=None)
    config = APIServerConfig(storage="memory", compaction_interval=0, middlewares=middlewares)
    async with APIServer(config) as server, aiohttp.ClientSession() as session:
        url = server.url + "/api/v1/namespaces/a%0Ab/configmaps"
        async with session.get(url) as resp:
            assert resp.status == 404 and resp.content_type == "application/json"
            body = codec.loads(await resp.read())
        assert body["kind"] == "Status" and body["reason"] == "NotFound" and body["code"] == 404


async def test_table_of_a_stored_object_with_odd_field_types_still_lists_it(api: Rest) -> None:
    # Only metadata is type-checked on the way in: an events.k8s.io Event with a list for regarding.kind was
    # stored, and `kubectl get events` (a Table) then answered 500 for the whole list.
    event = {
        "metadata": {"name": "odd"},
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "type": "Normal",
        "reportingController": "c",
        "reportingInstance": "i",
        "action": "a",
        "reason": "r",
        "regarding": {"kind": ["Pod"], "name": "p", "namespace": "default"},
    }
    path = "/apis/events.k8s.io/v1/namespaces/default/events"
    code, _ = await api.call("POST", path, event)
    assert code == 201
    async with api.get(path, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}) as resp:
        assert resp.status == 200
        table = codec.loads(await resp.read())
    assert [row["cells"][0] for row in table["rows"]] == ["odd"]
    assert len(table["rows"][0]["cells"]) == len(table["columnDefinitions"])


async def test_watch_prefix_only_serves_reads(api: Rest) -> None:
    # Authorization sees verb "watch" for /api/v1/watch/...; a POST there used to create the object.
    code, body = await api.call("POST", "/api/v1/watch/namespaces/default/configmaps", {"metadata": {"name": "w"}})
    assert is_status(code, body, 405)
    assert (await api.call("GET", f"{CMS}/w"))[0] == 404
    code, body = await api.call("GET", "/api/v1/watch")
    assert is_status(code, body, 404)

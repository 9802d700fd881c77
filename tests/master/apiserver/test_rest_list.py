"""LIST: selectors, pagination with continue tokens, resourceVersion semantics, option validation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from kubemark.master.apiserver.object_store import decode_continue, encode_continue

if TYPE_CHECKING:
    from conftest import Rest


def pod(name: str, labels: dict[str, str] | None = None, node: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}
    if node:
        spec["nodeName"] = node
    md: dict[str, Any] = {"name": name}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}


def configmap(name: str, data: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data or {"a": "1"}}


PODS = "/api/v1/namespaces/default/pods"
CMS = "/api/v1/namespaces/default/configmaps"


def names(listed: dict) -> list[str]:
    return [item["metadata"]["name"] for item in listed["items"]]


async def test_label_and_field_selectors(api: Rest) -> None:
    s = api
    await s.call("POST", PODS, pod("a", {"app": "web", "tier": "front"}, node="n1"))
    await s.call("POST", PODS, pod("b", {"app": "web"}, node="n2"))
    await s.call("POST", PODS, pod("c", {"app": "db"}))
    code, listed = await s.call("GET", PODS, params={"labelSelector": "app=web"})
    assert code == 200 and listed["kind"] == "PodList" and names(listed) == ["a", "b"]
    _, listed = await s.call("GET", PODS, params={"labelSelector": "app in (web,db),!tier"})
    assert names(listed) == ["b", "c"]
    _, listed = await s.call("GET", "/api/v1/pods", params={"fieldSelector": "spec.nodeName=n2"})
    assert names(listed) == ["b"]
    # Unscheduled pods, as kube-scheduler asks for them.
    _, listed = await s.call("GET", "/api/v1/pods", params={"fieldSelector": "spec.nodeName="})
    assert names(listed) == ["c"]
    _, listed = await s.call("GET", PODS, params={"fieldSelector": "metadata.name!=a", "labelSelector": "app=web"})
    assert names(listed) == ["b"]
    code, status = await s.call("GET", PODS, params={"fieldSelector": "spec.bogus=1"})
    assert code == 400 and status["reason"] == "BadRequest" and "spec.bogus" in status["message"]
    code, status = await s.call("GET", PODS, params={"labelSelector": "app in (web"})
    assert code == 400


async def test_all_namespaces_list_and_namespace_isolation(api: Rest) -> None:
    s = api
    await s.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns2"}})
    await s.call("POST", CMS, configmap("x"))
    await s.call("POST", "/api/v1/namespaces/ns2/configmaps", configmap("x"))
    _, everywhere = await s.call("GET", "/api/v1/configmaps")
    assert sorted(i["metadata"]["namespace"] for i in everywhere["items"]) == ["default", "ns2"]
    _, only = await s.call("GET", "/api/v1/namespaces/ns2/configmaps")
    assert [i["metadata"]["namespace"] for i in only["items"]] == ["ns2"]


async def test_pagination_keeps_snapshot(api: Rest) -> None:
    s = api
    for i in range(7):
        await s.call("POST", CMS, configmap(f"c{i}"))
    code, page1 = await s.call("GET", CMS, params={"limit": "3"})
    assert code == 200 and names(page1) == ["c0", "c1", "c2"]
    token = page1["metadata"]["continue"]
    assert page1["metadata"]["remainingItemCount"] == 4
    snapshot_rv = page1["metadata"]["resourceVersion"]
    # Changes after the first page must not show up in later pages of the same list.
    await s.call("POST", CMS, configmap("c7"))
    await s.call("DELETE", f"{CMS}/c4")
    _, page2 = await s.call("GET", CMS, params={"limit": "3", "continue": token})
    assert names(page2) == ["c3", "c4", "c5"]
    assert page2["metadata"]["resourceVersion"] == snapshot_rv
    _, page3 = await s.call("GET", CMS, params={"limit": "3", "continue": page2["metadata"]["continue"]})
    assert names(page3) == ["c6"] and "continue" not in page3["metadata"]


async def test_pagination_with_selector(api: Rest) -> None:
    s = api
    for i in range(6):
        await s.call("POST", PODS, pod(f"p{i}", {"even": str(i % 2 == 0).lower()}))
    seen: list[str] = []
    params = {"limit": "2", "labelSelector": "even=true"}
    while True:
        _, page = await s.call("GET", PODS, params=params)
        seen += names(page)
        token = page["metadata"].get("continue")
        if not token:
            break
        params = {**params, "continue": token}
    assert seen == ["p0", "p2", "p4"]


async def test_continue_token_after_compaction_is_410(api: Rest) -> None:
    s = api
    server = s.server
    for i in range(4):
        await s.call("POST", CMS, configmap(f"c{i}"))
    _, page1 = await s.call("GET", CMS, params={"limit": "2"})
    await s.call("POST", CMS, configmap("later"))
    await server.compact_now()
    code, status = await s.call("GET", CMS, params={"limit": "2", "continue": page1["metadata"]["continue"]})
    assert code == 410 and status["reason"] == "Expired"
    assert status["message"].startswith("The provided continue parameter is too old")


async def test_bad_continue_token_is_400(api: Rest) -> None:
    s = api
    code, status = await s.call("GET", CMS, params={"continue": "not-base64!!"})
    assert code == 400 and status["message"].startswith("continue key is not valid")


def test_continue_token_round_trip() -> None:
    token = encode_continue(42, "default/c2\x00")
    assert "=" not in token
    assert decode_continue(token) == (42, "default/c2\x00")


async def test_resource_version_semantics(api: Rest) -> None:
    s = api
    server = s.server
    _, created = await s.call("POST", CMS, configmap("c"))
    rv = int(created["metadata"]["resourceVersion"])
    _, consistent = await s.call("GET", CMS)
    assert int(consistent["metadata"]["resourceVersion"]) >= rv and names(consistent) == ["c"]
    _, any_rv = await s.call("GET", CMS, params={"resourceVersion": "0"})
    assert names(any_rv) == ["c"]
    await s.call("PATCH", f"{CMS}/c", {"data": {"z": "9"}}, content_type="application/merge-patch+json")
    _, exact = await s.call("GET", CMS, params={"resourceVersion": str(rv), "resourceVersionMatch": "Exact"})
    assert exact["metadata"]["resourceVersion"] == str(rv) and exact["items"][0]["data"] == {"a": "1"}
    _, newer = await s.call("GET", CMS, params={"resourceVersion": str(rv), "resourceVersionMatch": "NotOlderThan"})
    assert newer["items"][0]["data"]["z"] == "9"
    await server.compact_now()
    code, status = await s.call("GET", CMS, params={"resourceVersion": str(rv), "resourceVersionMatch": "Exact"})
    assert code == 410 and status["reason"] == "Expired"
    code, status = await s.call("GET", CMS, params={"resourceVersion": "999999"})
    assert code == 504 and status["reason"] == "Timeout"


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"limit": "abc"}, 400, None),
        ({"resourceVersionMatch": "Exact"}, 422, "resourceVersionMatch"),
        ({"resourceVersion": "0", "resourceVersionMatch": "Exact"}, 422, "resourceVersionMatch"),
        ({"resourceVersion": "1", "resourceVersionMatch": "Sometimes"}, 422, "resourceVersionMatch"),
        ({"sendInitialEvents": "true"}, 422, "sendInitialEvents"),
        ({"resourceVersion": "x"}, 400, None),
    ],
)
async def test_invalid_list_options(api: Rest, params: dict[str, str], code: int, field: str | None) -> None:
    s = api
    got, status = await s.call("GET", CMS, params=params)
    assert got == code, status
    if field:
        assert status["reason"] == "Invalid" and status["details"]["causes"][0]["field"] == field


async def test_get_with_resource_version_zero_reads_cache(api: Rest) -> None:
    s = api
    _, created = await s.call("POST", CMS, configmap("c"))
    code, got = await s.call("GET", f"{CMS}/c", params={"resourceVersion": "0"})
    assert code == 200 and got["metadata"]["uid"] == created["metadata"]["uid"]


async def test_partial_object_metadata_list(api: Rest) -> None:
    s = api
    await s.call("POST", CMS, configmap("c"))
    accept = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
    async with s.get(CMS, headers={"Accept": accept}) as resp:
        body = await resp.json()
    assert body["kind"] == "PartialObjectMetadataList"
    assert body["items"][0] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": body["items"][0]["metadata"],
    }
    assert body["items"][0]["metadata"]["name"] == "c"


async def test_consistent_list_reads_storage_when_the_cache_cannot_catch_up(api: Rest) -> None:
    s = api
    await s.call("POST", CMS, configmap("a"))
    cache = s.server.store("", "configmaps").cache
    assert cache is not None
    await cache.stop()  # the cache stops following storage: it stays behind from now on
    code, _ = await s.call("POST", CMS, configmap("b"))
    assert code == 201
    _, stale = await s.call("GET", CMS, params={"resourceVersion": "0"})
    assert names(stale) == ["a"]  # any-version reads come from the (lagging) cache
    code, consistent = await s.call("GET", CMS)
    assert code == 200 and names(consistent) == ["a", "b"]  # not 504: read from storage after the wait

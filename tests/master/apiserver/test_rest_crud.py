"""Create/get/update/patch on the embedded API server (memory storage) over real HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


async def test_create_get_pod_sets_system_metadata(api: Rest) -> None:
    s = api
    code, created = await s.call("POST", PODS, pod("p1"))
    assert code == 201, created
    md = created["metadata"]
    assert md["namespace"] == "default"
    assert md["uid"] and md["creationTimestamp"] and int(md["resourceVersion"]) > 0
    assert created["status"]["phase"] == "Pending"
    code, got = await s.call("GET", f"{PODS}/p1")
    assert code == 200
    assert got["metadata"]["uid"] == md["uid"]
    assert got["metadata"]["resourceVersion"] == md["resourceVersion"]


async def test_create_existing_is_409_already_exists(api: Rest) -> None:
    s = api
    assert (await s.call("POST", CMS, configmap("c1")))[0] == 201
    code, status = await s.call("POST", CMS, configmap("c1"))
    assert code == 409
    assert status["kind"] == "Status" and status["reason"] == "AlreadyExists" and status["code"] == 409
    assert status["message"] == 'configmaps "c1" already exists'
    assert status["details"] == {"name": "c1", "kind": "configmaps"}


async def test_generate_name(api: Rest) -> None:
    s = api
    body = configmap("")
    body["metadata"] = {"generateName": "gen-"}
    code, a = await s.call("POST", CMS, body)
    code2, b = await s.call("POST", CMS, body)
    assert code == code2 == 201
    assert a["metadata"]["name"].startswith("gen-") and len(a["metadata"]["name"]) == 9
    assert a["metadata"]["name"] != b["metadata"]["name"]


async def test_get_missing_is_404(api: Rest) -> None:
    s = api
    code, status = await s.call("GET", f"{PODS}/nope")
    assert code == 404
    assert status["reason"] == "NotFound" and status["message"] == 'pods "nope" not found'
    code, status = await s.call("GET", "/apis/apps/v1/namespaces/default/deployments/x")
    assert code == 404 and status["message"] == 'deployments.apps "x" not found'


async def test_unknown_resource_and_path_are_404_status(api: Rest) -> None:
    s = api
    for path in ("/api/v1/namespaces/default/widgets", "/apis/nope.io/v1/things", "/nothing/here"):
        code, status = await s.call("GET", path)
        assert code == 404, path
        assert status["reason"] == "NotFound"
        assert status["message"] == "the server could not find the requested resource"


async def test_namespace_mismatch_and_missing_namespace(api: Rest) -> None:
    s = api
    body = configmap("c")
    body["metadata"]["namespace"] = "other"
    code, status = await s.call("POST", CMS, body)
    assert code == 400 and status["reason"] == "BadRequest"
    assert status["message"] == "the namespace of the provided object does not match the namespace sent on the request"
    code, status = await s.call("POST", "/api/v1/namespaces/ghost/configmaps", configmap("c"))
    assert code == 404 and status["message"] == 'namespaces "ghost" not found'


async def test_terminating_namespace_refuses_new_content(api: Rest) -> None:
    s = api
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}
    assert (await s.call("POST", "/api/v1/namespaces", ns))[0] == 201
    code, deleted = await s.call("DELETE", "/api/v1/namespaces/doomed")
    assert code == 200 and deleted["status"]["phase"] == "Terminating"
    code, status = await s.call("POST", "/api/v1/namespaces/doomed/configmaps", configmap("c"))
    assert code == 403 and status["reason"] == "Forbidden"
    assert "unable to create new content in namespace doomed because it is being terminated" in status["message"]


async def test_invalid_name_is_422_with_causes(api: Rest) -> None:
    s = api
    server = s.server
    before = await server.storage.current_revision()
    code, status = await s.call("POST", CMS, configmap("Bad_Name"))
    assert code == 422 and status["reason"] == "Invalid"
    causes = status["details"]["causes"]
    assert any(c["field"] == "metadata.name" and c["reason"] == "FieldValueInvalid" for c in causes)
    assert status["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"')
    body = configmap("ok")
    body["metadata"]["labels"] = {"bad key!": "v"}
    code, status = await s.call("POST", CMS, body)
    assert code == 422 and status["details"]["causes"][0]["field"] == "metadata.labels"
    assert await server.storage.current_revision() == before  # nothing written


async def test_annotations_size_limit(api: Rest) -> None:
    s = api
    body = configmap("big")
    body["metadata"]["annotations"] = {"a": "x" * (256 * 1024)}
    code, status = await s.call("POST", CMS, body)
    assert code == 422
    assert status["details"]["causes"][0] == {
        "reason": "FieldValueTooLong",
        "message": "Too long: must have at most 262144 bytes",
        "field": "metadata.annotations",
    }


async def test_malformed_json_is_400(api: Rest) -> None:
    s = api
    code, status = await s.call("POST", CMS, raw=b'{"kind": "ConfigMap", ')
    assert code == 400 and status["reason"] == "BadRequest"
    assert "malformed" in status["message"] and "json parse error" in status["message"]
    code, status = await s.call("POST", CMS, raw=b"[1, 2]")
    assert code == 400 and "json: cannot unmarshal array" in status["message"]


async def test_kind_mismatch_is_400(api: Rest) -> None:
    s = api
    code, status = await s.call("POST", CMS, pod("p"))
    assert (
        code == 400 and "the kind in the data (Pod) does not match the expected kind (ConfigMap)" in status["message"]
    )
    body = configmap("c")
    body["apiVersion"] = "apps/v1"
    code, status = await s.call("POST", CMS, body)
    assert code == 400 and "API version in the data (apps/v1)" in status["message"]


async def test_oversized_body_is_413(api: Rest) -> None:
    s = api
    body = configmap("huge", {"k": "x" * (3 * 1024 * 1024 + 10)})
    code, status = await s.call("POST", CMS, body)
    assert code == 413
    assert status["reason"] == "RequestEntityTooLarge" and "limit is 3145728" in status["message"]


async def test_unknown_content_type_is_415(api: Rest) -> None:
    s = api
    code, status = await s.call("POST", CMS, configmap("c"), content_type="application/cbor")
    assert code == 415 and status["reason"] == "UnsupportedMediaType"
    # A protobuf body that is JSON bytes is malformed protobuf: 400, and nothing is stored.
    code, status = await s.call("POST", CMS, configmap("c"), content_type="application/vnd.kubernetes.protobuf")
    assert code == 400 and status["reason"] == "BadRequest"
    code, _ = await s.call("GET", f"{CMS}/c")
    assert code == 404
    await s.call("POST", CMS, configmap("c"))
    code, status = await s.call("PATCH", f"{CMS}/c", {"data": {"b": "2"}}, content_type="application/json")
    assert code == 415


async def test_yaml_body_accepted(api: Rest) -> None:
    s = api
    raw = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n"
    code, obj = await s.call("POST", CMS, raw=raw, content_type="application/yaml")
    assert code == 201 and obj["data"] == {"k": "v"}


async def test_method_not_allowed(api: Rest) -> None:
    s = api
    code, status = await s.call("POST", f"{CMS}/x", configmap("x"))
    assert code == 405 and status["reason"] == "MethodNotAllowed"
    code, status = await s.call("DELETE", "/api/v1/namespaces")  # namespaces have no deletecollection
    assert code == 405


async def test_update_conflict_and_unconditional(api: Rest) -> None:
    s = api
    _, created = await s.call("POST", CMS, configmap("c", {"a": "1"}))
    stale = dict(created)
    created["data"] = {"a": "2"}
    code, updated = await s.call("PUT", f"{CMS}/c", created)
    assert code == 200 and updated["data"] == {"a": "2"}
    assert int(updated["metadata"]["resourceVersion"]) > int(stale["metadata"]["resourceVersion"])
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert updated["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]
    stale["data"] = {"a": "3"}
    code, status = await s.call("PUT", f"{CMS}/c", stale)
    assert code == 409 and status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on configmaps "c": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    del stale["metadata"]["resourceVersion"]
    code, unconditional = await s.call("PUT", f"{CMS}/c", stale)
    assert code == 200 and unconditional["data"] == {"a": "3"}


async def test_noop_update_keeps_resource_version(api: Rest) -> None:
    s = api
    server = s.server
    _, created = await s.call("POST", CMS, configmap("c"))
    before = await server.storage.current_revision()
    code, same = await s.call("PUT", f"{CMS}/c", created)
    assert code == 200 and same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert await server.storage.current_revision() == before


async def test_update_uid_mismatch_and_name_mismatch(api: Rest) -> None:
    s = api
    _, created = await s.call("POST", CMS, configmap("c"))
    created["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
    code, status = await s.call("PUT", f"{CMS}/c", created)
    assert code == 409 and "Precondition failed: UID in precondition" in status["message"]
    code, status = await s.call("PUT", f"{CMS}/other", configmap("c"))
    assert code == 400 and "does not match the name on the URL" in status["message"]
    code, status = await s.call("PUT", f"{CMS}/missing", configmap("missing"))
    assert code == 404


async def test_generation_bumped_on_spec_change_only(api: Rest) -> None:
    s = api
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "pause"}]},
            },
        },
    }
    path = "/apis/apps/v1/namespaces/default/deployments"
    code, created = await s.call("POST", path, deploy)
    assert code == 201 and created["metadata"]["generation"] == 1
    code, patched = await s.call(
        "PATCH", f"{path}/d", {"metadata": {"labels": {"x": "y"}}}, content_type="application/merge-patch+json"
    )
    assert code == 200 and patched["metadata"]["generation"] == 1
    code, patched = await s.call(
        "PATCH", f"{path}/d", {"spec": {"replicas": 3}}, content_type="application/strategic-merge-patch+json"
    )
    assert code == 200 and patched["metadata"]["generation"] == 2 and patched["spec"]["replicas"] == 3


async def test_status_subresource_separates_spec_and_status(api: Rest) -> None:
    s = api
    _, created = await s.call("POST", PODS, pod("p", node="n1"))
    # Status write: the spec change is ignored.
    body = dict(created)
    body["spec"] = dict(created["spec"], activeDeadlineSeconds=5)
    body["status"] = {"phase": "Running"}
    code, updated = await s.call("PUT", f"{PODS}/p/status", body)
    assert code == 200, updated
    assert updated["status"]["phase"] == "Running"
    assert "activeDeadlineSeconds" not in updated["spec"]
    # Main-resource write: the status change is ignored.
    updated["status"] = {"phase": "Failed"}
    updated["metadata"]["labels"] = {"l": "v"}
    code, again = await s.call("PUT", f"{PODS}/p", updated)
    assert code == 200, again
    assert again["status"]["phase"] == "Running" and again["metadata"]["labels"] == {"l": "v"}
    code, got = await s.call("GET", f"{PODS}/p/status")
    assert code == 200 and got["status"]["phase"] == "Running"


async def test_status_patch(api: Rest) -> None:
    s = api
    await s.call("POST", PODS, pod("p", node="n1"))
    code, patched = await s.call(
        "PATCH",
        f"{PODS}/p/status",
        {"status": {"phase": "Running", "podIP": "10.0.0.5"}, "spec": {"nodeName": "other"}},
        content_type="application/strategic-merge-patch+json",
    )
    assert code == 200, patched
    assert patched["status"]["phase"] == "Running" and patched["status"]["podIP"] == "10.0.0.5"
    assert patched["spec"]["nodeName"] == "n1"


async def test_patch_types(api: Rest) -> None:
    s = api
    _, created = await s.call("POST", CMS, configmap("c", {"a": "1"}))
    code, p1 = await s.call("PATCH", f"{CMS}/c", {"data": {"b": "2"}}, content_type="application/merge-patch+json")
    assert code == 200 and p1["data"] == {"a": "1", "b": "2"}
    ops = [{"op": "replace", "path": "/data/a", "value": "9"}, {"op": "remove", "path": "/data/b"}]
    code, p2 = await s.call("PATCH", f"{CMS}/c", ops, content_type="application/json-patch+json")
    assert code == 200 and p2["data"] == {"a": "9"}
    ops = [{"op": "test", "path": "/data/a", "value": "nope"}]
    code, status = await s.call("PATCH", f"{CMS}/c", ops, content_type="application/json-patch+json")
    assert code == 422, status
    code, status = await s.call("PATCH", f"{CMS}/c", raw=b"{not json", content_type="application/merge-patch+json")
    assert code == 400
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"z": "1"}}
    code, status = await s.call("PATCH", f"{CMS}/c", stale, content_type="application/merge-patch+json")
    assert code == 409 and status["reason"] == "Conflict"
    code, status = await s.call("PATCH", f"{CMS}/missing", {"data": {}}, content_type="application/merge-patch+json")
    assert code == 404


async def test_server_side_apply_creates_then_merges(api: Rest) -> None:
    s = api
    raw = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: '1'\n"
    ct = "application/apply-patch+yaml"
    code, status = await s.call("PATCH", f"{CMS}/applied", raw=raw, content_type=ct)
    assert code == 422 and status["details"]["causes"][0]["field"] == "fieldManager"
    params = {"fieldManager": "test"}
    code, obj = await s.call("PATCH", f"{CMS}/applied", raw=raw, content_type=ct, params=params)
    assert code == 201 and obj["data"] == {"a": "1"}
    raw2 = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  b: '2'\n"
    code, obj = await s.call("PATCH", f"{CMS}/applied", raw=raw2, content_type=ct, params=params)
    assert code == 200 and obj["data"] == {"a": "1", "b": "2"}


async def test_dry_run_writes_nothing(api: Rest) -> None:
    s = api
    server = s.server
    before = await server.storage.current_revision()
    code, obj = await s.call("POST", CMS, configmap("dry"), params={"dryRun": "All"})
    assert code == 201 and obj["metadata"]["name"] == "dry"
    assert (await s.call("GET", f"{CMS}/dry"))[0] == 404
    await s.call("POST", CMS, configmap("real"))
    mid = await server.storage.current_revision()
    code, obj = await s.call(
        "PATCH",
        f"{CMS}/real",
        {"data": {"x": "y"}},
        content_type="application/merge-patch+json",
        params={"dryRun": "All"},
    )
    assert code == 200 and obj["data"]["x"] == "y"
    code, _ = await s.call("DELETE", f"{CMS}/real", params={"dryRun": "All"})
    assert code == 200
    assert await server.storage.current_revision() == mid > before
    code, obj = await s.call("GET", f"{CMS}/real")
    assert code == 200 and "x" not in obj["data"]
    code, _status = await s.call("POST", CMS, configmap("bad"), params={"dryRun": "Some"})
    assert code == 422


async def test_rejected_requests_do_not_change_storage(api: Rest) -> None:
    s = api
    for i in range(3):
        await s.call("POST", CMS, configmap(f"c{i}"))
    _, before = await s.call("GET", CMS)
    await s.call("POST", CMS, configmap("Bad!"))
    await s.call("POST", CMS, raw=b"{")
    await s.call("POST", CMS, configmap("c0"))
    await s.call("PUT", f"{CMS}/c1", {**configmap("c1"), "metadata": {"name": "c1", "resourceVersion": "1"}})
    await s.call(
        "PATCH", f"{CMS}/c2", [{"op": "test", "path": "/x", "value": 1}], content_type="application/json-patch+json"
    )
    _, after = await s.call("GET", CMS)
    assert after["items"] == before["items"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_cluster_scoped_node_crud(api: Rest) -> None:
    s = api
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"a": "b"}}}
    code, created = await s.call("POST", "/api/v1/nodes", node)
    assert code == 201 and "namespace" not in created["metadata"]
    code, _status = await s.call("GET", "/api/v1/namespaces/default/nodes/n1")
    assert code == 404
    code, listed = await s.call("GET", "/api/v1/nodes")
    assert code == 200 and listed["kind"] == "NodeList" and [n["metadata"]["name"] for n in listed["items"]] == ["n1"]


async def test_head_works_like_get(api: Rest) -> None:
    s = api
    await s.call("POST", CMS, configmap("c"))
    async with s.head(f"{CMS}/c") as resp:
        assert resp.status == 200
    async with s.head(f"{CMS}/missing") as resp:
        assert resp.status == 404


async def test_table_output_for_kubectl(api: Rest) -> None:
    s = api
    await s.call("POST", PODS, pod("p"))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    async with s.get(PODS, headers={"Accept": accept}) as resp:
        table = await resp.json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["columnDefinitions"][0]["name"] == "Name"
    assert table["rows"][0]["cells"][0] == "p"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    async with s.get(f"{PODS}/p", headers={"Accept": accept}, params={"includeObject": "Object"}) as resp:
        one = await resp.json()
    assert one["kind"] == "Table" and one["rows"][0]["object"]["kind"] == "Pod"
    async with s.get(f"{PODS}/p", headers={"Accept": "application/vnd.kubernetes.protobuf"}) as resp:
        assert resp.status == 406

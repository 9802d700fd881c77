"""Namespace (defaults, Terminating, finalize flow) and Node (defaults, validation, set-once fields) rules."""

from __future__ import annotations

import copy

import pytest

from kubemark.master.apiserver.errors import StatusError


def namespace(name: str = "team-a") -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def test_namespace_create_defaults(make_strategy) -> None:
    strategy = make_strategy("", "namespaces")
    obj = namespace()
    strategy.prepare_for_create(obj)
    assert obj["status"] == {"phase": "Active"}
    assert obj["spec"] == {"finalizers": ["kubernetes"]}
    assert obj["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert strategy.validate(obj) == []


def test_namespace_name_must_be_label(make_strategy) -> None:
    strategy = make_strategy("", "namespaces")
    obj = namespace("a.b")
    strategy.prepare_for_create(obj)
    assert [(c.field, c.reason) for c in strategy.validate(obj)] == [("metadata.name", "FieldValueInvalid")]


def test_namespace_update_keeps_finalizers_status_and_name_label(make_strategy) -> None:
    strategy = make_strategy("", "namespaces")
    old = namespace()
    strategy.prepare_for_create(old)
    new = copy.deepcopy(old)
    new["spec"]["finalizers"] = []
    new["status"]["phase"] = "Terminating"
    new["metadata"]["labels"] = {"team": "a"}
    strategy.prepare_for_update(new, old)
    assert new["spec"]["finalizers"] == ["kubernetes"]
    assert new["status"] == {"phase": "Active"}
    assert new["metadata"]["labels"] == {"team": "a", "kubernetes.io/metadata.name": "team-a"}


async def test_namespace_delete_then_finalize(cluster) -> None:
    store = cluster.store("", "namespaces")
    await store.create(namespace(), None)
    await store.delete("", "team-a", {}, None)
    terminating = await store.get("", "team-a")
    assert terminating["metadata"]["deletionTimestamp"]
    assert terminating["status"]["phase"] == "Terminating"
    # A second delete keeps it while finalizers remain.
    await store.delete("", "team-a", {}, None)
    assert ("", "team-a") in store.objects

    # A plain update cannot drop the finalizer; only /finalize can.
    await store.guaranteed_update("", "team-a", lambda ns: {**ns, "spec": {"finalizers": []}})
    assert (await store.get("", "team-a"))["spec"]["finalizers"] == ["kubernetes"]

    body = await store.get("", "team-a")
    body["spec"]["finalizers"] = []
    result = await cluster.call("", "namespaces", "finalize", "update", "", "team-a", body)
    assert result["spec"]["finalizers"] == []
    assert ("", "team-a") not in store.objects


async def test_finalize_of_active_namespace_keeps_it(cluster) -> None:
    store = cluster.store("", "namespaces")
    await store.create(namespace(), None)
    body = {"metadata": {"name": "team-a"}, "spec": {"finalizers": ["example.com/x"]}}
    result = await cluster.call("", "namespaces", "finalize", "update", "", "team-a", body)
    assert result["spec"]["finalizers"] == ["example.com/x"]
    assert result["status"]["phase"] == "Active"
    stale = {"metadata": {"name": "team-a", "resourceVersion": "1"}, "spec": {"finalizers": []}}
    with pytest.raises(StatusError) as err:
        await cluster.call("", "namespaces", "finalize", "update", "", "team-a", stale)
    assert err.value.code == 409
    with pytest.raises(StatusError) as err:
        await cluster.call("", "namespaces", "finalize", "create", "", "team-a", body)
    assert err.value.code == 405


def test_namespace_grace(make_strategy) -> None:
    strategy = make_strategy("", "namespaces")
    obj = namespace()
    strategy.prepare_for_create(obj)
    assert strategy.graceful_delete_seconds(obj, 0) > 0
    obj["spec"]["finalizers"] = []
    assert strategy.graceful_delete_seconds(obj, None) > 0  # still goes through Terminating
    obj["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert strategy.graceful_delete_seconds(obj, None) == 0
    assert strategy.should_delete_during_update(obj)
    obj["metadata"]["finalizers"] = ["foregroundDeletion"]
    assert not strategy.should_delete_during_update(obj)


def node(**spec: object) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "hollow-1"},
        "spec": dict(spec),
        "status": {"capacity": {"cpu": "1", "memory": "3840Mi", "pods": "110"}},
    }


def test_node_defaults(make_strategy) -> None:
    strategy = make_strategy("", "nodes")
    obj = node(podCIDR="10.64.1.0/24")
    strategy.prepare_for_create(obj)
    assert obj["status"]["allocatable"] == {"cpu": "1", "memory": "3840Mi", "pods": "110"}
    assert obj["spec"]["podCIDRs"] == ["10.64.1.0/24"]
    assert strategy.validate(obj) == []
    bare = {"metadata": {"name": "n"}}
    strategy.prepare_for_create(bare)
    assert bare["spec"] == {}


def test_node_validation(make_strategy) -> None:
    strategy = make_strategy("", "nodes")
    obj = node(
        podCIDRs=["10.64.1.0/33"],
        taints=[{"key": "k", "effect": "Sometimes"}, {"key": "k2"}],
    )
    obj["metadata"]["name"] = "Hollow_1"
    strategy.prepare_for_create(obj)
    assert {(c.field, c.reason) for c in strategy.validate(obj)} == {
        ("metadata.name", "FieldValueInvalid"),
        ("spec.podCIDRs[0]", "FieldValueInvalid"),
        ("spec.taints[0].effect", "FieldValueNotSupported"),
        ("spec.taints[1].effect", "FieldValueRequired"),
    }


def test_node_set_once_fields(make_strategy) -> None:
    strategy = make_strategy("", "nodes")
    old = node(providerID="kubemark://hollow-1")
    strategy.prepare_for_create(old)
    new = copy.deepcopy(old)
    new["spec"]["podCIDR"] = "10.64.1.0/24"  # from "" to a value: allowed
    strategy.prepare_for_update(new, old)
    assert strategy.validate_update(new, old) == []
    newer = copy.deepcopy(new)
    newer["spec"]["podCIDR"] = "10.64.2.0/24"
    newer["spec"]["podCIDRs"] = ["10.64.2.0/24"]
    newer["spec"]["providerID"] = "other://x"
    assert {c.field for c in strategy.validate_update(newer, new)} == {
        "spec.podCIDR",
        "spec.podCIDRs",
        "spec.providerID",
    }


def test_node_status_split(make_strategy) -> None:
    strategy = make_strategy("", "nodes")
    old = node()
    strategy.prepare_for_create(old)
    new = copy.deepcopy(old)
    new["spec"]["unschedulable"] = True
    new["status"] = {"capacity": {"cpu": "2"}, "conditions": [{"type": "Ready", "status": "True"}]}
    strategy.prepare_for_status_update(new, old)
    assert "unschedulable" not in new["spec"]
    assert new["status"]["allocatable"] == {"cpu": "2"}
    main = copy.deepcopy(old)
    main["spec"]["unschedulable"] = True
    main["status"] = {}
    strategy.prepare_for_update(main, old)
    assert main["spec"]["unschedulable"] is True and main["status"] == old["status"]

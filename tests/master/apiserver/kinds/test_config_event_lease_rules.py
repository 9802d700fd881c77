"""ConfigMap, Secret, Lease and Event rules."""

from __future__ import annotations

import base64
import copy

import pytest

from kubemark.kube.resources import RESOURCES
from kubemark.master.apiserver.kinds import strategy_for
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_every_resource_has_a_strategy() -> None:
    for rt in RESOURCES:
        strategy = strategy_for(rt)
        assert isinstance(strategy, KindStrategy) and strategy.rt is rt
    [services] = [rt for rt in RESOURCES if rt.plural == "services"]
    a, b = strategy_for(services), strategy_for(services)
    assert a is not b  # fresh instance per call: allocators are not shared


def test_config_map_keys_and_size(make_strategy) -> None:
    strategy = make_strategy("", "configmaps")
    ok = {"metadata": {"name": "c"}, "data": {"a.b_C-1": "x"}, "binaryData": {"bin": b64("y")}}
    assert strategy.validate(ok) == []
    bad = {"metadata": {"name": "c"}, "data": {"a/b": "x", "..x": "y"}}
    causes = strategy.validate(bad)
    assert [(c.field, c.reason) for c in causes] == [
        ("data[a/b]", "FieldValueInvalid"),
        ("data[..x]", "FieldValueInvalid"),
    ]
    assert "a valid config key must consist of alphanumeric characters" in causes[0].message
    dup = {"metadata": {"name": "c"}, "data": {"k": "x"}, "binaryData": {"k": b64("y")}}
    assert [c.field for c in strategy.validate(dup)] == ["binaryData[k]"]
    big = {"metadata": {"name": "c"}, "data": {"a": "x" * (1024 * 1024), "b": "y"}}
    [cause] = strategy.validate(big)
    assert cause.reason == "FieldValueTooLong"
    exactly = {"metadata": {"name": "c"}, "data": {"a": "x" * (1024 * 1024)}}
    assert strategy.validate(exactly) == []


def test_config_map_immutable(make_strategy) -> None:
    strategy = make_strategy("", "configmaps")
    old = {"metadata": {"name": "c"}, "data": {"k": "v"}, "immutable": True}
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"a": "b"}
    assert strategy.validate_update(new, old) == []
    new["data"]["k"] = "changed"
    new["immutable"] = False
    assert {(c.field, c.reason) for c in strategy.validate_update(new, old)} == {
        ("data", "FieldValueForbidden"),
        ("immutable", "FieldValueForbidden"),
    }
    mutable = {"metadata": {"name": "c"}, "data": {"k": "v"}}
    assert strategy.validate_update({**mutable, "data": {"k": "w"}, "immutable": True}, mutable) == []


def test_secret_defaults_and_string_data(make_strategy) -> None:
    strategy = make_strategy("", "secrets")
    obj = {
        "metadata": {"name": "s"},
        "data": {"a": b64("old"), "keep": b64("k")},
        "stringData": {"a": "new", "b": "two"},
    }
    strategy.prepare_for_create(obj)
    assert obj["type"] == "Opaque"
    assert "stringData" not in obj
    assert obj["data"] == {"a": b64("new"), "keep": b64("k"), "b": b64("two")}
    assert strategy.validate(obj) == []
    old = copy.deepcopy(obj)
    new = {"metadata": {"name": "s"}, "type": "", "data": dict(obj["data"]), "stringData": {"c": "3"}}
    strategy.prepare_for_update(new, old)
    assert new["type"] == "Opaque" and new["data"]["c"] == b64("3")
    assert strategy.validate_update(new, old) == []


def test_secret_validation(make_strategy) -> None:
    strategy = make_strategy("", "secrets")
    bad = {"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "!!notbase64", "x y": b64("z")}}
    assert [(c.field, c.reason) for c in strategy.validate(bad)] == [("data[x y]", "FieldValueInvalid")]
    del bad["data"]["x y"]
    assert {(c.field, c.reason) for c in strategy.validate(bad)} == {
        ("data[tls.crt]", "FieldValueInvalid"),
        ("data[tls.key]", "FieldValueRequired"),
    }
    token = {"metadata": {"name": "t"}, "type": "kubernetes.io/service-account-token", "data": {}}
    assert [c.field for c in strategy.validate(token)] == ["metadata.annotations[kubernetes.io/service-account.name]"]
    big = {"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": b64("x" * (1024 * 1024 + 1))}}
    assert [(c.field, c.reason) for c in strategy.validate(big)] == [("data", "FieldValueTooLong")]


def test_secret_type_and_immutable_data(make_strategy) -> None:
    strategy = make_strategy("", "secrets")
    old = {"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": b64("1")}, "immutable": True}
    new = copy.deepcopy(old)
    new["type"] = "example.com/custom"
    new["data"]["a"] = b64("2")
    assert {c.field for c in strategy.validate_update(new, old)} == {"type", "data"}


@pytest.mark.parametrize(
    ("spec", "fields"),
    [
        ({"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": "2024-01-01T00:00:00.000000Z"}, []),
        ({}, []),
        ({"leaseDurationSeconds": 0}, ["spec.leaseDurationSeconds"]),
        ({"leaseDurationSeconds": 10, "leaseTransitions": -1}, ["spec.leaseTransitions"]),
        ({"holderIdentity": 5}, ["spec.holderIdentity"]),
    ],
)
def test_lease_validation(make_strategy, spec, fields) -> None:
    strategy = make_strategy("coordination.k8s.io", "leases")
    obj = {"metadata": {"name": "n1", "namespace": "kube-node-lease"}, "spec": spec}
    assert [c.field for c in strategy.validate(obj)] == fields
    assert [c.field for c in strategy.validate_update(obj, obj)] == fields
    assert not strategy.has_status


def core_event(namespace: str, involved_namespace: str | None, **extra: object) -> dict:
    involved = {"kind": "Pod", "name": "p"}
    if involved_namespace is not None:
        involved["namespace"] = involved_namespace
    return {"metadata": {"name": "e", "namespace": namespace}, "involvedObject": involved, "reason": "Started", **extra}


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        (core_event("ns", "ns", type="Normal"), []),
        (core_event("default", None), []),  # about a cluster-scoped object (a Node)
        (core_event("ns", "other"), ["involvedObject.namespace"]),
        (core_event("ns", None), ["involvedObject.namespace"]),
        (core_event("ns", "ns", type="Fatal"), ["type"]),
        ({"metadata": {"name": "e", "namespace": "ns"}}, ["involvedObject"]),
    ],
)
def test_core_event_validation(make_strategy, event, fields) -> None:
    assert [c.field for c in make_strategy("", "events").validate(event)] == fields


def new_event(**overrides: object) -> dict:
    event = {
        "metadata": {"name": "e", "namespace": "ns"},
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "type": "Normal",
        "reportingController": "kubemark.io/hollow-kubelet",
        "reportingInstance": "hollow-1",
        "action": "Started",
        "reason": "Started",
        "regarding": {"kind": "Pod", "namespace": "ns", "name": "p"},
        "note": "started container",
    }
    event.update(overrides)
    return event


def test_events_k8s_io_validation(make_strategy) -> None:
    strategy = make_strategy("events.k8s.io", "events")
    assert strategy.validate(new_event()) == []
    broken = new_event(eventTime=None, type="Info", action="", note="x" * 2000)
    del broken["reportingInstance"]
    assert {(c.field, c.reason) for c in strategy.validate(broken)} == {
        ("eventTime", "FieldValueRequired"),
        ("type", "FieldValueInvalid"),
        ("reportingInstance", "FieldValueRequired"),
        ("action", "FieldValueRequired"),
        ("note", "FieldValueTooLong"),
    }
    old = new_event()
    assert strategy.validate_update(new_event(note="changed", series={"count": 2}), old) == []
    assert [c.field for c in strategy.validate_update(new_event(reason="Killed"), old)] == ["reason"]

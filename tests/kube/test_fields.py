"""Tests for kubemark.kube.fields: field selector syntax, escaping and per-kind fields."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubemark.kube.fields import (
    FieldSelectorError,
    convert_field_selector,
    escape_value,
    object_fields,
    parse_field_selector,
    unescape_value,
    unsupported_fields,
)

POD = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "node-7", "restartPolicy": "Always", "schedulerName": "default-scheduler"},
    "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]},
}


def test_parse_operators_and_sorting() -> None:
    sel = parse_field_selector("status.phase!=Failed,spec.nodeName==node-7,metadata.name=web-1")
    assert sel.requirements == (
        ("metadata.name", "=", "web-1"),
        ("spec.nodeName", "=", "node-7"),
        ("status.phase", "!=", "Failed"),
    )
    assert str(sel) == "metadata.name=web-1,spec.nodeName=node-7,status.phase!=Failed"
    assert sel.value_for("spec.nodeName") == "node-7"
    assert sel.value_for("status.phase") is None


def test_empty_selects_everything() -> None:
    sel = parse_field_selector("")
    assert sel.empty and sel.requirements == ()
    assert sel.matches({})


def test_missing_field_is_empty_string() -> None:
    assert parse_field_selector("spec.nodeName=").matches({})
    assert parse_field_selector("spec.nodeName!=").matches({"spec.nodeName": "n"})
    assert not parse_field_selector("spec.nodeName!=").matches({})


def test_escaping() -> None:
    sel = parse_field_selector(r"metadata.name=a\,b\=c\\d")
    assert sel.value_for("metadata.name") == "a,b=c\\d"
    assert str(sel) == r"metadata.name=a\,b\=c\\d"
    assert parse_field_selector(str(sel)) == sel


@pytest.mark.parametrize("text", ["metadata.name", "a=b=c", r"a=b\x", "a=b\\", "noop"])
def test_rejects_invalid(text: str) -> None:
    with pytest.raises(FieldSelectorError):
        parse_field_selector(text)


def test_pod_fields_and_matching() -> None:
    fields = object_fields("Pod", POD)
    assert fields["spec.nodeName"] == "node-7"
    assert fields["status.podIP"] == "10.0.0.5"
    assert fields["spec.hostNetwork"] == "false"
    assert fields["metadata.namespace"] == "default"
    assert fields["status.nominatedNodeName"] == ""
    assert parse_field_selector("spec.nodeName=node-7,status.phase!=Succeeded").matches(fields)
    assert not parse_field_selector("spec.nodeName=node-8").matches(fields)


def test_other_kinds() -> None:
    assert object_fields("Node", {"metadata": {"name": "n"}, "spec": {"unschedulable": True}}) == {
        "metadata.name": "n",
        "metadata.namespace": "",
        "spec.unschedulable": "true",
    }
    event = {
        "metadata": {"name": "e", "namespace": "ns"},
        "involvedObject": {"kind": "Pod", "name": "p", "uid": "u"},
        "reason": "Scheduled",
        "source": {"component": "default-scheduler"},
        "type": "Normal",
    }
    ef = object_fields("Event", event)
    assert ef["involvedObject.kind"] == "Pod"
    assert ef["involvedObject.fieldPath"] == ""
    assert ef["source"] == "default-scheduler"
    assert object_fields("Secret", {"metadata": {}, "type": "Opaque"})["type"] == "Opaque"
    assert object_fields("Job", {"status": {"succeeded": 3}})["status.successful"] == "3"
    assert object_fields("ReplicaSet", {"status": {}})["status.replicas"] == "0"
    assert object_fields("Namespace", {"status": {"phase": "Active"}})["status.phase"] == "Active"


def test_unsupported_fields_and_conversion() -> None:
    sel = parse_field_selector("spec.nodeName=a,status.hostIP=1.2.3.4")
    assert unsupported_fields("Pod", sel) == ["status.hostIP"]
    with pytest.raises(FieldSelectorError, match=re.escape("field label not supported: status.hostIP")):
        convert_field_selector("Pod", sel)
    assert unsupported_fields("Node", parse_field_selector("metadata.namespace=x")) == ["metadata.namespace"]
    converted = convert_field_selector("Pod", parse_field_selector("spec.host=n1"))
    assert converted.value_for("spec.nodeName") == "n1"
    with pytest.raises(FieldSelectorError, match=re.escape('"spec.replicas" is not a known field selector')):
        convert_field_selector("Deployment", parse_field_selector("spec.replicas=1"))
    assert (
        convert_field_selector("Deployment", parse_field_selector("metadata.name=d")).value_for("metadata.name") == "d"
    )


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="ab,=\\ x.", max_size=12))
def test_escape_round_trip(value: str) -> None:
    assert unescape_value(escape_value(value)) == value
    sel = parse_field_selector("metadata.name=" + escape_value(value))
    assert sel.value_for("metadata.name") == value
    assert sel.matches({"metadata.name": value})

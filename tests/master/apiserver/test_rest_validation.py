"""Generic metadata validation and query/DeleteOptions parsing (no server needed)."""

from __future__ import annotations

import pytest

from kubemark.kube.resources import find
from kubemark.master.apiserver.errors import StatusError
from kubemark.master.apiserver.options import parse_delete_options, parse_list_options
from kubemark.master.apiserver.validation import validate_object_meta, validate_object_meta_update

PODS = find("", "v1", "pods")
SERVICES = find("", "v1", "services")
NAMESPACES = find("", "v1", "namespaces")


def fields(causes: list) -> list[str]:
    return [c.field for c in causes]


def test_name_rules_per_kind() -> None:
    assert PODS and SERVICES and NAMESPACES
    ok = {"metadata": {"name": "a.b-c", "namespace": "default"}}
    assert validate_object_meta(PODS, ok) == []
    assert fields(validate_object_meta(SERVICES, ok)) == ["metadata.name"]  # dots: not a DNS-1035 label
    digit_first = {"metadata": {"name": "1abc", "namespace": "default"}}
    assert validate_object_meta(PODS, digit_first) == []
    assert fields(validate_object_meta(SERVICES, digit_first)) == ["metadata.name"]
    assert fields(validate_object_meta(NAMESPACES, {"metadata": {"name": "a.b"}})) == ["metadata.name"]
    missing = validate_object_meta(PODS, {"metadata": {}})
    assert fields(missing) == ["metadata.name", "metadata.namespace"]
    assert missing[0].reason == "FieldValueRequired"


def test_finalizers_labels_annotations() -> None:
    obj = {
        "metadata": {
            "name": "x",
            "namespace": "d",
            "labels": {"ok": "v", "k": "bad value"},
            "annotations": {"example.com/a": "anything goes"},
            "finalizers": ["example.com/f", "not a name"],
        }
    }
    causes = validate_object_meta(PODS, obj)
    assert fields(causes) == ["metadata.labels", "metadata.finalizers[1]"]
    both = {"metadata": {"name": "x", "namespace": "d", "finalizers": ["orphan", "foregroundDeletion"]}}
    assert fields(validate_object_meta(PODS, both)) == ["metadata.finalizers"]


def test_no_new_finalizers_while_deleting() -> None:
    old = {"metadata": {"name": "x", "namespace": "d", "deletionTimestamp": "t", "finalizers": ["a.io/x"]}}
    new = {"metadata": {"name": "x", "namespace": "d", "finalizers": ["a.io/x", "b.io/y"]}}
    causes = validate_object_meta_update(PODS, new, old)
    assert fields(causes) == ["metadata.finalizers"] and causes[0].reason == "FieldValueForbidden"
    fewer = {"metadata": {"name": "x", "namespace": "d", "finalizers": []}}
    assert validate_object_meta_update(PODS, fewer, old) == []


def test_delete_options_query_overrides_body() -> None:
    body = {"kind": "DeleteOptions", "gracePeriodSeconds": 30, "preconditions": {"uid": "u"}, "dryRun": ["All"]}
    opts = parse_delete_options({"gracePeriodSeconds": "0", "propagationPolicy": "Foreground"}, body)
    assert opts.grace_period_seconds == 0 and opts.precondition_uid == "u"
    assert opts.propagation_policy == "Foreground" and opts.dry_run
    with pytest.raises(StatusError) as err:
        parse_delete_options({"gracePeriodSeconds": "soon"}, None)
    assert err.value.code == 400 and "gracePeriodSeconds" in err.value.message
    with pytest.raises(StatusError) as err:
        parse_delete_options({"propagationPolicy": "Orphan", "orphanDependents": "true"}, None)
    assert err.value.code == 422


def test_watch_list_options() -> None:
    opts = parse_list_options(
        {"watch": "1", "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan", "allowWatchBookmarks": "1"}
    )
    assert opts.watch and opts.send_initial_events and opts.allow_watch_bookmarks
    with pytest.raises(StatusError) as err:
        parse_list_options({"watch": "true", "resourceVersionMatch": "NotOlderThan", "resourceVersion": "5"})
    assert err.value.code == 422
    assert parse_list_options({"timeoutSeconds": "7"}).watch_timeout() == 7.0
    assert 1800 <= parse_list_options({}).watch_timeout() <= 3600

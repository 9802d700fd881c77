"""Tests for kubemark.kube.patch: merge patch, JSON patch and strategic merge patch."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubemark.kube.patch import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
    create_merge_patch,
    create_strategic_merge_patch,
    strategic_merge_supported,
)

# --- RFC 7386 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7386 appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc_examples(target: Any, patch: Any, result: Any) -> None:
    before = copy.deepcopy(target)
    assert apply_merge_patch(target, patch) == result
    assert target == before


def test_create_merge_patch() -> None:
    original = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2], "f": True}
    modified = {"a": 1, "b": {"c": 5}, "e": [1, 2, 3], "g": "x", "f": 1}
    patch = create_merge_patch(original, modified)
    assert patch == {"b": {"c": 5, "d": None}, "e": [1, 2, 3], "g": "x", "f": 1}
    assert apply_merge_patch(original, patch) == modified
    assert create_merge_patch(original, copy.deepcopy(original)) == {}


_json_leaf = st.one_of(st.booleans(), st.integers(-5, 5), st.text(alphabet="ab", max_size=2))
_json_nonnull = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abcd"), inner, max_size=3)),
    max_leaves=12,
)
_json_obj = st.dictionaries(st.sampled_from("abcde"), _json_nonnull, max_size=4)


@settings(max_examples=200, deadline=None)
@given(_json_obj, _json_obj)
def test_merge_patch_identity(a: dict, b: dict) -> None:
    patch = create_merge_patch(a, b)
    assert apply_merge_patch(a, patch) == b
    assert apply_merge_patch(b, create_merge_patch(b, b)) == b


# --- RFC 6902 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "ops", "result"),
    [  # RFC 6902 appendix A
        ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
        (
            {"foo": ["bar", "baz"]},
            [{"op": "add", "path": "/foo/1", "value": "qux"}],
            {"foo": ["bar", "qux", "baz"]},
        ),
        ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
        ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
        (
            {"baz": "qux", "foo": "bar"},
            [{"op": "replace", "path": "/baz", "value": "boo"}],
            {"baz": "boo", "foo": "bar"},
        ),
        (
            {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
            [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
            {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
        ),
        (
            {"foo": ["all", "grass", "cows", "eat"]},
            [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
            {"foo": ["all", "cows", "eat", "grass"]},
        ),
        (
            {"baz": "qux", "foo": ["a", 2, "c"]},
            [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
            {"baz": "qux", "foo": ["a", 2, "c"]},
        ),
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
            {"foo": "bar", "child": {"grandchild": {}}},
        ),
        (
            {"foo": ["bar"]},
            [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
            {"foo": ["bar", ["abc", "def"]]},
        ),
        ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
        ({"/": 9}, [{"op": "replace", "path": "/~1", "value": 1}], {"/": 1}),
        ({"a": 1}, [{"op": "copy", "from": "/a", "path": "/b"}], {"a": 1, "b": 1}),
        ({"a": 1}, [{"op": "replace", "path": "", "value": [1]}], [1]),
        (
            {"metadata": {"labels": {"a": "b"}}},
            [{"op": "add", "path": "/metadata/labels/kubernetes.io~1os", "value": "linux"}],
            {"metadata": {"labels": {"a": "b", "kubernetes.io/os": "linux"}}},
        ),
    ],
)
def test_json_patch_rfc_examples(doc: Any, ops: list, result: Any) -> None:
    before = copy.deepcopy(doc)
    assert apply_json_patch(doc, ops) == result
    assert doc == before


@pytest.mark.parametrize(
    ("doc", "ops"),
    [
        ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}]),
        ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}]),
        ({"foo": 1}, [{"op": "test", "path": "/foo", "value": True}]),
        ({"foo": "bar"}, [{"op": "remove", "path": "/nope"}]),
        ({"foo": "bar"}, [{"op": "replace", "path": "/nope", "value": 1}]),
        ({"foo": [1]}, [{"op": "add", "path": "/foo/2", "value": 1}]),
        ({"foo": [1]}, [{"op": "add", "path": "/foo/01", "value": 1}]),
        ({"foo": [1]}, [{"op": "remove", "path": "/foo/-"}]),
        ({"foo": "bar"}, [{"op": "add", "path": "/foo"}]),
        ({"foo": "bar"}, [{"op": "frobnicate", "path": "/foo"}]),
        ({"foo": "bar"}, [{"op": "add", "path": "foo", "value": 1}]),
        ({"foo": "bar"}, [{"op": "add", "path": "/~2", "value": 1}]),
        ({"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/c"}]),
        ({"foo": "bar"}, {"op": "add"}),
        ({"foo": "bar"}, ["add"]),
    ],
)
def test_json_patch_errors(doc: Any, ops: Any) -> None:
    with pytest.raises(PatchError):
        apply_json_patch(doc, ops)


def test_json_patch_failure_is_atomic() -> None:
    doc = {"a": 1}
    with pytest.raises(PatchError):
        apply_json_patch(doc, [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/zz"}])
    assert doc == {"a": 1}


_keys = st.text(alphabet="ab/~", min_size=1, max_size=3)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, _json_nonnull, max_size=4), _keys, _json_nonnull, st.data())
def test_json_patch_add_then_remove(doc: dict, key: str, value: Any, data: st.DataObject) -> None:
    if key not in doc:
        ops = [{"op": "add", "path": "/" + _escape(key), "value": value}]
        patched = apply_json_patch(doc, ops)
        assert patched[key] == value
        assert apply_json_patch(patched, [{"op": "remove", "path": "/" + _escape(key)}]) == doc
    lists = [k for k, v in doc.items() if isinstance(v, list)]
    if lists:
        name = data.draw(st.sampled_from(lists))
        index = data.draw(st.integers(0, len(doc[name])))
        path = f"/{_escape(name)}/{index}"
        patched = apply_json_patch(doc, [{"op": "add", "path": path, "value": value}])
        assert patched[name][index] == value
        assert apply_json_patch(patched, [{"op": "remove", "path": path}]) == doc


# --- strategic merge patch ----------------------------------------------------------------------


def _pod() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "p",
            "labels": {"app": "web", "tier": "fe"},
            "finalizers": ["a", "b"],
            "ownerReferences": [{"uid": "u1", "kind": "ReplicaSet", "name": "rs"}],
        },
        "spec": {
            "containers": [
                {
                    "name": "c1",
                    "image": "i1",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "volumeMounts": [{"name": "v", "mountPath": "/data"}],
                },
            ],
            "volumes": [{"name": "v", "emptyDir": {}}],
            "tolerations": [{"key": "t1", "operator": "Exists"}],
        },
        "status": {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
            ],
            "containerStatuses": [{"name": "c1", "ready": False, "restartCount": 0}],
            "podIPs": [{"ip": "10.0.0.1"}],
        },
    }


def test_smp_does_not_mutate_inputs() -> None:
    pod = _pod()
    patch = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    before, patch_before = copy.deepcopy(pod), copy.deepcopy(patch)
    apply_strategic_merge_patch(pod, patch, "Pod")
    assert pod == before and patch == patch_before


def test_smp_maps_and_null_delete() -> None:
    out = apply_strategic_merge_patch(_pod(), {"metadata": {"labels": {"tier": None, "x": "y"}}}, "Pod")
    assert out["metadata"]["labels"] == {"app": "web", "x": "y"}
    out = apply_strategic_merge_patch(_pod(), {"status": {"phase": "Running", "podIP": "1.2.3.4"}}, "Pod")
    assert out["status"]["phase"] == "Running" and out["status"]["podIP"] == "1.2.3.4"
    assert len(out["status"]["conditions"]) == 2


def test_smp_conditions_merge_by_type() -> None:
    patch = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": None}]}}
    out = apply_strategic_merge_patch(_pod(), patch, "Pod")
    assert out["status"]["conditions"] == [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Ready", "status": "True"},
    ]


def test_smp_container_statuses_are_atomic() -> None:
    patch = {"status": {"containerStatuses": [{"name": "c1", "ready": True}]}}
    out = apply_strategic_merge_patch(_pod(), patch, "Pod")
    assert out["status"]["containerStatuses"] == [{"name": "c1", "ready": True}]


def test_smp_containers_ports_env_mounts() -> None:
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "c1",
                    "image": "i2",
                    "ports": [{"containerPort": 443}],
                    "env": [{"name": "B", "value": "3"}],
                    "volumeMounts": [{"mountPath": "/data", "readOnly": True}],
                }
            ]
        }
    }
    c = apply_strategic_merge_patch(_pod(), patch, "Pod")["spec"]["containers"][0]
    assert c["image"] == "i2"
    assert sorted(p["containerPort"] for p in c["ports"]) == [80, 443]
    assert {e["name"]: e["value"] for e in c["env"]} == {"A": "1", "B": "3"}
    assert c["volumeMounts"] == [{"name": "v", "mountPath": "/data", "readOnly": True}]


def test_smp_new_list_item_goes_first_without_order_directive() -> None:
    # mergeSortedSlice: patch items not present on the server are placed before server-only items.
    out = apply_strategic_merge_patch(_pod(), {"spec": {"containers": [{"name": "c0", "image": "x"}]}}, "Pod")
    assert [c["name"] for c in out["spec"]["containers"]] == ["c0", "c1"]


def test_smp_set_element_order() -> None:
    patch = {
        "status": {
            "$setElementOrder/conditions": [
                {"type": "Ready"},
                {"type": "Initialized"},
                {"type": "PodScheduled"},
            ],
            "conditions": [{"type": "Initialized", "status": "True"}],
        }
    }
    out = apply_strategic_merge_patch(_pod(), patch, "Pod")
    assert [c["type"] for c in out["status"]["conditions"]] == ["Ready", "Initialized", "PodScheduled"]
    assert out["status"]["conditions"][0]["status"] == "False"


def test_smp_tolerations_and_taints_are_atomic() -> None:
    out = apply_strategic_merge_patch(_pod(), {"spec": {"tolerations": [{"key": "t2"}]}}, "Pod")
    assert out["spec"]["tolerations"] == [{"key": "t2"}]
    node = {"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}], "podCIDRs": ["10.0.0.0/24"]}}
    patched = apply_strategic_merge_patch(
        node, {"spec": {"taints": [{"key": "b", "effect": "NoExecute"}], "podCIDRs": ["fd00::/64"]}}, "Node"
    )
    assert patched["spec"]["taints"] == [{"key": "b", "effect": "NoExecute"}]
    assert sorted(patched["spec"]["podCIDRs"]) == ["10.0.0.0/24", "fd00::/64"]


def test_smp_node_status() -> None:
    node = {
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "t0"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
            "images": [{"names": ["a"]}],
        }
    }
    patch = {
        "status": {
            "conditions": [{"type": "Ready", "lastHeartbeatTime": "t1"}, {"type": "MemoryPressure", "status": "False"}],
            "addresses": [{"type": "Hostname", "address": "n1"}],
            "images": [{"names": ["b"]}],
        }
    }
    st_ = apply_strategic_merge_patch(node, patch, "Node")["status"]
    assert {c["type"]: c for c in st_["conditions"]}["Ready"] == {
        "type": "Ready",
        "status": "True",
        "lastHeartbeatTime": "t1",
    }
    assert {a["type"] for a in st_["addresses"]} == {"InternalIP", "Hostname"}
    assert st_["images"] == [{"names": ["b"]}]


def test_smp_service_ports_and_unknown_kind() -> None:
    svc = {"spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"a": "b"}}}
    out = apply_strategic_merge_patch(svc, {"spec": {"ports": [{"port": 80, "name": "http"}]}}, "Service")
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 8080, "name": "http"}]
    out = apply_strategic_merge_patch(svc, {"spec": {"ports": [{"port": 81}]}}, "Widget")
    assert out["spec"]["ports"] == [{"port": 81}]
    assert strategic_merge_supported("Pod") and not strategic_merge_supported("Widget")


def test_smp_metadata_lists() -> None:
    out = apply_strategic_merge_patch(
        _pod(),
        {
            "metadata": {
                "finalizers": ["c", "a"],
                "ownerReferences": [{"uid": "u1", "controller": True}, {"uid": "u2", "kind": "X"}],
            }
        },
        "Pod",
    )
    assert sorted(out["metadata"]["finalizers"]) == ["a", "b", "c"]
    refs = {r["uid"]: r for r in out["metadata"]["ownerReferences"]}
    assert refs["u1"] == {"uid": "u1", "kind": "ReplicaSet", "name": "rs", "controller": True}
    assert "u2" in refs
    out = apply_strategic_merge_patch(_pod(), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, "Pod")
    assert out["metadata"]["finalizers"] == ["b"]


def test_smp_patch_directives() -> None:
    out = apply_strategic_merge_patch(
        _pod(), {"status": {"conditions": [{"$patch": "replace"}, {"type": "X", "status": "True"}]}}, "Pod"
    )
    assert out["status"]["conditions"] == [{"type": "X", "status": "True"}]
    out = apply_strategic_merge_patch(
        _pod(), {"status": {"conditions": [{"type": "Ready", "$patch": "delete"}]}}, "Pod"
    )
    assert [c["type"] for c in out["status"]["conditions"]] == ["PodScheduled"]
    out = apply_strategic_merge_patch(_pod(), {"metadata": {"labels": {"$patch": "replace", "only": "me"}}}, "Pod")
    assert out["metadata"]["labels"] == {"only": "me"}
    out = apply_strategic_merge_patch(_pod(), {"metadata": {"labels": {"$patch": "delete"}}}, "Pod")
    assert out["metadata"]["labels"] == {}
    out = apply_strategic_merge_patch(_pod(), {"metadata": {"$patch": "merge", "labels": {"z": "1"}}}, "Pod")
    assert out["metadata"]["labels"]["z"] == "1"
    # A patch value with directives landing where nothing exists has them applied, not stored.
    out = apply_strategic_merge_patch({}, {"metadata": {"labels": {"a": "b", "c": None}}}, "Pod")
    assert out == {"metadata": {"labels": {"a": "b"}}}


def test_smp_retain_keys() -> None:
    deploy = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    out = apply_strategic_merge_patch(deploy, patch, "Deployment")
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    bad = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}}
    with pytest.raises(PatchError, match="retainKeys"):
        apply_strategic_merge_patch(deploy, bad, "Deployment")
    pod = _pod()
    patch = {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}]}}
    assert apply_strategic_merge_patch(pod, patch, "Pod")["spec"]["volumes"] == [
        {"name": "v", "hostPath": {"path": "/x"}}
    ]


def test_smp_template_in_workloads() -> None:
    rs = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}}}}
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "2"}]}}}}
    for kind in ("ReplicaSet", "Deployment", "Job", "ReplicationController"):
        out = apply_strategic_merge_patch(rs, patch, kind)
        assert out["spec"]["template"]["spec"]["containers"] == [
            {"name": "a", "image": "1"},
            {"name": "b", "image": "2"},
        ]


@pytest.mark.parametrize(
    "patch",
    [
        {"status": {"conditions": [{"status": "True"}]}},  # missing merge key
        {"status": {"conditions": [{"type": "Ready", "$patch": "bogus"}]}},
        {"status": {"conditions": [{"$patch": "delete"}]}},
        {"metadata": {"labels": {"$patch": "bogus"}}},
        {"status": {"conditions": [{"$patch": "merge"}]}},
    ],
)
def test_smp_errors(patch: dict) -> None:
    with pytest.raises(PatchError):
        apply_strategic_merge_patch(_pod(), patch, "Pod")


def test_create_strategic_merge_patch_round_trip() -> None:
    original = _pod()
    modified = copy.deepcopy(original)
    modified["status"]["conditions"] = [
        {"type": "Ready", "status": "True"},
        {"type": "ContainersReady", "status": "True"},
    ]
    modified["metadata"]["finalizers"] = ["b", "c"]
    modified["metadata"]["labels"].pop("tier")
    modified["status"]["containerStatuses"][0]["ready"] = True
    patch = create_strategic_merge_patch(original, modified, "Pod")
    assert {"type": "PodScheduled", "$patch": "delete"} in patch["status"]["conditions"]
    assert patch["status"]["$setElementOrder/conditions"] == [{"type": "Ready"}, {"type": "ContainersReady"}]
    assert patch["metadata"]["$deleteFromPrimitiveList/finalizers"] == ["a"]
    assert "spec" not in patch
    assert apply_strategic_merge_patch(original, patch, "Pod") == modified
    assert create_strategic_merge_patch(original, copy.deepcopy(original), "Pod") == {}


_cond_types = ["Ready", "Initialized", "PodScheduled", "ContainersReady", "DisruptionTarget"]
_condition = st.fixed_dictionaries(
    {"status": st.sampled_from(["True", "False", "Unknown"])},
    optional={"reason": st.sampled_from(["A", "B"]), "message": st.text(alphabet="xy", max_size=2)},
)


@st.composite
def _conditions(draw: st.DrawFn) -> list[dict[str, str]]:
    types = draw(st.permutations(_cond_types))
    count = draw(st.integers(0, len(types)))
    return [{"type": t, **draw(_condition)} for t in types[:count]]


@settings(max_examples=150, deadline=None)
@given(_conditions(), _conditions())
def test_smp_conditions_properties(current: list[dict], patch_conditions: list[dict]) -> None:
    pod = {"status": {"conditions": current}}
    patch = {"status": {"conditions": patch_conditions}}
    once = apply_strategic_merge_patch(pod, patch, "Pod")
    twice = apply_strategic_merge_patch(once, patch, "Pod")
    assert once == twice  # idempotent
    result = once["status"]["conditions"]
    by_type = {c["type"]: c for c in result}
    assert len(by_type) == len(result)
    patched_types = {c["type"] for c in patch_conditions}
    untouched = [c for c in current if c["type"] not in patched_types]
    # Untouched conditions are unchanged and keep their relative order.
    assert [c for c in result if c["type"] not in patched_types] == untouched
    for c in patch_conditions:
        old = next((o for o in current if o["type"] == c["type"]), {})
        assert by_type[c["type"]] == {**old, **c}
    # The order of the untouched items in the input does not change the set of results.
    reordered = apply_strategic_merge_patch({"status": {"conditions": current[::-1]}}, patch, "Pod")
    assert sorted(map(str, reordered["status"]["conditions"])) == sorted(map(str, result))


@settings(max_examples=150, deadline=None)
@given(
    _conditions(),
    _conditions(),
    st.lists(st.sampled_from(["a", "b", "c", "d"]), unique=True),
    st.lists(st.sampled_from(["a", "b", "c", "d"]), unique=True),
)
def test_create_strategic_merge_patch_identity(
    old_conditions: list[dict], new_conditions: list[dict], old_fin: list[str], new_fin: list[str]
) -> None:
    original = {"metadata": {"finalizers": old_fin}, "status": {"conditions": old_conditions, "phase": "Pending"}}
    modified = {"metadata": {"finalizers": new_fin}, "status": {"conditions": new_conditions}}
    patch = create_strategic_merge_patch(original, modified, "Pod")
    assert apply_strategic_merge_patch(original, patch, "Pod") == modified

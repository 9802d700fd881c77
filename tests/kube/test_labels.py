"""Tests for kubemark.kube.labels: upstream selector syntax, semantics and round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubemark.kube.labels import (
    LabelSelectorError,
    Selector,
    parse_label_selector,
    selector_from_label_selector,
)


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("", {"a": "b"}, True),
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a==b", {"a": "b"}, True),
        ("a!=b", {"a": "b"}, False),
        ("a!=b", {"a": "c"}, True),
        ("a!=b", {}, True),
        ("a in (x,y)", {"a": "y"}, True),
        ("a in (x,y)", {"a": "z"}, False),
        ("a in (x,y)", {}, False),
        ("a notin (x)", {}, True),
        ("a notin (x)", {"a": "x"}, False),
        ("a", {"a": ""}, True),
        ("a", {"b": "x"}, False),
        ("!a", {"b": "x"}, True),
        ("!a", {"a": "x"}, False),
        ("a=b,c=d", {"a": "b", "c": "d"}, True),
        ("a=b,c=d", {"a": "b"}, False),
        ("  a = b ,  c  in ( d , e ) ", {"a": "b", "c": "e"}, True),
        ("a=", {"a": ""}, True),
        ("a=", {"a": "x"}, False),
        ("a in ()", {"a": ""}, True),
        ("a>5", {"a": "6"}, True),
        ("a>5", {"a": "5"}, False),
        ("a<5", {"a": "4"}, True),
        ("a<5", {"a": "x"}, False),
        ("a<5", {}, False),
        ("example.com/role=db", {"example.com/role": "db"}, True),
        ("in in (in)", {"in": "in"}, True),
    ],
)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


@pytest.mark.parametrize(
    "text",
    [
        "a=b=c",
        "!a=b",
        "a in x",
        "a in (x",
        "a b",
        "a,",
        ",a",
        "a>x",
        "a>",
        "-a=b",
        "a=-b",
        "a/b/c=d",
        "x" * 64 + "=y",
        "a=" + "v" * 64,
        "a in (x y)",
        "a notin",
        "!",
        "(",
    ],
)
def test_rejects_invalid(text: str) -> None:
    with pytest.raises(LabelSelectorError):
        parse_label_selector(text)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("a in ()", {""}),
        ("a in (,)", {""}),
        ("a in (,x)", {"", "x"}),
        ("a in (x,)", {"", "x"}),
        ("a in (x,,y)", {"", "x", "y"}),
    ],
)
def test_empty_values_in_sets(text: str, values: set[str]) -> None:
    # Upstream's parseIdentifiersList quirks: empty slots mean the empty value.
    assert parse_label_selector(text).exact_values("a") == values


@pytest.mark.parametrize("text", ["a in (,,)", "a in (x,,)"])
def test_empty_value_sets_upstream_rejects(text: str) -> None:
    with pytest.raises(LabelSelectorError):
        parse_label_selector(text)


def test_string_form_is_sorted_and_canonical() -> None:
    sel = parse_label_selector("z in (b,a),  a!=x, !m, k")
    assert str(sel) == "a!=x,k,!m,z in (a,b)"
    assert parse_label_selector(str(sel)) == sel


def test_empty_and_nothing() -> None:
    assert parse_label_selector("").empty
    assert not parse_label_selector("a").empty
    assert selector_from_label_selector(None).matches({"a": "b"}) is False
    assert selector_from_label_selector(None).matches_nothing
    assert not selector_from_label_selector(None).empty
    assert selector_from_label_selector({}).empty
    assert selector_from_label_selector({"matchLabels": {}}).matches({"x": "y"})


def test_exact_values() -> None:
    sel = parse_label_selector("app in (a,b,c),app!=c,app=b")
    assert sel.exact_values("app") == {"b"}
    assert parse_label_selector("app in (a,b)").exact_values("app") == {"a", "b"}
    assert parse_label_selector("app notin (a)").exact_values("app") is None
    assert parse_label_selector("other=x").exact_values("app") is None
    assert Selector.nothing().exact_values("app") == set()


def test_from_label_selector_dict() -> None:
    sel = selector_from_label_selector(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "Exists"},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
            ],
        }
    )
    assert sel.matches({"app": "web", "tier": "fe", "zone": "z1"})
    assert not sel.matches({"app": "web", "tier": "fe", "zone": "z1", "canary": "1"})
    assert not sel.matches({"app": "web", "tier": "fe", "zone": "z1", "env": "prod"})
    assert not sel.matches({"app": "web", "tier": "fe"})
    assert str(sel) == "app=web,!canary,env notin (prod),tier in (be,fe),zone"


@pytest.mark.parametrize(
    "bad",
    [
        {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        {"matchLabels": {"a": "bad value"}},
        {"matchLabels": {"bad key": "v"}},
        {"matchLabels": {"a": 1}},
        {"matchExpressions": [{"key": "a", "operator": "In", "values": [{"x": 1}]}]},
        {"matchExpressions": [{"operator": "Exists"}]},
        {"matchLabels": ["a"]},
    ],
)
def test_from_label_selector_rejects(bad: dict) -> None:
    with pytest.raises(LabelSelectorError):
        selector_from_label_selector(bad)


# --- properties ---------------------------------------------------------------------------------

_names = st.sampled_from(["a", "b", "app", "k8s.io/x", "tier", "in"])
_values = st.sampled_from(["", "x", "y", "z", "1", "42"])
_set_values = st.sampled_from(["x", "y", "z", "1", "42"])
_requirement = st.one_of(
    st.tuples(_names, st.sampled_from(["=", "==", "!="]), _values).map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
    st.tuples(_names, st.sampled_from(["in", "notin"]), st.lists(_set_values, min_size=1, max_size=3)).map(
        lambda t: f"{t[0]} {t[1]} ({','.join(t[2])})"
    ),
    _names,
    _names.map(lambda n: "!" + n),
    st.tuples(_names, st.sampled_from([">", "<"]), st.sampled_from(["0", "5", "41"])).map("".join),
)
_label_sets = st.dictionaries(_names, _values, max_size=4)


def _reference(text: str, labels: dict[str, str]) -> bool:
    """An independent, naive evaluator for the generated (well-formed) selector strings."""
    for term in _split_outside_parens(text):
        term = term.strip()
        if not term:
            continue
        if " notin " in term or " in " in term:
            neg = " notin " in term
            key, rest = term.split(" notin " if neg else " in ", 1)
            values = {v.strip() for v in rest.strip()[1:-1].split(",")}
            ok = (key in labels and labels[key] in values) if not neg else labels.get(key) not in values
        elif "!=" in term:
            key, value = term.split("!=", 1)
            ok = labels.get(key) != value
        elif "==" in term or "=" in term:
            key, value = term.split("==", 1) if "==" in term else term.split("=", 1)
            ok = labels.get(key) == value
        elif ">" in term or "<" in term:
            op = ">" if ">" in term else "<"
            key, value = term.split(op, 1)
            if key not in labels or not labels[key].isdigit():
                ok = False
            else:
                ok = int(labels[key]) > int(value) if op == ">" else int(labels[key]) < int(value)
        elif term.startswith("!"):
            ok = term[1:] not in labels
        else:
            ok = term in labels
        if not ok:
            return False
    return True


def _split_outside_parens(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


@settings(max_examples=150, deadline=None)
@given(st.lists(_requirement, max_size=4), _label_sets)
def test_round_trip_and_reference_semantics(terms: list[str], labels: dict[str, str]) -> None:
    text = ",".join(terms)
    sel = parse_label_selector(text)
    again = parse_label_selector(str(sel))
    assert again == sel
    assert str(again) == str(sel)
    assert sel.matches(labels) == _reference(text, labels)
    assert again.matches(labels) == sel.matches(labels)
    for key in labels:
        hint = sel.exact_values(key)
        if hint is not None and sel.matches(labels):
            assert labels[key] in hint

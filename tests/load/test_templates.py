"""The Go-template subset used by clusterloader2 configs and object templates."""

from __future__ import annotations

import random

import pytest

from kubemark.load.templates import Template, TemplateError, render


def test_fields_and_nested_fields() -> None:
    out = render(
        "name: {{.Name}}-{{.Index}} r={{.Replicas}} z={{.Spec.Zone}}",
        {"Name": "dep", "Index": 3, "Replicas": 5, "Spec": {"Zone": "a"}},
    )
    assert out == "name: dep-3 r=5 z=a"


def test_default_param_uses_override_or_default() -> None:
    src = "{{$n := DefaultParam .CL2_NODES 100}}nodes: {{$n}}"
    assert render(src, {}) == "nodes: 100"
    assert render(src, {"CL2_NODES": 7}) == "nodes: 7"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("AddInt 1 2 3", "6"),
        ("SubtractInt 10 4", "6"),
        ("MultiplyInt 3 4", "12"),
        ("MultiplyInt 2.5 3", "7"),  # Go's int() truncates
        ("DivideInt 7 2", "3"),
        ("DivideInt -7 2", "-3"),  # toward zero, not floor
        ("DivideFloat 1 4", "0.25"),
        ("MaxInt 3 9 4", "9"),
        ("MinInt 3 9 4", "3"),
        ("Mod 7 3", "1"),
        ("Mod -7 3", "-1"),  # Go's % keeps the dividend's sign
        ("AddFloat 0.5 0.25", "0.75"),
        ("MultiplyFloat 2 1.5", "3"),
        ('AddInt "2" 3', "5"),  # numeric strings are numbers, as clusterloader2's toFloat64
    ],
)
def test_arithmetic(expr: str, expected: str) -> None:
    assert render("{{" + expr + "}}") == expected


def test_nested_calls_and_pipes() -> None:
    src = "{{$ns := MaxInt 1 (DivideInt .Nodes 100)}}{{$ns}} {{MultiplyInt $ns 30 | AddInt 5}}"
    assert render(src, {"Nodes": 250}) == "2 65"
    assert render(src, {"Nodes": 50}) == "1 35"


def test_if_else_chain_and_comparisons() -> None:
    src = "{{if gt .N 10}}big{{else if eq .N 10}}ten{{else}}small{{end}}"
    assert [render(src, {"N": n}) for n in (11, 10, 3)] == ["big", "ten", "small"]
    assert render("{{if and .A (not .B)}}yes{{else}}no{{end}}", {"A": True, "B": False}) == "yes"


def test_range_over_seq_and_list() -> None:
    assert render("{{range $i := Seq 3}}[{{$i}}]{{end}}") == "[0][0][0]"
    assert render("{{range $i, $v := .L}}{{$i}}={{$v}};{{end}}", {"L": ["a", "b"]}) == "0=a;1=b;"


def test_whitespace_trimming_and_comments() -> None:
    src = "a:\n  {{- /* a comment */ -}}\n  {{ .X }}\n"
    assert render(src, {"X": 1}) == "a:1\n"


def test_printf_and_strings() -> None:
    assert render('{{printf "%s-%03d" .Name 7}}', {"Name": "pod"}) == "pod-007"
    assert render('{{"a\\"b"}} {{`raw`}}') == 'a"b raw'


def test_rand_int_is_seeded_and_bounded() -> None:
    values = {int(render("{{RandIntRange 5 7}}", rng=random.Random(i))) for i in range(50)}
    assert values == {5, 6, 7}
    assert render("{{RandInt 10}}", rng=random.Random(1)) == render("{{RandInt 10}}", rng=random.Random(1))


def test_missing_value_is_an_error_naming_it() -> None:
    with pytest.raises(TemplateError, match=r"t.yaml:2: no value for \.Replicas"):
        Template("a: 1\nb: {{.Replicas}}", "t.yaml").render({})


@pytest.mark.parametrize(
    ("src", "message"),
    [
        ("{{Nope 1}}", 'function "Nope" not defined'),
        ("{{if .A}}x", "missing {{end}}"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{$x}}", "undefined variable: \\$x"),
        ("{{DivideInt 1 0}}", "division by zero"),
        ("{{with .A}}{{end}}", "not supported"),
        ("{{.A 1}}", "non-function"),
    ],
)
def test_errors(src: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render(src, {"A": 1})


def test_no_python_evaluation() -> None:
    # Anything that is not a defined function is rejected, so Python names cannot be reached.
    with pytest.raises(TemplateError):
        render('{{__import__ "os"}}')

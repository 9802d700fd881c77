"""Go's text/template as clusterloader2 configs and object templates use it: the expected outputs are Go's."""

from __future__ import annotations

import random

import pytest
import yaml

from kubemark.load.templates import NO_VALUE, Template, TemplateError, go_format, render

DATA = {
    "A": 1,
    "F": 2.5,
    "S": "str",
    "Z": 0,
    "L": ["a", "b"],
    "E": [],
    "M": {"k": "v", "n": {"x": 2}},
    "I": {"b": 2, "a": 1, "c": 3},
    "N": None,
    "Nodes": 250,
    "U": "héllo",
}

OUTPUTS = [
    # fields, variables, missing values
    ("{{.S}}-{{.M.k}}-{{.M.n.x}}", "str-v-2"),
    ("{{.Missing}}|{{.M.nope}}|{{.M.nope.deep}}", "<no value>|<no value>|<no value>"),
    ("{{$.A}}{{$.M.k}}", "1v"),
    ("{{$m := .M}}{{$m.n.x}} {{$m.missing}}", "2 <no value>"),
    ('{{(index .M "n").x}} {{(.M).k}}', "2 v"),
    ("{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}", "21"),  # := shadows inside the block
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),  # = assigns the outer variable
    ("{{$x := 0}}{{range $i, $e := .L}}{{$x = $i}}{{end}}{{$x}}", "1"),
    ("{{$n := DefaultParam .CL2_NODES 100}}{{$n}}", "100"),
    # printing Go values
    ("{{.L}} {{.E}} {{.I}} {{.M}}", "[a b] [] map[a:1 b:2 c:3] map[k:v n:map[x:2]]"),
    (
        "{{1000000.0}} {{1e6}} {{123456.0}} {{1234567.0}} {{0.0001}} {{0.00001}} {{1.0}} {{1.5}}",
        "1e+06 1e+06 123456 1.234567e+06 0.0001 1e-05 1 1.5",
    ),
    ("{{0x10}} {{017}} {{0o17}} {{0b101}} {{1_000}} {{'a'}} {{-3}} {{+4}}", "16 15 15 5 1000 97 -3 4"),
    ('{{"a\\tb\\x41\\u00e9"}} {{`raw\\n`}} {{true}}', "a\tbAé raw\\n true"),
    # if / else if / else, with / else with, truthiness
    ("{{if gt .Nodes 100}}big{{else if eq .Nodes 100}}hundred{{else}}small{{end}}", "big"),
    ("{{if .E}}e{{end}}{{if .Z}}z{{end}}{{if .N}}n{{end}}{{if .S}}s{{end}}{{if 0.0}}f{{end}}", "s"),
    ("{{with .M.n}}{{.x}}{{end}} {{with .Missing}}yes{{else}}no{{end}}", "2 no"),
    ("{{with .Z}}a{{else with .M}}{{.k}}{{else}}c{{end}}", "v"),
    ("{{with $v := .A}}{{$v}}{{.}}{{end}}", "11"),
    ("{{if $x := .A}}{{$x}}{{end}}", "1"),
    # range over lists, maps (sorted keys), ints; else; break and continue
    ("{{range $i, $e := .L}}{{$i}}={{$e}};{{end}}", "0=a;1=b;"),
    ("{{range .L}}[{{.}}]{{end}}", "[a][b]"),
    ("{{range $k, $v := .I}}{{$k}}{{$v}}{{end}}", "a1b2c3"),
    ("{{range .I}}{{.}}{{end}}", "123"),
    ("{{range 3}}{{.}}{{end}} {{range $i := 2}}{{$i}}{{end}}", "012 01"),
    (
        "{{range .E}}x{{else}}empty{{end}} {{range .N}}x{{else}}nil{{end}} {{range 0}}x{{else}}zero{{end}}",
        "empty nil zero",
    ),
    ("{{range $i, $e := Loop 5}}{{if eq $e 1}}{{continue}}{{end}}{{if eq $e 3}}{{break}}{{end}}{{$e}}{{end}}", "02"),
    ("{{range .L}}{{range $.L}}{{.}}{{end}}|{{end}}", "ab|ab|"),
    ("{{range $i := Loop 2}}{{range $j := Loop 2}}{{$i}}{{$j}} {{end}}{{end}}", "00 01 10 11 "),
    # define / template / block
    ('{{define "row"}}<{{.}}>{{end}}{{template "row" .A}}{{template "row" "x"}}', "<1><x>"),
    ('{{define "r"}}{{if gt . 0}}{{.}}{{template "r" (SubtractInt . 1)}}{{end}}{{end}}{{template "r" 3}}', "321"),
    ('{{block "b" .S}}[{{.}}]{{end}}{{template "b" 7}}', "[str][7]"),
    ('{{define "x"}}{{$}}{{end}}{{template "x"}}', "<no value>"),
    # pipes: the piped value is the last argument
    ("{{.A | AddInt 5 | MultiplyInt 2}}", "12"),
    ('{{3 | printf "%d-%s" 1 | printf "%s!"}}', "1-%!s(int=3)!"),
    ("{{DivideFloat .Nodes 20 | AddInt 180}}", "192"),
    ("{{(AddInt 1 2) | MultiplyInt 3}} {{AddInt 1 (AddInt 2 (AddInt 3 4))}}", "9 10"),
    # comparisons, and/or/not
    ('{{eq .A 1}} {{eq .S "x" "str"}} {{eq .N nil}} {{eq .Missing 1}} {{ne 1 2}}', "true true true false true"),
    ('{{lt 1 2}} {{lt "a" "B"}} {{le 2 2}} {{gt 2.5 1.5}} {{ge 1 2}}', "true false true true false"),
    ('{{and 1 0 2}} {{and 1 2}} {{or 0 "" 3}} {{or 0 ""}} {{not .E}} {{not 1}}', "0 2 3  true false"),
    ("{{and .Z (index .L 10)}} {{or .A (index .L 10)}}", "0 1"),  # short-circuit: index is never called
    # builtins
    (
        '{{len .L}} {{len .U}} {{len .M}} {{index .L 1}} {{index .M "n" "x"}} {{index .M "nope"}}',
        "2 6 2 b 2 <no value>",
    ),
    ("{{slice .L 1}} {{slice .L 0 1}} {{slice .S 1 2}} {{index .S 0}}", "[b] [a] t 115"),
    ('{{print 1 2 "a" 3 4}}|{{print .N}}|{{println 1 "a"}}', "1 2a3 4|<nil>|1 a\n"),
    (
        '{{html "<a href=\'x\'>&\\"</a>"}} {{urlquery "a b&c"}} {{js "a\'b<"}}',
        "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt; a+b%26c a\\'b\\u003C",
    ),
    # whitespace trimming and comments
    ("a\n  {{- /* a comment */ -}}\n  b", "ab"),
    ("a  {{- 1 -}}  b {{-2}}", "a1b -2"),
    ("x {{/* c */}} y{{/* multi\nline */}}", "x  y"),
    ('{{printf "%s" "}}"}}', "}}"),
]


@pytest.mark.parametrize(("src", "expected"), OUTPUTS)
def test_renders_like_go(src: str, expected: str) -> None:
    assert render(src, DATA) == expected


PRINTF = [
    ('"%d-%s" 1 "x"', "1-x"),
    ('"%03d|%-4d|%+d|%x|%X|%o|%b|%c|%U" 7 7 7 255 255 8 5 65 65', "007|7   |+7|ff|FF|10|101|A|U+0041"),
    ('"%v %v %v %v %v" 1 2.5 "s" true .L', "1 2.5 s true [a b]"),
    ('"%f %.2f %e %g %.3g" 1.5 2.345 1234.5 0.000012345 1234.0', "1.500000 2.35 1.234500e+03 1.2345e-05 1.23e+03"),
    ('"%5s|%-5s|%.2s" "ab" "cd" "xyz"', "   ab|cd   |xy"),
    ('"%6.2f|%05.1f|%*d" 3.14159 -2.5 4 7', "  3.14|-02.5|   7"),
    ('"%q %q" "a\\"b\\n" 65', '"a\\"b\\n" \'A\''),
    ('"%s|%d|%t" 5 1.5 1', "%!s(int=5)|%!d(float64=1.5)|%!t(int=1)"),
    ('"%d %d" 1', "1 %!d(MISSING)"),
    ('"%d" 1 2', "1%!(EXTRA int=2)"),
    ('"%d" .L', "[%!d(string=a) %!d(string=b)]"),
    ('"%v|%s" .Missing .Missing', "<nil>|%!s(<nil>)"),
    ('"%T %T %T" 1 1.5 "s"', "int float64 string"),
    ('"100%%"', "100%"),
]


@pytest.mark.parametrize(("args", "expected"), PRINTF)
def test_printf_follows_go_fmt(args: str, expected: str) -> None:
    assert render("{{printf " + args + "}}", DATA) == expected


ERRORS = [
    # parse errors
    ("{{Nope 1}}", 'function "Nope" not defined'),
    ("{{$x}}", 'undefined variable "\\$x"'),
    ("{{$x = 1}}", 'undefined variable "\\$x"'),
    ("{{range $x := .L}}{{end}}{{$x}}", 'undefined variable "\\$x"'),  # scoped to the range
    ("{{if .A}}x", "missing {{end}}"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{else}}", "unexpected {{else}}"),
    ("{{break}}", "{{break}} outside {{range}}"),
    ("{{with .A}}a{{else if .A}}b{{end}}", "unexpected 'if' in {{else}}"),
    ("{{.A | 2}}", "non executable command in pipeline stage 2"),
    ("{{nil}}", "nil is not a command"),
    ("{{(AddInt 1 2}}", "unclosed left paren"),
    ("unclosed {{ 1", "unclosed action"),
    ('{{"x".y}}', "unexpected . after term"),
    ("{{1e400}}", "illegal number syntax"),
    ("{{9223372036854775808}}", "integer overflow"),
    ('{{define "x"}}X{{end}}{{define "x"}}Y{{end}}', 'multiple definition of template "x"'),
    # execution errors
    ("{{eq 1 1.0}}", "error calling eq: incompatible types for comparison: int and float64"),
    ("{{lt .Nodes 100.0}}", "incompatible types for comparison: int and float64"),
    ("{{lt true false}}", "invalid type for comparison"),
    ("{{lt .Missing 1}}", "invalid type for comparison"),
    ("{{eq .L .L}}", "non-comparable type"),
    ("{{eq 1}}", "missing argument for comparison"),
    ("{{.A 1}}", "A is not a method but has arguments"),
    ("{{1 2}}", "can't give argument to non-function 1"),
    ("{{.A.B}}", "can't evaluate field B in type int"),
    ("{{.N.x}}", "nil pointer evaluating interface {}.x"),  # a key present with a nil value
    ("{{len 3}}", "len of type int"),
    ("{{index .L 5}}", "index out of range: 5"),
    ("{{index .Missing 1}}", "index of untyped nil"),
    ("{{slice .L 2 1}}", "invalid slice index: 2 > 1"),
    ("{{range .S}}{{end}}", "range can't iterate over str"),
    ("{{range $i, $j := 3}}{{end}}", "can't use 3 to iterate over more than one variable"),
    ('{{template "nope"}}', 'no such template "nope"'),
]


@pytest.mark.parametrize(("src", "message"), ERRORS)
def test_errors_like_go(src: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("(", r"\(").replace(")", r"\)").replace("{", r"\{")):
        render(src, DATA)


def test_errors_name_the_template_and_line() -> None:
    with pytest.raises(TemplateError, match=r"^t\.yaml:3: error calling DivideInt: division by zero$"):
        Template("a: 1\nb: 2\nc: {{DivideInt 1 .Z}}\n", "t.yaml").render({"Z": 0})


def test_missing_value_prints_like_go_or_fails_when_asked() -> None:
    src = "a: 1\nenv: {{.Env}}"
    assert render(src, {}) == "a: 1\nenv: " + NO_VALUE
    with pytest.raises(TemplateError, match=r"t\.yaml:2: no value for \.Env"):
        Template(src, "t.yaml", no_value=None).render({})


def test_go_format() -> None:
    assert [go_format(v) for v in (None, True, 3, 2.0, 1e21, [1, None], {"b": 1, "a": [2]})] == [
        "<no value>",
        "true",
        "3",
        "2",
        "1e+21",
        "[1 <nil>]",
        "map[a:[2] b:1]",
    ]


def test_parse_once_per_source() -> None:
    # Object templates render thousands of times a minute: equal sources share one parsed tree.
    src = "kind: Pod\nname: {{.Name}}-{{.Index}}\n"
    first, second = Template(src, "pod.yaml"), Template(src, "pod.yaml", rng=random.Random(1))
    assert first._root is second._root
    assert [first.render({"Name": "p", "Index": i}) for i in range(2)] == [
        "kind: Pod\nname: p-0\n",
        "kind: Pod\nname: p-1\n",
    ]


def test_no_python_evaluation() -> None:
    # Only the engine's own functions can be called, so no Python name is ever reachable.
    for src in ('{{__import__ "os"}}', "{{print.__globals__}}", "{{exec 1}}", "{{.A.__class__}}"):
        with pytest.raises(TemplateError):
            render(src, {"A": 1})
    # a field is only ever a map key
    assert render("{{.__class__}}", {}) == "<no value>"
    assert render("{{.__class__}}", {"__class__": "plain key"}) == "plain key"


CONFIG = """\
{{$NODES_PER_NAMESPACE := MinInt .Nodes (DefaultParam .NODES_PER_NAMESPACE 100)}}
{{$IS_SMALL := lt .Nodes 100}}
{{$SCALE := 0.5}}
{{$namespaces := DivideInt .Nodes $NODES_PER_NAMESPACE}}
{{$pods := MultiplyInt $namespaces $NODES_PER_NAMESPACE (DefaultParam .PODS_PER_NODE 30)}}
{{$seconds := DivideInt $pods (DefaultParam .THROUGHPUT 10)}}
{{$LIST := DefaultParam .CL2_COMMAND nil}}
name: sample
namespace:
  number: {{AddInt $namespaces (IfThenElse $IS_SMALL 1 0)}}
tuningSets:
- name: Saturation
  timeLimit: {{$seconds}}s
- name: Scaling
  timeLimit: {{DivideInt $seconds 4}}s
steps:
- name: {{printf "%s objects" .action}}
  params:
    min: {{MultiplyInt 30 (SubtractFloat 1 $SCALE)}}
    max: {{MultiplyInt 30 (AddFloat 1 $SCALE)}}
    deleting: {{eq .action "delete"}}
    overrides: {{YamlQuote (DefaultParam .OVERRIDES "") 4}}
{{if $LIST}}
    command:
    {{range $LIST}}
    - {{.}}
    {{end}}
{{end}}
{{range $i := Loop 2}}
- name: pv-{{$i}}
{{end}}
"""


@pytest.mark.parametrize("nodes", [3, 100, 5000])
def test_a_clusterloader2_shaped_config_renders_to_yaml(nodes: int) -> None:
    mapping = {"Nodes": nodes, "action": "delete", "OVERRIDES": "a: 1\nb: 2\n", "CL2_COMMAND": ["echo", "hi"]}
    cfg = yaml.safe_load(render(CONFIG, mapping))
    namespaces = nodes // min(nodes, 100)
    assert cfg["namespace"]["number"] == namespaces + (1 if nodes < 100 else 0)
    assert cfg["tuningSets"][0]["timeLimit"] == f"{namespaces * min(nodes, 100) * 30 // 10}s"
    assert cfg["steps"][0] == {
        "name": "delete objects",
        "params": {"min": 15, "max": 45, "deleting": True, "overrides": "a: 1\nb: 2\n", "command": ["echo", "hi"]},
    }
    assert [s["name"] for s in cfg["steps"][1:]] == ["pv-0", "pv-1"]

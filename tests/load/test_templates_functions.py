"""clusterloader2's template functions, with the values its Go implementation gives (pkg/config/template_functions.go).

Every expected value below is what clusterloader2's Go code prints for the same template: int() truncates toward
zero, the Int variants go through float64, numeric strings are numbers, printing a float64 uses Go's %v.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kubemark.load.templates import Template, TemplateError, render

DATA = {"N": None, "Z": 0, "B": False, "S": "str", "U": "ÄbC"}

VALUES = [
    # AddInt / AddFloat: sums in float64, AddInt truncates the total
    ("AddInt 1 2 3", "6"),
    ("AddInt", "0"),
    ("AddInt 1.9 1", "2"),
    ("AddInt -1.5", "-1"),
    ('AddInt "2" 3', "5"),
    ('AddInt "1e3"', "1000"),
    ('AddInt "1_000"', "1000"),
    ("AddFloat 0.1 0.2", "0.30000000000000004"),
    ("AddFloat 1 2", "3"),
    ("AddFloat", "0"),
    ('AddFloat "inf"', "+Inf"),
    ('AddFloat "0x1p4"', "16"),
    # SubtractInt / SubtractFloat
    ("SubtractInt 10 4.5", "5"),
    ("SubtractInt 3 10", "-7"),
    ("SubtractFloat 1 0.25", "0.75"),
    # MultiplyInt / MultiplyFloat: the product of nothing is 1; huge products overflow Go's int to MinInt64
    ("MultiplyInt 2.5 3", "7"),
    ("MultiplyInt 250 0.5", "125"),
    ("MultiplyInt 5 1.5", "7"),
    ("MultiplyInt", "1"),
    ("MultiplyInt 1e20 1", "-9223372036854775808"),
    ("MultiplyFloat 2 1.5", "3"),
    ("MultiplyFloat 1000 1000", "1e+06"),
    ("MultiplyFloat 3 0.1", "0.30000000000000004"),
    # DivideInt / DivideFloat: truncation toward zero, not floor
    ("DivideInt 7 2", "3"),
    ("DivideInt -7 2", "-3"),
    ("DivideInt 250 100", "2"),
    ("DivideFloat 1 4", "0.25"),
    ("DivideFloat 1 3", "0.3333333333333333"),
    ("DivideFloat 10 2", "5"),
    # MaxInt / MaxFloat / MinInt / MinFloat: math.Max and math.Min (NaN wins, except against the matching infinity)
    ("MaxInt 3 9 4", "9"),
    ("MaxInt 2.7", "2"),
    ("MaxFloat 1 2.5", "2.5"),
    ('MaxFloat 1 "NaN"', "NaN"),
    ('MaxFloat "NaN" "inf"', "+Inf"),
    ("MinInt 3 9 4", "3"),
    ("MinInt -2.5 1", "-2"),
    ("MinFloat -1 2.5", "-1"),
    ('MinFloat "NaN" 1', "NaN"),
    # Mod: both sides truncated to int, remainder with the dividend's sign
    ("Mod 7 3", "1"),
    ("Mod -7 3", "-1"),
    ("Mod 7 -3", "1"),
    ("Mod 7.9 3", "1"),
    ("Mod 5.5 2.5", "1"),
    ("Mod 20 20", "0"),
    ("Mod -9223372036854775808 -1", "0"),
    # Ceil returns a float64
    ("Ceil 2.1", "3"),
    ("Ceil -1.5", "-1"),
    ('Ceil "-0.5"', "-0"),
    ("Ceil 3", "3"),
    ("Ceil 1e300", "1e+300"),
    ("Ceil (DivideFloat 500 3)", "167"),
    # DefaultParam: only nil (a missing key) takes the default; zero values are kept
    ("DefaultParam .Missing 5", "5"),
    ("DefaultParam .N 5", "5"),
    ("DefaultParam .Z 5", "0"),
    ("DefaultParam .B true", "false"),
    ('DefaultParam .S "d"', "str"),
    # IfThenElse
    ("IfThenElse true 1 2", "1"),
    ('IfThenElse false "a" "b"', "b"),
    ("IfThenElse (lt 3 100) 10 100", "10"),
    # Seq / SliceOfZeros (zeros), Loop (0..n-1); the size goes through float64 and is truncated
    ("Seq 3", "[0 0 0]"),
    ("Seq 0", "[]"),
    ("Seq 2.9", "[0 0]"),
    ('SliceOfZeros "4"', "[0 0 0 0]"),
    ("Loop 4", "[0 1 2 3]"),
    ("Loop 3.9", "[0 1 2]"),
    ('Loop "3"', "[0 1 2]"),
    ("len (Loop 0)", "0"),
    # StringSplit splits on commas only; the empty string is one empty element
    ('StringSplit "a,b,,c"', "[a b  c]"),
    ('len (StringSplit "")', "1"),
    ('len (StringSplit ",")', "2"),
    # Concat and Lowercase take strings only
    ('Concat "a" "b" "c"', "abc"),
    ("Concat", ""),
    ('Concat .S "-x"', "str-x"),
    ('Concat "n-" (printf "%d" 7)', "n-7"),
    ('Lowercase "AbC"', "abc"),
    ("Lowercase .U", "äbc"),
    # RandDataWithSeed: Go's math/rand seeded with the first 8 bytes of sha256(seed), big-endian
    ('RandDataWithSeed 0 "test"', ""),
    ('RandDataWithSeed 1 "test-1"', "n"),
    ('RandDataWithSeed 1 "test-2"', "P"),
    (
        'RandDataWithSeed 100 "test"',
        "HlXm60Fjrvvp0pE3RK7lDhhhuQZpI6ECS18Gp0qqwFlOKjlZH4rFS3pk9pBkVRLzyqIWUv1Omfnmj7djTRjxL4bnp2kG7O5xD2Rf",
    ),
    ('RandDataWithSeed "5" "s"', "RG3tu"),
    ('RandDataWithSeed 5 ""', "ysZgw"),
    # RandIntRange: i when i >= j
    ("RandIntRange 5 5", "5"),
    ("RandIntRange 7 5", "7"),
    ("RandInt 0", "0"),
    # IsEven / IsOdd: of the value as Go's int (clusterloader2's load service.yaml labels every other Service)
    ("IsEven 0", "true"),
    ("IsEven 3", "false"),
    ('IsEven "4"', "true"),
    ("IsEven -2", "true"),
    ("IsOdd 3", "true"),
    ("IsOdd 2.9", "false"),
    ("if and true (IsEven 2)}}yes{{end", "yes"),
]


@pytest.mark.parametrize(("expr", "expected"), VALUES)
def test_function_values(expr: str, expected: str) -> None:
    assert render("{{" + expr + "}}", DATA) == expected


ERRORS = [
    ('AddInt "x"', "error calling AddInt: cannot cast x to float64"),
    ("AddInt true", "cannot cast true to float64"),
    ("AddInt .Missing", "cannot cast <nil> to float64"),
    ('AddInt " 1"', "cannot cast  1 to float64"),  # ParseFloat takes no spaces
    ('AddFloat "1__0"', "cannot cast 1__0 to float64"),
    ("SubtractInt 1", "wrong number of args for SubtractInt: want 2 got 1"),
    ("DivideInt 1 0", "error calling DivideInt: division by zero"),
    ('DivideInt 1 "0"', "division by zero"),
    ("DivideFloat 1 0", "error calling DivideFloat: division by zero"),
    ("MaxInt", "maximum undefined"),
    ("MaxFloat", "maximum undefined"),
    ("MinInt", "minimum undefined"),
    ("MinFloat", "minimum undefined"),
    ("Mod 1 0", "runtime error: integer divide by zero"),
    ('Ceil "x"', "cannot cast x to float64"),
    ("DefaultParam 1", "wrong number of args for DefaultParam: want 2 got 1"),
    ("IfThenElse 1 2 3", "incorrect argument type: got: int want: bool"),
    ("IfThenElse .N 2 3", "incorrect argument type: got: <nil> want: bool"),
    ("IfThenElse true 1", "wrong number of args for IfThenElse: want 3 got 2"),
    ("Seq -1", "makeslice: len out of range"),
    ("Loop -2", "makeslice: len out of range"),
    ("StringSplit 1", "expected string; got int"),
    ("StringSplit .N", "expected string"),
    ('Concat "a" 1', "expected string; got int"),
    ("Lowercase 1", "expected string; got int"),
    ("YamlQuote 1 2", "incorrect argument type: got: int want: string"),
    ('YamlQuote "a" 2.0', "incorrect argument type: got: float64 want: int"),
    ('YamlQuote "a" -1', "negative Repeat count"),
    ("RandDataWithSeed 5 1", "incorrect argument type: got: int want: string"),
    ("RandData -1", "makeslice: len out of range"),
    ("RandInt -1", "invalid argument to Intn"),
    ("ExpandEnv 1", "expandEnv parameter is not a string"),
    ("IsEven .Missing", "error calling IsEven: cannot cast <nil> to float64"),
    ("IsOdd", "wrong number of args for IsOdd: want 1 got 0"),
    ("IncludeFile 1", "incorrect argument type: got: int want: string"),
    ("IncludeEmbedFile 3", "incorrect argument type: got: int want: string"),
]


@pytest.mark.parametrize(("expr", "message"), ERRORS)
def test_function_errors(expr: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        render("{{" + expr + "}}", DATA)


@pytest.mark.parametrize(
    ("value", "tabs", "expected"),
    [
        ("abc", 2, "abc\n    "),  # yaml.v2's Marshal keeps its newline; each newline gets the indent
        ("", 4, '""\n        '),
        ("true", 1, '"true"\n  '),  # would read back as a bool, int, float or null: double-quoted
        ("123", 1, '"123"\n  '),
        ("1e3", 0, '"1e3"\n'),
        ("0o17", 0, '"0o17"\n'),
        ("y", 0, '"y"\n'),  # YAML 1.1 booleans, as yaml.v2 reads them
        ("Off", 0, '"Off"\n'),
        ("~", 0, '"~"\n'),
        ("2020-1-2", 0, '"2020-1-2"\n'),
        ("1:20", 0, '"1:20"\n'),  # base 60
        ("a: b", 1, "'a: b'\n  "),  # a string plain style cannot hold: single quotes
        ("it's", 0, "it's\n"),
        (" lead", 0, "' lead'\n"),
        ("a\tb", 0, '"a\\tb"\n'),  # a tab is not printable for YAML: double quotes
        ("=", 0, "=\n"),
        ("<<", 0, "<<\n"),
        ("line1\nline2", 2, "|-\n      line1\n      line2\n    "),  # a newline: a literal block
        ("line1\nline2\n", 1, "|\n    line1\n    line2\n  "),
        (" a\nb", 0, "|2-\n   a\n  b\n"),
        ("a  \nb", 0, '"a  \\nb"\n'),  # trailing spaces before a newline rule the block out
        (
            "word " * 20,
            0,
            "'word word word word word word word word word word word word word word word word word\n  word word word '\n",
        ),
    ],
)
def test_yaml_quote_is_yaml_v2_marshal(value: str, tabs: int, expected: str) -> None:
    assert render("{{YamlQuote .V .T}}", {"V": value, "T": tabs}) == expected


def test_yaml_quote_embeds_valid_yaml() -> None:
    # The way clusterloader2's configs use it: an indented value under a key, a multi-line override included.
    import yaml

    src = "params:\n  thresholds: {{YamlQuote .T 2}}\n  after: 1\n"
    for value in ("", "GET pods: 5s", "a: 1\nb:\n  - c\n", "true", " x"):
        out = render(src, {"T": value})
        assert yaml.safe_load(out)["params"] == {"thresholds": value, "after": 1}


def test_rand_functions_use_the_seeded_rng_and_stay_in_range() -> None:
    ints = {int(render("{{RandInt 3}}", rng=random.Random(i))) for i in range(60)}
    assert ints == {0, 1, 2, 3}  # [0, n], both ends included
    ranged = {int(render("{{RandIntRange 5 7}}", rng=random.Random(i))) for i in range(60)}
    assert ranged == {5, 6, 7}
    data = render("{{RandData 40}}", rng=random.Random(3))
    assert len(data) == 40 and data.isalnum() and data.isascii()
    assert data == render("{{RandData 40}}", rng=random.Random(3))
    assert data != render("{{RandData 40}}", rng=random.Random(4))


def test_rand_data_with_seed_ignores_the_rng() -> None:
    outs = {render('{{RandDataWithSeed 30 "cm-1"}}', rng=random.Random(i)) for i in range(5)}
    assert len(outs) == 1 and len(outs.pop()) == 30


def test_expand_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KM_TPL_X", "val")
    monkeypatch.delenv("KM_TPL_NOPE", raising=False)
    out = render('{{ExpandEnv "$KM_TPL_X/${KM_TPL_X}/${KM_TPL_NOPE}/${}/x$"}}')
    # unset is empty, bad ${} syntax is dropped, a trailing $ stays (os.ExpandEnv)
    assert out == "val/val///x$"


def test_include_file_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "snippet.txt").write_text("from root")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "snippet.txt").write_text("from conf")
    absolute = tmp_path / "conf" / "snippet.txt"
    assert render('{{IncludeFile "' + str(absolute) + '"}}') == "from conf"
    # relative: joined to include_dir (clusterloader2's binary directory), else to base_dir
    src = '{{IncludeFile "snippet.txt"}}'
    assert render(src, base_dir=tmp_path / "conf", include_dir=tmp_path / "root") == "from root"
    assert render(src, base_dir=tmp_path / "conf") == "from conf"
    # $VARS are expanded after the join, as clusterloader2 does (so a variable holds a relative directory)
    (tmp_path / "root" / "sub").mkdir()
    (tmp_path / "root" / "sub" / "snippet.txt").write_text("from sub")
    monkeypatch.setenv("KM_TPL_DIR", "sub")
    assert render('{{IncludeFile "$KM_TPL_DIR/snippet.txt"}}', include_dir=tmp_path / "root") == "from sub"


def test_include_file_missing_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"error calling IncludeFile: unable to read file: open .*/nope\.txt"):
        render('{{IncludeFile "nope.txt"}}', base_dir=tmp_path)
    with pytest.raises(TemplateError, match="no include directory"):
        render('{{IncludeFile "nope.txt"}}')


def test_include_embed_file_reads_below_the_test_config_dir(tmp_path: Path) -> None:
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "part.yaml").write_text("k: v\n")
    # The same path from any template (a module in modules/ included it too): relative to the config directory.
    tpl = Template('{{IncludeEmbedFile "modules/part.yaml"}}', "modules/other.yaml", base_dir=tmp_path)
    assert tpl.render({}) == "k: v\n"
    for bad in ("/modules/part.yaml", "./modules/part.yaml", "modules/../modules/part.yaml", "modules//part.yaml"):
        with pytest.raises(TemplateError, match="invalid argument"):
            render('{{IncludeEmbedFile "' + bad + '"}}', base_dir=tmp_path)
    with pytest.raises(TemplateError, match=r"open missing\.yaml: No such file"):
        render('{{IncludeEmbedFile "missing.yaml"}}', base_dir=tmp_path)
    with pytest.raises(TemplateError, match="no test config directory"):
        render('{{IncludeEmbedFile "modules/part.yaml"}}')

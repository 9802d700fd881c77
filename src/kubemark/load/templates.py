"""Go's text/template, as clusterloader2 configs, modules and object templates use it, with clusterloader2's functions.

Why: clusterloader2's own test configs (testing/density, testing/load and their modules) must render here
unmodified and to the same text the Go tool produces, so the language and the functions follow Go's semantics,
including Go's errors (e.g. `eq 1 1.0` is "incompatible types for comparison") and Go's number printing
(`{{1000000.0}}` prints `1e+06`).

Language: text with `{{actions}}`; `{{-` / `-}}` trim the whitespace beside them; comments `{{/* */}}`;
literals (ints in any Go base, floats, "strings" with Go escapes, `raw`, 'c' chars, true/false/nil); `.` and
fields `.A.B` (map keys; a missing key is nil), `$` and variables (`$x := ...`, `$x = ...`, `$x.A`), chained
fields on parenthesised pipelines `(index . "a").B`, function calls and pipes (`x | F a` passes x as the last
argument); `if`/`else if`/`else with`/`else`, `with`, `range` over lists, maps (sorted keys) and ints, with
`$i, $e :=`, `else`, `break` and `continue`; `define`, `template` and `block`.

Functions: clusterloader2's (pkg/config/template_functions.go): AddInt, AddFloat, SubtractInt, SubtractFloat,
MultiplyInt, MultiplyFloat, DivideInt, DivideFloat, MaxInt, MaxFloat, MinInt, MinFloat, Mod, Ceil, DefaultParam,
IfThenElse, IsEven, IsOdd, Seq, SliceOfZeros, Loop, RandInt, RandIntRange, RandData, RandDataWithSeed (same bytes as Go's
math/rand for a seed), StringSplit, Concat, Lowercase, YamlQuote (gopkg.in/yaml.v2's quoting), ExpandEnv,
IncludeFile and IncludeEmbedFile; and Go's builtins: and, or (short-circuit), not, len, index, slice, eq, ne, lt,
le, gt, ge, print, printf, println, html, js, urlquery.

Files: `base_dir` is the test config's directory, clusterloader2's "embed filesystem" for the test: a relative
IncludeEmbedFile path is read from it (it must be a plain relative path, as Go's fs.ValidPath requires, whichever
module includes it). IncludeFile reads an absolute path as is and joins a relative one to `include_dir`, which
stands for the directory of the clusterloader2 binary (clusterloader2's own checkout) and defaults to `base_dir`;
then, as clusterloader2 does, it expands $VARS in the joined path. A file that cannot be read is a TemplateError
naming it.

Missing values print as Go prints them, "<no value>": clusterloader2's own load config relies on it (its
"delete" reconcile step writes `Env: {{$daemonSetEnv}}` without that parameter). Pass `no_value=None` to make
printing a missing value an error naming the expression instead, which catches typos in a new template.

Safety and speed: nothing is evaluated as Python; the engine walks its own parsed tree, and parsing is cached per
source text, so an object template rendered thousands of times is parsed once.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import html
import math
import os
import random
import re
import struct
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

__all__ = ["NO_VALUE", "Template", "TemplateError", "go_format", "render"]

NO_VALUE = "<no value>"  # what Go's text/template prints for a missing value


class TemplateError(ValueError):
    """A template that cannot be parsed or executed; the message names the template and line."""


# -- Go values -------------------------------------------------------------------------------------------------
# Python values stand for Go's: int (not bool) is int, float is float64, str is string, bool, None is nil (and a
# missing map key), list/tuple is a slice, Mapping is a map.


def _go_type(value: Any) -> str:
    """Go's %T of a value, for error messages that read like clusterloader2's."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_GO_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.IGNORECASE)
_GO_HEX_FLOAT = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?")


_BAD_UNDERSCORE = re.compile(r"(?:^|[^0-9a-fA-FxXoObB])_|_(?:$|[^0-9a-fA-F])")


def _parse_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64): no spaces, and underscores only between digits, unlike Python's float()."""
    if "_" in text:
        if _BAD_UNDERSCORE.search(text) or "__" in text:
            return None
        text = text.replace("_", "")
    if _GO_FLOAT.fullmatch(text):
        return float(text)
    if _GO_HEX_FLOAT.fullmatch(text):
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        return sign * float.fromhex(body if "p" in body.lower() else body + "p0")
    return None


def _to_float(value: Any) -> float:
    """clusterloader2's toFloat64: any Go number or a string strconv.ParseFloat accepts; anything else panics."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        parsed = _parse_float(value)
        if parsed is not None:
            return parsed
    raise TemplateError(f"cannot cast {go_format(value, nested=True)} to float64")


def _go_int(value: float) -> int:
    """Go's int(float64): truncation toward zero; NaN, infinities and out-of-range values give MinInt64 on amd64."""
    if math.isfinite(value) and -(2**63) <= value < 2**63:
        return int(value)
    return -(2**63)


def _wrap_int(value: int) -> int:
    """Go's 64-bit int arithmetic wraps around."""
    return (value + 2**63) % 2**64 - 2**63


def _truthy(value: Any) -> bool:
    """Go's template truth: false, 0, nil and empty strings, slices and maps are false."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float | str | list | tuple | Mapping):
        return bool(value)
    return True


# -- printing (fmt) ---------------------------------------------------------------------------------------------


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest decimal digits that round-trip `abs(value)`, and the decimal point position (Go's digs.dp)."""
    dec = Decimal(repr(abs(value))).normalize()
    _, digits, exponent = dec.as_tuple()
    text = "".join(map(str, digits))
    assert isinstance(exponent, int)
    return text, len(text) + exponent


def _format_exp(sign: str, digits: str, exp: int, upper: bool = False) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    e = "E" if upper else "e"
    return f"{sign}{mantissa}{e}{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _format_float(value: float, verb: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat(value, verb, prec, 64) for the verbs templates use (g/G, e/E, f/F)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    lower = verb.lower()
    if prec >= 0:
        if lower == "f":
            return f"{value:.{prec}f}"
        if lower == "e":
            return f"{value:.{prec}{verb}}"
        return f"{value:.{max(prec, 1)}{verb}}"
    digits, dp = _shortest_digits(value)
    if lower == "e":
        return _format_exp(sign, digits, dp - 1, verb == "E")
    if lower == "f":
        return sign + _fixed(digits, dp)
    exp = dp - 1
    if exp < -4 or exp >= _G_SHORTEST_EPREC:
        return _format_exp(sign, digits, exp, verb == "G")
    return sign + _fixed(digits, dp)


_G_SHORTEST_EPREC = 6  # strconv's shortest 'g' (fmt's %v): %e when the exponent is < -4 or >= 6


def _fixed(digits: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * (-dp) + digits
    if dp >= len(digits):
        return digits + "0" * (dp - len(digits))
    return digits[:dp] + "." + digits[dp:]


def go_format(value: Any, *, nested: bool = False) -> str:
    """Print a value as Go's fmt %v does (nil is "<no value>" at the top of an action, "<nil>" inside a value)."""
    if value is None:
        return "<nil>" if nested else "<no value>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_format(v, nested=True) for v in value) + "]"
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: _sort_key(kv[0]))
        return "map[" + " ".join(f"{go_format(k, nested=True)}:{go_format(v, nested=True)}" for k, v in items) + "]"
    return str(value)


def _sort_key(key: Any) -> tuple[int, Any]:
    """fmt and range order map keys: numbers numerically, strings bytewise (mixed kinds by kind)."""
    if isinstance(key, bool):
        return (0, key)
    if isinstance(key, int | float):
        return (1, key)
    if isinstance(key, str):
        return (2, key)
    return (3, str(key))


def _go_quote(text: str) -> str:
    """strconv.Quote: a Go double-quoted string literal."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif ch.isprintable() and code != 0x7F:
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}

_VERB = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d*))?(.)?", re.DOTALL)


def _bad_verb(verb: str, arg: Any) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({_go_type(arg)}={go_format(arg, nested=True)})"


def _pad(text: str, flags: str, width: int | None, numeric: bool) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and numeric:
        sign = text[0] if text[:1] in ("-", "+", " ") else ""
        body = text[len(sign) :]
        return sign + body.rjust(width - len(sign), "0")
    if "0" in flags:
        return text.rjust(width, "0")
    return text.rjust(width)


def _format_one(verb: str, flags: str, width: int | None, prec: int | None, arg: Any) -> str:
    """One fmt verb applied to one argument, with Go's "%!d(string=x)" for a wrong type."""
    if verb != "T" and isinstance(arg, list | tuple):
        return "[" + " ".join(_format_one(verb, flags, width, prec, e) for e in arg) + "]"
    if verb != "T" and isinstance(arg, Mapping):
        items = sorted(arg.items(), key=lambda kv: _sort_key(kv[0]))
        parts = (
            f"{_format_one(verb, flags, width, prec, k)}:{_format_one(verb, flags, width, prec, v)}" for k, v in items
        )
        return "map[" + " ".join(parts) + "]"
    if verb == "U":
        if not _is_int(arg):
            return _bad_verb(verb, arg)
        return _pad(f"U+{arg:04X}", flags, width, False)
    if verb == "v":
        if isinstance(arg, float):
            text = _format_float(arg, "g", -1 if prec is None else prec)
            return _pad(_sign_flags(text, flags), flags, width, True)
        if _is_int(arg):
            return _pad(_sign_flags(str(arg), flags), flags, width, True)
        return _pad(go_format(arg, nested=True), flags, width, False)
    if verb in "dboxXc":
        if not _is_int(arg):
            if verb in "xX" and isinstance(arg, str):
                data = arg.encode()[: prec if prec is not None else None]
                out = data.hex()
                return _pad(out.upper() if verb == "X" else out, flags, width, False)
            return _bad_verb(verb, arg)
        if verb == "c":
            return _pad(chr(arg), flags, width, False)
        base = {"d": "d", "b": "b", "o": "o", "x": "x", "X": "X"}[verb]
        text = format(abs(arg), base)
        if "#" in flags and verb in "xX":
            text = ("0X" if verb == "X" else "0x") + text
        elif "#" in flags and verb == "o":
            text = "0" + text
        if prec is not None:
            text = text.rjust(prec, "0")
        text = ("-" if arg < 0 else "") + text
        return _pad(_sign_flags(text, flags), flags, width, prec is None)
    if verb in "eEfFgG":
        if not isinstance(arg, float):
            return _bad_verb(verb, arg)
        if verb in "fF":
            text = _format_float(arg, "f", 6 if prec is None else prec)
        elif verb in "eE":
            text = _format_float(arg, verb, 6 if prec is None else prec)
        else:
            text = _format_float(arg, verb, -1 if prec is None else prec)
        return _pad(_sign_flags(text, flags), flags, width, True)
    if verb == "s":
        if isinstance(arg, str):
            return _pad(arg[:prec] if prec is not None else arg, flags, width, False)
        if isinstance(arg, list | tuple | Mapping) or arg is None:
            return _pad(go_format(arg, nested=True), flags, width, False) if arg is not None else _bad_verb("s", arg)
        return _bad_verb(verb, arg)
    if verb == "q":
        if isinstance(arg, str):
            return _pad(_go_quote(arg), flags, width, False)
        if _is_int(arg):
            return _pad("'" + _go_quote(chr(arg))[1:-1].replace("'", "\\'") + "'", flags, width, False)
        return _bad_verb(verb, arg)
    if verb == "t":
        if isinstance(arg, bool):
            return _pad(go_format(arg), flags, width, False)
        return _bad_verb(verb, arg)
    if verb == "T":
        return _pad(_go_type(arg), flags, width, False)
    return _bad_verb(verb, arg)


def _sign_flags(text: str, flags: str) -> str:
    if text.startswith("-"):
        return text
    if "+" in flags:
        return "+" + text
    if " " in flags:
        return " " + text
    return text


def _sprintf(fmt: Any, *args: Any) -> str:
    """fmt.Sprintf for the verbs and flags templates use, including Go's %!verb(...) and EXTRA/MISSING marks."""
    if not isinstance(fmt, str):
        raise TemplateError(_wrong_type("string", fmt))
    out: list[str] = []
    pos = 0
    used = 0
    while True:
        start = fmt.find("%", pos)
        if start < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:start])
        m = _VERB.match(fmt, start)
        assert m is not None
        pos = m.end()
        flags, width_s, prec_s, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb is None:
            out.append("%!(NOVERB)")
            break
        if verb == "%":
            out.append("%")
            continue
        width: int | None = None
        prec: int | None = None
        if width_s == "*":
            width = args[used] if used < len(args) and _is_int(args[used]) else None
            used += 1
        elif width_s:
            width = int(width_s)
        if prec_s == "*":
            prec = args[used] if used < len(args) and _is_int(args[used]) else None
            used += 1
        elif prec_s is not None:
            prec = int(prec_s or 0)
        if width is not None and width < 0:
            flags, width = flags + "-", -width
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_one(verb, flags, width, prec, args[used]))
        used += 1
    if used < len(args):
        extra = ", ".join(
            f"{_go_type(a)}={go_format(a, nested=True)}" if a is not None else "<nil>" for a in args[used:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_format(arg, nested=True))
    return "".join(out)


def _sprintln(*args: Any) -> str:
    return " ".join(go_format(a, nested=True) for a in args) + "\n"


# -- clusterloader2's functions -----------------------------------------------------------------------------------


def _wrong_type(want: str, value: Any) -> str:
    """text/template's message for an argument a typed Go parameter cannot take."""
    if value is None:
        return f"invalid value; expected {want}"
    return f"wrong type for value; expected {want}; got {_go_type(value)}"


def _want_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TemplateError(_wrong_type("string", value))
    return value


def _incorrect(want: str, value: Any) -> TemplateError:
    return TemplateError(f"incorrect argument type: got: {_go_type(value)} want: {want}")


def _add_float(*numbers: Any) -> float:
    total = 0.0
    for n in numbers:
        total += _to_float(n)
    return total


def _multiply_float(*numbers: Any) -> float:
    product = 1.0
    for n in numbers:
        product *= _to_float(n)
    return product


def _divide_float(i: Any, j: Any) -> float:
    a, b = _to_float(i), _to_float(j)
    if b == 0:
        raise TemplateError("division by zero")
    return a / b


def _go_max(x: float, y: float) -> float:
    """math.Max: +Inf wins, then NaN, and +0 beats -0."""
    if (math.isinf(x) and x > 0) or (math.isinf(y) and y > 0):
        return math.inf
    if math.isnan(x) or math.isnan(y):
        return math.nan
    if x == 0 and y == 0:
        return y if math.copysign(1.0, x) < 0 else x
    return x if x > y else y


def _go_min(x: float, y: float) -> float:
    """math.Min: -Inf wins, then NaN, and -0 beats +0."""
    if (math.isinf(x) and x < 0) or (math.isinf(y) and y < 0):
        return -math.inf
    if math.isnan(x) or math.isnan(y):
        return math.nan
    if x == 0 and y == 0:
        return x if math.copysign(1.0, x) < 0 else y
    return x if x < y else y


def _max_float(*numbers: Any) -> float:
    if not numbers:
        raise TemplateError("maximum undefined")
    best = _to_float(numbers[0])
    for n in numbers:
        best = _go_max(best, _to_float(n))
    return best


def _min_float(*numbers: Any) -> float:
    if not numbers:
        raise TemplateError("minimum undefined")
    best = _to_float(numbers[0])
    for n in numbers:
        best = _go_min(best, _to_float(n))
    return best


def _mod(a: Any, b: Any) -> int:
    x, y = _go_int(_to_float(a)), _go_int(_to_float(b))
    if y == 0:
        raise TemplateError("runtime error: integer divide by zero")
    r = abs(x) % abs(y)  # Go's % truncates: the remainder has the dividend's sign
    return _wrap_int(-r if x < 0 else r)


def _default_param(param: Any, default: Any) -> Any:
    return default if param is None else param


def _if_then_else(condition: Any, then: Any, otherwise: Any) -> Any:
    if not isinstance(condition, bool):
        raise _incorrect("bool", condition)
    return then if condition else otherwise


def _make_len(size: Any) -> int:
    n = _go_int(_to_float(size))
    if n < 0:
        raise TemplateError("runtime error: makeslice: len out of range")
    return n


def _slice_of_zeros(size: Any) -> list[int]:
    return [0] * _make_len(size)


def _loop(size: Any) -> list[int]:
    return list(range(_make_len(size)))


def _ceil(value: Any) -> float:
    x = _to_float(value)
    if not math.isfinite(x):
        return x
    return math.copysign(float(math.ceil(x)), x)  # math.Ceil(-0.5) is -0


def _string_split(text: Any) -> list[str]:
    return _want_str(text).split(",")


def _concat(*items: Any) -> str:
    return "".join(_want_str(item) for item in items)


def _lowercase(text: Any) -> str:
    return _want_str(text).lower()


def _expand_env(param: Any) -> str:
    if not isinstance(param, str):
        raise TemplateError("expandEnv parameter is not a string")
    return _os_expand(param, lambda name: os.environ.get(name, ""))


_SHELL_SPECIAL = set("*#$@!?-0123456789")


def _os_expand(text: str, mapping: Callable[[str], str]) -> str:
    """os.Expand: $NAME and ${NAME}; `$` before anything else is kept; bad ${...} syntax is eaten."""
    out: list[str] = []
    i = 0
    start = 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            out.append(text[start:i])
            name, width = _shell_name(text[i + 1 :])
            if name == "" and width > 0:
                pass
            elif name == "":
                out.append("$")
            else:
                out.append(mapping(name))
            i += 1 + width
            start = i
        else:
            i += 1
    out.append(text[start:])
    return "".join(out)


def _shell_name(s: str) -> tuple[str, int]:
    if s[0] == "{":
        if len(s) > 2 and s[1] in _SHELL_SPECIAL and s[2] == "}":
            return s[1:2], 3
        for i in range(1, len(s)):
            if s[i] == "}":
                if i == 1:
                    return "", 2
                return s[1:i], i + 1
        return "", 1
    if s[0] in _SHELL_SPECIAL:
        return s[0:1], 1
    i = 0
    while i < len(s) and (s[i] == "_" or (s[i].isascii() and s[i].isalnum())):
        i += 1
    return s[:i], i


# yaml.v2's resolver (resolve.go): which plain scalars would read back as something other than a string.
_YAML_V2_MAP = frozenset(
    {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}
    | {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}
    | {"", "~", "null", "Null", "NULL", ".nan", ".NaN", ".NAN"}
    | {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF"}
)
_YAML_V2_MAP_HINT = frozenset("yYnNtTfFoO~")
_YAML_V2_INT = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|0[oO]?[0-7]+|0[bB][01]+|[1-9][0-9]*|0)")
_YAML_V2_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_YAML_V2_BASE60 = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_YAML_V2_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))"
    r"|(?: (\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?))?"
)


def _yaml_v2_is_string(s: str) -> bool:
    """True when yaml.v2 would read `s`, written plain, back as a string (so Marshal may leave it unquoted)."""
    if s in _YAML_V2_MAP:
        return False
    first = s[0]
    if first == ".":
        return _parse_float(s) is None
    if first in _YAML_V2_MAP_HINT or not (first in "+-" or (first.isdigit() and first.isascii())):
        return True
    m = _YAML_V2_TIMESTAMP.fullmatch(s)
    if m and _valid_timestamp(m):
        return False
    plain = s.replace("_", "")
    if _YAML_V2_INT.fullmatch(plain):
        body = plain.lstrip("+-")
        base = 16 if body[:2] in ("0x", "0X") else 2 if body[:2] in ("0b", "0B") else 8 if body[:1] == "0" else 10
        digits = body[2:] if base in (16, 2) or body[:2] in ("0o", "0O") else body
        value = int(digits or "0", base)
        # strconv.ParseInt (int64) or, without a sign, ParseUint (uint64) must accept it
        fits = value <= 2**63 if plain[0] == "-" else value < 2**63 if plain[0] == "+" else value < 2**64
        if fits:
            return False
    return not (_YAML_V2_FLOAT.fullmatch(plain) and _parse_float(plain) is not None)


def _valid_timestamp(m: re.Match[str]) -> bool:
    try:
        datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return False
    clock = [g for g in m.groups()[3:] if g is not None]
    if clock:
        h, mi, sec = (int(x) for x in clock)
        return h < 24 and mi < 60 and sec < 60
    return True


def _yaml_quote(value: Any, tabs: Any) -> str:
    """gopkg.in/yaml.v2's Marshal of a string (with its trailing newline), each newline followed by `tabs` indents.

    yaml.v2 asks for a literal block when the string has a newline, plain style when the plain text reads back as
    a string (and is not a base-60 number), double quotes otherwise; its emitter then falls back to single and
    double quotes as the text requires. PyYAML's emitter is a port of the same libyaml code, so it is given the
    same request (with the same 80-column folding and two-space indent).
    """
    if not isinstance(value, str):
        raise _incorrect("string", value)
    if not _is_int(tabs):
        raise _incorrect("int", tabs)
    if tabs < 0:
        raise TemplateError("strings: negative Repeat count")
    if "\n" in value:
        style: str | None = "|"
    elif _yaml_v2_is_string(value) and not _YAML_V2_BASE60.fullmatch(value):
        style = None
    else:
        style = '"'
    events = [
        yaml.StreamStartEvent(),
        yaml.DocumentStartEvent(explicit=False),
        yaml.ScalarEvent(None, None, (True, True), value, style=style),
        yaml.DocumentEndEvent(explicit=False),
        yaml.StreamEndEvent(),
    ]
    # PyYAML marks a document holding only an empty scalar with "---"; yaml.v2 writes just the quotes.
    dumped = '""\n' if value == "" else yaml.emit(events, allow_unicode=True)
    if dumped.endswith("...\n"):
        dumped = dumped[: -len("...\n")]
    # PyYAML indents after a Unicode line break (NEL, LS, PS) even just before the closing quote; libyaml does not.
    dumped = _TRAILING_UNICODE_BREAK.sub(r"\1'\n", dumped)
    return dumped.replace("\n", "\n" + "  " * tabs)


_TRAILING_UNICODE_BREAK = re.compile("([\x85\u2028\u2029]) +'\n$")


_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class _GoRand:
    """Go's math/rand generator (rand.New(rand.NewSource(seed))), so RandDataWithSeed gives Go's exact bytes."""

    _LEN = 607
    _TAP = 273
    _MASK64 = (1 << 64) - 1
    _INT32MAX = (1 << 31) - 1

    def __init__(self, seed: int) -> None:
        self.tap = 0
        self.feed = self._LEN - self._TAP
        seed %= self._INT32MAX  # Go's % truncates; the sign fix-up below makes it a floor modulo either way
        if seed == 0:
            seed = 89482311
        x = seed
        cooked = _rng_cooked()
        vec = [0] * self._LEN
        for i in range(-20, self._LEN):
            x = self._seedrand(x)
            if i >= 0:
                u = x << 40
                x = self._seedrand(x)
                u ^= x << 20
                x = self._seedrand(x)
                u ^= x
                vec[i] = (u ^ cooked[i]) & self._MASK64
        self.vec = vec

    @staticmethod
    def _seedrand(x: int) -> int:
        hi, lo = divmod(x, 44488)  # x is always positive here, so floor division is Go's truncation
        x = 48271 * lo - 3399 * hi
        return x + 2147483647 if x < 0 else x

    def uint64(self) -> int:
        self.tap = self.tap - 1 if self.tap > 0 else self._LEN - 1
        self.feed = self.feed - 1 if self.feed > 0 else self._LEN - 1
        x = (self.vec[self.feed] + self.vec[self.tap]) & self._MASK64
        self.vec[self.feed] = x
        return x

    def int31(self) -> int:
        return (self.uint64() & ((1 << 63) - 1)) >> 32

    def intn(self, n: int) -> int:
        """rand.Intn for 0 < n < 2**31 (Int31n's rejection sampling)."""
        if n & (n - 1) == 0:
            return self.int31() & (n - 1)
        limit = (1 << 31) - 1 - (1 << 31) % n
        v = self.int31()
        while v > limit:
            v = self.int31()
        return v % n


@functools.cache
def _rng_cooked() -> tuple[int, ...]:
    """Go's math/rand rngCooked table (the generator state after 7.8e12 steps), as unsigned 64-bit values.

    Copyright 2009 The Go Authors; BSD-style license. Stored base85-encoded as 607 little-endian int64s.
    """
    raw = base64.b85decode("".join(_RNG_COOKED_B85.split()))
    return tuple(v & ((1 << 64) - 1) for v in struct.unpack("<607q", raw))


def _rand_data_with_seed(size: Any, seed: Any) -> str:
    """Random-looking text that is the same for the same seed: Go's math/rand seeded by sha256(seed)[:8]."""
    if not isinstance(seed, str):
        raise _incorrect("string", seed)
    digest = hashlib.sha256(seed.encode()).digest()
    (signed_seed,) = struct.unpack(">q", digest[:8])
    rng = _GoRand(signed_seed)
    return "".join(_ALPHABET[rng.intn(len(_ALPHABET))] for _ in range(_make_len(size)))


def _random_functions(rng: random.Random) -> dict[str, Callable[..., Any]]:
    """The functions that draw from the template's random source (Go seeds its global one from the clock)."""

    def intn(n: int, name: str) -> int:
        if n <= 0:
            raise TemplateError(f"invalid argument to {name}")
        return rng.randrange(n)

    def rand_int(i: Any) -> int:
        return intn(_go_int(_to_float(i)) + 1, "Intn")

    def rand_int_range(i: Any, j: Any) -> int:
        lo, hi = _go_int(_to_float(i)), _go_int(_to_float(j))
        if lo >= hi:
            return lo
        return lo + intn(hi - lo + 1, "Intn")

    def rand_data(i: Any) -> str:
        return "".join(_ALPHABET[rng.randrange(len(_ALPHABET))] for _ in range(_make_len(i)))

    return {"RandInt": rand_int, "RandIntRange": rand_int_range, "RandData": rand_data}


def _read_file(path: Path, shown: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise TemplateError(f"unable to read file: open {shown}: {exc.strerror or exc}") from None


def _file_functions(base_dir: Path | None, include_dir: Path | None) -> dict[str, Callable[..., Any]]:
    """IncludeFile and IncludeEmbedFile, resolving paths as clusterloader2 does (see the module docstring)."""

    def include_file(file: Any) -> str:
        if not isinstance(file, str):
            raise _incorrect("string", file)
        name = file
        if not os.path.isabs(name):
            root = include_dir or base_dir
            if root is None:
                raise TemplateError(f"unable to read file: {file}: no include directory is set for relative paths")
            name = os.path.join(os.path.abspath(root), name)
        name = _os_expand(name, lambda var: os.environ.get(var, ""))
        return _read_file(Path(name), name)

    def include_embed_file(file: Any) -> str:
        if not isinstance(file, str):
            raise _incorrect("string", file)
        if not _fs_valid_path(file):
            raise TemplateError(f"unable to read file: open {file}: invalid argument")
        if base_dir is None:
            raise TemplateError(f"unable to read file: open {file}: no test config directory is set")
        return _read_file(Path(base_dir, *file.split("/")), file)

    return {"IncludeFile": include_file, "IncludeEmbedFile": include_embed_file}


def _fs_valid_path(name: str) -> bool:
    """io/fs.ValidPath: slash-separated, unrooted, no empty, "." or ".." elements (except the name ".")."""
    if name == ".":
        return True
    return all(part not in ("", ".", "..") for part in name.split("/"))


# -- Go's builtins -----------------------------------------------------------------------------------------------

_BAD_COMPARISON = "incompatible types for comparison"
_BAD_COMPARISON_TYPE = "invalid type for comparison"


def _basic_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return None


def _eq(arg1: Any, *others: Any) -> bool:
    """Go's eq: arg1 == any of the others; kinds must match (int and float do not), nil equals only nil."""
    if not others:
        raise TemplateError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in others:
        k2 = _basic_kind(arg)
        if k1 != k2:
            if arg1 is not None and arg is not None:
                raise TemplateError(f"{_BAD_COMPARISON}: {_go_type(arg1)} and {_go_type(arg)}")
            truth = False
        elif k1 is not None:
            truth = arg1 == arg
        elif arg1 is None or arg is None:
            truth = arg1 is None and arg is None
        else:
            raise TemplateError(f"non-comparable type {go_format(arg, nested=True)}: {_go_type(arg)}")
        if truth:
            return True
    return False


def _ne(arg1: Any, arg2: Any) -> bool:
    return not _eq(arg1, arg2)


def _lt(arg1: Any, arg2: Any) -> bool:
    k1, k2 = _basic_kind(arg1), _basic_kind(arg2)
    if k1 is None or k2 is None:
        raise TemplateError(_BAD_COMPARISON_TYPE)
    if k1 != k2:
        raise TemplateError(f"{_BAD_COMPARISON}: {_go_type(arg1)} and {_go_type(arg2)}")
    if k1 == "bool":
        raise TemplateError(_BAD_COMPARISON_TYPE)
    return bool(arg1 < arg2)


def _le(arg1: Any, arg2: Any) -> bool:
    return _lt(arg1, arg2) or _eq(arg1, arg2)


def _gt(arg1: Any, arg2: Any) -> bool:
    return not _le(arg1, arg2)


def _ge(arg1: Any, arg2: Any) -> bool:
    return not _lt(arg1, arg2)


def _len(item: Any) -> int:
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, list | tuple | Mapping):
        return len(item)
    if item is None:
        raise TemplateError("len of nil pointer")
    raise TemplateError(f"len of type {_go_type(item)}")


def _index_arg(index: Any, cap: int, what: str) -> int:
    if not _is_int(index):
        raise TemplateError(f"cannot index slice/array with type {_go_type(index)}")
    if index < 0 or index > cap:
        raise TemplateError(f"{what} out of range: {index}")
    return int(index)


def _index(item: Any, *indexes: Any) -> Any:
    """Go's index: item[i][j]...; a missing map key is nil, an index off the end is an error."""
    if item is None:
        raise TemplateError("index of untyped nil")
    for index in indexes:
        if item is None:
            raise TemplateError("index of nil pointer")
        if isinstance(item, list | tuple | str):
            x = _index_arg(index, len(item), "index")
            if x == len(item):
                raise TemplateError(f"index out of range: {x}")
            item = item.encode()[x] if isinstance(item, str) else item[x]
        elif isinstance(item, Mapping):
            try:
                item = item.get(index)
            except TypeError:
                raise TemplateError(f"value has type {_go_type(index)}; should be string") from None
        else:
            raise TemplateError(f"can't index item of type {_go_type(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    """Go's slice: item[i:j] (and item[i:j:k] for slices)."""
    if item is None:
        raise TemplateError("slice of untyped nil")
    if len(indexes) > 3:
        raise TemplateError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise TemplateError("cannot 3-index slice a string")
        data = item.encode()
    elif isinstance(item, list | tuple):
        data = item  # type: ignore[assignment]
    else:
        raise TemplateError(f"can't slice item of type {_go_type(item)}")
    idx = [0, len(data)]
    for i, index in enumerate(indexes):
        x = _index_arg(index, len(data), "index")
        if i < 2:
            idx[i] = x
    if idx[0] > idx[1]:
        raise TemplateError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and _index_arg(indexes[2], len(data), "index") < idx[1]:
        raise TemplateError(f"invalid slice index: {idx[1]} > {indexes[2]}")
    part = data[idx[0] : idx[1]]
    if isinstance(item, str):
        return bytes(part).decode(errors="replace")  # type: ignore[arg-type]
    return list(part)


def _not(arg: Any) -> bool:
    return not _truthy(arg)


def _html(*args: Any) -> str:
    """template.HTMLEscapeString of the arguments."""
    text = html.escape(_eval_args_string(args), quote=False)
    return text.replace('"', "&#34;").replace("'", "&#39;").replace("\x00", "\ufffd")


def _urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_eval_args_string(args), safe="")


_JS_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def _js(*args: Any) -> str:
    out = []
    for ch in _eval_args_string(args):
        if ch in _JS_ESCAPES:
            out.append(_JS_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def _eval_args_string(args: Sequence[Any]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return _sprint(*args)


# name -> (function, minimum arguments, maximum arguments or None for variadic)
_Spec = tuple[Callable[..., Any], int, int | None]

_STATIC_FUNCS: dict[str, _Spec] = {
    "AddFloat": (_add_float, 0, None),
    "AddInt": (lambda *n: _go_int(_add_float(*n)), 0, None),
    "Ceil": (_ceil, 1, 1),
    "Concat": (_concat, 0, None),
    "DefaultParam": (_default_param, 2, 2),
    "DivideFloat": (_divide_float, 2, 2),
    "DivideInt": (lambda i, j: _go_int(_divide_float(i, j)), 2, 2),
    "ExpandEnv": (_expand_env, 1, 1),
    "IfThenElse": (_if_then_else, 3, 3),
    "IsEven": (lambda v: _go_int(_to_float(v)) % 2 == 0, 1, 1),
    "IsOdd": (lambda v: _go_int(_to_float(v)) % 2 != 0, 1, 1),
    "Loop": (_loop, 1, 1),
    "Lowercase": (_lowercase, 1, 1),
    "MaxFloat": (_max_float, 0, None),
    "MaxInt": (lambda *n: _go_int(_max_float(*n)), 0, None),
    "MinFloat": (_min_float, 0, None),
    "MinInt": (lambda *n: _go_int(_min_float(*n)), 0, None),
    "Mod": (_mod, 2, 2),
    "MultiplyFloat": (_multiply_float, 0, None),
    "MultiplyInt": (lambda *n: _go_int(_multiply_float(*n)), 0, None),
    "RandDataWithSeed": (_rand_data_with_seed, 2, 2),
    "Seq": (_slice_of_zeros, 1, 1),
    "SliceOfZeros": (_slice_of_zeros, 1, 1),
    "StringSplit": (_string_split, 1, 1),
    "SubtractFloat": (lambda i, j: _to_float(i) - _to_float(j), 2, 2),
    "SubtractInt": (lambda i, j: _go_int(_to_float(i) - _to_float(j)), 2, 2),
    "YamlQuote": (_yaml_quote, 2, 2),
    # Go's builtins (and/or are evaluated lazily by the engine itself)
    "eq": (_eq, 1, None),
    "ne": (_ne, 2, 2),
    "lt": (_lt, 2, 2),
    "le": (_le, 2, 2),
    "gt": (_gt, 2, 2),
    "ge": (_ge, 2, 2),
    "not": (_not, 1, 1),
    "len": (_len, 1, 1),
    "index": (_index, 1, None),
    "slice": (_slice, 1, None),
    "print": (_sprint, 0, None),
    "printf": (_sprintf, 1, None),
    "println": (_sprintln, 0, None),
    "html": (_html, 0, None),
    "js": (_js, 0, None),
    "urlquery": (_urlquery, 0, None),
}
_DYNAMIC_FUNCS = ("RandInt", "RandIntRange", "RandData", "IncludeFile", "IncludeEmbedFile")
_DYNAMIC_ARITY = {"RandInt": 1, "RandIntRange": 2, "RandData": 1, "IncludeFile": 1, "IncludeEmbedFile": 1}
_LAZY = ("and", "or")
_FUNC_NAMES = frozenset(_STATIC_FUNCS) | frozenset(_DYNAMIC_FUNCS) | frozenset(_LAZY)


def _functions(rng: random.Random, base_dir: Path | None, include_dir: Path | None) -> dict[str, _Spec]:
    funcs = dict(_STATIC_FUNCS)
    dynamic = {**_random_functions(rng), **_file_functions(base_dir, include_dir)}
    for name, fn in dynamic.items():
        funcs[name] = (fn, _DYNAMIC_ARITY[name], _DYNAMIC_ARITY[name])
    return funcs


# -- lexing ----------------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?:
      (?P<str>"(?:[^"\\\n]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<char>'(?:[^'\\\n]|\\[^\n][^'\n]*)')
    | (?P<num>[-+]?(?:0[xX](?:[0-9a-fA-F_]*\.?[0-9a-fA-F_]*)(?:[pP][-+]?[0-9_]+)?
                  |0[bB][01_]+|0[oO][0-7_]+
                  |(?:[0-9][0-9_]*\.?[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9_]+)?))
    | (?P<decl>:=)
    | (?P<assign>=)
    | (?P<pipe>\|)
    | (?P<lparen>\()
    | (?P<rparen>\))
    | (?P<comma>,)
    | (?P<var>\$[A-Za-z0-9_]*)
    | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
    | (?P<dot>\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_SPACE = " \t\r\n"
_KEYWORDS = frozenset({"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"})


class _Tok:
    __slots__ = ("kind", "spaced", "text")

    def __init__(self, kind: str, text: str, spaced: bool) -> None:
        self.kind = kind
        self.text = text
        self.spaced = spaced  # whitespace before it: `$x.A` chains a field, `$x .A` is two operands


class _Action:
    __slots__ = ("line", "source", "tokens")

    def __init__(self, tokens: list[_Tok], line: int, source: str) -> None:
        self.tokens = tokens
        self.line = line
        self.source = source


def _scan(src: str, name: str) -> list[str | _Action]:
    """Split a template into text and actions, applying `{{-`/`-}}` trimming and dropping comments."""
    items: list[str | _Action] = []
    pos = 0
    line = 1
    counted = 0
    trim_next = False
    n = len(src)
    while True:
        start = src.find("{{", pos)
        text = src[pos:] if start < 0 else src[pos:start]
        if trim_next:
            text = text.lstrip(_SPACE)
        if start < 0:
            if text:
                items.append(text)
            return items
        line += src.count("\n", counted, start)
        counted = start
        p = start + 2
        if src.startswith("-", p) and p + 1 < n and src[p + 1] in _SPACE:
            text = text.rstrip(_SPACE)
            p += 2
        if text:
            items.append(text)
        if src.startswith("/*", p):
            end = src.find("*/", p + 2)
            if end < 0:
                raise TemplateError(f"{name}:{line}: unclosed comment")
            p = end + 2
            if src.startswith(" -}}", p) or src.startswith("\t-}}", p) or src.startswith("\n-}}", p):
                trim_next, pos = True, p + 4
            elif src.startswith("}}", p):
                trim_next, pos = False, p + 2
            else:
                raise TemplateError(f"{name}:{line}: comment ends before closing delimiter")
            continue
        tokens: list[_Tok] = []
        body_start = p
        while True:
            ws = p
            while p < n and src[p] in _SPACE:
                p += 1
            if p >= n:
                raise TemplateError(f"{name}:{line}: unclosed action")
            if src.startswith("}}", p):
                trim_next, body_end, pos = False, p, p + 2
                break
            if p > ws and src.startswith("-}}", p):
                trim_next, body_end, pos = True, p, p + 3
                break
            m = _TOKEN.match(src, p)
            if m is None or m.end() == p:
                bad = src[p : p + 10].split("}}")[0]
                raise TemplateError(f"{name}:{line}: unexpected {bad!r} in action")
            kind = m.lastgroup or ""
            tokens.append(_Tok(kind, m.group(kind), p > ws))
            p = m.end()
        items.append(_Action(tokens, line, src[body_start:body_end].strip()))


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"'}
_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.DOTALL)


def _unquote(body: str, quote: str) -> str:
    """strconv.Unquote's escapes for a Go "..." string or '...' char body."""

    def esc(m: re.Match[str]) -> str:
        e = m.group(0)[1:]
        if e[0] in "xuU":
            return chr(int(e[1:], 16)) if e[0] != "x" else bytes([int(e[1:], 16)]).decode("latin-1")
        if e[0] in "01234567":
            return chr(int(e, 8))
        if e in _ESCAPES and (e != "'" or quote == "'") and (e != '"' or quote == '"'):
            return _ESCAPES[e]
        raise TemplateError(f"invalid syntax: bad escape \\{e}")

    return _ESCAPE.sub(esc, body)


def _number(text: str) -> int | float:
    """A Go number literal: an int unless it has a fraction or exponent (then float64)."""
    body = text.lstrip("+-")
    neg = text.startswith("-")
    try:
        if body[:2].lower() == "0x" and ("." in body or "p" in body.lower()):
            value: int | float = float.fromhex(body.replace("_", "") + ("" if "p" in body.lower() else "p0"))
        elif body[:2].lower() in ("0x", "0b", "0o"):
            value = int(body, 0)
        elif any(c in body for c in ".eE"):
            value = float(body.replace("_", ""))
        elif len(body) > 1 and body[0] == "0":
            value = int(body.replace("_", ""), 8)
        else:
            value = int(body.replace("_", ""))
    except ValueError:
        raise TemplateError(f"bad number syntax: {text!r}") from None
    if isinstance(value, float) and math.isinf(value):
        raise TemplateError(f'illegal number syntax: "{text}"')
    if isinstance(value, int) and not -(2**63) <= (-value if neg else value) < 2**63:
        raise TemplateError(f"integer overflow: {text!r}")
    return -value if neg else value


# -- parsing to closures ------------------------------------------------------------------------------------------
# Every node becomes a closure run(state, dot); every pipeline a closure eval(state, dot) -> value.

Eval = Callable[["_State", Any], Any]
Cmd = Callable[..., Any]  # a command: (state, dot[, piped value]) -> value
Run = Callable[["_State", Any], None]
_NO_FINAL = object()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _State:
    __slots__ = ("depth", "funcs", "no_value", "out", "templates", "vars")

    def __init__(
        self, dot: Any, funcs: dict[str, _Spec], templates: dict[str, Run], no_value: str | None, depth: int = 0
    ) -> None:
        self.vars: list[list[Any]] = [["$", dot]]
        self.out: list[str] = []
        self.funcs = funcs
        self.templates = templates
        self.depth = depth
        self.no_value = no_value

    def lookup(self, name: str) -> Any:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        raise TemplateError(f"undefined variable: {name}")

    def assign(self, name: str, value: Any) -> None:
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        raise TemplateError(f"undefined variable: {name}")


_MAX_DEPTH = 200  # nested {{template}} calls; Go allows 100000 but Python's stack is shallower


def _located(exc: TemplateError, name: str, line: int) -> TemplateError:
    if getattr(exc, "located", False):
        return exc
    err = TemplateError(f"{name}:{line}: {exc}")
    err.located = True  # type: ignore[attr-defined]
    return err


def _walk(value: Any, names: Sequence[str]) -> Any:
    """Field access on maps, as Go's: a missing key (or any field of a missing value) is nil, a field of a key
    present with a nil value is an error, and a field of a non-map is an error."""
    last = len(names) - 1
    for i, name in enumerate(names):
        if value is None:
            return None
        if isinstance(value, Mapping):
            if name not in value:
                return None
            value = value[name]
            if value is None and i < last:
                raise TemplateError(f"nil pointer evaluating interface {{}}.{names[i + 1]}")
        else:
            raise TemplateError(f"can't evaluate field {name} in type {_go_type(value)}")
    return value


class _Parser:
    def __init__(self, items: list[str | _Action], name: str) -> None:
        self.items = items
        self.i = 0
        self.name = name
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.templates: dict[str, Run] = {}
        self.nonempty: set[str] = set()  # templates defined with a non-empty body
        self.top_nonempty = False  # the main template has more than whitespace outside its defines

    def err(self, line: int, msg: str) -> TemplateError:
        return _located(TemplateError(msg), self.name, line)

    # -- lists and control structures

    def parse_top(self) -> Run:
        run, end = self.parse_list(top=True)
        assert end is None
        return run

    def parse_list(self, top: bool = False) -> tuple[Run, tuple[str, _Action] | None]:
        """Nodes up to an {{end}} or {{else}} (returned, with the action) or, at the top, the end of input."""
        nodes: list[Run] = []
        while self.i < len(self.items):
            item = self.items[self.i]
            self.i += 1
            if isinstance(item, str):
                nodes.append(_text_node(item))
                if top and item.strip(_SPACE):
                    self.top_nonempty = True
                continue
            toks = item.tokens
            if not toks:
                raise self.err(item.line, "missing value for command")
            word = toks[0].text if toks[0].kind == "ident" else ""
            if word in ("end", "else"):
                if top:
                    raise self.err(item.line, f"unexpected {{{{{word}}}}}")
                return _seq(nodes), (word, item)
            if word == "define":
                if not top:
                    raise self.err(item.line, "unexpected {{define}}: only allowed at the top level")
                self.parse_define(item)
                continue
            if top:
                self.top_nonempty = True
            node = self.parse_action(item, word)
            if node is not None:
                nodes.append(node)
        if not top:
            raise self.err(self.last_line(), "unexpected EOF: missing {{end}}")
        return _seq(nodes), None

    def last_line(self) -> int:
        for item in reversed(self.items):
            if isinstance(item, _Action):
                return item.line
        return 1

    def parse_action(self, item: _Action, word: str) -> Run | None:
        toks, line = item.tokens, item.line
        if word in ("if", "with"):
            return self.parse_branch(word, toks[1:], line)
        if word == "range":
            return self.parse_range(toks[1:], line)
        if word in ("break", "continue"):
            if len(toks) > 1:
                raise self.err(line, f"unexpected {toks[1].text!r} in {{{{{word}}}}}")
            if self.range_depth == 0:
                raise self.err(line, f"{{{{{word}}}}} outside {{{{range}}}}")
            return _break_node if word == "break" else _continue_node
        if word in ("template", "block"):
            return self.parse_template(word, toks[1:], item)
        mark = len(self.vars)
        decl, pipe = self.parse_pipeline(toks, line, allow_decl=True)
        del mark
        if decl is not None:
            return _assign_node(decl[0][0], decl[1], pipe, self.name, line)
        return _output_node(pipe, self.name, line, item.source)

    def parse_branch(self, word: str, toks: list[_Tok], line: int) -> Run:
        mark = len(self.vars)
        decl, pipe = self.parse_pipeline(toks, line, allow_decl=True)
        body, end = self.parse_list()
        orelse: Run | None = None
        assert end is not None
        if end[0] == "else":
            # Variables stay visible in {{else}} up to the {{end}}, as in Go's parser.
            etoks = end[1].tokens[1:]
            if etoks and etoks[0].kind == "ident" and etoks[0].text == word:
                # {{else if ...}} after if, {{else with ...}} after with: a nested branch sharing this {{end}}
                orelse = self.parse_branch(word, etoks[1:], end[1].line)
            else:
                if etoks:
                    raise self.err(end[1].line, f"unexpected {etoks[0].text!r} in {{{{else}}}}")
                orelse, end2 = self.parse_list()
                assert end2 is not None
                if end2[0] != "end":
                    raise self.err(end2[1].line, "expected {{end}}, found {{else}}")
        del self.vars[mark:]
        return _branch_node(word == "with", decl, pipe, body, orelse, self.name, line)

    def parse_range(self, toks: list[_Tok], line: int) -> Run:
        mark = len(self.vars)
        decl, pipe = self.parse_pipeline(toks, line, allow_decl=True, range_decl=True)
        self.range_depth += 1
        body, end = self.parse_list()
        self.range_depth -= 1
        assert end is not None
        orelse: Run | None = None
        if end[0] == "else":
            if len(end[1].tokens) > 1:
                raise self.err(end[1].line, "unexpected tokens in {{else}} of {{range}}")
            orelse, end2 = self.parse_list()
            assert end2 is not None
            if end2[0] != "end":
                raise self.err(end2[1].line, "expected {{end}}, found {{else}}")
        del self.vars[mark:]
        return _range_node(decl, pipe, body, orelse, self.name, line)

    def template_name(self, toks: list[_Tok], line: int, word: str) -> str:
        if not toks or toks[0].kind not in ("str", "raw"):
            raise self.err(line, f"template name must be a string in {{{{{word}}}}}")
        return _unquote(toks[0].text[1:-1], '"') if toks[0].kind == "str" else toks[0].text[1:-1]

    def parse_define(self, item: _Action) -> None:
        toks, line = item.tokens, item.line
        tname = self.template_name(toks[1:], line, "define")
        if len(toks) > 2:
            raise self.err(line, "unexpected tokens after the name in {{define}}")
        self.define(tname, line)

    def define(self, tname: str, line: int) -> None:
        """Parse a {{define}}/{{block}} body; as in Go, an empty body never replaces a template and two
        non-empty definitions of one name are an error."""
        start = self.i
        body = self.parse_body()
        empty = all(isinstance(it, str) and not it.strip(_SPACE) for it in self.items[start : self.i - 1])
        if empty and tname in self.templates:
            return
        if not empty and tname in self.nonempty:
            raise self.err(line, f'template: multiple definition of template "{tname}"')
        if not empty:
            self.nonempty.add(tname)
        self.templates[tname] = body

    def parse_body(self) -> Run:
        saved_vars, saved_depth = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        body, end = self.parse_list()
        assert end is not None
        if end[0] != "end":
            raise self.err(end[1].line, "unexpected {{else}} in a template definition")
        self.vars, self.range_depth = saved_vars, saved_depth
        return body

    def parse_template(self, word: str, toks: list[_Tok], item: _Action) -> Run:
        line = item.line
        tname = self.template_name(toks, line, word)
        pipe: Eval | None = None
        if len(toks) > 1:
            _, pipe = self.parse_pipeline(toks[1:], line, allow_decl=False)
        if word == "block":
            if pipe is None:
                raise self.err(line, "missing pipeline in {{block}}")
            self.define(tname, line)
        return _template_node(tname, pipe, self.name, line)

    # -- pipelines

    def parse_pipeline(
        self, toks: list[_Tok], line: int, *, allow_decl: bool, range_decl: bool = False
    ) -> tuple[tuple[list[str], bool] | None, Eval]:
        decl: tuple[list[str], bool] | None = None
        k = 0
        if allow_decl and toks and toks[0].kind == "var":
            if len(toks) > 1 and toks[1].kind in ("decl", "assign"):
                decl, k = ([toks[0].text], toks[1].kind == "decl"), 2
            elif range_decl and len(toks) > 3 and toks[1].kind == "comma" and toks[2].kind == "var":
                if toks[3].kind not in ("decl", "assign"):
                    raise self.err(line, "expected := or = after the range variables")
                decl, k = ([toks[0].text, toks[2].text], toks[3].kind == "decl"), 4
        if decl is not None and not decl[1]:
            for v in decl[0]:
                if v not in self.vars:
                    raise self.err(line, f'undefined variable "{v}"')
        expr = _ExprParser(toks, k, self, line)
        pipe = expr.pipeline()
        if expr.i != len(toks):
            raise self.err(line, f"unexpected {toks[expr.i].text!r} in operand")
        if decl is not None and decl[1]:
            self.vars.extend(decl[0])
        return decl, pipe


class _ExprParser:
    """Pipelines, commands and operands of one action."""

    def __init__(self, toks: list[_Tok], start: int, parser: _Parser, line: int) -> None:
        self.toks = toks
        self.i = start
        self.p = parser
        self.line = line

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def err(self, msg: str) -> TemplateError:
        return self.p.err(self.line, msg)

    def pipeline(self, in_paren: bool = False) -> Eval:
        cmds: list[tuple[Cmd, bool, str]] = []
        while True:
            tok = self.peek()
            if tok is None or tok.kind == "rparen" or tok.kind == "pipe":
                if tok is not None and tok.kind == "rparen" and not in_paren:
                    raise self.err("unexpected right paren")
                raise self.err("missing value for command")
            cmds.append(self.command(stage=len(cmds) + 1))
            tok = self.peek()
            if tok is not None and tok.kind == "pipe":
                self.i += 1
                continue
            break
        return _pipeline(cmds)

    def command(self, stage: int) -> tuple[Cmd, bool, str]:
        """(evaluator taking a final value, is it a function call, its text); operands run to | or )."""
        first_tok = self.peek()
        assert first_tok is not None
        operands: list[tuple[str, Any]] = []
        while (tok := self.peek()) is not None and tok.kind not in ("pipe", "rparen"):
            if operands and not tok.spaced and tok.kind not in ("lparen",):
                raise self.err(f"missing space before {tok.text!r}")
            if tok.kind in ("decl", "assign", "comma"):
                raise self.err(f"unexpected {tok.text!r} in command")
            operands.append(self.operand())
        kind, value = operands[0]
        if stage > 1 and kind == "const":
            raise self.err(f"non executable command in pipeline stage {stage}")
        if kind == "func":
            name = value
            args = [self.as_arg(op) for op in operands[1:]]
            return _call(name, args), True, name
        if kind in ("field", "var", "chain"):
            target: Eval = value
            label = first_tok.text
            if len(operands) > 1:
                return _bad_args(label), False, label
            return _field_command(target, label), False, label
        if kind == "const" and value[0] is None and value[1] == "nil":
            raise self.err("nil is not a command")
        if len(operands) > 1:
            return _not_a_function(first_tok.text), False, first_tok.text
        return _plain(self.as_arg(operands[0])), False, first_tok.text

    def as_arg(self, op: tuple[str, Any]) -> Eval:
        kind, value = op
        if kind == "func":
            return _call(value, [])
        if kind == "const":
            const = value[0]
            return lambda st, dot: const
        return value  # type: ignore[no-any-return]

    def operand(self) -> tuple[str, Any]:
        tok = self.peek()
        assert tok is not None
        self.i += 1
        kind = tok.kind
        op: tuple[str, Any]
        if kind in ("str", "char"):
            try:
                text = _unquote(tok.text[1:-1], '"' if kind == "str" else "'")
            except TemplateError as exc:
                raise self.err(str(exc)) from None
        if kind == "str":
            op = ("const", (text, "str"))
        elif kind == "raw":
            op = ("const", (tok.text[1:-1], "raw"))
        elif kind == "char":
            if len(text) != 1:
                raise self.err(f"malformed character constant: {tok.text}")
            op = ("const", (ord(text), "char"))
        elif kind == "num":
            try:
                op = ("const", (_number(tok.text), "num"))
            except TemplateError as exc:
                raise self.err(str(exc)) from None
        elif kind == "ident":
            if tok.text in ("true", "false"):
                op = ("const", (tok.text == "true", "bool"))
            elif tok.text == "nil":
                op = ("const", (None, "nil"))
            elif tok.text in _KEYWORDS:
                raise self.err(f"unexpected <{tok.text}> in command")
            elif tok.text not in _FUNC_NAMES:
                raise self.err(f'function "{tok.text}" not defined')
            else:
                op = ("func", tok.text)
        elif kind == "dot":
            op = ("field", lambda st, dot: dot)
        elif kind == "field":
            op = ("field", self.field_chain([tok.text[1:]], None))
        elif kind == "var":
            if tok.text not in self.p.vars:
                raise self.err(f'undefined variable "{tok.text}"')
            op = ("var", self.field_chain([], tok.text))
        elif kind == "lparen":
            inner = self.pipeline(in_paren=True)
            close = self.peek()
            if close is None or close.kind != "rparen":
                raise self.err("unclosed left paren")
            self.i += 1
            names = self.chained_names()
            if names:
                return ("chain", _chain(inner, names))
            return ("paren", inner)
        else:
            raise self.err(f"unexpected {tok.text!r} in operand")
        if op[0] == "const" and (nxt := self.peek()) is not None and nxt.kind == "field" and not nxt.spaced:
            raise self.err(f"unexpected . after term {tok.text!r}")
        return op

    def chained_names(self) -> list[str]:
        names: list[str] = []
        while (tok := self.peek()) is not None and tok.kind == "field" and not tok.spaced:
            names.append(tok.text[1:])
            self.i += 1
        return names

    def field_chain(self, names: list[str], var: str | None) -> Eval:
        names = names + self.chained_names()
        if var is None:
            return lambda st, dot: _walk(dot, names)
        if not names:
            return lambda st, dot: st.lookup(var)
        return lambda st, dot: _walk(st.lookup(var), names)


def _chain(inner: Eval, names: list[str]) -> Eval:
    return lambda st, dot: _walk(inner(st, dot), names)


def _plain(arg: Eval) -> Cmd:
    def ev(st: _State, dot: Any, final: Any = _NO_FINAL) -> Any:
        if final is not _NO_FINAL:
            raise TemplateError("can't give argument to non-function")
        return arg(st, dot)

    return ev


def _field_command(target: Eval, label: str) -> Cmd:
    def ev(st: _State, dot: Any, final: Any = _NO_FINAL) -> Any:
        if final is not _NO_FINAL:
            raise TemplateError(f"{label.lstrip('.$')} is not a method but has arguments")
        return target(st, dot)

    return ev


def _bad_args(label: str) -> Cmd:
    def ev(st: _State, dot: Any, final: Any = _NO_FINAL) -> Any:
        raise TemplateError(f"{label.split('.')[-1]} is not a method but has arguments")

    return ev


def _not_a_function(label: str) -> Cmd:
    def ev(st: _State, dot: Any, final: Any = _NO_FINAL) -> Any:
        raise TemplateError(f"can't give argument to non-function {label}")

    return ev


def _call(name: str, args: list[Eval]) -> Cmd:
    """A function call; the piped value (if any) is the last argument, and and/or stop at the deciding one."""
    if name in _LAZY:
        want = name == "or"

        def lazy(st: _State, dot: Any, final: Any = _NO_FINAL) -> Any:
            count = len(args) + (final is not _NO_FINAL)
            if count < 1:
                raise TemplateError(f"wrong number of args for {name}: want at least 1 got 0")
            value: Any = None
            for arg in args:
                value = arg(st, dot)
                if _truthy(value) == want:
                    return value
            if final is not _NO_FINAL:
                value = final
            return value

        return lazy

    def call(st: _State, dot: Any, final: Any = _NO_FINAL) -> Any:
        fn, lo, hi = st.funcs[name]
        values = [a(st, dot) for a in args]
        if final is not _NO_FINAL:
            values.append(final)
        if len(values) < lo or (hi is not None and len(values) > hi):
            want = f"at least {lo}" if hi is None else str(lo)
            raise TemplateError(f"wrong number of args for {name}: want {want} got {len(values)}")
        try:
            return fn(*values)
        except TemplateError as exc:
            if getattr(exc, "located", False):
                raise
            raise TemplateError(f"error calling {name}: {exc}") from None
        except (TypeError, ValueError, ZeroDivisionError, OverflowError, IndexError, KeyError) as exc:
            raise TemplateError(f"error calling {name}: {exc}") from None

    return call


def _pipeline(cmds: list[tuple[Cmd, bool, str]]) -> Eval:
    if len(cmds) == 1:
        only = cmds[0][0]
        return lambda st, dot: only(st, dot)

    def ev(st: _State, dot: Any) -> Any:
        value = cmds[0][0](st, dot)
        for cmd, _, _ in cmds[1:]:
            value = cmd(st, dot, value)
        return value

    return ev


# -- nodes ------------------------------------------------------------------------------------------------------


def _seq(nodes: list[Run]) -> Run:
    if len(nodes) == 1:
        return nodes[0]

    def run(st: _State, dot: Any) -> None:
        for node in nodes:
            node(st, dot)

    return run


def _text_node(text: str) -> Run:
    def run(st: _State, dot: Any) -> None:
        st.out.append(text)

    return run


def _break_node(st: _State, dot: Any) -> None:
    raise _Break


def _continue_node(st: _State, dot: Any) -> None:
    raise _Continue


def _eval_at(pipe: Eval, st: _State, dot: Any, name: str, line: int) -> Any:
    try:
        return pipe(st, dot)
    except TemplateError as exc:
        raise _located(exc, name, line) from None


def _output_node(pipe: Eval, name: str, line: int, source: str) -> Run:
    def run(st: _State, dot: Any) -> None:
        value = _eval_at(pipe, st, dot, name, line)
        if value is None:
            if st.no_value is None:
                raise _located(TemplateError(f"no value for {source}"), name, line)
            st.out.append(st.no_value)
        elif isinstance(value, str):
            st.out.append(value)
        else:
            st.out.append(go_format(value))

    return run


def _assign_node(var: str, declare: bool, pipe: Eval, name: str, line: int) -> Run:
    def run(st: _State, dot: Any) -> None:
        value = _eval_at(pipe, st, dot, name, line)
        if declare:
            st.vars.append([var, value])
        else:
            st.assign(var, value)

    return run


def _branch_node(
    is_with: bool, decl: tuple[list[str], bool] | None, pipe: Eval, body: Run, orelse: Run | None, name: str, line: int
) -> Run:
    def run(st: _State, dot: Any) -> None:
        mark = len(st.vars)
        value = _eval_at(pipe, st, dot, name, line)
        if decl is not None:
            if decl[1]:
                st.vars.append([decl[0][0], value])
            else:
                st.assign(decl[0][0], value)
        try:
            if _truthy(value):
                body(st, value if is_with else dot)
            elif orelse is not None:
                orelse(st, dot)
        finally:
            del st.vars[mark:]

    return run


def _range_items(value: Any, nvars: int) -> list[tuple[Any, Any]]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(enumerate(value))
    if isinstance(value, Mapping):
        return [(k, value[k]) for k in sorted(value, key=_sort_key)]
    if _is_int(value):
        if nvars > 1:
            raise TemplateError(f"can't use {value} to iterate over more than one variable")
        return [(i, i) for i in range(value)]
    raise TemplateError(f"range can't iterate over {go_format(value, nested=True)}")


def _range_node(
    decl: tuple[list[str], bool] | None, pipe: Eval, body: Run, orelse: Run | None, name: str, line: int
) -> Run:
    names = decl[0] if decl else []
    declare = decl[1] if decl else True

    def run(st: _State, dot: Any) -> None:
        value = _eval_at(pipe, st, dot, name, line)
        try:
            items = _range_items(value, len(names))
        except TemplateError as exc:
            raise _located(exc, name, line) from None
        mark = len(st.vars)
        # As Go does: the range variables first hold the whole value (what {{else}} sees), then each element.
        for var in names:
            if declare:
                st.vars.append([var, value])
            else:
                st.assign(var, value)
        top = len(st.vars)
        try:
            if not items:
                if orelse is not None:
                    orelse(st, dot)
                return
            for key, elem in items:
                if len(names) == 2:
                    _set_range_var(st, declare, mark, names[0], key)
                    _set_range_var(st, declare, mark + 1, names[1], elem)
                elif names:
                    _set_range_var(st, declare, mark, names[0], elem)
                try:
                    body(st, elem)
                except _Continue:
                    pass
                finally:
                    del st.vars[top:]
        except _Break:
            pass
        finally:
            del st.vars[mark:]

    return run


def _set_range_var(st: _State, declare: bool, slot: int, var: str, value: Any) -> None:
    if declare:
        st.vars[slot][1] = value
    else:
        st.assign(var, value)


def _template_node(tname: str, pipe: Eval | None, name: str, line: int) -> Run:
    def run(st: _State, dot: Any) -> None:
        target = st.templates.get(tname)
        if target is None:
            raise _located(TemplateError(f'no such template "{tname}"'), name, line)
        value = _eval_at(pipe, st, dot, name, line) if pipe is not None else None
        if st.depth >= _MAX_DEPTH:
            raise _located(TemplateError(f"exceeded maximum template depth ({_MAX_DEPTH})"), name, line)
        inner = _State(value, st.funcs, st.templates, st.no_value, st.depth + 1)
        inner.out = st.out
        target(inner, value)

    return run


# -- the public API ------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _compile(source: str, name: str) -> tuple[Run, dict[str, Run]]:
    """Parse once per (source, name): object templates are rendered thousands of times."""
    parser = _Parser(_scan(source, name), name)
    root = parser.parse_top()
    templates = dict(parser.templates)
    if name in templates and parser.top_nonempty and name in parser.nonempty:
        raise TemplateError(f'{name}:1: template: multiple definition of template "{name}"')
    if name in templates and not parser.top_nonempty:
        root = templates[name]  # Go executes the definition when the main text is empty
    templates[name] = root
    return root, templates


class Template:
    """A parsed template; `render(data)` executes it against a mapping (Go's `.`).

    Keywords: `rng` is the random source of RandInt, RandIntRange and RandData (seed it for repeatable runs);
    `base_dir` is the test config's directory, where IncludeEmbedFile reads; `include_dir` is where a relative
    IncludeFile path is joined (clusterloader2's binary directory; defaults to `base_dir`); `no_value` is what
    printing a missing value writes (Go's "<no value>" by default; None makes it an error naming the expression).
    """

    def __init__(
        self,
        source: str,
        name: str = "template",
        *,
        rng: random.Random | None = None,
        base_dir: Path | str | None = None,
        include_dir: Path | str | None = None,
        no_value: str | None = NO_VALUE,
    ) -> None:
        self.name = name
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.include_dir = Path(include_dir) if include_dir is not None else None
        self.no_value = no_value
        self._funcs = _functions(rng or random.Random(), self.base_dir, self.include_dir)
        self._root, self._templates = _compile(source, name)

    def render(self, data: Any = None) -> str:
        """Execute the template with `data` as dot (and `$`)."""
        st = _State(data, self._funcs, self._templates, self.no_value)
        try:
            self._root(st, data)
        except (_Break, _Continue):  # pragma: no cover - the parser only allows them inside range
            raise TemplateError(f"{self.name}: break or continue outside range") from None
        except RecursionError:
            raise TemplateError(f"{self.name}: template nesting too deep") from None
        return "".join(st.out)


def render(
    source: str,
    data: Any = None,
    *,
    name: str = "template",
    rng: random.Random | None = None,
    base_dir: Path | str | None = None,
    include_dir: Path | str | None = None,
    no_value: str | None = NO_VALUE,
) -> str:
    """Parse (cached) and execute a template in one call; the keywords are Template's."""
    return Template(source, name, rng=rng, base_dir=base_dir, include_dir=include_dir, no_value=no_value).render(data)


_RNG_COOKED_B85 = """
>i?MQGfMZxTVIyCK}vhT53hmC6UAN=>y<;NT>At{j?WNx9E0em!@)O?=;U2}sfGVTch4bXVfmkGRR+sK(%0xf(a0ulp!yLsA5o`CRZylPNq6mW
TrKKf#-CiBXhQ)?Ijg-t3pA2xSu^@@0&1qtPWuq9iqX7_sl1=}tbn5~vCQ|E8!Pk5l-H2~uPoyvG%{*GD-
;1AlFUNJXn^xipN1l#AUUrm5u>rCmYu@A`J@M1h9!Y1JeMkJ;Zl0{+cTtUp2><kZXuL|e3@HO#i@YXY4^+X@AAU~3?cvSG32$T^;0RCG*ie9>C
q71G8AeqNwLvcnPTL<QF%CaI82#mW3HQ3Vbm24cc9Yg#FoFk^B~%4hGI{!zn9xa7TS;@dX+L5Jcn^mOOV<bI#4@4D22!JrHJD*cj(X=tP97!a_
}4YaA_p~hNw^W6pGRJOmoz<c=>Lmj;ALvSMe`+rt6#43L7K<FI(v!SxLp(IW0_x^7@rwT{Q2oy(^qn9^#BpIbe$myV5mOaCQ~%_t^3E3XonMH`
IT97%h+<dF$Yhe0w5)n7iu%Vh(vYap59)td4<1K-
1b##nxB`nwE0Rl(@fyy(zQfK~aULM(4V*Ru!|HNpEQR1dyOSX@^jLZ4^)paLHPe|JXIn*i;p&v>2G)pxQHJ{eJUJR^YM)t?7~VDL(ky3+rbW@|
jXol5!-
t>r7r+mqq5fE5kcn6?p3GZs@F6Q(h@f2)nIMnre`X$zw$JY6wvM{MH%$tc3%upE}XurPSuToCBM;GoK0kHChaWBqDg(&l=T5yf{u5K2F|LpD*}
R4)3#v3i=J<X_rHL?AZzG5l~Fb$HSgc)#DSy51B^`;#<zoe&7c`z9Jd7xX{w2VaI&PAL<@O-PZB<-
d<411?e0Bj@NGcx@h!7HVVww&?!VN+cClv(>;`sn#~;I(ZY`?^=U|EwT~7~U~k3U_WH4~tK?BZC%LE2=tq|9-
eJCd7(%CZJPvqCK#g~R6Xa~dMnrLv3vlNdz*|RU7j4*J9e4;1;BocU=?@Q|S8j+izhZ7j=Cn>y{|s@ArI|RMrB>)9nizvui+rC{6aWGSoKpyxX
H-$L?pge}6sDPki~o=FB2qm%=PRc5I7mz@gMy1t-
uN$Q$Da`O3_rzO@vR)wCRl4g2?cV&`j)&9QgHz3`;*f)HU0z#O8c(NZkt@j89=_0FvqWp>WO&QnYHi-n^^j|NebQ=@DGE@aZVR6-
GyhOfVXh8zGAT>VYj9rB7?=vB)#vEBPO#ZP`7*g&;%cvuN*zlA?dEX3Hk7)3yvI}?R=_6`L<$uo~PLS6hG*^1<%Af#5bS_pn1hb&=Pr4j)+r07
ki&5vY?On+PwlGU9bC5gh$E}r~~ARP^6zSH==$G2=cZ9zXU(aGwnHwK4g~18Dv}6p4XE7tms&>$RTJUG3iEo|2jSCYAd(=jD@f^XA%GBpFCc!r
NSIJmBaKZc6RG;2mQq6bLZ_b`?c>-
uKe3sGbDd)+Yb&jK<ATjlHJCnb077OW~m(dZc9^?K@Ha+MRIDuk_8eOy%x<d+}11%SZhU%?<s_84ZLDpUODNwsZMlA;jV;Sf)wu<G~#hOw=y0|
z$jA0CvWZ#q2$uwJ1$N}2w>rY^k=&xCvzm|LA4PN*RLvl4EcSo8aXT!mh|CNbVB+i_6|TD6Q0fxW|jt-
+RVY%G+9L=Ad=d*IYL3^R#hkVk&vIXy^1JgJ!_GIpl=4pq0myFq413RY-TECgRNt*9hjYrN`AIjVWQt--@@$cHvT-
$|7268E9>O8(HD0Oo)^+@+eaccx1w>mJH-&yCC}yCVN!E*ttbzZi|c;`0o|2aTC`YmK(VbbgAh!3c1N^-22=;@^ynZP*}%uPKwl@^Cl7n3-
S{nYg~)`&uQw*PG4_jtNruT`Sbrxl?jHu<RTQi(1tQax>8^O>h6K}kMbXYmA0lTmxMnph1qYZ%xuAZhP*Vb^)0`Ik!hRY;0H-NYusSDK@<X3-
`}gF!NWZw~SJ+z|S@Use7?jo86mUYEt%^}U7=n(>xWhwCx8IU)R=OXUtiUx?#j30akG#t`5Qwl}bGp84RkcI%)Su@&FrO4-
btG{gL*A<POTx>xSEbTSa^7jdb!ogIG=X*u^o;k)pA`~HV%<FPJ`Fh=1kiKU2I#Fj*^BCF@?p(*J+F&b$(?9_I;j{lHB!F498jk%01~mAj6`i)
v@!B#%4TH)<TtnC=~14z&uE(*REI`z$u}uoqbT1fwXj5Kb+Z18oK7RcLqWnRj|KvbPkH_HedQJ3Xz-
8)3BZl3t(dLk2BegMg0WRWKXm`pCoo3NMF{L@5hDiEIm5t)NtgkyS`L_2Hke_|8U;PC60)?mdf{wvO7W_2Ksw%)$;(GIUsmYp*|-
8?G_2bl80txiLC#YsxxA-SI&YyyB@?QmVkpT=V`jnDaiEjD&T9XXQR-
}|fHFXOBwA*Hk2@GzWaPlofJ`eQraHP<O+B84W92W)iG!lK<o*(sxD29$y$rKqu#wiw37@R<__{fWxWv)zvjg8<3GIT*#FQrXVAGq2xdX<~S7t
(h_u5#6t1_Nq8{2=#;V*_3)i`<A0PI;OmR36B*^o;YFUT7OhFsFh>s>pm+clfr&}(+6hZM?#wkBUfQ}%YCKr1|5G}icXis@u@L3mE;KHUN@cX(
1l=zo_$VjU}z)Ee;nDe6v(Dx8(d0yt9;p?u0|*?S~cV@Wn^GP0*!WCwhIduQVcr9Z~F*he{Vbp5xWdEkuPps^n#cW%kILNm4&CxGVH38^{F-
R#O4TWBW~O}CMb(rlcZR5}d~dHcbU5w;t+z0+rY5#siV4g8kVBI`-8`>cLN)lFsfo0s7o$|zk}r))!AdD$2;hT_-LMHZdUJiezdu*{x&;itDBg
2E};&L1l)4KZY1H;`J`y?r7P7HTug&2ad-
^(ARzUU7s=CD7nQN0K3Tb;S+{aoPJ=59D4K;k>O|Hq3ZEl`@cncA%AnQ#)!o)4++3rij>x9H^UPfu~$|oQ<zPlPH~0KMlm{#C_k#*fIVA+tz(J
1AuJ<mkJ_i_aO$12PX)6%&68`V0A|LDp%?%!}<NmHUW_w;)N3t{@p&u--n~7qPgvP`}W1$deK(Z$D=4~`3WcYYR-
*9@M$eo7Q&L6zO=iXT^#hv_O3Tin5oyz5D`Pu${ozJ<sE!H*{fb+rxAk$EFP!~v>fDK{J$OLXj?c#|DyTSa35;ZT+6U0xy<Uy<PhLvL9X3D;2z
1SQdEBq%M6!TR54+GbxZ{i3mk%r2nK}t5zj=#O=~Y;r?)mGfB7b%)rJ={liPBGaLuX7+EFA_2U_RX1d(MZ4WZ?vujaV;%j+bNBPH{IGkg;WUqW
7~7!ji~9xH%AVGCrvUmPp(&^&&Yr@6X+=!p;mK?pv&v-=zIYttMJt;2si!&$dz+4Qo%0@4LZR&|6-
gZegNDhsIK<2r*HXSk(?jpdK)D2QNr7v~{YpUW!)-WGn`<s{M)mDJ!-
f{W%UqX^3gbxOc1C7m)zrZxD5s2S{+_n9Y65bg4Iz^yt&7iZ*m;(axVY@Ix|t_OLqHCx*R;A_q&*zsH0C<4EmW3%BUd*LyzCAoc-
o<iv(C1`#;t6vV4Gg+U%aW?8IED$m|L+{eE!N`Bd9@2gdM`DijfD&KoLaq_>%}2Kvj)VHC4h8|>g#64~j8LbnWBCL>grKUUrPJ%^r1werY~Mls
-fM><e4ge9PjV!|w5D1;@(oA7xRCXkAT^jNJ!O?x^pMOE(fBB<p$%07+cX<1T+Bjv0EDcRHk-EyEN=OP3)OPJko5@b_<3-YatH;2A-
8O4r`0yB$y<oj;g|k-
wTQTE{p18v5Q3Cq0XMl82zl>3R%H{uCVHp6D5%{O6NZob&s(koxVNGRKru4V9;wLFKI~_>paB4f<=vC8`N8(&c!LYP>}v>)$NX==mr-
?|_yqDa?geKgOePl9f_0L|JQGHBq<i7B;<Tz<8xcRFUL`{m7LGlloPp3pvncUMO(3f|`y$b7sy2@!zYr;0x|?6%5Uj3{$|~d!u(nj4%gqmZIAo
9L2{uOoUm#k<Ey%dGj_qj2tRwwH4U#4DWO;##TCKe$t6BlM@0`4TJ#*@$kLMmdq#}8B(S;7<A^w5j#XS;XW=>~$5W$Ar`?(sqKbIJZDvWK)Rqo
UPwY3#eZASprDsAfGvuIHKh07z|5UE`tTX&x}5nh{@*Xm_`baKcm=bgbSs)M?g)oY;B5QinA=R=bg+55Z#b7E^Gna%Eq0s}lP8!$^Fzw9vyT?t
`4m_+1L;_Cas5Qx$_Zq@jka3_UzGF}4jZL+1tJJ^9cYo}Oq@j4E4H+UfoVUYw{x_fZxPQWy>B*PNVfppgB-xS^w2dKe41>|L71<gj5BjR2Dg<I
{(0Lm1VFy=JCz3DaTsj*z8OwSk;tX)`x`W@$bw&uUam=%PTfNI|D(+FXvbbv>U!~rHrDEstDxUA=8njRl)U!$YoAo9aRehn6^mnTBR6)de0TGh
U(jjU4MEWW)d4Es11&~8YgSWu#m-5=?DP|p}4O34Oo<w>^ux$+sl0_X4D&=8|-aA@a$8P>F&W9x*}ZRx0?7Fqa${XKx9MoeVaL<$-
@VyaTLix?#u5xpSB7^^<|nd%VTPEXP^Y|J)gB{^+4=%Fk7o^^g;abRqGJ-Z%~FKLF42y42QdD8ys>MFgmtPrd7-ogyGE8DiPgc2MplK;J1+r-
q@9weZkkbzr2uFqh8MfQ0ckscV7j4@oG)#Ed;ai)MYRj0c9UX^)u*RaOW_Q`iALo8<Y!XXbTyqktaytIbGNz!h}v1Z~u#X<?_jz^XS8?NRqi(%
7mcj{d}ItK_puW@c2&_{R<{;K=LuYn)UK*@Lq#&NzRA(m<c-?qXX&ukBslTMV-
2SB491ZT(M#&%^O$@v>nQC@M^D|%~&K{k1eJaw0P<Yh{D8LZk;>-Tef3lY-?w<*NDKPPLZ3RHDk$Sp7y-
sDyaaMM7@|69=f15=0Ah$Z8t2JOD9I%;G1CS{6sI3VWe+IqeL3iQNV$G)`5!@-
{l&S`qwWUAW=JcU2`w$(X~Ww=Pbh06!?h|Dum1ms3%R*dw4k`WO;FDvKf)iXnTU9ID8UgJc+3i#_gEH{=Z`aMrFPbt%c)c^^m$QR(#2bZ(YH}X
~r3DG>$LtS9y$9m!V8APoPZxF!9zF;bQ1E{-
+eO0CsJeZkjQDgkniL&e|B8`X$!#+;jr&bYsj2Mz65L);gcmicdL<_;Ovt3<|w;riGV)nlkWt{M%yC`aL@h~sR2X^$=t(}K7c#s61nQ+^cm&Fm
Lql$GEL&tQQIWlh%Kum2@(3h=;#hO!6!&!;)bru>QB!iw|^>}TJt@rO^<<Idd9ZSjO5+a>HAGSApMm++4Yw7N*t#+&W(PC?o*<Jb1cH43xrg)+
{XUNDI<*S03euee%jS<2$fNT>$wsv#+FW#D>Owgy8e&=^huoRzdp-
1hD1g$+wF)|&K<mH}B3O(~frR(&%CfRdypszZ4GMcmI52kLI=3!%IPc$Fn%SpgQ+`b(015{q?pi=k5AO%5v;+Y$--
NU%$pg<>Cmuy7)rB3_=rsuCme^_p<q=bWe6D(BTTploc5Bv`*^om^yFh>P~dBA-L!a2s%wkw)&sC-5W-
Zt8_Yr8_?b_2;CQ?Pkp_d^)mn9qy_!LAXo7ql0I8)V(^Pu<?^GU!PoD2F$U`{?Huh`aFB^upK=NKm$gZ3}i!bE-vs6bRB&g+gLk#OG)kpeqhQ0
ATl{xfy;33<G3gk5v~PpT*|DNHKMJL)bg-^3r#jZ{Y!ljks=RXoe^>&gXJf2iB2Pv4V~3RKDvPr)9!-2cAA}-Q7n?hE;i7WB!d|oB2P~IX-
71BK3^NZ3up2W}JSXX5%;RIOwmWN4wXOy|?1q->aS<(ZRLyYRXSCDH~f-
QlaEo4s>;m3ek~#*p<qEI#Ybi+p&go_xolNy~EK)x@MYa8gR8Fv2oT*O~9_63jISYRb}Di7cmrABdkagyTw?8#R}tqy?6GikALu_CvutmP~otg
UCc<RL7U{T9&rj}csa@)puhZNgvV?DFRKceUgkooP-
k2@^z)ULOzM9qibD2D7d94^lp&v)lGS&~_+OLu*=AA1sT@O(q677(>=3?D!=uwt>6R!KfZ%!cBq$(TIO(<J492ioN*=oV2ePUuSY_U*E;x(FjR
fA|*WY@~mReJEJMdm}o1s^J#wEZpItrjU
"""

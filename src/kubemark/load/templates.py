"""A small, safe subset of Go's text/template, as clusterloader2 configs and object templates use it.

Supported: `{{.Field}}` / `{{.A.B}}` / `{{.}}`, variables (`{{$x := ...}}`, `{{$x = ...}}`, `{{$x}}`), literals
(ints, floats, "strings", `raw`, true/false/nil), function calls with parenthesised sub-pipelines, pipes
(`{{.X | AddInt 1}}` passes the value as the last argument), `if`/`else if`/`else`/`end`, `range` over lists,
maps and `Seq n`, comments `{{/* */}}` and whitespace trimming `{{-` / `-}}`.

Functions are clusterloader2's (AddInt, SubtractInt, MultiplyInt, DivideInt, MaxInt, MinInt, Mod, the Float
variants, DefaultParam, IfThenElse, RandInt, RandIntRange, Seq, YamlQuote) plus Go's builtins (eq, ne, lt, le, gt,
ge, and, or, not, len, printf, print). Nothing is ever evaluated as Python: the engine only walks its own tree.
A field missing from the data is nil; printing nil is an error that names the expression (Go would print
"<no value>" and produce a broken manifest later).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["Template", "TemplateError", "go_format", "render"]


class TemplateError(ValueError):
    """A template that cannot be parsed or executed; the message names the template and line."""


# -- values ---------------------------------------------------------------------------------------------------


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TemplateError(f"cannot use bool {value} as a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise TemplateError(f"cannot cast {value!r} to a number")


def _truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, int | float | str | list | tuple | dict):
        return bool(value)
    return True


def go_format(value: Any) -> str:
    """Print a value as Go's fmt %v would for the types templates produce."""
    if value is None:
        return "<no value>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_format(v)}" for k, v in sorted(value.items(), key=str)) + "]"
    return str(value)


def _printf(fmt: str, *args: Any) -> str:
    # Go verbs map onto Python's %-formatting once %v becomes %s and values are Go-printed.
    out: list[str] = []
    arg_iter = iter(args)
    pos = 0
    for m in re.finditer(r"%([-+# 0]*\d*(?:\.\d+)?)([vdsfgeqtx%])", fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, verb = m.group(1), m.group(2)
        if verb == "%":
            out.append("%")
            continue
        try:
            arg = next(arg_iter)
        except StopIteration:
            out.append(f"%!{verb}(MISSING)")
            continue
        if verb in "vst":
            out.append(("%" + flags + "s") % go_format(arg))
        elif verb == "q":
            out.append('"' + str(arg).replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif verb in "dx":
            out.append(("%" + flags + verb) % int(_to_float(arg)))
        else:
            out.append(("%" + flags + verb) % _to_float(arg))
    out.append(fmt[pos:])
    return "".join(out)


def _compare(op: str) -> Callable[[Any, Any], bool]:
    def cmp(a: Any, b: Any) -> bool:
        if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
            x, y = float(a), float(b)
        else:
            x, y = a, b
        try:
            return {
                "eq": lambda: x == y,
                "ne": lambda: x != y,
                "lt": lambda: x < y,
                "le": lambda: x <= y,
                "gt": lambda: x > y,
                "ge": lambda: x >= y,
            }[op]()
        except TypeError:
            raise TemplateError(f"{op}: incompatible types {a!r} and {b!r}") from None

    return cmp


def _eq(a: Any, *others: Any) -> bool:
    # Go's eq is true if the first argument equals any of the others.
    return any(_compare("eq")(a, b) for b in others)


def _and(*args: Any) -> Any:
    for a in args:
        if not _truthy(a):
            return a
    return args[-1] if args else None


def _or(*args: Any) -> Any:
    for a in args:
        if _truthy(a):
            return a
    return args[-1] if args else None


def _mod(a: Any, b: Any) -> int:
    # Go's % keeps the dividend's sign (like math.fmod), unlike Python's.
    return int(math.fmod(int(_to_float(a)), int(_to_float(b))))


def _divide_float(a: Any, b: Any) -> float:
    divisor = _to_float(b)
    if divisor == 0:
        raise TemplateError("division by zero")
    return _to_float(a) / divisor


def _yaml_quote(value: Any, tabs: Any) -> str:
    dumped = yaml.safe_dump(value, default_flow_style=True, width=1 << 30).rstrip("\n")
    if dumped.endswith("\n..."):
        dumped = dumped[: -len("\n...")]
    return dumped.replace("\n", "\n" + "  " * int(_to_float(tabs)))


def _if_then_else(cond: Any, then: Any, otherwise: Any) -> Any:
    if not isinstance(cond, bool):
        raise TemplateError(f"IfThenElse: condition must be a bool, got {cond!r}")
    return then if cond else otherwise


def _functions(rng: random.Random) -> dict[str, Callable[..., Any]]:
    def max_float(*n: Any) -> float:
        if not n:
            raise TemplateError("maximum undefined")
        return max(_to_float(x) for x in n)

    def min_float(*n: Any) -> float:
        if not n:
            raise TemplateError("minimum undefined")
        return min(_to_float(x) for x in n)

    def rand_int_range(a: Any, b: Any) -> int:
        lo, hi = int(_to_float(a)), int(_to_float(b))
        return lo if lo >= hi else rng.randint(lo, hi)

    return {
        "AddFloat": lambda *n: math.fsum(_to_float(x) for x in n),
        "AddInt": lambda *n: int(math.fsum(_to_float(x) for x in n)),
        "SubtractFloat": lambda a, b: _to_float(a) - _to_float(b),
        "SubtractInt": lambda a, b: int(_to_float(a) - _to_float(b)),
        "MultiplyFloat": lambda *n: math.prod(_to_float(x) for x in n),
        "MultiplyInt": lambda *n: int(math.prod(_to_float(x) for x in n)),
        "DivideFloat": _divide_float,
        "DivideInt": lambda a, b: int(_divide_float(a, b)),
        "MaxFloat": max_float,
        "MaxInt": lambda *n: int(max_float(*n)),
        "MinFloat": min_float,
        "MinInt": lambda *n: int(min_float(*n)),
        "Mod": _mod,
        "DefaultParam": lambda param, default: default if param is None else param,
        "IfThenElse": _if_then_else,
        "RandInt": lambda n: rng.randint(0, int(_to_float(n))),
        "RandIntRange": rand_int_range,
        "Seq": lambda n: [0] * int(_to_float(n)),
        "YamlQuote": _yaml_quote,
        "eq": _eq,
        "ne": _compare("ne"),
        "lt": _compare("lt"),
        "le": _compare("le"),
        "gt": _compare("gt"),
        "ge": _compare("ge"),
        "and": _and,
        "or": _or,
        "not": lambda a: not _truthy(a),
        "len": len,
        "printf": _printf,
        "print": lambda *a: " ".join(go_format(x) for x in a),
    }


# -- lexing an action -------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
    | (?P<decl>:=)
    | (?P<assign>=)
    | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
    | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[()|,])
    )""",
    re.VERBOSE,
)


@dataclass(slots=True)
class _Tok:
    kind: str
    text: str


def _lex(src: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    src = src.rstrip()
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"unexpected {src[pos:].strip()[:20]!r} in action {src.strip()!r}")
        kind = m.lastgroup or ""
        tokens.append(_Tok(kind, m.group(kind)))
        pos = m.end()
    return tokens


# -- expression tree ----------------------------------------------------------------------------------------------

Expr = tuple  # ("lit", v) | ("field", names) | ("var", name, names) | ("call", fn, args) | ("pipe", cmds)


class _ExprParser:
    def __init__(self, tokens: list[_Tok], funcs: Mapping[str, Callable[..., Any]]) -> None:
        self.toks = tokens
        self.i = 0
        self.funcs = funcs

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise TemplateError("unexpected end of action")
        self.i += 1
        return tok

    def done(self) -> bool:
        return self.i >= len(self.toks)

    def pipeline(self) -> Expr:
        cmds = [self.command()]
        while (tok := self.peek()) is not None and tok.text == "|":
            self.take()
            cmds.append(self.command())
        return ("pipe", cmds) if len(cmds) > 1 else cmds[0]

    def command(self) -> Expr:
        first = self.take()
        if first.kind == "ident" and first.text not in ("true", "false", "nil"):
            if first.text not in self.funcs:
                raise TemplateError(f'function "{first.text}" not defined')
            args: list[Expr] = []
            while (tok := self.peek()) is not None and tok.text not in ("|", ")"):
                args.append(self.operand(self.take()))
            return ("call", first.text, args)
        expr = self.operand(first)
        tok = self.peek()
        if tok is not None and tok.text not in ("|", ")"):
            raise TemplateError(f"can't give argument to non-function {first.text}")
        return expr

    def operand(self, tok: _Tok) -> Expr:
        if tok.kind == "str":
            try:
                return ("lit", yaml.safe_load(tok.text))  # a YAML double-quoted scalar decodes Go's escapes
            except yaml.YAMLError as exc:
                raise TemplateError(f"bad string {tok.text}") from exc
        if tok.kind == "raw":
            return ("lit", tok.text[1:-1])
        if tok.kind == "num":
            text = tok.text
            return ("lit", float(text) if any(c in text for c in ".eE") else int(text))
        if tok.kind == "ident":
            if tok.text in ("true", "false", "nil"):
                return ("lit", {"true": True, "false": False, "nil": None}[tok.text])
            if tok.text not in self.funcs:
                raise TemplateError(f'function "{tok.text}" not defined')
            return ("call", tok.text, [])
        if tok.kind == "field":
            return ("field", [] if tok.text == "." else tok.text[1:].split("."))
        if tok.kind == "var":
            name, *rest = tok.text.split(".")
            return ("var", name, rest)
        if tok.text == "(":
            inner = self.pipeline()
            if self.take().text != ")":
                raise TemplateError("unclosed parenthesis")
            return inner
        raise TemplateError(f"unexpected {tok.text!r}")


# -- statements ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    kind: str  # text | output | assign | if | range
    line: int
    text: str = ""
    expr: Expr = ()
    var: str = ""
    declare: bool = False
    range_vars: tuple[str, ...] = ()
    body: list[_Node] = field(default_factory=list)
    orelse: list[_Node] = field(default_factory=list)


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)


class _Scope:
    def __init__(self, parent: _Scope | None = None) -> None:
        self.vars: dict[str, Any] = {}
        self.parent = parent

    def lookup(self, name: str) -> Any:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return scope.vars[name]
            scope = scope.parent
        raise TemplateError(f"undefined variable: {name}")

    def assign(self, name: str, value: Any) -> None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.vars:
                scope.vars[name] = value
                return
            scope = scope.parent
        raise TemplateError(f"undefined variable: {name}")


class Template:
    """A parsed template; `render(data)` executes it against a mapping (Go's `.`)."""

    def __init__(self, source: str, name: str = "template", *, rng: random.Random | None = None) -> None:
        self.name = name
        self._funcs = _functions(rng or random.Random())
        self._nodes = self._parse(source)

    # -- parsing

    def _err(self, line: int, msg: str) -> TemplateError:
        return TemplateError(f"{self.name}:{line}: {msg}")

    def _parse(self, source: str) -> list[_Node]:
        root: list[_Node] = []
        # stack of (node, which-branch list, opening keyword)
        stack: list[tuple[_Node | None, list[_Node]]] = [(None, root)]
        pos = 0
        pending_trim = False
        for m in _ACTION.finditer(source):
            text = source[pos : m.start()]
            if pending_trim:
                text = text.lstrip()
            if m.group(1):
                text = text.rstrip()
            line = source.count("\n", 0, m.start()) + 1
            if text:
                stack[-1][1].append(_Node("text", line, text=text))
            pos = m.end()
            pending_trim = bool(m.group(3))
            body = m.group(2).strip()
            if body.startswith("/*"):
                if not body.endswith("*/"):
                    raise self._err(line, "unclosed comment")
                continue
            self._parse_action(body, line, stack)
        tail = source[pos:]
        if pending_trim:
            tail = tail.lstrip()
        if tail:
            stack[-1][1].append(_Node("text", 0, text=tail))
        if len(stack) != 1:
            node = stack[-1][0]
            raise self._err(
                node.line if node else 0, f"unclosed {{{{{node.kind if node else '?'}}}}}: missing {{{{end}}}}"
            )
        return root

    def _expr(self, src: str, line: int) -> Expr:
        try:
            parser = _ExprParser(_lex(src), self._funcs)
            expr = parser.pipeline()
            if not parser.done():
                raise TemplateError(f"unexpected {parser.peek().text!r}")  # type: ignore[union-attr]
        except TemplateError as exc:
            raise self._err(line, str(exc)) from None
        return expr

    def _parse_action(self, body: str, line: int, stack: list[tuple[_Node | None, list[_Node]]]) -> None:
        keyword = body.split(None, 1)[0] if body else ""
        rest = body[len(keyword) :].strip()
        if not body:
            raise self._err(line, "empty action")
        if keyword == "if":
            node = _Node("if", line, expr=self._expr(rest, line))
            stack[-1][1].append(node)
            stack.append((node, node.body))
        elif keyword == "range":
            node = _Node("range", line)
            m = re.match(r"^(\$\w+)\s*(?:,\s*(\$\w+)\s*)?:=\s*(.*)$", rest, re.DOTALL)
            if m:
                node.range_vars = tuple(v for v in (m.group(1), m.group(2)) if v)
                rest = m.group(3)
            node.expr = self._expr(rest, line)
            stack[-1][1].append(node)
            stack.append((node, node.body))
        elif keyword == "else":
            owner = stack[-1][0]
            if owner is None or owner.kind not in ("if", "range") or stack[-1][1] is owner.orelse:
                raise self._err(line, "unexpected {{else}}")
            stack.pop()
            if rest.startswith("if ") or rest == "if":
                nested = _Node("if", line, expr=self._expr(rest[2:].strip(), line))
                owner.orelse.append(nested)
                # The nested if shares its owner's {{end}}: mark it so `end` pops both.
                stack.append((owner, owner.orelse))
                stack.append((nested, nested.body))
                nested.declare = True
            else:
                stack.append((owner, owner.orelse))
        elif keyword == "end":
            if len(stack) == 1:
                raise self._err(line, "unexpected {{end}}")
            closed, _ = stack.pop()
            while closed is not None and closed.kind == "if" and closed.declare:
                closed, _ = stack.pop()
        elif keyword in ("with", "define", "template", "block", "break", "continue"):
            raise self._err(line, f"{{{{{keyword}}}}} is not supported")
        else:
            m = re.match(r"^(\$\w+)\s*(:=|=)\s*(.*)$", body, re.DOTALL)
            if m:
                node = _Node(
                    "assign", line, var=m.group(1), declare=m.group(2) == ":=", expr=self._expr(m.group(3), line)
                )
            else:
                node = _Node("output", line, expr=self._expr(body, line))
            stack[-1][1].append(node)

    # -- execution

    def render(self, data: Any = None) -> str:
        out: list[str] = []
        scope = _Scope()
        scope.vars["$"] = data
        self._exec(self._nodes, data, scope, out)
        return "".join(out)

    def _exec(self, nodes: Sequence[_Node], dot: Any, scope: _Scope, out: list[str]) -> None:
        for node in nodes:
            try:
                self._exec_node(node, dot, scope, out)
            except TemplateError as exc:
                if str(exc).startswith(f"{self.name}:"):
                    raise
                raise self._err(node.line, str(exc)) from None

    def _exec_node(self, node: _Node, dot: Any, scope: _Scope, out: list[str]) -> None:
        if node.kind == "text":
            out.append(node.text)
        elif node.kind == "output":
            value = self._eval(node.expr, dot, scope)
            if value is None:
                raise TemplateError(f"no value for {self._describe(node.expr)}")
            out.append(go_format(value))
        elif node.kind == "assign":
            value = self._eval(node.expr, dot, scope)
            if node.declare:
                scope.vars[node.var] = value
            else:
                scope.assign(node.var, value)
        elif node.kind == "if":
            branch = node.body if _truthy(self._eval(node.expr, dot, scope)) else node.orelse
            self._exec(branch, dot, _Scope(scope), out)
        elif node.kind == "range":
            coll = self._eval(node.expr, dot, scope)
            if isinstance(coll, int) and not isinstance(coll, bool):
                items: list[tuple[Any, Any]] = [(i, i) for i in range(coll)]
            elif isinstance(coll, Mapping):
                items = sorted(coll.items(), key=lambda kv: str(kv[0]))
            elif isinstance(coll, list | tuple):
                items = list(enumerate(coll))
            elif coll is None:
                items = []
            else:
                raise TemplateError(f"range can't iterate over {coll!r}")
            if not items:
                self._exec(node.orelse, dot, _Scope(scope), out)
            for key, value in items:
                inner = _Scope(scope)
                if len(node.range_vars) == 1:
                    inner.vars[node.range_vars[0]] = value
                elif len(node.range_vars) == 2:
                    inner.vars[node.range_vars[0]] = key
                    inner.vars[node.range_vars[1]] = value
                self._exec(node.body, value, inner, out)

    @staticmethod
    def _describe(expr: Expr) -> str:
        if expr[0] == "field":
            return "." + ".".join(expr[1])
        if expr[0] == "var":
            return ".".join([expr[1], *expr[2]])
        if expr[0] == "call":
            return expr[1]
        return "expression"

    @staticmethod
    def _walk(value: Any, names: Sequence[str]) -> Any:
        for name in names:
            if value is None:
                return None
            if isinstance(value, Mapping):
                value = value.get(name)
            else:
                raise TemplateError(f"can't evaluate field {name} in {type(value).__name__}")
        return value

    def _eval(self, expr: Expr, dot: Any, scope: _Scope, piped: tuple[Any, ...] = ()) -> Any:
        kind = expr[0]
        if kind == "lit":
            return expr[1]
        if kind == "field":
            return self._walk(dot, expr[1])
        if kind == "var":
            return self._walk(scope.lookup(expr[1]), expr[2])
        if kind == "call":
            args = [self._eval(a, dot, scope) for a in expr[2]]
            args.extend(piped)
            try:
                return self._funcs[expr[1]](*args)
            except TemplateError as exc:
                raise TemplateError(f"{expr[1]}: {exc}") from None
            except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
                raise TemplateError(f"error calling {expr[1]}: {exc}") from None
        if kind == "pipe":
            value = self._eval(expr[1][0], dot, scope)
            for cmd in expr[1][1:]:
                if cmd[0] != "call":
                    raise TemplateError("only functions can follow | in a pipeline")
                value = self._eval(cmd, dot, scope, (value,))
            return value
        raise TemplateError(f"bad expression {expr!r}")


def render(source: str, data: Any = None, *, name: str = "template", rng: random.Random | None = None) -> str:
    """Parse and execute a template in one call."""
    return Template(source, name, rng=rng).render(data)

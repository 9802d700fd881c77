"""Label selectors: the string syntax of k8s.io/apimachinery/pkg/labels and metav1.LabelSelector.

The parser follows the upstream lexer/parser token by token, so the same strings are accepted and
rejected (including `a in ()` meaning the empty value and `in` being usable as a key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kubemark.kube.meta import validate_label_value, validate_qualified_name

# Operators as selection.Operator spells them.
DOES_NOT_EXIST = "!"
EQUALS = "="
DOUBLE_EQUALS = "=="
IN = "in"
NOT_EQUALS = "!="
NOT_IN = "notin"
EXISTS = "exists"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_INT64_RE = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# metav1.LabelSelectorOperator -> selection.Operator
_LABEL_SELECTOR_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


class LabelSelectorError(ValueError):
    """A label selector string or metav1.LabelSelector is malformed."""


def _parse_int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64), None on failure."""
    if not _INT64_RE.fullmatch(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


@dataclass(frozen=True, slots=True)
class Requirement:
    """One `key op values` term; values are kept sorted for a stable string form."""

    key: str
    operator: str
    values: tuple[str, ...]

    def matches(self, labels: dict[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        # Gt / Lt: the label must hold an integer.
        if self.key not in labels or len(self.values) != 1:
            return False
        have = _parse_int64(labels[self.key])
        want = _parse_int64(self.values[0])
        if have is None or want is None:
            return False
        return have > want if op == GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({','.join(self.values)})"
        symbol = {EQUALS: "=", DOUBLE_EQUALS: "==", NOT_EQUALS: "!=", GREATER_THAN: ">", LESS_THAN: "<"}[op]
        return f"{self.key}{symbol}{self.values[0]}"


def new_requirement(key: str, operator: str, values: list[str] | tuple[str, ...] | set[str]) -> Requirement:
    """labels.NewRequirement: validate key, operator arity and values."""
    errs = validate_qualified_name(key) if isinstance(key, str) else ["key must be a string"]
    if errs:
        raise LabelSelectorError(f"key: Invalid value: {key!r}: {'; '.join(errs)}")
    if not all(isinstance(v, str) for v in values):
        raise LabelSelectorError(f"values: Invalid value: {list(values)!r}: values must be strings (key {key!r})")
    vals = sorted(set(values))
    if operator in (IN, NOT_IN):
        if not vals:
            raise LabelSelectorError(
                f"values: Invalid value: for 'in', 'notin' operators, values set can't be empty (key {key!r})"
            )
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            raise LabelSelectorError(
                f"values: Invalid value: exact-match compatibility requires one single value (key {key!r})"
            )
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if vals:
            raise LabelSelectorError(
                f"values: Invalid value: values set must be empty for exists and does not exist (key {key!r})"
            )
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            raise LabelSelectorError(
                f"values: Invalid value: for 'Gt', 'Lt' operators, exactly one value is required (key {key!r})"
            )
        if _parse_int64(vals[0]) is None:
            raise LabelSelectorError(
                f"values[0]: Invalid value: {vals[0]!r}: for 'Gt', 'Lt' operators, the value must be an integer"
            )
    else:
        raise LabelSelectorError(f"operator: Unsupported value: {operator!r}")
    for value in vals:
        value_errs = validate_label_value(value)
        if value_errs:
            raise LabelSelectorError(f"values: Invalid value: {value!r}: {'; '.join(value_errs)}")
    return Requirement(key, operator, tuple(vals))


class Selector:
    """An AND of requirements (sorted by key, as upstream), or the selector that matches nothing."""

    __slots__ = ("_nothing", "requirements")

    def __init__(self, requirements: list[Requirement] | tuple[Requirement, ...] = (), nothing: bool = False):
        self.requirements: tuple[Requirement, ...] = tuple(sorted(requirements, key=lambda r: r.key))
        self._nothing = nothing

    @classmethod
    def everything(cls) -> Selector:
        return cls()

    @classmethod
    def nothing(cls) -> Selector:
        return cls(nothing=True)

    def matches(self, labels: dict[str, str] | None) -> bool:
        if self._nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        """True when the selector matches everything (upstream Selector.Empty)."""
        return not self._nothing and not self.requirements

    @property
    def matches_nothing(self) -> bool:
        return self._nothing

    def exact_values(self, key: str) -> set[str] | None:
        """The finite set of values `key` must take to match, or None when unconstrained that way.

        Lets callers use an index: only objects whose label `key` is in the set can match.
        """
        if self._nothing:
            return set()
        result: set[str] | None = None
        for r in self.requirements:
            if r.key == key and r.operator in (IN, EQUALS, DOUBLE_EQUALS):
                result = set(r.values) if result is None else result & set(r.values)
        return result

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return "Selector(<nothing>)" if self._nothing else f"Selector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Selector):
            return NotImplemented
        return self._nothing == other._nothing and self.requirements == other.requirements

    def __hash__(self) -> int:
        return hash((self._nothing, self.requirements))


# --- lexer -------------------------------------------------------------------------------------

_IDENT, _EOS, _ERROR = "identifier", "end of string", "error"
_SPECIAL_CHARS = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_SYMBOLS = {"!": "!", "!=": "!=", "(": "(", ")": ")", ",": ",", "=": "=", "==": "==", ">": ">", "<": "<"}


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens as (type, literal); keywords `in`/`notin` are typed as themselves."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _WHITESPACE:
            i += 1
            continue
        if ch in _SPECIAL_CHARS:
            two = text[i : i + 2]
            if two in ("!=", "=="):
                tokens.append((two, two))
                i += 2
            else:
                tokens.append((_SYMBOLS[ch], ch))
                i += 1
            continue
        start = i
        while i < n and text[i] not in _WHITESPACE and text[i] not in _SPECIAL_CHARS:
            i += 1
        word = text[start:i]
        tokens.append((word, word) if word in ("in", "notin") else (_IDENT, word))
    tokens.append((_EOS, ""))
    return tokens


class _Parser:
    """Recursive-descent parser mirroring labels.Parser (contexts KeyAndOperator / Values)."""

    def __init__(self, text: str):
        self.tokens = _lex(text)
        self.pos = 0

    def _peek(self, values: bool) -> tuple[str, str]:
        tok, lit = self.tokens[self.pos]
        if values and tok in ("in", "notin"):
            tok = _IDENT
        return tok, lit

    def _next(self, values: bool) -> tuple[str, str]:
        tok = self._peek(values)
        if self.pos < len(self.tokens) - 1:
            self.pos += 1
        return tok

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self._peek(values=True)
            if tok in (_IDENT, "!"):
                requirements.append(self._requirement())
                tok, lit = self._next(values=True)
                if tok == _EOS:
                    return requirements
                if tok == ",":
                    tok2, lit2 = self._peek(values=True)
                    if tok2 not in (_IDENT, "!"):
                        raise LabelSelectorError(f"found '{lit2}', expected: identifier after ','")
                    continue
                raise LabelSelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            if tok == _EOS:
                return requirements
            raise LabelSelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def _requirement(self) -> Requirement:
        operator = ""
        tok, lit = self._next(values=True)
        if tok == "!":
            operator = DOES_NOT_EXIST
            tok, lit = self._next(values=True)
        if tok != _IDENT:
            raise LabelSelectorError(f"found '{lit}', expected: identifier")
        key = lit
        errs = validate_qualified_name(key)
        if errs:
            raise LabelSelectorError(f"key: Invalid value: {key!r}: {'; '.join(errs)}")
        if self._peek(values=True)[0] in (_EOS, ","):
            return new_requirement(key, operator or EXISTS, [])
        if operator == DOES_NOT_EXIST:
            # `!a=b` is not a thing: the unary operator takes no value.
            _, lit = self._peek(values=True)
            raise LabelSelectorError(f"found '{lit}', expected: ',' or 'end of string'")
        tok, lit = self._next(values=False)
        ops = {"in": IN, "notin": NOT_IN, "=": EQUALS, "==": DOUBLE_EQUALS, "!=": NOT_EQUALS}
        ops |= {">": GREATER_THAN, "<": LESS_THAN}
        if tok not in ops:
            raise LabelSelectorError(f"found '{lit}', expected: in, notin, =, ==, !=, gt, lt")
        operator = ops[tok]
        values = self._values() if operator in (IN, NOT_IN) else self._exact_value()
        return new_requirement(key, operator, values)

    def _values(self) -> set[str]:
        tok, lit = self._next(values=True)
        if tok != "(":
            raise LabelSelectorError(f"found '{lit}' expected: '('")
        tok, lit = self._peek(values=True)
        if tok in (_IDENT, ","):
            values = self._identifiers()
            tok, lit = self._next(values=True)
            if tok != ")":
                raise LabelSelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok == ")":
            self._next(values=True)
            return {""}
        raise LabelSelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def _identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self._next(values=True)
            if tok == _IDENT:
                values.add(lit)
                tok2, lit2 = self._peek(values=True)
                if tok2 == ",":
                    continue
                if tok2 == ")":
                    return values
                raise LabelSelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == ",":
                if not values:
                    values.add("")  # "(," starts with an empty value
                tok2, _ = self._peek(values=True)
                if tok2 == ")":
                    values.add("")  # ",)" ends with an empty value
                    return values
                if tok2 == ",":
                    self._next(values=True)
                    values.add("")  # ",," holds an empty value
                continue
            raise LabelSelectorError(f"found '{lit}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        tok, lit = self._peek(values=True)
        if tok in (_EOS, ","):
            return {""}
        tok, lit = self._next(values=True)
        if tok == _IDENT:
            return {lit}
        raise LabelSelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(text: str) -> Selector:
    """labels.Parse: the `labelSelector` query-parameter syntax; "" selects everything."""
    if not isinstance(text, str):
        raise LabelSelectorError(f"label selector must be a string, not {type(text).__name__}")
    try:
        requirements = _Parser(text).parse()
    except LabelSelectorError as exc:
        raise LabelSelectorError(f"unable to parse requirement: {exc}") from None
    return Selector(requirements)


def selector_from_label_selector(sel: dict[str, Any] | None) -> Selector:
    """metav1.LabelSelectorAsSelector: None selects nothing, {} selects everything."""
    if sel is None:
        return Selector.nothing()
    if not isinstance(sel, dict):
        raise LabelSelectorError("label selector must be an object")
    match_labels = sel.get("matchLabels") or {}
    match_expressions = sel.get("matchExpressions") or []
    if not isinstance(match_labels, dict) or not isinstance(match_expressions, list):
        raise LabelSelectorError("matchLabels must be an object and matchExpressions a list")
    if not match_labels and not match_expressions:
        return Selector.everything()
    requirements = [new_requirement(k, EQUALS, [v]) for k, v in match_labels.items()]
    for expr in match_expressions:
        if not isinstance(expr, dict):
            raise LabelSelectorError("matchExpressions items must be objects")
        op = expr.get("operator")
        if op not in _LABEL_SELECTOR_OPS:
            raise LabelSelectorError(f'"{op}" is not a valid label selector operator')
        requirements.append(
            new_requirement(expr.get("key", ""), _LABEL_SELECTOR_OPS[op], list(expr.get("values") or []))
        )
    return Selector(requirements)

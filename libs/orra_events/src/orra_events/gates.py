r"""Approval gates: the small, safe condition language a service declares at registration.

A service registered with ``approval_when="amount > 1000"`` (or ``requires_approval=True``,
the condition ``true``) has each of its tasks held for a person's approval when the
condition holds on the task's resolved input. The grammar and its evaluator are stated
once, here: the SDKs validate a condition at registration with :func:`parse_gate`, the
planner copies it into the plan (``PlanTask.gate``) and the dispatcher decides with
:func:`needs_approval`. Nothing is ever handed to ``eval``.

Grammar (keywords are lower case; whitespace between tokens is free)::

    condition  := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := operand (("==" | "!=" | "<" | "<=" | ">" | ">=") operand)?
    operand    := literal | path | "(" condition ")"
    literal    := number | string | "true" | "false" | "null"
    number     := -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    string     := '...' | "..."   (a backslash escapes the next character)
    path       := name ("." (name | index))*     name := [A-Za-z_][A-Za-z0-9_]*
                                                 index := 0|[1-9][0-9]*

Semantics: a path reads the task's input (``customer.tier``, ``items.0.price``); a path the
input lacks is ``null``. ``==`` and ``!=`` compare JSON values (``1 == 1.0``, ``true != 1``).
``<``, ``<=``, ``>``, ``>=`` compare two numbers or two strings; ``and``, ``or`` and ``not``
take booleans (and short-circuit); the whole condition must be a boolean. Anything else
(``amount > 1000`` when ``amount`` is missing or a string) is an evaluation error, and
:func:`needs_approval` holds the task: a gate fails closed.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from orra_events.errors import OrraEventsError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ALWAYS",
    "MAX_GATE_LENGTH",
    "And",
    "Compare",
    "Gate",
    "GateEvaluationError",
    "GateSyntaxError",
    "Literal_",
    "Not",
    "Or",
    "Path",
    "evaluate",
    "format_gate",
    "needs_approval",
    "parse_gate",
]

MAX_GATE_LENGTH = 1000
"""Longest condition accepted, in characters."""
MAX_DEPTH = 32
"""Deepest nesting of ``not`` and parentheses accepted."""
ALWAYS = "true"
"""The condition of a service registered with ``requires_approval=True``."""

Op = Literal["==", "!=", "<", "<=", ">", ">="]


class GateSyntaxError(OrraEventsError, ValueError):
    """A condition does not follow the grammar; the message names the position."""


class GateEvaluationError(OrraEventsError, ValueError):
    """A condition could not be evaluated on an input (types that do not compare)."""


@dataclass(frozen=True, slots=True)
class Literal_:  # noqa: N801 (``Literal`` is typing's)
    """A JSON literal: a number, a string, ``true``, ``false`` or ``null``."""

    value: bool | int | float | str | None


@dataclass(frozen=True, slots=True)
class Path:
    """A field of the input: member names and list indexes."""

    parts: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right``."""

    op: Op
    left: Gate
    right: Gate


@dataclass(frozen=True, slots=True)
class Not:
    """``not operand``."""

    operand: Gate


@dataclass(frozen=True, slots=True)
class And:
    """``left and right``."""

    left: Gate
    right: Gate


@dataclass(frozen=True, slots=True)
class Or:
    """``left or right``."""

    left: Gate
    right: Gate


Gate = Literal_ | Path | Compare | Not | And | Or
"""A parsed condition (its syntax tree)."""

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<num>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
    |(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    |(?P<op>==|!=|<=|>=|<|>)
    |(?P<paren>[()])
    |(?P<path>[A-Za-z_][A-Za-z0-9_]*(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|0|[1-9][0-9]*))*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "true", "false", "null"}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    end = len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            start = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise GateSyntaxError(f"unexpected {text[start]!r} at position {start + 1}")
        kind = match.lastgroup
        out.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return out


class _Parser:
    __slots__ = ("depth", "pos", "tokens")

    def __init__(self, tokens: list[tuple[str, str, int]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "path" and token[1] == word:
            self.pos += 1
            return True
        return False

    def condition(self) -> Gate:
        node = self.conjunction()
        while self.keyword("or"):
            node = Or(node, self.conjunction())
        return node

    def conjunction(self) -> Gate:
        node = self.negation()
        while self.keyword("and"):
            node = And(node, self.negation())
        return node

    def negation(self) -> Gate:
        if self.keyword("not"):
            self.enter()
            node = Not(self.negation())
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Gate:
        left = self.operand()
        token = self.peek()
        if token is not None and token[0] == "op":
            self.pos += 1
            op: Op = token[1]  # type: ignore[assignment]  # the regex admits only Op
            return Compare(op, left, self.operand())
        return left

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise GateSyntaxError(f"nested deeper than {MAX_DEPTH} levels")

    def operand(self) -> Gate:
        token = self.peek()
        if token is None:
            raise GateSyntaxError("unexpected end of the condition: a value or a field is missing")
        kind, text, at = token
        self.pos += 1
        if kind == "num":
            number = float(text)
            if "." in text or "e" in text or "E" in text:
                return Literal_(number)
            return Literal_(int(text))
        if kind == "str":
            return Literal_(_ESCAPE.sub(r"\1", text[1:-1]))
        if kind == "paren" and text == "(":
            self.enter()
            node = self.condition()
            closing = self.peek()
            if closing is None or closing[1] != ")":
                where = "the end" if closing is None else f"position {closing[2] + 1}"
                raise GateSyntaxError(f"'(' at position {at + 1} is not closed (at {where})")
            self.pos += 1
            self.depth -= 1
            return node
        if kind == "path":
            if text in ("true", "false"):
                return Literal_(text == "true")
            if text == "null":
                return Literal_(None)
            head = text.split(".", 1)[0]
            if head in _KEYWORDS:
                raise GateSyntaxError(f"unexpected {head!r} at position {at + 1}")
            return Path(tuple(int(p) if p[0].isdigit() else p for p in text.split(".")))
        raise GateSyntaxError(f"unexpected {text!r} at position {at + 1}")


def parse_gate(text: str) -> Gate:
    """Parse a condition.

    Raises:
        GateSyntaxError: the condition is empty, too long, nested too deep, or does not
            follow the grammar; the message names what and where.
    """
    if not isinstance(text, str):
        raise GateSyntaxError(f"a condition is a string, not {type(text).__name__}")
    if len(text) > MAX_GATE_LENGTH:
        raise GateSyntaxError(f"longer than {MAX_GATE_LENGTH} characters")
    tokens = _tokens(text)
    if not tokens:
        raise GateSyntaxError("empty condition")
    parser = _Parser(tokens)
    node = parser.condition()
    extra = parser.peek()
    if extra is not None:
        raise GateSyntaxError(f"unexpected {extra[1]!r} at position {extra[2] + 1}")
    return node


def _lookup(data: Any, parts: tuple[str | int, ...]) -> Any:
    value = data
    for part in parts:
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                return None
            value = value[part]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(left: Any, right: Any) -> bool:
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    if type(left) is not type(right):
        return False
    return bool(left == right)


def _value(node: Gate, data: Mapping[str, Any]) -> Any:
    if isinstance(node, Literal_):
        return node.value
    if isinstance(node, Path):
        return _lookup(data, node.parts)
    if isinstance(node, Not):
        return not _boolean(node.operand, data, "not")
    if isinstance(node, And):
        return _boolean(node.left, data, "and") and _boolean(node.right, data, "and")
    if isinstance(node, Or):
        return _boolean(node.left, data, "or") or _boolean(node.right, data, "or")
    left, right = _value(node.left, data), _value(node.right, data)
    if node.op == "==":
        return _equal(left, right)
    if node.op == "!=":
        return not _equal(left, right)
    if not (
        (_is_number(left) and _is_number(right))
        or (isinstance(left, str) and isinstance(right, str))
    ):
        raise GateEvaluationError(
            f"{format_gate(node)}: cannot compare {_kind(left)} with {_kind(right)}"
        )
    if node.op == "<":
        return left < right
    if node.op == "<=":
        return left <= right
    if node.op == ">":
        return left > right
    return left >= right


def _kind(value: Any) -> str:
    if value is None:
        return "null (missing)"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _boolean(node: Gate, data: Mapping[str, Any], where: str) -> bool:
    value = _value(node, data)
    if not isinstance(value, bool):
        raise GateEvaluationError(f"{where} needs a boolean, got {_kind(value)}")
    return value


def evaluate(gate: Gate, data: Mapping[str, Any]) -> bool:
    """Evaluate a parsed condition on a task's input.

    Raises:
        GateEvaluationError: values that do not compare, or a result that is not a boolean.
    """
    return _boolean(gate, data, "a condition")


def _literal_text(value: bool | int | float | str | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return json.dumps(value)


def format_gate(node: Gate) -> str:
    """The canonical text of a condition (fully parenthesised); it parses back to ``node``."""
    if isinstance(node, Literal_):
        return _literal_text(node.value)
    if isinstance(node, Path):
        return ".".join(str(p) for p in node.parts)
    if isinstance(node, Compare):
        return f"({format_gate(node.left)} {node.op} {format_gate(node.right)})"
    if isinstance(node, Not):
        return f"(not {format_gate(node.operand)})"
    word = "and" if isinstance(node, And) else "or"
    return f"({format_gate(node.left)} {word} {format_gate(node.right)})"


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> Gate:
    return parse_gate(text)


def needs_approval(condition: str, data: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether a task whose service declares ``condition`` must wait for approval.

    Fails closed: a condition that cannot be parsed or evaluated holds the task.

    Returns:
        Whether to hold it, and why (for ``task.approval_requested``).
    """
    try:
        held = evaluate(_parsed(condition), data)
    except (GateSyntaxError, GateEvaluationError) as exc:
        return True, f"approval condition {condition!r} could not be evaluated ({exc})"
    if condition.strip() == ALWAYS:
        return held, "the service requires approval for every task"
    return held, f"approval condition {condition!r} holds"

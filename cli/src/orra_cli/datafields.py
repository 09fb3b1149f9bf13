"""Parse ``-d field:value`` arguments of ``orra verify run``.

A value that parses as JSON (``[{"id":"PROD789","quantity":2}]``, ``2``, ``true``) is sent
as JSON, anything else as a string. Two shell accidents are undone, so that the seed's
commands work as typed:

* a shell removes the double quotes of an unquoted JSON value, leaving
  ``[{id:PROD789,quantity:2}]``: flow collections with bare words are read leniently;
* bash brace-expands ``items:[{"id":"PROD789","quantity":2}]`` into two words,
  ``items:[id:PROD789]`` and ``items:[quantity:2]``; :func:`merge_brace_expansion` puts
  them back together.
"""

from __future__ import annotations

import json
import math
import os.path
from typing import Any

from orra_cli.errors import UsageError

__all__ = ["merge_brace_expansion", "parse_data_field", "parse_data_fields", "parse_value"]

_OPEN = "[{,"
_CLOSE = "]},"


def _no_constants(name: str) -> Any:
    raise ValueError(name)


def _strict_json(text: str) -> Any:
    value = json.loads(text, parse_constant=_no_constants)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(text)
    return value


class _Lenient:
    """A parser of JSON flow collections whose strings may be bare words."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> Any:
        value = self._value()
        self._ws()
        if self.pos != len(self.text):
            raise ValueError("trailing text")
        return value

    def _ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _peek(self) -> str:
        self._ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise ValueError(f"expected {char!r} at {self.pos}")
        self.pos += 1

    def _value(self) -> Any:
        char = self._peek()
        if char == "[":
            return self._array()
        if char == "{":
            return self._object()
        if char == '"':
            return self._quoted()
        return self._bare(stops=",]}")

    def _array(self) -> list[Any]:
        self._expect("[")
        items: list[Any] = []
        if self._peek() == "]":
            self.pos += 1
            return items
        while True:
            items.append(self._value())
            if self._peek() == ",":
                self.pos += 1
                continue
            self._expect("]")
            return items

    def _object(self) -> dict[str, Any]:
        self._expect("{")
        obj: dict[str, Any] = {}
        if self._peek() == "}":
            self.pos += 1
            return obj
        while True:
            key = self._quoted() if self._peek() == '"' else self._bare(stops=":,]}", raw=True)
            self._expect(":")
            obj[str(key)] = self._value()
            if self._peek() == ",":
                self.pos += 1
                continue
            self._expect("}")
            return obj

    def _quoted(self) -> str:
        decoder = json.JSONDecoder()
        value, end = decoder.raw_decode(self.text, self.pos)
        self.pos = end
        return str(value)

    def _bare(self, *, stops: str, raw: bool = False) -> Any:
        self._ws()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            self.pos += 1
        word = self.text[start : self.pos].strip()
        if not word or any(c in word for c in '[{"'):
            raise ValueError(f"bad word at {start}")
        if raw:
            return word
        try:
            return _strict_json(word)
        except ValueError:
            return word


def parse_value(text: str) -> Any:
    """The JSON value ``text`` holds, or ``text`` itself when it is not JSON."""
    try:
        return _strict_json(text)
    except ValueError:
        pass
    stripped = text.strip()
    if stripped[:1] in "[{" and stripped[-1:] in "]}":
        try:
            return _Lenient(stripped).parse()
        except (ValueError, IndexError):
            return text
    return text


def parse_data_field(raw: str) -> dict[str, Any]:
    """Parse one ``field:value`` into ``{"field": ..., "value": ...}``.

    Raises:
        UsageError: there is no ``:`` or the field name is empty.
    """
    field, sep, value = raw.partition(":")
    field = field.strip()
    if not sep or not field:
        raise UsageError(
            f"-d expects field:value, got {raw!r}: for example -d orderId:ORD123 "
            '(quote values with spaces or JSON: -d \'items:[{"id":"P1"}]\')'
        )
    return {"field": field, "value": parse_value(value)}


def _common_prefix(words: list[str]) -> str:
    prefix = os.path.commonprefix(  # noqa: RUF071
        words
    )
    # the brace started right after a structural character
    cut = max(prefix.rfind(c) for c in _OPEN)
    return prefix[: cut + 1] if cut >= 0 else ""


def _common_suffix(words: list[str]) -> str:
    suffix = os.path.commonprefix(  # noqa: RUF071
        [w[::-1] for w in words]
    )[::-1]
    # the brace ended right before a structural character
    cuts = [i for i, c in enumerate(suffix) if c in _CLOSE]
    return suffix[cuts[0] :] if cuts else ""


def merge_brace_expansion(data: list[str], extra: list[str]) -> list[str]:
    """Undo bash's brace expansion of unquoted ``-d field:{...,...}`` values.

    Args:
        data: The ``-d`` values, in order.
        extra: Stray positional words that followed the action.

    Returns:
        The ``-d`` values with the stray words folded back into the value they came from.

    Raises:
        UsageError: a stray word does not continue any ``-d`` value.
    """
    merged = list(data)
    groups: dict[int, list[str]] = {}
    for word in extra:
        field, sep, _ = word.partition(":")
        index = next(
            (i for i in range(len(data) - 1, -1, -1) if data[i].partition(":")[0] == field),
            None,
        )
        if not sep or index is None:
            raise UsageError(
                f"unexpected argument {word!r}: quote the action and any value with spaces, "
                'braces or quotes, e.g. orra verify run "Process order" '
                '-d \'items:[{"id":"P1","quantity":2}]\''
            )
        groups.setdefault(index, [data[index]]).append(word)
    for index, words in groups.items():
        prefix, suffix = _common_prefix(words), _common_suffix(words)
        if not prefix or not suffix:
            raise UsageError(
                f"cannot read -d {data[index]!r} followed by {words[1:]!r}: quote the value, "
                'e.g. -d \'items:[{"id":"P1","quantity":2}]\''
            )
        middles = [w[len(prefix) : len(w) - len(suffix)] for w in words]
        merged[index] = prefix + "{" + ",".join(middles) + "}" + suffix
    return merged


def parse_data_fields(data: list[str], extra: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse every ``-d`` value (after undoing brace expansion) into data fields."""
    return [parse_data_field(raw) for raw in merge_brace_expansion(data, extra or [])]

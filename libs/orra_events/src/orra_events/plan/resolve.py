"""Resolving references: substituting earlier tasks' outputs into a task's input."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from orra_events.errors import UnresolvedReference
from orra_events.plan.grammar import (
    Reference,
    _parse,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["resolve", "value_at"]


_KINDS: Final = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return _KINDS.get(type(value)) or ("a number" if isinstance(value, int | float) else "a value")


def value_at(output: Any, ref: Reference) -> Any:
    """The value at ``ref``'s path in ``output`` (the referenced task's output).

    Raises:
        UnresolvedReference: the path does not exist; the message says where it stops.
    """
    current = output
    for depth, segment in enumerate(ref.path):
        if isinstance(segment, int):
            if isinstance(current, list) and segment < len(current):
                current = current[segment]
                continue
        elif isinstance(current, dict) and segment in current:
            current = current[segment]
            continue
        raise UnresolvedReference(_missing(ref, depth, current)) from None
    return current


def _missing(ref: Reference, depth: int, current: Any) -> str:
    segment = ref.path[depth]
    within = ".".join(map(str, ref.path[:depth]))
    place = f"{within!r} of task {ref.task!r}'s output" if within else f"task {ref.task!r}'s output"
    if isinstance(segment, int):
        if isinstance(current, list):
            return f"{ref}: {place} has {len(current)} element(s), so no index {segment}"
        return f"{ref}: {place} is {_kind(current)}, not a list, so it has no index {segment}"
    if isinstance(current, dict):
        names = sorted(map(str, current))
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        return f"{ref}: {place} has no field {segment!r} (it has: {shown or 'none'})"
    return f"{ref}: {place} is {_kind(current)}, not an object, so it has no field {segment!r}"


def _resolve_text(text: str, outputs: Mapping[str, Mapping[str, Any] | None]) -> Any:
    if text.startswith("$$"):
        return text[1:]
    ref = _parse(text)
    if ref is None:
        return text
    if ref.task not in outputs:
        raise UnresolvedReference(f"{text}: the plan has no task {ref.task!r}")
    output = outputs[ref.task]
    if output is None:
        raise UnresolvedReference(f"{text}: task {ref.task!r} has not completed")
    return value_at(output, ref)


def resolve(value: Any, outputs: Mapping[str, Mapping[str, Any] | None]) -> Any:
    """A task's input with every reference replaced by the value it stands for.

    Escaped literals lose their escape; other values are kept. The input is not changed
    (a new value is built).

    Args:
        value: A task's input, or any JSON value within it.
        outputs: The output of every task of the plan, by id (``None``: not completed).

    Raises:
        UnresolvedReference: a reference names no task of ``outputs``, a task that has not
            completed, or a path its output does not have.
    """
    if isinstance(value, str):
        return _resolve_text(value, outputs) if value.startswith("$") else value
    if isinstance(value, dict):
        return {k: resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, outputs) for v in value]
    return value

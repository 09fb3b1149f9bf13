"""The reference grammar: patterns, :class:`Reference`, escaping, and dependencies."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from orra_events.events import PlanTask

__all__ = [
    "REFERENCE_JSON_PATTERN",
    "REFERENCE_PATTERN",
    "TASK_ID_PATTERN",
    "Reference",
    "Segment",
    "dependencies",
    "dependency_levels",
    "escape",
    "find_references",
    "parallel_groups",
    "parse_reference",
    "unescape",
]


_TASK: Final = r"[A-Za-z_][A-Za-z0-9_-]{0,63}"
_NAME: Final = r"[A-Za-z_][A-Za-z0-9_-]*"
_INDEX: Final = r"0|[1-9][0-9]*"

TASK_ID_PATTERN: Final = re.compile(rf"^{_TASK}$")
"""What a task id may look like (it is part of event ids and idempotency keys)."""

REFERENCE_JSON_PATTERN: Final = rf"^\$({_TASK})\.({_NAME}(\.({_NAME}|{_INDEX}))*)$"
"""The reference grammar as a regular expression that JSON Schema (ECMA 262) and Python
read alike (plain groups only, for the strictest dialects); the LLM planner's structured
output uses it as a ``pattern``."""

REFERENCE_PATTERN: Final = re.compile(REFERENCE_JSON_PATTERN)
"""A reference (use with ``fullmatch``): group 1 is the task id, group 2 the dotted path."""

_STARTS_LIKE_REFERENCE: Final = re.compile(rf"\$({_TASK})[.\[]")
"""``$``, something shaped like a task id, then ``.`` or ``[``: a reference or a near miss."""

_BRACKETS: Final = re.compile(rf"\[({_INDEX})\]")
"""A list index written ``[0]``, as a mistyped reference may have it."""

Segment = str | int
"""A path segment: a name (``str``) or a list index (``int``)."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference to a value of another task's output.

    Attributes:
        task: The referenced task id.
        path: The segments after it: the output field first, then names and list indexes.
    """

    task: str
    path: tuple[Segment, ...]

    @property
    def field(self) -> str:
        """The referenced output field (the first segment)."""
        return str(self.path[0])

    def __str__(self) -> str:
        return "$" + ".".join([self.task, *map(str, self.path)])


@lru_cache(maxsize=4096)
def _parse(text: str) -> Reference | None:
    match = REFERENCE_PATTERN.fullmatch(text)
    if match is None:
        return None
    path = tuple(int(s) if s[0].isdigit() else s for s in match.group(2).split("."))
    return Reference(match.group(1), path)


def parse_reference(value: Any) -> Reference | None:
    """The reference ``value`` is, or ``None`` when it is anything else (a literal)."""
    if not isinstance(value, str) or not value.startswith("$") or value.startswith("$$"):
        return None
    return _parse(value)


def escape(value: Any) -> Any:
    """``value`` written so that a plan holds it as a literal (lists and objects too).

    A string that starts with ``$$``, or with ``$`` and the shape of a reference
    (``"$BRK.B"``), gets one more ``$``; anything else is returned as it is. A planner
    applies it to every value it copies from outside (the action's data) into an input.
    """
    if isinstance(value, str):
        if value.startswith("$") and (
            value.startswith("$$") or _STARTS_LIKE_REFERENCE.match(value) is not None
        ):
            return "$" + value
        return value
    if isinstance(value, Mapping):
        return {k: escape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escape(v) for v in value]
    return value


def unescape(value: Any) -> Any:
    """The inverse of :func:`escape`: what a literal value stands for (lists and objects too).

    Strings that start with ``$$`` lose their first ``$``; references are not resolved
    (use :func:`resolve` for a task's input).
    """
    if isinstance(value, str):
        return value[1:] if value.startswith("$$") else value
    if isinstance(value, Mapping):
        return {k: unescape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unescape(v) for v in value]
    return value


def _dollar_strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """``(location, text)`` of every string starting with a single ``$``, in document order."""
    if isinstance(value, str):
        if value.startswith("$") and not value.startswith("$$"):
            yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _dollar_strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _dollar_strings(item, f"{where}[{index}]")


def find_references(value: Any, where: str = "") -> Iterator[tuple[str, Reference]]:
    """Every reference in an input value, in document order, searching lists and objects.

    Yields:
        ``(location, reference)``; the location is where the reference sits in the value
        (``inStock``, ``items[0].id``), prefixed by ``where``.
    """
    for location, text in _dollar_strings(value, where):
        ref = _parse(text)
        if ref is not None:
            yield location, ref


def _texts(value: Any, out: list[str] | None = None) -> list[str]:
    """Every string in an input (object or list) that starts with a single ``$``.

    The fast walk of the hot paths: no locations, no generator.
    """
    if out is None:
        out = []
    if not isinstance(value, dict | list):
        return out
    for item in value.values() if isinstance(value, dict) else value:
        if isinstance(item, str):
            if item.startswith("$") and not item.startswith("$$"):
                out.append(item)
        elif isinstance(item, dict | list):
            _texts(item, out)
    return out


def dependencies(tasks: Sequence[PlanTask]) -> dict[str, list[str]]:
    """Task id → ids of the other tasks of the plan that its input references, in plan order.

    References to unknown tasks and to the task itself are left out (the checks report
    them, and duplicate ids, whose dependencies are merged here).
    """
    position: dict[str, int] | None = None
    out: dict[str, list[str]] = {}
    for task in tasks:
        texts = _texts(task.input)
        if not texts:
            out.setdefault(task.id, [])
            continue
        if position is None:
            position = {t.id: i for i, t in enumerate(tasks)}
        found = {
            ref.task
            for text in texts
            if (ref := _parse(text)) is not None and ref.task in position and ref.task != task.id
        }
        if task.id in out:  # a duplicate id (reported by the checks): merge
            found.update(out[task.id])
        out[task.id] = sorted(found, key=position.__getitem__) if len(found) > 1 else [*found]
    return out


def dependency_levels(
    deps: Mapping[str, Collection[str]], order: Sequence[str] | None = None
) -> tuple[list[list[str]], list[str]]:
    """Group nodes by dependency level (Kahn's algorithm, one layer at a time).

    Args:
        deps: Node → the nodes it depends on (nodes not in ``deps`` are ignored).
        order: Order of nodes inside a level; the mapping's order by default.

    Returns:
        The levels (level 0 depends on nothing) and the nodes on or behind a cycle, which
        get no level.
    """
    order = list(order) if order is not None else list(deps)
    position = {node: i for i, node in enumerate(order)}
    remaining = {node: set(d) & deps.keys() for node, d in deps.items()}
    levels: list[list[str]] = []
    placed: set[str] = set()
    while remaining:
        ready = [node for node, d in remaining.items() if d <= placed]
        if not ready:
            break
        ready.sort(key=lambda node: position.get(node, len(position)))
        levels.append(ready)
        placed.update(ready)
        for node in ready:
            del remaining[node]
    blocked = sorted(remaining, key=lambda node: position.get(node, len(position)))
    return levels, blocked


def parallel_groups(tasks: Sequence[PlanTask]) -> list[list[str]]:
    """The plan's parallel groups: the dependency levels of its tasks, in plan order.

    Tasks on or behind a cycle are left out (:func:`check_tasks` reports the cycle).
    """
    levels, _ = dependency_levels(dependencies(tasks), [task.id for task in tasks])
    return levels

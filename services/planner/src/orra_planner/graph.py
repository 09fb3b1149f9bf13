"""The task graph of a plan: ``$task.field`` references, dependencies, parallel groups.

A reference is a string input value that is *exactly* ``$<task id>.<field>``, found
anywhere in a task's input, including inside nested lists and objects. Task ids and
field names start with a letter or ``_``, so a literal such as ``"$5.00"`` is never taken
for a reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from orra_events import PlanTask

__all__ = [
    "REFERENCE_PATTERN",
    "TASK_ID_PATTERN",
    "Reference",
    "dependencies",
    "dependency_levels",
    "find_references",
    "parallel_groups",
    "parse_reference",
]

TASK_ID_PATTERN: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
"""What a task id may look like (it becomes part of subjects and idempotency keys)."""

REFERENCE_PATTERN: Final = re.compile(
    r"^\$(?P<task>[A-Za-z_][A-Za-z0-9_-]{0,63})\.(?P<field>[A-Za-z_][A-Za-z0-9_-]*)$"
)
"""A reference to an output field of another task: ``$payment.paymentStatus``."""


@dataclass(frozen=True)
class Reference:
    """A ``$task.field`` reference found in a task's input.

    Attributes:
        task: The referenced task id.
        field: The referenced output field.
        path: Where it was found in the input (``inStock``, ``items[0].id``).
    """

    task: str
    field: str
    path: str

    def __str__(self) -> str:
        return f"${self.task}.{self.field}"


def parse_reference(value: Any, path: str = "") -> Reference | None:
    """The reference ``value`` is, or ``None`` when it is a plain value."""
    if not isinstance(value, str):
        return None
    match = REFERENCE_PATTERN.fullmatch(value)
    if match is None:
        return None
    return Reference(match["task"], match["field"], path)


def find_references(value: Any, path: str = "") -> Iterator[Reference]:
    """Every reference in an input value, in document order, recursing into containers."""
    if isinstance(value, str):
        ref = parse_reference(value, path)
        if ref is not None:
            yield ref
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from find_references(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from find_references(item, f"{path}[{index}]")


def dependencies(tasks: Sequence[PlanTask]) -> dict[str, set[str]]:
    """Task id → ids of the known tasks it references (unknown ones are left out)."""
    known = {task.id for task in tasks}
    return {
        task.id: {ref.task for ref in find_references(task.input) if ref.task in known}
        for task in tasks
    }


def dependency_levels(
    deps: Mapping[str, set[str]], order: Sequence[str] | None = None
) -> tuple[list[list[str]], list[str]]:
    """Group nodes by dependency level (Kahn's algorithm, one layer at a time).

    Args:
        deps: Node → the nodes it depends on.
        order: Order of nodes inside a level; the mapping's order by default.

    Returns:
        The levels (level 0 depends on nothing) and the nodes on or behind a cycle,
        which get no level.
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

    Tasks on a cycle are left out; :func:`orra_planner.validation.validate_plan` reports
    them as an error.
    """
    levels, _ = dependency_levels(dependencies(tasks), [task.id for task in tasks])
    return levels

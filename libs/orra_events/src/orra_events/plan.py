"""The plan grammar: references, dependencies, parallel groups and structural checks.

The one definition of how a plan's tasks refer to each other. The planner (validation and
strategies), the dispatcher (refusal of a plan, substitution of outputs), the read-model
projection (``dependsOn``, which the gateway and the CLI show) all import it from here. Pure:
no I/O.

**Grammar.** A string anywhere in a task's input (also nested in lists and objects; never an
object key) is exactly one of:

* a **reference** when the *whole* string matches::

      reference = "$" task "." name { "." segment }
      task      = [A-Za-z_][A-Za-z0-9_-]{0,63}        (TASK_ID_PATTERN, a task id)
      segment   = name | index
      name      = [A-Za-z_][A-Za-z0-9_-]*            (an object member)
      index     = "0" | [1-9][0-9]*                   (a list position, from 0)

  It stands for the value at that path of the named task's output, with its JSON type:
  ``"$payment.status"`` is the ``status`` field of task ``payment``'s output,
  ``"$payment.items.0.id"`` the ``id`` of the first element of its ``items`` list. A name
  selects a member of an object and an index an element of a list, nothing else.
* an **escaped literal** when it starts with ``$$``: the text without its first ``$``
  (``"$$BRK.B"`` is the text ``"$BRK.B"``). :func:`escape` writes one.
* a **literal** otherwise, passed on unchanged: ``"$5.00"``, ``"$ 10"``, ``"$payment"`` (no
  field), ``"paid: $payment.status"`` (not the whole string).

In a plan, a literal that starts like a reference to one of the plan's tasks (``$``, the
task's id, then ``.`` or ``[``) but does not match, such as ``"$payment.items[0].id"``, is a
``malformed_reference``: a mistyped reference is refused, never sent on as text.

**Structure.** :func:`check_tasks` (a planner's candidate) and :func:`check_plan` (a plan
with its groups) return typed :class:`PlanIssue` values; :func:`resolve` substitutes outputs.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from orra_events.errors import UnresolvedReference

if TYPE_CHECKING:
    from orra_events.events import Plan, PlanTask

__all__ = [
    "REFERENCE_JSON_PATTERN",
    "REFERENCE_PATTERN",
    "TASK_ID_PATTERN",
    "IssueKind",
    "PlanAnalysis",
    "PlanIssue",
    "Reference",
    "Segment",
    "UnresolvedReference",
    "analyse_plan",
    "check_plan",
    "check_tasks",
    "dependencies",
    "dependency_levels",
    "escape",
    "find_references",
    "parallel_groups",
    "parse_reference",
    "resolve",
    "unescape",
    "value_at",
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


# --- resolving references ------------------------------------------------------------------


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


# --- structural checks ---------------------------------------------------------------------


class IssueKind(StrEnum):
    """The kinds of structural problems of a plan (the planner's issue codes reuse them)."""

    BAD_TASK_ID = "bad_task_id"
    DUPLICATE_TASK_ID = "duplicate_task_id"
    MALFORMED_REFERENCE = "malformed_reference"
    UNKNOWN_REFERENCE = "unknown_reference"
    SELF_REFERENCE = "self_reference"
    FORWARD_REFERENCE = "forward_reference"
    CYCLE = "cycle"
    BAD_GROUPS = "bad_groups"
    GROUPS_NOT_LEVELS = "groups_not_levels"


@dataclass(frozen=True, slots=True)
class PlanIssue:
    """One structural problem of a plan.

    Attributes:
        kind: Its kind.
        message: A sentence naming the task and the input location at fault.
        task: The task it concerns, if one.
        field: Where in that task's input (``inStock``, ``items[0].id``), if somewhere.
    """

    kind: IssueKind
    message: str
    task: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message}"


@lru_cache(maxsize=4096)
def _valid_id(task_id: str) -> bool:
    return TASK_ID_PATTERN.fullmatch(task_id) is not None


def _id_issues(tasks: Sequence[PlanTask]) -> list[PlanIssue]:
    issues: list[PlanIssue] = []
    seen: set[str] = set()
    for task in tasks:
        if not _valid_id(task.id):
            issues.append(
                PlanIssue(
                    IssueKind.BAD_TASK_ID,
                    f"task id {task.id!r} must start with a letter or '_' and use only "
                    "letters, digits, '_' or '-' (at most 64)",
                    task=task.id,
                )
            )
        if task.id in seen:
            issues.append(
                PlanIssue(
                    IssueKind.DUPLICATE_TASK_ID,
                    f"task id {task.id!r} is used by more than one task",
                    task=task.id,
                )
            )
        seen.add(task.id)
    return issues


def _reference_issues(
    task: PlanTask, known: Collection[str], rank: Mapping[str, int], later: str
) -> Iterator[PlanIssue]:
    """The issues of one task's ``$`` strings, with their locations (the slow path).

    ``known`` holds the plan's task ids; ``rank`` orders tasks (smaller is earlier), and a
    reference from or to a task without a rank is not ordered (that task is reported).
    """
    own = rank.get(task.id)
    for where, text in _dollar_strings(task.input):
        ref = _parse(text)
        if ref is None:
            near = _STARTS_LIKE_REFERENCE.match(text)
            if near is not None and near.group(1) in known:
                fixed = _BRACKETS.sub(r".\1", text)
                hint = f" (did you mean {fixed}?)" if _parse(fixed) is not None else ""
                yield PlanIssue(
                    IssueKind.MALFORMED_REFERENCE,
                    f"task {task.id!r}: input {where!r} is {text!r}, which looks like a "
                    f"reference to task {near.group(1)!r} but is not one{hint}: a reference is "
                    "$<task>.<field> followed by .<field> or .<list index> segments "
                    "(such as $payment.items.0.id); to send this text as it is, start it "
                    "with $$",
                    task=task.id,
                    field=where,
                )
            continue
        prefix = f"task {task.id!r}: input {where!r} refers to {ref}"
        if ref.task == task.id:
            kind, tail = IssueKind.SELF_REFERENCE, ", which is the task itself"
        elif ref.task not in known:
            kind, tail = IssueKind.UNKNOWN_REFERENCE, f", but there is no task {ref.task!r}"
        elif own is not None and rank.get(ref.task, -1) >= own:
            kind, tail = IssueKind.FORWARD_REFERENCE, f", which is {later}"
        else:
            continue
        if kind is not IssueKind.UNKNOWN_REFERENCE:
            tail += "; a reference must name an earlier task"
        yield PlanIssue(kind, prefix + tail, task=task.id, field=where)


def _analyse(
    tasks: Sequence[PlanTask], rank: Mapping[str, int], later: str
) -> tuple[list[PlanIssue], dict[str, list[str]]]:
    """Reference issues and dependencies of every task, in one walk of each input."""
    known = {task.id for task in tasks}
    position = {task.id: i for i, task in enumerate(tasks)}
    issues: list[PlanIssue] = []
    deps: dict[str, list[str]] = {}
    for task in tasks:
        texts = _texts(task.input)
        if not texts:
            deps.setdefault(task.id, [])
            continue
        own = rank.get(task.id)
        found: set[str] = set()
        faulty = False
        for text in texts:
            ref = _parse(text)
            if ref is None:
                near = _STARTS_LIKE_REFERENCE.match(text)
                faulty = faulty or (near is not None and near.group(1) in known)
            elif ref.task == task.id or ref.task not in known:
                faulty = True
            else:
                found.add(ref.task)
                faulty = faulty or (own is not None and rank.get(ref.task, -1) >= own)
        if faulty:
            issues.extend(_reference_issues(task, known, rank, later))
        if task.id in deps:  # a duplicate id (reported): merge
            found.update(deps[task.id])
        deps[task.id] = sorted(found, key=position.__getitem__) if len(found) > 1 else [*found]
    return issues, deps


def check_tasks(tasks: Sequence[PlanTask]) -> list[PlanIssue]:
    """The structural issues of a candidate plan: its tasks in the order a planner gave them.

    Valid and unique ids; references well formed, to a task of the plan, not to the task
    itself, to an earlier task in the list; no cycle (a cycle also shows as forward
    references). An empty list when the structure is sound; then :func:`parallel_groups`
    gives the plan's groups.
    """
    issues = _id_issues(tasks)
    rank: dict[str, int] = {}
    for index, task in enumerate(tasks):
        rank.setdefault(task.id, index)
    reference_issues, deps = _analyse(tasks, rank, "a later task")
    issues.extend(reference_issues)
    if any(i.kind is IssueKind.FORWARD_REFERENCE for i in reference_issues):
        _, blocked = dependency_levels(deps, list(rank))
        if blocked:
            issues.append(
                PlanIssue(
                    IssueKind.CYCLE,
                    "tasks " + ", ".join(repr(t) for t in blocked) + " depend on each other "
                    "in a cycle (or on a task in one)",
                    task=blocked[0],
                )
            )
    return issues


def _group_issues(plan: Plan) -> tuple[list[PlanIssue], dict[str, int]]:
    ids = {task.id for task in plan.tasks}
    issues: list[PlanIssue] = []
    group_of: dict[str, int] = {}
    for index, group in enumerate(plan.parallel_groups):
        for task_id in group:
            if task_id not in ids:
                message = f"parallel group {index + 1} names unknown task {task_id!r}"
            elif task_id in group_of:
                message = f"task {task_id!r} is in more than one parallel group"
            else:
                group_of[task_id] = index
                continue
            issues.append(PlanIssue(IssueKind.BAD_GROUPS, message, task=task_id))
    missing = [task.id for task in plan.tasks if task.id not in group_of]
    if missing:
        issues.append(
            PlanIssue(
                IssueKind.BAD_GROUPS,
                f"tasks in no parallel group: {', '.join(missing)}",
                task=missing[0],
            )
        )
    return issues, group_of


@dataclass(frozen=True, slots=True)
class PlanAnalysis:
    """What :func:`analyse_plan` finds.

    Attributes:
        issues: The structural issues (empty: the plan can run).
        dependencies: As :func:`dependencies` computes them.
    """

    issues: list[PlanIssue]
    dependencies: dict[str, list[str]]


def analyse_plan(plan: Plan, *, exact_groups: bool = False) -> PlanAnalysis:
    """:func:`check_plan`'s issues and the plan's :func:`dependencies`, in one walk."""
    issues = _id_issues(plan.tasks)
    group_issues, group_of = _group_issues(plan)
    issues.extend(group_issues)
    reference_issues, deps = _analyse(plan.tasks, group_of, "not in an earlier parallel group")
    issues.extend(reference_issues)
    if exact_groups and not issues:
        levels, _ = dependency_levels(deps, [task.id for task in plan.tasks])
        if [set(g) for g in levels] != [set(g) for g in plan.parallel_groups]:
            issues.append(
                PlanIssue(
                    IssueKind.GROUPS_NOT_LEVELS,
                    f"parallel_groups {plan.parallel_groups} are not the dependency levels "
                    f"{levels}",
                )
            )
    return PlanAnalysis(issues, deps)


def check_plan(plan: Plan, *, exact_groups: bool = False) -> list[PlanIssue]:
    """The structural issues of a plan with its parallel groups (what the dispatcher runs).

    Valid and unique ids; every task in exactly one group and no unknown id in a group;
    references well formed, to a task of the plan, not to the task itself, to a task of an
    earlier group (so there is no cycle). Groups may be coarser than the dependency levels
    (they then run with less parallelism) unless ``exact_groups``: then they must be the
    dependency levels, as the planner computes them (order within a group is free).
    """
    return analyse_plan(plan, exact_groups=exact_groups).issues

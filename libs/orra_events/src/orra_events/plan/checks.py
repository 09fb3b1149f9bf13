"""Structural checks of a plan: ids, references, cycles and parallel groups."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING

from orra_events.plan.grammar import (
    _BRACKETS,
    _STARTS_LIKE_REFERENCE,
    TASK_ID_PATTERN,
    _dollar_strings,
    _parse,
    _texts,
    dependency_levels,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Mapping, Sequence

    from orra_events.events import Plan, PlanTask

__all__ = ["IssueKind", "PlanAnalysis", "PlanIssue", "analyse_plan", "check_plan", "check_tasks"]


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

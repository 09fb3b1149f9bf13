"""Coverage: a plan accounts for every part of the action, and says what it leaves out.

:func:`check_coverage` is part of the shared gate every strategy's plan goes through
(:func:`~orra_planner.strategy.finalize`, and the LLM's repair loop through
:func:`~orra_planner.strategy.validator_for`), so no strategy can skip it. A plan is
consistent when:

* it lists its ``parts``, each the user's own words (a verbatim piece of the action, or
  several joined by " … "), none twice;
* every part of the action that asks for something is in one of the plan's parts (a
  requested step cannot silently disappear from the plan);
* every task ``serves`` one of the parts, or provides data another task references
  (``serves`` is ``None``); a task that does neither is a step nobody asked for;
* every part is served by a task, or listed in ``uncovered`` with a reason, never both.

Whether a plan with ``uncovered`` parts may run is the caller's choice
(``allow_partial``); that decision is in :func:`~orra_planner.strategy.finalize`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Final

from orra_events.plan import find_references
from orra_planner.parts import data_fields, mentioned_values, request_parts
from orra_planner.validation import IssueCode, ValidationIssue

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orra_events import DataField, Plan

__all__ = ["JOIN", "check_coverage", "in_action", "normalise"]

JOIN: Final = " … "
"""How the text of parts served together but not adjacent is joined."""

_SPACE: Final = re.compile(r"\s+")
_EDGES: Final = " \t\n,;.!?:"


@lru_cache(maxsize=4096)  # the action and its parts, normalised for every check of a plan
def normalise(text: str) -> str:
    """Text compared case- and whitespace-insensitively, without edge punctuation."""
    return _SPACE.sub(" ", text).strip(_EDGES).casefold()


def in_action(part: str, action: str) -> bool:
    """Whether ``part`` is the user's words: a piece of ``action``, or pieces joined by " … "."""
    whole = normalise(action)
    pieces = [normalise(p) for p in part.split(JOIN.strip())]
    return all(p and p in whole for p in pieces)


def check_coverage(
    plan: Plan, action: str, data: Sequence[DataField] = ()
) -> list[ValidationIssue]:
    """The coverage issues of ``plan`` for ``action`` (empty: consistent).

    Args:
        plan: The candidate plan, with its ``parts`` and ``uncovered``.
        action: The action text.
        data: The action's data (its values are arguments, not requests).
    """
    parts = list(plan.parts)
    if not parts:
        return [
            ValidationIssue(
                IssueCode.NO_PARTS,
                "the plan does not list the parts of the action it serves ('parts')",
            )
        ]
    issues = _listing_issues(parts, action)
    issues.extend(_missing_issues(parts, action, data))
    seen = set(parts)
    served = _serving(plan, seen, issues)
    issues.extend(_uncovered_issues(plan, seen, served))
    uncovered = {u.part for u in plan.uncovered}
    issues.extend(
        ValidationIssue(
            IssueCode.PART_NOT_ACCOUNTED,
            f"no task serves part {part!r} and it is not listed as uncovered",
        )
        for part in parts
        if part not in served and part not in uncovered
    )
    return issues


def _listing_issues(parts: Sequence[str], action: str) -> list[ValidationIssue]:
    """Parts that are not the user's words, or are listed twice."""
    issues: list[ValidationIssue] = []
    seen: set[str] = set()
    for part in parts:
        if not in_action(part, action):
            issues.append(
                ValidationIssue(
                    IssueCode.PART_NOT_IN_ACTION,
                    f"part {part!r} is not the user's words: quote the action {action!r}",
                )
            )
        if part in seen:
            issues.append(
                ValidationIssue(IssueCode.DUPLICATE_PART, f"part {part!r} is listed twice")
            )
        seen.add(part)
    return issues


def _missing_issues(
    parts: Sequence[str], action: str, data: Sequence[DataField]
) -> list[ValidationIssue]:
    """Requests of the action that none of the listed parts contains."""
    issues: list[ValidationIssue] = []
    listed = [normalise(p) for p in parts]
    for asked in request_parts(action, mentioned_values(action, data), data_fields(data)):
        wanted = normalise(asked.text)
        if not any(wanted in text or (text and text in wanted) for text in listed):
            issues.append(
                ValidationIssue(
                    IssueCode.PART_MISSING,
                    f"the action asks for {asked.text!r}, which is in none of the plan's parts: "
                    "serve it, or list it as uncovered with the reason",
                )
            )
    return issues


def _serving(plan: Plan, seen: set[str], issues: list[ValidationIssue]) -> set[str]:
    """The parts the plan's tasks serve; a task serving nothing or an unknown part is an issue."""
    referenced = {ref.task for task in plan.tasks for _, ref in find_references(task.input)}
    served: set[str] = set()
    for task in plan.tasks:
        if task.serves is None:
            if task.id not in referenced:
                issues.append(
                    ValidationIssue(
                        IssueCode.SERVES_NOTHING,
                        f"task {task.id!r} ({task.service}) serves no part of the action and "
                        "provides no data another task uses: remove it, or say which part it "
                        "serves",
                        task=task.id,
                    )
                )
        elif task.serves not in seen:
            issues.append(
                ValidationIssue(
                    IssueCode.UNKNOWN_PART,
                    f"task {task.id!r} serves {task.serves!r}, which is not one of the plan's "
                    "parts",
                    task=task.id,
                )
            )
        else:
            served.add(task.serves)
    return served


def _uncovered_issues(plan: Plan, seen: set[str], served: set[str]) -> list[ValidationIssue]:
    """Uncovered entries that are not parts, are served anyway, or give no reason."""
    issues: list[ValidationIssue] = []
    for entry in plan.uncovered:
        if entry.part not in seen:
            issues.append(
                ValidationIssue(
                    IssueCode.UNKNOWN_PART,
                    f"uncovered part {entry.part!r} is not one of the plan's parts",
                )
            )
        elif entry.part in served:
            issues.append(
                ValidationIssue(
                    IssueCode.UNCOVERED_SERVED,
                    f"part {entry.part!r} is listed as uncovered but a task serves it",
                )
            )
        if not entry.reason.strip():
            issues.append(
                ValidationIssue(
                    IssueCode.PART_NOT_ACCOUNTED,
                    f"uncovered part {entry.part!r} has no reason",
                )
            )
    return issues

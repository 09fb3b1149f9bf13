"""Planning strategies and the contract between them and the handler.

A strategy (the offline planner here, the LLM planner later) implements :class:`Planner`:
``async def plan(request) -> PlanOutcome``. Whatever it returns, :func:`finalize` runs the
candidate through :func:`~orra_planner.validation.validate_plan` again, so no strategy can
append a plan that the shared validation would refuse, and ``parallel_groups`` are always
computed by the planner service, never taken from a strategy.

A strategy that is deterministic, free and calls nothing outside (the offline planner)
says so with a class attribute ``side_effect_free = True``: the handler then plans a
redelivered or replayed action again and lets the log refuse the second plan event,
instead of looking the action up first (see :mod:`orra_planner.handlers`). Any other
strategy is never called for an action that already has a plan event.

An LLM strategy typically::

    tasks, issues = parse_candidate(json.loads(answer))
    result = validate_plan(tasks, request.catalog, request.data)
    if issues or not result.ok:
        ...  # send str(i) for i in issues + result.issues back to the model, try again
    return Planned(plan=result.plan, planner="llm", model=..., attempts=n, usage=...)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import msgspec

from orra_planner.coverage import check_coverage
from orra_planner.matching import plain_servers
from orra_planner.validation import IssueCode, ValidationIssue, validate_plan

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from orra_events import DataField, Plan, UncoveredPart
    from orra_planner.registry import ServiceCatalog

__all__ = [
    "PARTIAL_HINT",
    "FailureStatus",
    "PlanOutcome",
    "PlanRejected",
    "PlanRequest",
    "Planned",
    "Planner",
    "finalize",
    "plainly_served",
    "plan_issues",
    "side_effect_free",
    "validator_for",
]

FailureStatus = Literal["invalid", "not_actionable", "error"]
"""Why planning failed: no valid plan; nothing can serve the action; a fault."""


@dataclass(frozen=True)
class PlanRequest:
    """What a strategy plans from.

    Attributes:
        orchestration_id: The orchestration being planned.
        action: The action text.
        data: The action's data fields.
        catalog: The services of the action's project — the only ones it may use.
        allow_partial: Whether a plan may leave parts of the action uncovered (listed in
            its ``uncovered``); by default such a plan is refused as ``not_actionable``.
    """

    orchestration_id: str
    action: str
    data: Sequence[DataField]
    catalog: ServiceCatalog
    allow_partial: bool = False

    @property
    def project(self) -> str:
        """The action's project."""
        return self.catalog.project


@dataclass(frozen=True)
class Planned:
    """A strategy produced a plan.

    Attributes:
        plan: The plan (its parallel groups are recomputed by :func:`finalize`).
        planner: Which strategy planned it (``offline``, ``llm``, ``cache``).
        model: The model that planned it, if one.
        attempts: Attempts it took (LLM repair rounds).
        cache_hit: Whether it came from a plan cache.
        usage: Token usage, if known.
        notes: Human-readable explanation of choices made (logged).
    """

    plan: Plan
    planner: str
    model: str | None = None
    attempts: int = 1
    cache_hit: bool = False
    usage: dict[str, int] | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanRejected:
    """A strategy could not produce a valid plan.

    Attributes:
        status: ``invalid``, ``not_actionable`` or ``error``.
        reasons: Every reason, each naming what is wrong (validation issues as
            ``code: message``).
        planner: Which strategy tried.
        attempts: Attempts it made.
        notes: Human-readable explanation of choices made (logged).
        uncovered: The parts of the action nothing registered serves.
    """

    status: FailureStatus
    reasons: tuple[str, ...]
    planner: str
    attempts: int = 1
    notes: tuple[str, ...] = field(default=())
    uncovered: tuple[UncoveredPart, ...] = field(default=())


PlanOutcome = Planned | PlanRejected
"""What a strategy returns."""


@runtime_checkable
class Planner(Protocol):
    """A planning strategy."""

    @property
    def name(self) -> str:
        """Short name recorded in ``plan.created`` (``offline``, ``llm``)."""
        ...

    async def plan(self, request: PlanRequest) -> PlanOutcome:
        """Plan the request, or say why not.

        Raises:
            StrategyError: a transient fault; the action is retried a few times.
        """
        ...


def side_effect_free(planner: Planner) -> bool:
    """Whether planning again with ``planner`` is harmless (``side_effect_free = True``)."""
    return getattr(planner, "side_effect_free", False) is True


PARTIAL_HINT = (
    "the other parts of the action can be planned: allow a partial plan (HTTP "
    "'allowPartial': true, or orra verify run --allow-partial) to run them without the "
    "parts above"
)
"""The last reason of an action refused only because parts of it are uncovered."""


def plan_issues(plan: Plan, request: PlanRequest) -> tuple[list[ValidationIssue], Plan | None]:
    """Every issue of ``plan`` (shared validation and coverage), and the checked plan.

    Each task of the plan also records the version of its service it was planned against
    (:meth:`~orra_planner.registry.ServiceCatalog.versioned`).

    Returns:
        The issues, and when there is none the plan with its computed parallel groups and
        its coverage kept.
    """
    result = validate_plan(plan.tasks, request.catalog, request.data)
    issues = [*result.issues, *check_coverage(plan, request.action, request.data)]
    if issues or result.plan is None:
        return issues, None
    return [], msgspec.structs.replace(result.plan, parts=plan.parts, uncovered=plan.uncovered)


def finalize(outcome: PlanOutcome, request: PlanRequest) -> PlanOutcome:
    """Validate a strategy's plan once more, check its coverage, apply the partial policy.

    Returns:
        The outcome with the validated plan (its computed parallel groups, its parts and
        uncovered parts), or a :class:`PlanRejected`: ``invalid`` listing every validation
        and coverage issue, or ``not_actionable`` when parts are uncovered and the caller
        did not allow a partial plan.
    """
    if isinstance(outcome, PlanRejected):
        return outcome
    issues, plan = plan_issues(outcome.plan, request)
    if plan is None:
        return PlanRejected(
            status="invalid",
            reasons=tuple(str(issue) for issue in issues),
            planner=outcome.planner,
            attempts=outcome.attempts,
            notes=outcome.notes,
        )
    if plan.uncovered and not request.allow_partial:
        return PlanRejected(
            status="not_actionable",
            reasons=(*(u.reason for u in plan.uncovered), PARTIAL_HINT),
            planner=outcome.planner,
            attempts=outcome.attempts,
            notes=outcome.notes,
            uncovered=tuple(plan.uncovered),
        )
    return Planned(
        plan=request.catalog.versioned(plan),
        planner=outcome.planner,
        model=outcome.model,
        attempts=outcome.attempts,
        cache_hit=outcome.cache_hit,
        usage=outcome.usage,
        notes=outcome.notes,
    )


def validator_for(request: PlanRequest) -> Callable[[Plan], list[str]]:
    """The shared validation as ``plan -> reasons`` (empty when valid), for strategies.

    This is the ``validate`` callable that :mod:`orra_planner.llm` asks for. Besides the
    shared validation and coverage checks, it challenges a part left uncovered that a
    registered service plainly serves (the offline matcher's judgement).
    """

    def validate(plan: Plan) -> list[str]:
        issues, _ = plan_issues(plan, request)
        issues.extend(plainly_served(plan, request))
        return [str(issue) for issue in issues]

    return validate


def plainly_served(plan: Plan, request: PlanRequest) -> list[ValidationIssue]:
    """Issues for the uncovered parts of ``plan`` that a registered service plainly serves."""
    issues: list[ValidationIssue] = []
    for entry in plan.uncovered:
        servers = plain_servers(entry.part, request.catalog, request.data)
        if servers:
            issues.append(
                ValidationIssue(
                    IssueCode.PLAINLY_SERVED,
                    f"part {entry.part!r} is listed as uncovered, but "
                    f"{' or '.join(servers)} plainly serves it: plan it",
                )
            )
    return issues

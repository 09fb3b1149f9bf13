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

from orra_planner.validation import validate_plan

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from orra_events import DataField, Plan
    from orra_planner.registry import ServiceCatalog

__all__ = [
    "FailureStatus",
    "PlanOutcome",
    "PlanRejected",
    "PlanRequest",
    "Planned",
    "Planner",
    "finalize",
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
    """

    orchestration_id: str
    action: str
    data: Sequence[DataField]
    catalog: ServiceCatalog

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
    """

    status: FailureStatus
    reasons: tuple[str, ...]
    planner: str
    attempts: int = 1
    notes: tuple[str, ...] = field(default=())


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


def finalize(outcome: PlanOutcome, request: PlanRequest) -> PlanOutcome:
    """Validate a strategy's plan once more and give it its computed parallel groups.

    Each task of the plan also records the version of its service it was planned against
    (:meth:`~orra_planner.registry.ServiceCatalog.versioned`).

    Returns:
        The outcome with the validated plan, or a :class:`PlanRejected` (``invalid``)
        listing every validation issue.
    """
    if isinstance(outcome, PlanRejected):
        return outcome
    result = validate_plan(outcome.plan.tasks, request.catalog, request.data)
    if result.plan is None:
        return PlanRejected(
            status="invalid",
            reasons=tuple(result.reasons),
            planner=outcome.planner,
            attempts=outcome.attempts,
            notes=outcome.notes,
        )
    return Planned(
        plan=request.catalog.versioned(result.plan),
        planner=outcome.planner,
        model=outcome.model,
        attempts=outcome.attempts,
        cache_hit=outcome.cache_hit,
        usage=outcome.usage,
        notes=outcome.notes,
    )


def validator_for(request: PlanRequest) -> Callable[[Plan], list[str]]:
    """The shared validation as ``plan -> reasons`` (empty when valid), for strategies.

    This is the ``validate`` callable that :mod:`orra_planner.llm` asks for.
    """

    def validate(plan: Plan) -> list[str]:
        return validate_plan(plan.tasks, request.catalog, request.data).reasons

    return validate

"""The action and its plan: what a user asked for and what the planner made of it."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

from orra_events.events.base import ExecutionMode, OrchestrationEvent

__all__ = [
    "ActionSubmitted",
    "DataField",
    "Plan",
    "PlanCreated",
    "PlanFailed",
    "PlanTask",
    "UncoveredPart",
]


class DataField(msgspec.Struct, frozen=True):
    """One piece of action data, as in the seed's ``{"field": ..., "value": ...}``."""

    field: str
    value: Any


class PlanTask(msgspec.Struct, frozen=True, kw_only=True):
    """One task of a plan.

    ``input`` values are concrete JSON values or references to an earlier task's output
    (``"$<task id>.<field>"``, or a nested value: ``"$payment.items.0.id"``); the grammar
    is :mod:`orra_events.plan`'s.

    Attributes:
        serves: The part of the action this task serves (the user's own words, one of the
            plan's ``parts``); ``None`` for a task added only to provide data that another
            task of the plan needs.
        version: The service version the task was planned against (canonical; ``None``:
            any).
        gate: The approval condition its service declared (:mod:`orra_events.gates`;
            ``"true"``: always), copied from the registration by the planner; ``None``:
            the task runs without approval.
    """

    id: str
    service: str
    input: dict[str, Any] = msgspec.field(default_factory=dict)
    version: str | None = None
    serves: str | None = None
    gate: str | None = None


class UncoveredPart(msgspec.Struct, frozen=True, kw_only=True):
    """A part of the action that no task of the plan serves.

    Attributes:
        part: The part, in the user's own words (one of the plan's ``parts``).
        reason: Why nothing serves it, quoting the part.
    """

    part: Annotated[str, msgspec.Meta(description="The words of the action that were left out.")]
    reason: Annotated[str, msgspec.Meta(description="Why no registered service could serve them.")]


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """An execution plan: its tasks, their dependency levels, and what of the action it covers.

    Attributes:
        parts: The request parts of the action, in order, each in the user's own words.
        uncovered: The parts no task serves (only in a plan the caller allowed to be
            partial; otherwise such a plan is refused).
    """

    tasks: list[PlanTask]
    parallel_groups: list[list[str]]
    parts: list[str] = msgspec.field(default_factory=list)
    uncovered: list[UncoveredPart] = msgspec.field(default_factory=list)


class ActionSubmitted(OrchestrationEvent, frozen=True, kw_only=True, tag="action.submitted"):
    """A user asked for an action to be orchestrated."""

    TYPE: ClassVar[str] = "action.submitted"

    action: str
    data: list[DataField] = msgspec.field(default_factory=list)
    webhook: str | None = None
    project: str = "default"
    idempotency_key: str | None = None
    mode: ExecutionMode | None = None
    task_timeout_s: float | None = None
    pause_grace_s: float | None = None
    """How long tasks may wait for an unhealthy service before the orchestration fails;
    ``None`` uses the dispatcher's default (5 minutes)."""
    allow_partial: bool = False
    """Accept a plan that leaves parts of the action uncovered (they are listed in the plan's
    ``uncovered``); by default such an action is refused as ``not_actionable``."""
    execute: bool = True
    """``False``: plan only; the plan waits for approval (``orchestration.awaiting_approval``)
    and runs when approved (HTTP ``"execute": false``, ``orra verify run --plan-only``)."""
    approval_timeout_s: float | None = None
    """How long the plan (``execute`` false) or a gated task may wait for approval before it
    is rejected as expired; ``None`` uses the dispatcher's ``ORRA_APPROVAL_TIMEOUT_S``."""


class PlanCreated(OrchestrationEvent, frozen=True, kw_only=True, tag="plan.created"):
    """The planner produced a validated plan.

    It carries what the dispatcher needs from the action (webhook, project, mode, task
    timeout), so the dispatcher never reads another event to run the plan.
    """

    TYPE: ClassVar[str] = "plan.created"

    plan: Plan
    planner: str
    model: str | None = None
    cache_hit: bool = False
    attempts: int = 1
    latency_ms: float = 0.0
    usage: dict[str, int] | None = None
    project: str = "default"
    webhook: str | None = None
    mode: ExecutionMode | None = None
    task_timeout_s: float | None = None
    pause_grace_s: float | None = None
    execute: bool = True
    """``False``: the action's ``execute``; the dispatcher holds the plan for approval."""
    approval_timeout_s: float | None = None
    """The action's ``approval_timeout_s``."""


class PlanFailed(OrchestrationEvent, frozen=True, kw_only=True, tag="plan.failed"):
    """The planner could not produce a valid plan."""

    TYPE: ClassVar[str] = "plan.failed"

    status: Literal["invalid", "not_actionable", "error"]
    reasons: list[str]
    planner: str
    attempts: int = 1
    latency_ms: float = 0.0
    project: str = "default"
    webhook: str | None = None
    uncovered: list[UncoveredPart] = msgspec.field(default_factory=list)
    """The parts of the action nothing registered serves (each also in ``reasons``)."""

"""Orchestration outcome events: done, failed, aborted, compensated, paused, resumed."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec

from orra_events.events.base import OrchestrationEvent
from orra_events.events.planning import UncoveredPart  # noqa: TC001 (msgspec resolves it)

__all__ = [
    "CompensationSummary",
    "OrchestrationAborted",
    "OrchestrationCompensated",
    "OrchestrationCompensating",
    "OrchestrationDone",
    "OrchestrationFailed",
    "OrchestrationPaused",
    "OrchestrationResumed",
]


class CompensationSummary(msgspec.Struct, frozen=True, kw_only=True):
    """How the compensation of a failed or aborted orchestration went.

    Attributes:
        compensated: Tasks whose revert handler succeeded, in the order they were reverted.
        failed: Tasks whose compensation was abandoned (an operator must act).
        skipped: Completed tasks of services that are not revertible.
    """

    compensated: list[str] = msgspec.field(default_factory=list)
    failed: list[str] = msgspec.field(default_factory=list)
    skipped: list[str] = msgspec.field(default_factory=list)


class OrchestrationDone(OrchestrationEvent, frozen=True, kw_only=True, tag="orchestration.done"):
    """Every task completed.

    ``outputs`` holds each task's output by task id, in plan order; ``results`` merges them
    (:func:`orra_events.webhooks.flat_results`: a field that several tasks return takes the
    value of the last of them in plan order).
    """

    TYPE: ClassVar[str] = "orchestration.done"

    results: dict[str, Any]
    outputs: dict[str, dict[str, Any]]
    webhook: str | None = None
    project: str = "default"
    uncovered: list[UncoveredPart] = msgspec.field(default_factory=list)
    """Parts of the action the plan left out (a partial plan the caller allowed)."""


class OrchestrationFailed(
    OrchestrationEvent, frozen=True, kw_only=True, tag="orchestration.failed"
):
    """The orchestration cannot complete."""

    TYPE: ClassVar[str] = "orchestration.failed"

    error: str
    task_id: str | None = None
    webhook: str | None = None
    project: str = "default"
    compensation: CompensationSummary | None = None
    uncovered: list[UncoveredPart] = msgspec.field(default_factory=list)
    """Parts of the action the plan left out, or that made planning fail."""


class OrchestrationAborted(
    OrchestrationEvent, frozen=True, kw_only=True, tag="orchestration.aborted"
):
    """The orchestration was aborted by a user or by a service."""

    TYPE: ClassVar[str] = "orchestration.aborted"

    reason: str
    payload: dict[str, Any] | None = None
    webhook: str | None = None
    project: str = "default"
    task_id: str | None = None
    compensation: CompensationSummary | None = None
    uncovered: list[UncoveredPart] = msgspec.field(default_factory=list)
    """Parts of the action the plan left out (a partial plan the caller allowed)."""


class OrchestrationCompensating(
    OrchestrationEvent, frozen=True, kw_only=True, tag="orchestration.compensating"
):
    """Forward execution stopped; completed tasks of revertible services are reverted.

    ``tasks`` is the compensation order (reverse order of completion). When the dispatcher
    ends the orchestration (a failure, or an abort raised by a service), the terminal event
    follows the compensation and carries its :class:`CompensationSummary`; after a user's
    abort the terminal event came first.
    """

    TYPE: ClassVar[str] = "orchestration.compensating"

    cause: Literal["failed", "aborted"]
    reason: str
    tasks: list[str]
    skipped: list[str] = msgspec.field(default_factory=list)


class OrchestrationCompensated(
    OrchestrationEvent, frozen=True, kw_only=True, tag="orchestration.compensated"
):
    """Every compensation of an orchestration finished (reverted or abandoned)."""

    TYPE: ClassVar[str] = "orchestration.compensated"

    compensation: CompensationSummary


class OrchestrationPaused(
    OrchestrationEvent, frozen=True, kw_only=True, tag="orchestration.paused"
):
    """Tasks wait because their service is unhealthy (its heartbeats stopped).

    The orchestration fails if it is still paused at ``fail_at``.
    """

    TYPE: ClassVar[str] = "orchestration.paused"

    services: list[str]
    tasks: list[str]
    grace_s: float
    fail_at: float


class OrchestrationResumed(
    OrchestrationEvent, frozen=True, kw_only=True, tag="orchestration.resumed"
):
    """The services a paused orchestration waited for are healthy again."""

    TYPE: ClassVar[str] = "orchestration.resumed"

    services: list[str]
    paused_s: float

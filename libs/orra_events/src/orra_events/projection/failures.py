"""Compensations that finally failed, read from an orchestration's view.

An operator lists them with ``orra comp-fail ls`` (the gateway's
``GET /compensation-failures``) and resolves or ignores each one; their state is folded from
the events like the rest of the view (``task.compensation_abandoned``,
``task.compensation_resolved``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from orra_events.projection.views import CompensationStatus  # noqa: TC001 - msgspec reads it

if TYPE_CHECKING:
    from orra_events.projection.views import OrchestrationView

__all__ = ["CompensationFailure", "compensation_failures"]


class CompensationFailure(msgspec.Struct, kw_only=True, rename="camel"):
    """A compensation that finally failed, kept for an operator (``orra comp-fail ls``).

    Attributes:
        id: ``<orchestration id>:<task id>``.
        orchestration_id: The orchestration.
        task_id: The task that could not be reverted.
        service: Its service.
        status: ``failed`` (open), ``resolved`` or ``ignored``.
        reason: Why the orchestration was compensated.
        error: The last compensation error.
        attempts: Compensation attempts made.
        input: The task's input.
        output: The task's output (what is left to undo).
        failed_at: When the dispatcher gave up.
        resolution_note: The operator's note.
        resolved_by: Who resolved or ignored it.
        resolved_at: When.
    """

    id: str
    orchestration_id: str
    task_id: str
    service: str
    status: CompensationStatus
    reason: str
    error: str | None
    attempts: int
    input: dict[str, Any]
    output: dict[str, Any] | None
    failed_at: float | None
    resolution_note: str | None = None
    resolved_by: str | None = None
    resolved_at: float | None = None


def compensation_failures(view: OrchestrationView) -> list[CompensationFailure]:
    """The failed (open, resolved or ignored) compensations of an orchestration."""
    out: list[CompensationFailure] = []
    # A task left for an operator without any compensation (its outcome is unknown: see
    # docs/architecture.md, "Unknown outcomes") has the orchestration's failure as reason.
    reason = view.compensation.reason if view.compensation is not None else (view.error or "")
    for task in view.tasks:
        comp = task.compensation
        if comp is None or comp.status not in ("failed", "resolved", "ignored"):
            continue
        out.append(
            CompensationFailure(
                id=f"{view.id}:{task.id}",
                orchestration_id=view.id,
                task_id=task.id,
                service=task.service,
                status=comp.status,
                reason=reason,
                error=comp.error,
                attempts=comp.attempts,
                input=task.input,
                output=task.output,
                failed_at=comp.finished_at,
                resolution_note=comp.resolution_note,
                resolved_by=comp.resolved_by,
                resolved_at=comp.resolved_at,
            )
        )
    return out

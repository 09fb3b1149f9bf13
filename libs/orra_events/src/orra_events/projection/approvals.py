"""The fold of the approval events into an orchestration's view (pure, no I/O).

:mod:`orra_events.projection.fold` routes ``orchestration.awaiting_approval``,
``task.approval_requested``, ``orchestration.approved`` and ``orchestration.rejected`` here.
The plan's approval is ``OrchestrationView.approval``; a held task's is ``TaskView.approval``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orra_events.projection.views import ApprovalView, TaskView

if TYPE_CHECKING:
    from orra_events.events import (
        OrchestrationApproved,
        OrchestrationAwaitingApproval,
        OrchestrationRejected,
        PlanCreated,
        TaskApprovalRequested,
    )
    from orra_events.projection.views import OrchestrationView

__all__ = [
    "on_approval_requested",
    "on_approved",
    "on_awaiting_approval",
    "on_plan_to_preview",
    "on_rejected",
]


def on_plan_to_preview(view: OrchestrationView, event: PlanCreated) -> None:
    """A plan submitted with ``execute: false``: it waits for approval (called by the fold)."""
    if view.approval is None:
        view.approval = ApprovalView(requested_at=event.at)
    if view.status in ("planning", "running"):
        view.status = "awaiting_approval"


def on_awaiting_approval(view: OrchestrationView, event: OrchestrationAwaitingApproval) -> None:
    """The dispatcher holds the plan: when it expires."""
    if view.approval is None:
        view.approval = ApprovalView(requested_at=event.at)
    view.approval.expires_at = event.expires_at
    # A decision may precede this event in the log (the gateway takes it once the plan is
    # seen): the status is the plan's and the decision's business only.


def on_approval_requested(view: OrchestrationView, event: TaskApprovalRequested) -> None:
    """A gated task is held."""
    task = view.task(event.task_id)
    if task is None:
        task = TaskView(id=event.task_id, service=event.service)
        view.tasks.append(task)
    if task.status == "pending":
        task.status = "awaiting_approval"
    task.input = dict(event.input)
    task.approval = ApprovalView(
        requested_at=event.at,
        expires_at=event.expires_at,
        condition=event.condition,
        reason=event.reason,
    )


def _decide(
    approval: ApprovalView | None, event: OrchestrationApproved | OrchestrationRejected
) -> ApprovalView | None:
    """The decision on ``approval``; ``None`` when it was already decided (first wins)."""
    if approval is None:
        approval = ApprovalView(requested_at=None)
    elif approval.status != "awaiting":
        return None
    if event.TYPE == "orchestration.approved":
        approval.status = "approved"
    else:
        approval.status = "expired" if getattr(event, "expired", False) else "rejected"
    approval.decided_by = event.by
    approval.decided_at = event.at
    approval.reason = event.reason
    return approval


def _record(
    view: OrchestrationView, event: OrchestrationApproved | OrchestrationRejected
) -> tuple[TaskView | None, ApprovalView] | None:
    """Record a decision on the plan or on a held task; ``None`` when nothing changed.

    Returns the task decided on (``None``: the plan) and its approval.
    """
    if event.task_id is None:
        decided = _decide(view.approval, event)
        if decided is None:
            return None
        view.approval = decided
        return None, decided
    task = view.task(event.task_id)
    if task is None:
        return None
    decided = _decide(task.approval, event)
    if decided is None:
        return None
    task.approval = decided
    return task, decided


def on_approved(view: OrchestrationView, event: OrchestrationApproved) -> None:
    """A person approved the plan (it runs) or a held task (it is dispatched)."""
    recorded = _record(view, event)
    if recorded is None:
        return
    task, _ = recorded
    if task is None:
        if view.status == "awaiting_approval":
            view.status = "running"
    elif task.status == "awaiting_approval":
        task.status = "pending"


def on_rejected(view: OrchestrationView, event: OrchestrationRejected) -> None:
    """A person rejected the plan or a held task, or its approval expired."""
    recorded = _record(view, event)
    if recorded is None:
        return
    task, decided = recorded
    if task is not None and task.status == "awaiting_approval":
        task.status = "failed"
        task.error = f"not approved ({decided.status} by {event.by})"
        task.finished_at = event.at

"""Approval events: a plan held for a person's approval, a gated task, and the decisions."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from orra_events.events.base import OrchestrationEvent

__all__ = [
    "OrchestrationApproved",
    "OrchestrationAwaitingApproval",
    "OrchestrationRejected",
    "TaskApprovalRequested",
]


class OrchestrationAwaitingApproval(
    OrchestrationEvent, frozen=True, kw_only=True, tag="orchestration.awaiting_approval"
):
    """A plan submitted with ``execute: false`` waits for approval; nothing ran.

    The dispatcher appends it when it takes the plan. ``expires_at`` is when it is
    dropped (``orchestration.rejected`` with ``expired``) unless approved before.
    """

    TYPE: ClassVar[str] = "orchestration.awaiting_approval"

    expires_at: float
    tasks: list[str] = msgspec.field(default_factory=list)
    project: str = "default"


class TaskApprovalRequested(
    OrchestrationEvent, frozen=True, kw_only=True, tag="task.approval_requested"
):
    """A task of a gated service is held until a person approves it.

    The rest of its group runs; the task's timeout starts only when it is approved.
    ``reason`` says which gate holds it; ``input`` is the resolved input it will be sent.
    """

    TYPE: ClassVar[str] = "task.approval_requested"

    task_id: str
    service: str
    input: dict[str, Any] = msgspec.field(default_factory=dict)
    condition: str = "true"
    reason: str = ""
    expires_at: float = 0.0
    project: str = "default"
    webhook: str | None = None


class OrchestrationApproved(
    OrchestrationEvent, frozen=True, kw_only=True, tag="orchestration.approved"
):
    """A person approved a held plan (``task_id`` ``None``) or one held task.

    Appended by the gateway with the id :func:`orra_events.ids.decision_id`, which an
    approval and a rejection of the same thing share: the log keeps the first decision.
    """

    TYPE: ClassVar[str] = "orchestration.approved"

    task_id: str | None = None
    by: str
    reason: str | None = None
    project: str = "default"


class OrchestrationRejected(
    OrchestrationEvent, frozen=True, kw_only=True, tag="orchestration.rejected"
):
    """A held plan or task was rejected by a person, or its approval expired.

    A rejected plan ends ``aborted`` (nothing ran); a rejected task fails non-retryably
    and the orchestration compensates what completed, as for any failure.
    ``expired`` is true when no one decided in time (``by`` is then ``"expiry"``).
    """

    TYPE: ClassVar[str] = "orchestration.rejected"

    task_id: str | None = None
    by: str
    reason: str = ""
    expired: bool = False
    project: str = "default"

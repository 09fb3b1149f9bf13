"""The views of the projection: what ``GET /orchestrations/{id}`` and ``GET /orchestrations`` show.

Plain msgspec structs whose JSON field names are camelCase (``createdAt``, ``durationMs``),
except ``parallel_groups``, as the seed spells it. Times are UNIX epoch seconds (floats), as
in the events. :mod:`orra_events.projection.fold` fills them in from the events; this module
only defines them, with the statuses and the list line of a view.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

# msgspec reads the views' annotations at run time: these names must exist then.
from orra_events.events import DataField, ExecutionMode, UncoveredPart  # noqa: TC001

__all__ = [
    "TERMINAL_STATUSES",
    "ApprovalView",
    "CompensationStatus",
    "CompensationView",
    "OrchestrationStatus",
    "OrchestrationSummary",
    "OrchestrationView",
    "PlanInfo",
    "TaskCompensationView",
    "TaskStatus",
    "TaskView",
    "WebhookAttemptView",
    "WebhookDeliveryView",
    "is_terminal",
    "summarize",
    "to_builtins",
]

OrchestrationStatus = Literal[
    "planning",
    "awaiting_approval",
    "running",
    "paused",
    "compensating",
    "completed",
    "failed",
    "aborted",
    "not_actionable",
]
"""Status of an orchestration."""

TaskStatus = Literal[
    "pending",
    "awaiting_approval",
    "running",
    "paused",
    "completed",
    "failed",
    "retrying",
    "aborted",
]
"""Status of one task of an orchestration."""

CompensationStatus = Literal[
    "pending", "running", "retrying", "compensated", "failed", "resolved", "ignored"
]
"""Status of the compensation of one task; ``failed`` waits for an operator."""


class TaskCompensationView(msgspec.Struct, kw_only=True, rename="camel"):
    """The compensation (revert) of one completed task.

    Attributes:
        status: See :data:`CompensationStatus`.
        attempts: Compensation attempts dispatched.
        error: The last failure.
        started_at: When the last attempt was dispatched.
        finished_at: When it was compensated or abandoned.
        duration_ms: How long the successful revert handler ran.
        resolution_note: The operator's note when resolved or ignored.
        resolved_by: Who resolved it (API key id).
        resolved_at: When it was resolved or ignored.
    """

    status: CompensationStatus = "pending"
    attempts: int = 0
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_ms: float | None = None
    resolution_note: str | None = None
    resolved_by: str | None = None
    resolved_at: float | None = None


class CompensationView(msgspec.Struct, kw_only=True, rename="camel"):
    """The compensation of a failed or aborted orchestration.

    Attributes:
        status: ``running``, then ``completed`` (every task reverted) or ``failed`` (some
            compensation was abandoned).
        cause: ``failed`` or ``aborted``.
        reason: Why it is compensated.
        tasks: Tasks to revert, in compensation order (reverse order of completion).
        skipped: Completed tasks of services that are not revertible.
        compensated: Tasks reverted.
        failed: Tasks whose compensation was abandoned.
        started_at: When compensation began.
        finished_at: When it ended.
    """

    status: Literal["running", "completed", "failed"] = "running"
    cause: Literal["failed", "aborted"] = "failed"
    reason: str = ""
    tasks: list[str] = msgspec.field(default_factory=list)
    skipped: list[str] = msgspec.field(default_factory=list)
    compensated: list[str] = msgspec.field(default_factory=list)
    failed: list[str] = msgspec.field(default_factory=list)
    started_at: float | None = None
    finished_at: float | None = None


TERMINAL_STATUSES: Final[frozenset[str]] = frozenset(
    {"completed", "failed", "aborted", "not_actionable"}
)
"""Statuses after which an orchestration never changes status again."""


def is_terminal(status: str) -> bool:
    """Whether ``status`` is final (``completed``, ``failed``, ``aborted``, ``not_actionable``)."""
    return status in TERMINAL_STATUSES


class ApprovalView(msgspec.Struct, kw_only=True, rename="camel"):
    """A plan or a task held for a person's approval, and what was decided.

    Attributes:
        status: ``awaiting`` (no decision yet), ``approved``, ``rejected`` or ``expired``.
        requested_at: When it started to wait.
        expires_at: When it is rejected as expired if no one decides (once known).
        condition: The gate that held a task (its service's ``approval_when``).
        reason: Why a task is held; then the decision's reason.
        decided_by: The id of the API key that decided (``expiry`` when it expired).
        decided_at: When it was decided.
    """

    status: Literal["awaiting", "approved", "rejected", "expired"] = "awaiting"
    requested_at: float | None = None
    expires_at: float | None = None
    condition: str | None = None
    reason: str | None = None
    decided_by: str | None = None
    decided_at: float | None = None


class TaskView(msgspec.Struct, kw_only=True, rename="camel"):
    """One task of an orchestration, as planned and as it ran.

    Attributes:
        id: Task id in the plan.
        service: Service (or agent) that runs it.
        group: Index of its parallel group (0 runs first), ``None`` if in no group.
        status: ``pending``, ``running``, ``completed``, ``failed`` or ``retrying``.
        attempts: Highest attempt dispatched so far (0 before the first dispatch).
        input: The planned input, replaced by the resolved input once dispatched.
        output: What the service returned.
        error: Why the last attempt failed, timed out or is retried.
        started_at: When the service started the task (dispatch time until it reports).
        finished_at: When it completed or failed.
        duration_ms: How long the service worked on it.
        depends_on: Tasks whose output its input references.
        progress: The last interim update the task reported.
        progress_at: When it was reported.
        progress_updates: How many updates the task reported.
        compensation: Its compensation, when the orchestration reverts it.
        serves: The part of the action it serves (the user's words); ``None`` for a task
            that only provides data another task needs.
        approval: Its approval, when its service's gate held it.
        gate: Its service's approval condition (from the plan); ``None``: none.
    """

    id: str
    service: str
    group: int | None = None
    status: TaskStatus = "pending"
    attempts: int = 0
    input: dict[str, Any] = msgspec.field(default_factory=dict)
    output: dict[str, Any] | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_ms: float | None = None
    depends_on: list[str] = msgspec.field(default_factory=list)
    progress: dict[str, Any] | None = None
    progress_at: float | None = None
    progress_updates: int = 0
    compensation: TaskCompensationView | None = None
    serves: str | None = None
    approval: ApprovalView | None = None
    gate: str | None = None


class PlanInfo(msgspec.Struct, kw_only=True, rename="camel"):
    """How the plan was made (from ``plan.created`` or ``plan.failed``).

    Attributes:
        planner: Which planner answered (``llm``, ``offline``, ...).
        model: LLM model, when one was used.
        cache_hit: Whether the plan came from the plan cache.
        attempts: How many planning attempts it took.
        latency_ms: How long planning took.
        usage: LLM token usage, when reported.
    """

    planner: str
    model: str | None = None
    cache_hit: bool = False
    attempts: int = 1
    latency_ms: float = 0.0
    usage: dict[str, int] | None = None


class WebhookAttemptView(msgspec.Struct, kw_only=True, rename="camel"):
    """One HTTP attempt of a webhook delivery.

    Attributes:
        n: The attempt's number (1-based).
        at: When it started.
        status_code: The receiver's HTTP status; ``None`` when no answer came.
        error: Why no answer came (timeout, connection error, refused URL).
        duration_ms: How long it took.
    """

    n: int
    at: float
    status_code: int | None = None
    error: str | None = None
    duration_ms: float = 0.0


class WebhookDeliveryView(msgspec.Struct, kw_only=True, rename="camel"):
    """The delivery of the result to one webhook URL: pending, or how it ended.

    Attributes:
        url: Where the result was sent.
        status: ``retrying`` (an attempt failed, another is due at ``next_attempt_at``),
            ``delivered`` or ``failed`` (the notifier gave up).
        attempts: Attempts made.
        status_code: HTTP status of the last attempt, if any answer came.
        error: Why delivery failed (for ``retrying``, why the last attempt did).
        webhook_id: The ``webhook-id`` header the receiver saw.
        at: When the outcome was recorded.
        status_codes: The HTTP status of each attempt in ``attempt_log`` (``None`` where
            no answer came), oldest first.
        attempt_log: The latest attempts (at most 20), oldest first; empty for
            deliveries recorded before attempts were logged.
        next_attempt_at: When the next attempt is due, while ``retrying``.
    """

    url: str
    status: Literal["delivered", "failed", "retrying"]
    attempts: int
    status_code: int | None = None
    error: str | None = None
    webhook_id: str = ""
    at: float = 0.0
    status_codes: list[int | None] = msgspec.field(default_factory=list)
    attempt_log: list[WebhookAttemptView] = msgspec.field(default_factory=list)
    next_attempt_at: float | None = None


class OrchestrationView(msgspec.Struct, kw_only=True, rename="camel"):
    """Everything known about one orchestration; the body of ``GET /orchestrations/{id}``.

    Attributes:
        id: Orchestration id.
        project: Project that owns it.
        action: The action's text.
        data: The action's data fields.
        webhook: The action's own webhook URL.
        mode: Execution mode asked for (``groups`` / ``eager``), ``None`` for the default.
        status: See :data:`OrchestrationStatus`.
        created_at: When the action was submitted.
        updated_at: Time of the last event applied.
        finished_at: When it reached a terminal status.
        parallel_groups: The plan's dependency levels.
        tasks: The plan's tasks, in plan order.
        results: Aggregated results once completed: the flat view of the webhook
            (:func:`orra_events.webhooks.flat_results`; each task's own output is its
            ``output``); the abort payload of a service's abort.
        error: Why it failed, was aborted or is not actionable.
        reasons: The planner's reasons when planning failed.
        plan: How the plan was made.
        webhooks: Webhook deliveries of the result.
        idempotency_key: The ``Idempotency-Key`` the action was submitted with.
        event_count: Number of events folded into this view.
        paused_services: Unhealthy services the orchestration waits for, while paused.
        paused_at: When the current pause began.
        pause_fail_at: When it fails if the pause lasts.
        compensation: Its compensation, once forward execution stopped with completed
            tasks of revertible services.
        allow_partial: Whether the caller accepted a plan that leaves parts out.
        parts: The request parts of the action, in the user's words, as the plan lists them.
        uncovered: The parts of the action the plan leaves out (or that made planning
            fail), each with its reason; empty when everything is covered.
        expired: Whether its events were removed by the event log's retention: the view
            is then its compact summary (id, project, action, status, times, error and
            ``taskCount``) and every detail (data, plan, tasks, results, webhooks) is gone.
        expired_at: When its events were removed (expired views only).
        task_count: Number of planned tasks, on an expired view (whose ``tasks`` are gone);
            ``None`` otherwise.
        approval: The plan's approval, when it was submitted to preview
            (``execute: false``): waiting, then who approved or rejected it.
    """

    id: str
    project: str = "default"
    action: str = ""
    data: list[DataField] = msgspec.field(default_factory=list)
    webhook: str | None = None
    mode: ExecutionMode | None = None
    status: OrchestrationStatus = "planning"
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    parallel_groups: list[list[str]] = msgspec.field(default_factory=list, name="parallel_groups")
    tasks: list[TaskView] = msgspec.field(default_factory=list)
    results: dict[str, Any] | None = None
    error: str | None = None
    reasons: list[str] = msgspec.field(default_factory=list)
    plan: PlanInfo | None = None
    webhooks: list[WebhookDeliveryView] = msgspec.field(default_factory=list)
    idempotency_key: str | None = None
    event_count: int = 0
    paused_services: list[str] = msgspec.field(default_factory=list)
    paused_at: float | None = None
    pause_fail_at: float | None = None
    compensation: CompensationView | None = None
    allow_partial: bool = False
    parts: list[str] = msgspec.field(default_factory=list)
    uncovered: list[UncoveredPart] = msgspec.field(default_factory=list)
    expired: bool = False
    expired_at: float | None = None
    task_count: int | None = None
    approval: ApprovalView | None = None

    def task(self, task_id: str) -> TaskView | None:
        """The task with id ``task_id``, or ``None``."""
        for task in self.tasks:
            if task.id == task_id:
                return task
        return None

    @property
    def terminal(self) -> bool:
        """Whether the orchestration has reached a final status."""
        return is_terminal(self.status)


class OrchestrationSummary(msgspec.Struct, kw_only=True, rename="camel"):
    """One line of ``GET /orchestrations`` (and of ``orra ps``).

    Attributes:
        id: Orchestration id.
        action: The action's text.
        status: See :data:`OrchestrationStatus`.
        task_count: Number of planned tasks.
        created_at: When the action was submitted.
        finished_at: When it reached a terminal status.
        expired: Whether its events were removed by the event log's retention (its full
            view is then a compact summary).
    """

    id: str
    action: str
    status: OrchestrationStatus
    task_count: int
    created_at: float
    finished_at: float | None = None
    expired: bool = False


def summarize(view: OrchestrationView) -> OrchestrationSummary:
    """The list line of an orchestration."""
    return OrchestrationSummary(
        id=view.id,
        action=view.action,
        status=view.status,
        task_count=len(view.tasks),
        created_at=view.created_at,
        finished_at=view.finished_at,
    )


def to_builtins(view: msgspec.Struct) -> Any:
    """A view as plain JSON-compatible Python values, with its camelCase field names."""
    return msgspec.to_builtins(view)

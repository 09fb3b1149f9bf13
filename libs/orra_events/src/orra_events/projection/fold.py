"""The fold: orchestration events, in log order, into an orchestration's view.

Pure (no I/O): :func:`apply` folds one event into a view, in place; :func:`fold` folds a
sequence of events of any orchestrations into their views. Each event type has its small
function (``_on_<event>``), found through a table by the event's class. The rules they
apply are listed in :mod:`orra_events.projection`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from orra_events.events import (
    ActionSubmitted,
    Event,
    OrchestrationAborted,
    OrchestrationApproved,
    OrchestrationAwaitingApproval,
    OrchestrationCompensated,
    OrchestrationCompensating,
    OrchestrationDone,
    OrchestrationEvent,
    OrchestrationFailed,
    OrchestrationPaused,
    OrchestrationRejected,
    OrchestrationResumed,
    PlanCreated,
    PlanFailed,
    TaskAborted,
    TaskApprovalRequested,
    TaskCompensated,
    TaskCompensating,
    TaskCompensationAbandoned,
    TaskCompensationFailed,
    TaskCompensationResolved,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    TaskProgress,
    TaskRetrying,
    TaskTimedOut,
    WebhookAttempt,
    WebhookDelivered,
    WebhookFailed,
    WebhookRetrying,
)
from orra_events.plan import dependencies
from orra_events.projection._table import EventTable, entry
from orra_events.projection.approvals import (
    on_approval_requested,
    on_approved,
    on_awaiting_approval,
    on_plan_to_preview,
    on_rejected,
)
from orra_events.projection.views import (
    CompensationView,
    OrchestrationStatus,
    OrchestrationView,
    PlanInfo,
    TaskCompensationView,
    TaskView,
    WebhookAttemptView,
    WebhookDeliveryView,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["apply", "fold"]


# --- the orchestration and its plan ------------------------------------------------------


def _finish(view: OrchestrationView, status: OrchestrationStatus, at: float) -> bool:
    """Move ``view`` to a terminal status unless it already has one; True if it moved."""
    if view.terminal:
        return False
    view.status = status
    view.finished_at = at
    view.paused_services = []
    view.paused_at = None
    view.pause_fail_at = None
    return True


def _on_action(view: OrchestrationView, event: ActionSubmitted) -> None:
    view.project = event.project
    view.action = event.action
    view.data = list(event.data)
    view.webhook = event.webhook
    view.mode = event.mode
    view.created_at = event.at
    view.idempotency_key = event.idempotency_key
    view.allow_partial = event.allow_partial


def _on_plan_created(view: OrchestrationView, event: PlanCreated) -> None:
    plan = event.plan
    group_of = {tid: index for index, group in enumerate(plan.parallel_groups) for tid in group}
    deps = dependencies(plan.tasks)
    view.parallel_groups = [list(group) for group in plan.parallel_groups]
    view.tasks = [
        TaskView(
            id=task.id,
            service=task.service,
            group=group_of.get(task.id),
            input=dict(task.input),
            depends_on=sorted(deps.get(task.id, ())),
            serves=task.serves,
            gate=task.gate,
        )
        for task in plan.tasks
    ]
    view.parts = list(plan.parts)
    view.uncovered = list(plan.uncovered)
    view.plan = PlanInfo(
        planner=event.planner,
        model=event.model,
        cache_hit=event.cache_hit,
        attempts=event.attempts,
        latency_ms=event.latency_ms,
        usage=dict(event.usage) if event.usage is not None else None,
    )
    view.project = event.project
    if view.webhook is None:
        view.webhook = event.webhook
    if view.status == "planning":
        view.status = "running"
    if not event.execute:
        on_plan_to_preview(view, event)


def _on_plan_failed(view: OrchestrationView, event: PlanFailed) -> None:
    view.reasons = list(event.reasons)
    view.uncovered = list(event.uncovered)
    view.plan = PlanInfo(
        planner=event.planner, attempts=event.attempts, latency_ms=event.latency_ms
    )
    view.project = event.project
    if _finish(view, "not_actionable" if event.status == "not_actionable" else "failed", event.at):
        view.error = "; ".join(event.reasons) or f"planning {event.status}"


# --- tasks -------------------------------------------------------------------------------


def _task_for(view: OrchestrationView, task_id: str, service: str) -> TaskView:
    task = view.task(task_id)
    if task is None:  # an event about a task the plan did not list: show it anyway
        task = TaskView(id=task_id, service=service)
        view.tasks.append(task)
    return task


def _on_dispatched(view: OrchestrationView, event: TaskDispatched) -> None:
    task = _task_for(view, event.task_id, event.service)
    if task.status == "completed" or event.attempt < task.attempts:
        return
    task.status = "running"
    task.attempts = event.attempt
    task.input = dict(event.input)
    task.started_at = event.at
    task.finished_at = None
    task.duration_ms = None


def _on_completed(view: OrchestrationView, event: TaskCompleted) -> None:
    task = _task_for(view, event.task_id, event.service)
    if task.status == "completed":
        return
    task.status = "completed"
    task.attempts = max(task.attempts, event.attempt)
    task.output = dict(event.output)
    task.error = None
    task.started_at = event.started_at
    task.duration_ms = event.duration_ms
    task.finished_at = event.started_at + event.duration_ms / 1000.0


def _on_failed(view: OrchestrationView, event: TaskFailed) -> None:
    task = _task_for(view, event.task_id, event.service)
    if task.status == "completed" or event.attempt < task.attempts:
        return
    task.status = "failed"
    task.attempts = event.attempt
    task.error = event.error
    task.started_at = event.started_at
    task.duration_ms = event.duration_ms
    task.finished_at = event.started_at + event.duration_ms / 1000.0


def _on_retrying(view: OrchestrationView, event: TaskRetrying) -> None:
    task = view.task(event.task_id)
    if task is None or task.status == "completed" or event.next_attempt <= task.attempts:
        return
    task.status = "retrying"
    task.error = event.reason


def _on_timed_out(view: OrchestrationView, event: TaskTimedOut) -> None:
    task = view.task(event.task_id)
    if task is None or task.status == "completed" or event.attempt < task.attempts:
        return
    task.status = "failed"
    task.attempts = max(task.attempts, event.attempt)
    task.error = f"timed out after {event.timeout_s:g}s (attempt {event.attempt})"
    task.finished_at = event.at
    if task.started_at is not None:
        task.duration_ms = (event.at - task.started_at) * 1000.0


def _on_aborted_task(view: OrchestrationView, event: TaskAborted) -> None:
    task = _task_for(view, event.task_id, event.service)
    if task.status == "completed" or event.attempt < task.attempts:
        return
    task.status = "aborted"
    task.attempts = event.attempt
    task.error = f"aborted the orchestration: {event.reason}"
    task.started_at = event.started_at or task.started_at
    task.duration_ms = event.duration_ms
    task.finished_at = event.at


def _on_progress(view: OrchestrationView, event: TaskProgress) -> None:
    task = _task_for(view, event.task_id, event.service)
    if task.progress_at is not None and event.at < task.progress_at:
        task.progress_updates += 1
        return
    task.progress = dict(event.update)
    task.progress_at = event.at
    task.progress_updates += 1


# --- the end of an orchestration ---------------------------------------------------------


def _on_done(view: OrchestrationView, event: OrchestrationDone) -> None:
    if not _finish(view, "completed", event.at):
        return
    view.results = dict(event.results)
    for task_id, output in event.outputs.items():
        task = view.task(task_id)
        if task is not None and task.output is None:
            task.output = dict(output)


def _on_orchestration_failed(view: OrchestrationView, event: OrchestrationFailed) -> None:
    if _finish(view, "failed", event.at):
        view.error = event.error


def _on_aborted(view: OrchestrationView, event: OrchestrationAborted) -> None:
    if _finish(view, "aborted", event.at):
        view.error = event.reason
        if event.payload is not None:
            view.results = dict(event.payload)


# --- pauses ------------------------------------------------------------------------------


def _on_paused(view: OrchestrationView, event: OrchestrationPaused) -> None:
    if view.status in ("running", "paused"):
        view.status = "paused"
        view.paused_services = list(event.services)
        view.paused_at = event.at
        view.pause_fail_at = event.fail_at
        for task_id in event.tasks:
            task = view.task(task_id)
            if task is not None and task.status in ("pending", "retrying", "failed"):
                task.status = "paused"


def _on_resumed(view: OrchestrationView, event: OrchestrationResumed) -> None:
    if view.paused_at is not None and event.at < view.paused_at:
        return  # the end of an earlier pause
    if view.status == "paused":
        view.status = "running"
    view.paused_services = []
    view.paused_at = None
    view.pause_fail_at = None


# --- compensation ------------------------------------------------------------------------


def _compensation_of(view: OrchestrationView, task_id: str) -> TaskCompensationView:
    task = _task_for(view, task_id, "")
    if task.compensation is None:
        task.compensation = TaskCompensationView()
    return task.compensation


def _on_compensating(view: OrchestrationView, event: OrchestrationCompensating) -> None:
    view.compensation = CompensationView(
        cause=event.cause,
        reason=event.reason,
        tasks=list(event.tasks),
        skipped=list(event.skipped),
        started_at=event.at,
    )
    for task_id in event.tasks:
        _compensation_of(view, task_id)
    view.paused_services = []
    view.paused_at = None
    view.pause_fail_at = None
    if not view.terminal:
        view.status = "compensating"
        view.error = event.reason


def _on_task_compensating(view: OrchestrationView, event: TaskCompensating) -> None:
    comp = _compensation_of(view, event.task_id)
    if comp.status in ("compensated", "failed", "resolved", "ignored"):
        return
    if event.attempt < comp.attempts:
        return
    comp.status = "running"
    comp.attempts = event.attempt
    comp.started_at = event.at
    if view.compensation is not None and event.task_id not in view.compensation.tasks:
        view.compensation.tasks.append(event.task_id)


def _on_compensated(view: OrchestrationView, event: TaskCompensated) -> None:
    comp = _compensation_of(view, event.task_id)
    if comp.status in ("compensated", "resolved", "ignored"):
        return
    comp.status = "compensated"
    comp.attempts = max(comp.attempts, event.attempt)
    comp.error = None
    comp.duration_ms = event.duration_ms
    comp.finished_at = event.at


def _on_compensation_failed(view: OrchestrationView, event: TaskCompensationFailed) -> None:
    comp = _compensation_of(view, event.task_id)
    if comp.status != "running" or event.attempt < comp.attempts:
        return
    comp.status = "retrying"
    comp.error = event.error


def _on_compensation_abandoned(view: OrchestrationView, event: TaskCompensationAbandoned) -> None:
    comp = _compensation_of(view, event.task_id)
    if comp.status in ("compensated", "resolved", "ignored"):
        return
    comp.status = "failed"
    comp.error = event.error
    comp.attempts = max(comp.attempts, event.attempts)
    comp.finished_at = event.at


def _on_compensation_resolved(view: OrchestrationView, event: TaskCompensationResolved) -> None:
    comp = _compensation_of(view, event.task_id)
    if comp.status != "failed":
        return
    comp.status = event.resolution
    comp.resolution_note = event.note
    comp.resolved_by = event.by
    comp.resolved_at = event.at


def _on_orchestration_compensated(view: OrchestrationView, event: OrchestrationCompensated) -> None:
    if view.compensation is None:
        view.compensation = CompensationView()
    summary = event.compensation
    view.compensation.status = "failed" if summary.failed else "completed"
    view.compensation.compensated = list(summary.compensated)
    view.compensation.failed = list(summary.failed)
    view.compensation.skipped = list(summary.skipped)
    view.compensation.finished_at = event.at


# --- webhook deliveries ------------------------------------------------------------------


def _attempt_view(attempt: WebhookAttempt) -> WebhookAttemptView:
    return WebhookAttemptView(
        n=attempt.n,
        at=attempt.at,
        status_code=attempt.status_code,
        error=attempt.error,
        duration_ms=attempt.duration_ms,
    )


def _on_webhook_retrying(view: OrchestrationView, event: WebhookRetrying) -> None:
    current = next((w for w in view.webhooks if w.url == event.url), None)
    if current is not None and (current.status != "retrying" or current.attempts > event.attempt):
        return  # the delivery ended, or this is an older attempt than the one shown
    delivery = WebhookDeliveryView(
        url=event.url,
        status="retrying",
        attempts=event.attempt,
        status_code=event.status_code,
        error=event.error,
        webhook_id=event.webhook_id,
        at=event.at,
        next_attempt_at=event.next_attempt_at,
    )
    _record_delivery(view, delivery, event.attempt_log)


def _on_webhook_delivered(view: OrchestrationView, event: WebhookDelivered) -> None:
    delivery = WebhookDeliveryView(
        url=event.url,
        status="delivered",
        attempts=event.attempt,
        status_code=event.status_code,
        webhook_id=event.webhook_id,
        at=event.at,
    )
    _record_delivery(view, delivery, event.attempt_log)


def _on_webhook_failed(view: OrchestrationView, event: WebhookFailed) -> None:
    delivery = WebhookDeliveryView(
        url=event.url,
        status="failed",
        attempts=event.attempts,
        status_code=event.status_code,
        error=event.error,
        webhook_id=event.webhook_id,
        at=event.at,
    )
    _record_delivery(view, delivery, event.attempt_log)


def _record_delivery(
    view: OrchestrationView, delivery: WebhookDeliveryView, attempt_log: list[WebhookAttempt]
) -> None:
    """Show ``delivery`` as its URL's row: in place of a pending one, else as the last row."""
    delivery.attempt_log = [_attempt_view(a) for a in attempt_log]
    delivery.status_codes = [a.status_code for a in attempt_log]
    for index, existing in enumerate(view.webhooks):
        if existing.url == delivery.url and existing.status == "retrying":
            view.webhooks[index] = delivery  # a pending delivery's row keeps its place
            return
    view.webhooks = [w for w in view.webhooks if w.url != delivery.url]
    view.webhooks.append(delivery)


# --- dispatch ----------------------------------------------------------------------------


_HANDLERS: Final = EventTable[OrchestrationView, None](
    entry(ActionSubmitted, _on_action),
    entry(PlanCreated, _on_plan_created),
    entry(PlanFailed, _on_plan_failed),
    entry(TaskDispatched, _on_dispatched),
    entry(TaskCompleted, _on_completed),
    entry(TaskFailed, _on_failed),
    entry(TaskRetrying, _on_retrying),
    entry(TaskTimedOut, _on_timed_out),
    entry(OrchestrationDone, _on_done),
    entry(OrchestrationFailed, _on_orchestration_failed),
    entry(OrchestrationAborted, _on_aborted),
    entry(TaskProgress, _on_progress),
    entry(TaskAborted, _on_aborted_task),
    entry(OrchestrationPaused, _on_paused),
    entry(OrchestrationResumed, _on_resumed),
    entry(OrchestrationAwaitingApproval, on_awaiting_approval),
    entry(TaskApprovalRequested, on_approval_requested),
    entry(OrchestrationApproved, on_approved),
    entry(OrchestrationRejected, on_rejected),
    entry(OrchestrationCompensating, _on_compensating),
    entry(TaskCompensating, _on_task_compensating),
    entry(TaskCompensated, _on_compensated),
    entry(TaskCompensationFailed, _on_compensation_failed),
    entry(TaskCompensationAbandoned, _on_compensation_abandoned),
    entry(TaskCompensationResolved, _on_compensation_resolved),
    entry(OrchestrationCompensated, _on_orchestration_compensated),
    entry(WebhookDelivered, _on_webhook_delivered),
    entry(WebhookFailed, _on_webhook_failed),
    entry(WebhookRetrying, _on_webhook_retrying),
)
"""The function that folds each event type; a newer event type this code does not know has
none: it is counted (``eventCount``, ``updatedAt``), otherwise ignored."""


# --- the fold ----------------------------------------------------------------------------


def apply(view: OrchestrationView | None, event: Event) -> OrchestrationView | None:
    """Fold one event into the view of its orchestration.

    The view is **updated in place** and returned (a fold over thousands of events must not
    copy); pass a copy (``msgspec.structs.replace`` is shallow, so rebuild from the events)
    if the old state must survive.

    Args:
        view: The orchestration's view so far; ``None`` before its first event.
        event: The next event of the orchestration, in log order.

    Returns:
        The updated view; a new one when ``view`` is ``None``. Events that are not about an
        orchestration (service events) leave ``view`` as it is and return it.
    """
    if not isinstance(event, OrchestrationEvent):
        return view
    if view is None:
        view = OrchestrationView(
            id=event.orchestration_id,
            project=getattr(event, "project", "default"),
            created_at=event.at,
        )
    view.event_count += 1
    view.updated_at = max(view.updated_at, event.at)
    try:
        handler = _HANDLERS.handlers[type(event)]
    except KeyError:  # an event class seen for the first time
        handler = _HANDLERS.resolve(type(event))
    if handler is not None:
        handler(view, event)
    return view


def fold(
    events: Iterable[Event], views: dict[str, OrchestrationView] | None = None
) -> dict[str, OrchestrationView]:
    """Fold events (in log order) into views, by orchestration id.

    Args:
        events: Events of any orchestrations, in the order of the event log; events that
            are not about an orchestration are skipped.
        views: Views to continue from (updated in place); a new dict when ``None``.

    Returns:
        ``views``, with every orchestration the events mention.
    """
    out: dict[str, OrchestrationView] = {} if views is None else views
    for event in events:
        if isinstance(event, OrchestrationEvent):
            key = event.orchestration_id
            updated = apply(out.get(key), event)
            if updated is not None:
                out[key] = updated
    return out

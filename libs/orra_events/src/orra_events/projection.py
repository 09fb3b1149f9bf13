"""The read-model projection: a pure fold of orchestration events into an orchestration view.

The gateway answers ``GET /orchestrations/{id}`` from it and the CLI reuses it for
``orra inspect -f`` (it folds the events it reads from the event stream itself), so both
show the same thing. The module does no I/O: give it events, in log order, and it gives
back views.

Usage::

    views = fold(events)                  # every orchestration of a sequence of events
    view = None
    for event in events_of_one_orchestration:
        view = apply(view, event)         # one orchestration, incrementally
    msgspec.json.encode(view)             # the JSON of GET /orchestrations/{id}
    state = ListingState()                # a list line's status without the full view:
    advance_listing(state, event)         #   the status rules below, on a few fields

The views are msgspec structs whose JSON field names are camelCase (``createdAt``,
``durationMs``), except ``parallel_groups``, as the seed spells it. Times are UNIX epoch
seconds (floats), as in the events.

Rules of the fold (each one is what the dispatcher and the event ids guarantee, applied
defensively so that a replayed or late event never corrupts a view):

* Orchestration status: ``action.submitted`` → ``planning``; ``plan.created`` →
  ``running``; ``plan.failed`` → ``not_actionable`` (planner status ``not_actionable``) or
  ``failed``; ``orchestration.done`` → ``completed``; ``orchestration.failed`` →
  ``failed``; ``orchestration.aborted`` → ``aborted``. The first terminal status wins, as
  the shared ``end:<orch>`` event id makes JetStream keep only the first terminal event.
* Task status: ``pending`` when planned; ``running`` on ``task.dispatched``; ``completed`` on
  ``task.completed`` (final: later events of the task are ignored); ``failed`` on
  ``task.failed`` or ``task.timed_out`` of the current attempt (events of an older attempt
  are ignored); ``retrying`` on ``task.retrying``.
* Pauses: ``orchestration.paused`` → ``paused`` (from ``running``; its tasks ``paused``,
  ``pausedServices`` and ``pauseFailAt`` set); ``orchestration.resumed`` → ``running``.
* Compensation: ``orchestration.compensating`` → ``compensating`` (unless already terminal:
  a user's abort ends the orchestration first) and ``compensation`` is filled in; each
  task to revert gets a ``compensation`` that moves ``pending`` → ``running``
  (``task.compensating``) → ``retrying`` (``task.compensation_failed``) → ``compensated``
  or ``failed`` (``task.compensation_abandoned``) → ``resolved`` / ``ignored``
  (``task.compensation_resolved``, an operator's decision). ``orchestration.compensated``
  closes it. A task whose handler raised ``AbortOrchestration`` is ``aborted``.
* Progress: ``task.progress`` keeps the task's last update (``progress``), its time and the
  number of updates.
* List lines: :func:`advance_listing` applies the status rules alone to a small
  :class:`ListingState` (status, the plan's task count, end time), so that a read model
  can keep a line for every orchestration without its full view; an ended line never
  changes again.
* ``dependsOn`` lists the other tasks of the plan whose output a task's input references
  (:func:`orra_events.plan.dependencies`: ``"$payment.status"``, ``"$payment.items.0.id"``,
  at any depth of the input), sorted; ``group`` is the index of the task's parallel group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec

from orra_events.events import (
    ActionSubmitted,
    DataField,
    Event,
    ExecutionMode,
    OrchestrationAborted,
    OrchestrationCompensated,
    OrchestrationCompensating,
    OrchestrationDone,
    OrchestrationEvent,
    OrchestrationFailed,
    OrchestrationPaused,
    OrchestrationResumed,
    PlanCreated,
    PlanFailed,
    TaskAborted,
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
    UncoveredPart,
    WebhookAttempt,
    WebhookDelivered,
    WebhookFailed,
    WebhookRetrying,
)
from orra_events.plan import dependencies

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "LISTING_EVENT_TYPES",
    "TERMINAL_STATUSES",
    "CompensationFailure",
    "CompensationView",
    "ListingState",
    "OrchestrationStatus",
    "OrchestrationSummary",
    "OrchestrationView",
    "PlanInfo",
    "TaskCompensationView",
    "TaskStatus",
    "TaskView",
    "WebhookAttemptView",
    "WebhookDeliveryView",
    "advance_listing",
    "apply",
    "compensation_failures",
    "fold",
    "is_terminal",
    "summarize",
    "to_builtins",
]

OrchestrationStatus = Literal[
    "planning",
    "running",
    "paused",
    "compensating",
    "completed",
    "failed",
    "aborted",
    "not_actionable",
]
"""Status of an orchestration."""

TaskStatus = Literal["pending", "running", "paused", "completed", "failed", "retrying", "aborted"]
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
    """

    id: str
    action: str
    status: OrchestrationStatus
    task_count: int
    created_at: float
    finished_at: float | None = None


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


class ListingState(msgspec.Struct, kw_only=True, rename="camel"):
    """The changing part of an orchestration's list line, folded without its full view.

    A read model that keeps a list line for every orchestration but a full
    :class:`OrchestrationView` only for some folds :data:`LISTING_EVENT_TYPES` into this
    small state with :func:`advance_listing`. The line agrees with :func:`summarize` of the
    full fold for ``status`` and ``finishedAt``; ``taskCount`` counts the plan's tasks (a
    full view also shows tasks that only events named), and the line of an orchestration
    that ended never changes again (a plan that arrives after an abort is not counted).

    Attributes:
        status: See :data:`OrchestrationStatus`.
        task_count: Tasks of the plan.
        finished_at: When it reached a terminal status.
        paused_at: When the current pause began (to ignore the end of an earlier pause).
    """

    status: OrchestrationStatus = "planning"
    task_count: int = 0
    finished_at: float | None = None
    paused_at: float | None = None

    @property
    def terminal(self) -> bool:
        """Whether the orchestration has reached a final status."""
        return is_terminal(self.status)


LISTING_EVENT_TYPES: Final[frozenset[str]] = frozenset(
    {
        PlanCreated.TYPE,
        PlanFailed.TYPE,
        OrchestrationDone.TYPE,
        OrchestrationFailed.TYPE,
        OrchestrationAborted.TYPE,
        OrchestrationPaused.TYPE,
        OrchestrationResumed.TYPE,
        OrchestrationCompensating.TYPE,
    }
)
"""Types of the events that can change a :class:`ListingState` (besides its creation)."""


def _end_listing(state: ListingState, status: OrchestrationStatus, at: float) -> bool:
    state.status = status
    state.finished_at = at
    state.paused_at = None
    return True


def advance_listing(state: ListingState, event: Event) -> bool:
    """Fold one event of the orchestration into its list line state, in place.

    Applies the status rules of :func:`apply` (see the module's docstring) to the fields
    of :class:`ListingState` only; events of other types leave it as it is.

    Args:
        state: The state so far (a new ``ListingState()`` at ``action.submitted``).
        event: The next event of the same orchestration, in log order.

    Returns:
        Whether ``state`` changed.
    """
    if state.terminal:
        return False
    match event:
        case PlanCreated():
            changed = state.task_count != len(event.plan.tasks)
            state.task_count = len(event.plan.tasks)
            if state.status == "planning":
                state.status = "running"
                changed = True
            return changed
        case PlanFailed():
            failed: OrchestrationStatus = (
                "not_actionable" if event.status == "not_actionable" else "failed"
            )
            return _end_listing(state, failed, event.at)
        case OrchestrationDone():
            return _end_listing(state, "completed", event.at)
        case OrchestrationFailed():
            return _end_listing(state, "failed", event.at)
        case OrchestrationAborted():
            return _end_listing(state, "aborted", event.at)
        case OrchestrationPaused():
            if state.status not in ("running", "paused"):
                return False
            state.status = "paused"
            state.paused_at = event.at
            return True
        case OrchestrationResumed():
            if state.paused_at is not None and event.at < state.paused_at:
                return False
            changed = state.status == "paused" or state.paused_at is not None
            if state.status == "paused":
                state.status = "running"
            state.paused_at = None
            return changed
        case OrchestrationCompensating():
            state.status = "compensating"
            state.paused_at = None
            return True
        case _:
            return False


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


def to_builtins(view: msgspec.Struct) -> Any:
    """A view as plain JSON-compatible Python values, with its camelCase field names."""
    return msgspec.to_builtins(view)


# --- the fold ------------------------------------------------------------------------------


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


def _on_plan_failed(view: OrchestrationView, event: PlanFailed) -> None:
    view.reasons = list(event.reasons)
    view.uncovered = list(event.uncovered)
    view.plan = PlanInfo(
        planner=event.planner, attempts=event.attempts, latency_ms=event.latency_ms
    )
    view.project = event.project
    if _finish(view, "not_actionable" if event.status == "not_actionable" else "failed", event.at):
        view.error = "; ".join(event.reasons) or f"planning {event.status}"


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


def _attempt_view(attempt: WebhookAttempt) -> WebhookAttemptView:
    return WebhookAttemptView(
        n=attempt.n,
        at=attempt.at,
        status_code=attempt.status_code,
        error=attempt.error,
        duration_ms=attempt.duration_ms,
    )


def _on_webhook(
    view: OrchestrationView, event: WebhookDelivered | WebhookFailed | WebhookRetrying
) -> None:
    if isinstance(event, WebhookRetrying):
        current = next((w for w in view.webhooks if w.url == event.url), None)
        if current is not None and (
            current.status != "retrying" or current.attempts > event.attempt
        ):
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
    elif isinstance(event, WebhookDelivered):
        delivery = WebhookDeliveryView(
            url=event.url,
            status="delivered",
            attempts=event.attempt,
            status_code=event.status_code,
            webhook_id=event.webhook_id,
            at=event.at,
        )
    else:
        delivery = WebhookDeliveryView(
            url=event.url,
            status="failed",
            attempts=event.attempts,
            status_code=event.status_code,
            error=event.error,
            webhook_id=event.webhook_id,
            at=event.at,
        )
    delivery.attempt_log = [_attempt_view(a) for a in event.attempt_log]
    delivery.status_codes = [a.status_code for a in event.attempt_log]
    for index, existing in enumerate(view.webhooks):
        if existing.url == event.url and existing.status == "retrying":
            view.webhooks[index] = delivery  # a pending delivery's row keeps its place
            return
    view.webhooks = [w for w in view.webhooks if w.url != event.url]
    view.webhooks.append(delivery)


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
    match event:
        case ActionSubmitted():
            _on_action(view, event)
        case PlanCreated():
            _on_plan_created(view, event)
        case PlanFailed():
            _on_plan_failed(view, event)
        case TaskDispatched():
            _on_dispatched(view, event)
        case TaskCompleted():
            _on_completed(view, event)
        case TaskFailed():
            _on_failed(view, event)
        case TaskRetrying():
            _on_retrying(view, event)
        case TaskTimedOut():
            _on_timed_out(view, event)
        case OrchestrationDone():
            _on_done(view, event)
        case OrchestrationFailed():
            _on_orchestration_failed(view, event)
        case OrchestrationAborted():
            _on_aborted(view, event)
        case TaskProgress():
            _on_progress(view, event)
        case TaskAborted():
            _on_aborted_task(view, event)
        case OrchestrationPaused():
            _on_paused(view, event)
        case OrchestrationResumed():
            _on_resumed(view, event)
        case OrchestrationCompensating():
            _on_compensating(view, event)
        case TaskCompensating():
            _on_task_compensating(view, event)
        case TaskCompensated():
            _on_compensated(view, event)
        case TaskCompensationFailed():
            _on_compensation_failed(view, event)
        case TaskCompensationAbandoned():
            _on_compensation_abandoned(view, event)
        case TaskCompensationResolved():
            _on_compensation_resolved(view, event)
        case OrchestrationCompensated():
            _on_orchestration_compensated(view, event)
        case WebhookDelivered() | WebhookFailed() | WebhookRetrying():
            _on_webhook(view, event)
        case _:  # a newer event type this code does not know: counted, otherwise ignored
            pass
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

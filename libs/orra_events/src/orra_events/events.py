"""Every event of Orra, as frozen, typed, versioned msgspec structs.

Nothing else in Orra defines an event. Each event is tagged by its type (``"type"`` on the
wire, for example ``"task.completed"``) and carries ``v``, the major version of its schema.
Compatible changes (a new optional field) keep ``v``; an incompatible change bumps it, and
decoders refuse a major version they do not know (see :mod:`orra_events.codec`).

Timestamps are UNIX epoch seconds as floats: cheap to encode on the hot path and exact
enough for durations.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, ClassVar, Literal

import msgspec

__all__ = [
    "ALL_EVENTS",
    "ActionSubmitted",
    "CompensationSummary",
    "DataField",
    "Event",
    "EventType",
    "ExecutionMode",
    "OrchestrationAborted",
    "OrchestrationCompensated",
    "OrchestrationCompensating",
    "OrchestrationDone",
    "OrchestrationEvent",
    "OrchestrationFailed",
    "OrchestrationPaused",
    "OrchestrationResumed",
    "Plan",
    "PlanCreated",
    "PlanFailed",
    "PlanTask",
    "ServiceEvent",
    "ServiceHeartbeat",
    "ServiceRegistered",
    "TaskAborted",
    "TaskCompensated",
    "TaskCompensating",
    "TaskCompensationAbandoned",
    "TaskCompensationFailed",
    "TaskCompensationResolved",
    "TaskCompleted",
    "TaskDispatched",
    "TaskFailed",
    "TaskProgress",
    "TaskRetrying",
    "TaskTimedOut",
    "UncoveredPart",
    "WebhookAttempt",
    "WebhookDelivered",
    "WebhookFailed",
    "WebhookRetrying",
    "now",
]

ExecutionMode = Literal["groups", "eager"]
"""How the dispatcher releases tasks: whole parallel groups, or each task as soon as it can."""


def now() -> float:
    """Return the current time as UNIX epoch seconds."""
    return time.time()


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every event.

    Attributes:
        event_id: Unique and deterministic where a retried publish must deduplicate; it is
            sent as the ``Nats-Msg-Id`` header.
        at: When the event happened, UNIX epoch seconds.
        v: Major version of the event's schema.
    """

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    event_id: str
    at: float = msgspec.field(default_factory=now)
    v: int = 1

    @property
    def type(self) -> str:
        """The event's type, for example ``"task.completed"``."""
        return self.TYPE


class OrchestrationEvent(Event, frozen=True, kw_only=True):
    """An event about one orchestration; its subject is ``<type>.<orchestration_id>``."""

    orchestration_id: str


class ServiceEvent(Event, frozen=True, kw_only=True):
    """An event about a registered service; its subject is ``<type>.<service>``."""

    service: str
    project: str = "default"


# --- action and plan ---------------------------------------------------------------------


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
    """

    id: str
    service: str
    input: dict[str, Any] = msgspec.field(default_factory=dict)
    version: str | None = None
    serves: str | None = None


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


# --- tasks -------------------------------------------------------------------------------


class TaskDispatched(OrchestrationEvent, frozen=True, kw_only=True, tag="task.dispatched"):
    """The dispatcher sent a task to its service.

    The same message is what the service receives on ``work.<service>``.
    """

    TYPE: ClassVar[str] = "task.dispatched"

    task_id: str
    service: str
    input: dict[str, Any]
    attempt: int
    idempotency_key: str
    timeout_s: float
    version: str | None = None
    """The service version the task was planned against; a replica of another version
    hands it back instead of running it (``None``: any version runs it)."""


class TaskCompleted(OrchestrationEvent, frozen=True, kw_only=True, tag="task.completed"):
    """A service finished a task."""

    TYPE: ClassVar[str] = "task.completed"

    task_id: str
    service: str
    output: dict[str, Any]
    attempt: int
    idempotency_key: str
    started_at: float
    duration_ms: float
    replayed: bool = False


class TaskFailed(OrchestrationEvent, frozen=True, kw_only=True, tag="task.failed"):
    """A service could not finish a task.

    ``outcome_unknown`` (with ``retryable`` false) says the task may have taken effect
    before it failed (its handler was interrupted, a remote call got no answer): the
    dispatcher does not run it again and leaves it for an operator, as for a timed-out
    task of a service registered with ``retry_on_timeout`` false.
    """

    TYPE: ClassVar[str] = "task.failed"

    task_id: str
    service: str
    error: str
    attempt: int
    idempotency_key: str
    started_at: float
    duration_ms: float
    retryable: bool = True
    outcome_unknown: bool = False


class TaskRetrying(OrchestrationEvent, frozen=True, kw_only=True, tag="task.retrying"):
    """The dispatcher will dispatch a task again after ``delay_s``."""

    TYPE: ClassVar[str] = "task.retrying"

    task_id: str
    next_attempt: int
    delay_s: float
    reason: str


class TaskTimedOut(OrchestrationEvent, frozen=True, kw_only=True, tag="task.timed_out"):
    """A dispatched task did not finish within its timeout."""

    TYPE: ClassVar[str] = "task.timed_out"

    task_id: str
    attempt: int
    timeout_s: float


class TaskProgress(OrchestrationEvent, frozen=True, kw_only=True, tag="task.progress"):
    """A running task reported an interim update (``await task.progress({...})``).

    Informational: the dispatcher does not consume it. ``seq`` counts the updates of one
    attempt from 1, so the event id ``pg:<orch>:<task>:<attempt>:<seq>`` is deterministic.
    """

    TYPE: ClassVar[str] = "task.progress"

    task_id: str
    service: str
    attempt: int
    seq: int
    update: dict[str, Any]


class TaskAborted(OrchestrationEvent, frozen=True, kw_only=True, tag="task.aborted"):
    """A service aborted the whole orchestration from inside a task.

    It is the attempt's result (event id ``r:<orch>:<task>:<attempt>``, like
    ``task.completed``); the dispatcher turns it into ``orchestration.aborted`` with the
    same ``reason`` and ``payload``, after compensating what completed.
    """

    TYPE: ClassVar[str] = "task.aborted"

    task_id: str
    service: str
    attempt: int
    idempotency_key: str
    reason: str
    payload: dict[str, Any] | None = None
    started_at: float = 0.0
    duration_ms: float = 0.0


class TaskCompensating(OrchestrationEvent, frozen=True, kw_only=True, tag="task.compensating"):
    """The dispatcher asks a revertible service to undo a completed task.

    The same message goes to the service on ``work.<service>`` (its type tells the SDK
    to run the revert handler). ``idempotency_key`` is ``<orch>:<task>:revert``.
    """

    TYPE: ClassVar[str] = "task.compensating"

    task_id: str
    service: str
    input: dict[str, Any]
    output: dict[str, Any]
    reason: str
    attempt: int
    idempotency_key: str
    timeout_s: float
    previous_error: str | None = None
    version: str | None = None
    """The service version the task ran on; only a replica of it runs the revert."""


class TaskCompensated(OrchestrationEvent, frozen=True, kw_only=True, tag="task.compensated"):
    """A service's revert handler undid a task."""

    TYPE: ClassVar[str] = "task.compensated"

    task_id: str
    service: str
    attempt: int
    started_at: float = 0.0
    duration_ms: float = 0.0


class TaskCompensationFailed(
    OrchestrationEvent, frozen=True, kw_only=True, tag="task.compensation_failed"
):
    """One attempt of a revert handler failed; the dispatcher may try again."""

    TYPE: ClassVar[str] = "task.compensation_failed"

    task_id: str
    service: str
    attempt: int
    error: str
    retryable: bool = True
    started_at: float = 0.0
    duration_ms: float = 0.0


class TaskCompensationAbandoned(
    OrchestrationEvent, frozen=True, kw_only=True, tag="task.compensation_abandoned"
):
    """The dispatcher gave up compensating a task: an operator must look at it.

    Listed by ``orra comp-fail ls`` until a ``task.compensation_resolved`` settles it.
    """

    TYPE: ClassVar[str] = "task.compensation_abandoned"

    task_id: str
    service: str
    input: dict[str, Any]
    output: dict[str, Any]
    reason: str
    error: str
    attempts: int
    project: str = "default"


class TaskCompensationResolved(
    OrchestrationEvent, frozen=True, kw_only=True, tag="task.compensation_resolved"
):
    """An operator settled a failed compensation: fixed by hand, or ignored."""

    TYPE: ClassVar[str] = "task.compensation_resolved"

    task_id: str
    resolution: Literal["resolved", "ignored"]
    note: str | None = None
    by: str | None = None


# --- orchestration outcome ---------------------------------------------------------------


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


# --- webhooks ----------------------------------------------------------------------------


class WebhookAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """One HTTP attempt of a webhook delivery (an entry of ``attempt_log``).

    Attributes:
        n: The attempt's number (1-based). Numbers may skip one: an attempt cut short by a
            notifier crash leaves no record.
        at: When the attempt started, UNIX epoch seconds.
        status_code: The HTTP status the receiver answered, ``None`` when no answer came.
        error: Why no answer came (timeout, connection error, refused URL), short.
        duration_ms: How long the attempt took.
    """

    n: int
    at: float
    status_code: int | None = None
    error: str | None = None
    duration_ms: float = 0.0


class WebhookDelivered(OrchestrationEvent, frozen=True, kw_only=True, tag="webhook.delivered"):
    """The notifier delivered the result to a webhook.

    ``attempt_log`` holds the delivery's attempts, oldest first, the last one the success;
    only the latest 20 are kept (``attempt`` counts them all). Events written before the
    log existed have it empty.
    """

    TYPE: ClassVar[str] = "webhook.delivered"

    url: str
    attempt: int
    status_code: int
    webhook_id: str
    attempt_log: list[WebhookAttempt] = msgspec.field(default_factory=list)


class WebhookFailed(OrchestrationEvent, frozen=True, kw_only=True, tag="webhook.failed"):
    """The notifier gave up delivering the result to a webhook.

    ``attempt_log`` holds the delivery's attempts, oldest first, the last one the failure
    that ended it; only the latest 20 are kept (``attempts`` counts them all). Events
    written before the log existed have it empty.
    """

    TYPE: ClassVar[str] = "webhook.failed"

    url: str
    attempts: int
    status_code: int | None
    error: str
    webhook_id: str
    attempt_log: list[WebhookAttempt] = msgspec.field(default_factory=list)


class WebhookRetrying(OrchestrationEvent, frozen=True, kw_only=True, tag="webhook.retrying"):
    """An attempt to deliver to a webhook failed; the notifier will try again.

    Appended once per failed attempt that is retried (never when the first attempt
    succeeds), so every view shows a delivery that is still pending: how many attempts it
    took so far, how the last one went and when the next one starts. The delivery's
    ``webhook.delivered`` or ``webhook.failed`` follows in the end.

    Attributes:
        url: Where the result is being delivered.
        attempt: The attempt that failed (1-based).
        webhook_id: The ``webhook-id`` header the receiver sees.
        next_attempt_at: When the next attempt is due (UNIX epoch seconds).
        status_code: The receiver's HTTP status, ``None`` when no answer came.
        error: Why no answer came (timeout, connection error), short.
        attempt_log: The delivery's attempts so far, oldest first (the latest 20).
    """

    TYPE: ClassVar[str] = "webhook.retrying"

    url: str
    attempt: int
    webhook_id: str
    next_attempt_at: float
    status_code: int | None = None
    error: str | None = None
    attempt_log: list[WebhookAttempt] = msgspec.field(default_factory=list)


# --- services ----------------------------------------------------------------------------


class ServiceRegistered(ServiceEvent, frozen=True, kw_only=True, tag="service.registered"):
    """A service or agent declared itself: what it does and its input/output JSON Schemas.

    Its subject is ``service.registered.<service>.<version token>``: one registration per
    name and version, never replaced (see :mod:`orra_events.registrations`). ``examples``
    are phrases of what the service does, in its users' words, that teach the planner the
    service's synonyms. ``retry_on_timeout`` false says that a task of the service that
    timed out must not be run again (its effect may have happened and a repeat would do it
    twice): the dispatcher fails it for good and leaves it for an operator instead of
    retrying it (see docs/architecture.md, "Retries and timeouts").
    """

    TYPE: ClassVar[str] = "service.registered"

    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    revertible: bool = False
    version: str = "1"
    kind: Literal["service", "agent"] = "service"
    schema_hash: str = ""
    examples: list[str] = msgspec.field(default_factory=list)
    retry_on_timeout: bool = True


class ServiceHeartbeat(ServiceEvent, frozen=True, kw_only=True, tag="service.heartbeat"):
    """A running instance of a service is alive.

    Its subject is ``service.heartbeat.<service>.<version token>`` (the last beat of any
    instance of that version), or ``service.heartbeat.<service>`` when ``version`` is
    ``None`` (an SDK older than versioned heartbeats).
    """

    TYPE: ClassVar[str] = "service.heartbeat"

    instance_id: str
    interval_s: float
    version: str | None = None


ALL_EVENTS: tuple[type[Event], ...] = (
    ActionSubmitted,
    PlanCreated,
    PlanFailed,
    TaskDispatched,
    TaskCompleted,
    TaskFailed,
    TaskRetrying,
    TaskTimedOut,
    TaskProgress,
    TaskAborted,
    TaskCompensating,
    TaskCompensated,
    TaskCompensationFailed,
    TaskCompensationAbandoned,
    TaskCompensationResolved,
    OrchestrationDone,
    OrchestrationFailed,
    OrchestrationAborted,
    OrchestrationCompensating,
    OrchestrationCompensated,
    OrchestrationPaused,
    OrchestrationResumed,
    WebhookDelivered,
    WebhookFailed,
    WebhookRetrying,
    ServiceRegistered,
    ServiceHeartbeat,
)
"""Every concrete event class; the codec, the contracts and AsyncAPI are built from it."""

EventType = Literal[
    "action.submitted",
    "plan.created",
    "plan.failed",
    "task.dispatched",
    "task.completed",
    "task.failed",
    "task.retrying",
    "task.timed_out",
    "task.progress",
    "task.aborted",
    "task.compensating",
    "task.compensated",
    "task.compensation_failed",
    "task.compensation_abandoned",
    "task.compensation_resolved",
    "orchestration.done",
    "orchestration.failed",
    "orchestration.aborted",
    "orchestration.compensating",
    "orchestration.compensated",
    "orchestration.paused",
    "orchestration.resumed",
    "webhook.delivered",
    "webhook.failed",
    "webhook.retrying",
    "service.registered",
    "service.heartbeat",
]

"""Every event of Orra, as frozen, typed, versioned msgspec structs.

Nothing else in Orra defines an event. Each event is tagged by its type (``"type"`` on the
wire, for example ``"task.completed"``) and carries ``v``, the major version of its schema.
Compatible changes (a new optional field) keep ``v``; an incompatible change bumps it, and
decoders refuse a major version they do not know (see :mod:`orra_events.codec`).

Timestamps are UNIX epoch seconds as floats: cheap to encode on the hot path and exact
enough for durations.

The events are grouped by family in submodules (``base``, ``planning``, ``tasks``,
``outcome``, ``approvals``, ``webhooks``, ``services``); import them from here or from
:mod:`orra_events`.
"""

from __future__ import annotations

from typing import Literal

from orra_events.events.approvals import (
    OrchestrationApproved,
    OrchestrationAwaitingApproval,
    OrchestrationRejected,
    TaskApprovalRequested,
)
from orra_events.events.base import Event, ExecutionMode, OrchestrationEvent, ServiceEvent, now
from orra_events.events.outcome import (
    CompensationSummary,
    OrchestrationAborted,
    OrchestrationCompensated,
    OrchestrationCompensating,
    OrchestrationDone,
    OrchestrationFailed,
    OrchestrationPaused,
    OrchestrationResumed,
)
from orra_events.events.planning import (
    ActionSubmitted,
    DataField,
    Plan,
    PlanCreated,
    PlanFailed,
    PlanTask,
    UncoveredPart,
)
from orra_events.events.services import (
    ServiceHeartbeat,
    ServiceRegistered,
)
from orra_events.events.tasks import (
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
)
from orra_events.events.webhooks import (
    WebhookAttempt,
    WebhookDelivered,
    WebhookFailed,
    WebhookRetrying,
)

__all__ = [
    "ALL_EVENTS",
    "ActionSubmitted",
    "CompensationSummary",
    "DataField",
    "Event",
    "EventType",
    "ExecutionMode",
    "OrchestrationAborted",
    "OrchestrationApproved",
    "OrchestrationAwaitingApproval",
    "OrchestrationCompensated",
    "OrchestrationCompensating",
    "OrchestrationDone",
    "OrchestrationEvent",
    "OrchestrationFailed",
    "OrchestrationPaused",
    "OrchestrationRejected",
    "OrchestrationResumed",
    "Plan",
    "PlanCreated",
    "PlanFailed",
    "PlanTask",
    "ServiceEvent",
    "ServiceHeartbeat",
    "ServiceRegistered",
    "TaskAborted",
    "TaskApprovalRequested",
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
    OrchestrationAwaitingApproval,
    TaskApprovalRequested,
    OrchestrationApproved,
    OrchestrationRejected,
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
    "orchestration.awaiting_approval",
    "task.approval_requested",
    "orchestration.approved",
    "orchestration.rejected",
    "webhook.delivered",
    "webhook.failed",
    "webhook.retrying",
    "service.registered",
    "service.heartbeat",
]

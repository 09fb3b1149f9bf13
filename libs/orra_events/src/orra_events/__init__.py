"""Orra's event contracts: the one source of truth for every event, subject and stream.

Import events, the codec and the topology from here::

    from orra_events import TaskCompleted, Topology, decode, encode
"""

from orra_events.bus import BrokerUnavailable, Bus, Retry
from orra_events.codec import EVENT_TYPES, decode, decode_as, encode
from orra_events.errors import (
    DecodeError,
    InvalidName,
    MalformedEvent,
    OrraEventsError,
    SchemaMismatch,
    UnknownEventType,
    UnsupportedVersion,
)
from orra_events.events import (
    ALL_EVENTS,
    ActionSubmitted,
    DataField,
    Event,
    ExecutionMode,
    OrchestrationAborted,
    OrchestrationDone,
    OrchestrationEvent,
    OrchestrationFailed,
    Plan,
    PlanCreated,
    PlanFailed,
    PlanTask,
    ServiceEvent,
    ServiceHeartbeat,
    ServiceRegistered,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    TaskRetrying,
    TaskTimedOut,
    WebhookDelivered,
    WebhookFailed,
    now,
)
from orra_events.ids import new_event_id, new_orchestration_id
from orra_events.topology import Topology, check_name

__all__ = [
    "ALL_EVENTS",
    "EVENT_TYPES",
    "ActionSubmitted",
    "BrokerUnavailable",
    "Bus",
    "DataField",
    "DecodeError",
    "Event",
    "ExecutionMode",
    "InvalidName",
    "MalformedEvent",
    "OrchestrationAborted",
    "OrchestrationDone",
    "OrchestrationEvent",
    "OrchestrationFailed",
    "OrraEventsError",
    "Plan",
    "PlanCreated",
    "PlanFailed",
    "PlanTask",
    "Retry",
    "SchemaMismatch",
    "ServiceEvent",
    "ServiceHeartbeat",
    "ServiceRegistered",
    "TaskCompleted",
    "TaskDispatched",
    "TaskFailed",
    "TaskRetrying",
    "TaskTimedOut",
    "Topology",
    "UnknownEventType",
    "UnsupportedVersion",
    "WebhookDelivered",
    "WebhookFailed",
    "check_name",
    "decode",
    "decode_as",
    "encode",
    "new_event_id",
    "new_orchestration_id",
    "now",
]

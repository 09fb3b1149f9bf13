"""Orra's event contracts: the one source of truth for every event, subject and stream.

Import events, the codec and the topology from here::

    from orra_events import TaskCompleted, Topology, decode, encode

Every name is loaded on first use (PEP 562 ``__getattr__``): importing the package, a
submodule or one name imports only the submodule that defines it, so that a process that
needs the topology or a constant (the ``orra`` command) does not pay for nats-py and the
bus.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orra_events.bus import BrokerUnavailable, Bus
    from orra_events.codec import EVENT_TYPES, decode, decode_as, encode
    from orra_events.consumers import Park, Retry
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
        CompensationSummary,
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
        Plan,
        PlanCreated,
        PlanFailed,
        PlanTask,
        ServiceEvent,
        ServiceHeartbeat,
        ServiceRegistered,
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
        now,
    )
    from orra_events.ids import new_event_id, new_orchestration_id
    from orra_events.records import (
        WEBHOOK_SECRETS_BUCKET,
        WEBHOOKS_BUCKET,
        ProjectWebhooks,
        SigningSecretRecord,
        WebhookRecord,
        decode_project_webhooks,
        decode_signing_secret,
        encode_record,
        first_signing_secret,
        new_signing_secret,
        rotate_signing_secret,
        signing_secrets,
    )
    from orra_events.signing import PREVIOUS_SECRET_GRACE_S
    from orra_events.topology import Topology, check_name

__all__ = [
    "ALL_EVENTS",
    "EVENT_TYPES",
    "PREVIOUS_SECRET_GRACE_S",
    "WEBHOOKS_BUCKET",
    "WEBHOOK_SECRETS_BUCKET",
    "ActionSubmitted",
    "BrokerUnavailable",
    "Bus",
    "CompensationSummary",
    "DataField",
    "DecodeError",
    "Event",
    "ExecutionMode",
    "InvalidName",
    "MalformedEvent",
    "OrchestrationAborted",
    "OrchestrationCompensated",
    "OrchestrationCompensating",
    "OrchestrationDone",
    "OrchestrationEvent",
    "OrchestrationFailed",
    "OrchestrationPaused",
    "OrchestrationResumed",
    "OrraEventsError",
    "Park",
    "Plan",
    "PlanCreated",
    "PlanFailed",
    "PlanTask",
    "ProjectWebhooks",
    "Retry",
    "SchemaMismatch",
    "ServiceEvent",
    "ServiceHeartbeat",
    "ServiceRegistered",
    "SigningSecretRecord",
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
    "Topology",
    "UncoveredPart",
    "UnknownEventType",
    "UnsupportedVersion",
    "WebhookAttempt",
    "WebhookDelivered",
    "WebhookFailed",
    "WebhookRecord",
    "WebhookRetrying",
    "check_name",
    "decode",
    "decode_as",
    "decode_project_webhooks",
    "decode_signing_secret",
    "encode",
    "encode_record",
    "first_signing_secret",
    "new_event_id",
    "new_orchestration_id",
    "new_signing_secret",
    "now",
    "rotate_signing_secret",
    "signing_secrets",
]

_MODULE_OF: dict[str, str] = {
    "BrokerUnavailable": "orra_events.bus",
    "Bus": "orra_events.bus",
    "Park": "orra_events.consumers",
    "Retry": "orra_events.consumers",
    "EVENT_TYPES": "orra_events.codec",
    "decode": "orra_events.codec",
    "decode_as": "orra_events.codec",
    "encode": "orra_events.codec",
    "DecodeError": "orra_events.errors",
    "InvalidName": "orra_events.errors",
    "MalformedEvent": "orra_events.errors",
    "OrraEventsError": "orra_events.errors",
    "SchemaMismatch": "orra_events.errors",
    "UnknownEventType": "orra_events.errors",
    "UnsupportedVersion": "orra_events.errors",
    "ALL_EVENTS": "orra_events.events",
    "ActionSubmitted": "orra_events.events",
    "CompensationSummary": "orra_events.events",
    "DataField": "orra_events.events",
    "Event": "orra_events.events",
    "ExecutionMode": "orra_events.events",
    "OrchestrationAborted": "orra_events.events",
    "OrchestrationCompensated": "orra_events.events",
    "OrchestrationCompensating": "orra_events.events",
    "OrchestrationDone": "orra_events.events",
    "OrchestrationEvent": "orra_events.events",
    "OrchestrationFailed": "orra_events.events",
    "OrchestrationPaused": "orra_events.events",
    "OrchestrationResumed": "orra_events.events",
    "Plan": "orra_events.events",
    "PlanCreated": "orra_events.events",
    "PlanFailed": "orra_events.events",
    "PlanTask": "orra_events.events",
    "ServiceEvent": "orra_events.events",
    "ServiceHeartbeat": "orra_events.events",
    "ServiceRegistered": "orra_events.events",
    "TaskAborted": "orra_events.events",
    "TaskCompensated": "orra_events.events",
    "TaskCompensating": "orra_events.events",
    "TaskCompensationAbandoned": "orra_events.events",
    "TaskCompensationFailed": "orra_events.events",
    "TaskCompensationResolved": "orra_events.events",
    "TaskCompleted": "orra_events.events",
    "TaskDispatched": "orra_events.events",
    "TaskFailed": "orra_events.events",
    "TaskProgress": "orra_events.events",
    "TaskRetrying": "orra_events.events",
    "TaskTimedOut": "orra_events.events",
    "UncoveredPart": "orra_events.events",
    "WebhookAttempt": "orra_events.events",
    "WebhookDelivered": "orra_events.events",
    "WebhookFailed": "orra_events.events",
    "WebhookRetrying": "orra_events.events",
    "now": "orra_events.events",
    "new_event_id": "orra_events.ids",
    "new_orchestration_id": "orra_events.ids",
    "PREVIOUS_SECRET_GRACE_S": "orra_events.signing",
    "WEBHOOK_SECRETS_BUCKET": "orra_events.records",
    "WEBHOOKS_BUCKET": "orra_events.records",
    "ProjectWebhooks": "orra_events.records",
    "SigningSecretRecord": "orra_events.records",
    "WebhookRecord": "orra_events.records",
    "decode_project_webhooks": "orra_events.records",
    "decode_signing_secret": "orra_events.records",
    "encode_record": "orra_events.records",
    "first_signing_secret": "orra_events.records",
    "new_signing_secret": "orra_events.records",
    "rotate_signing_secret": "orra_events.records",
    "signing_secrets": "orra_events.records",
    "Topology": "orra_events.topology",
    "check_name": "orra_events.topology",
}
"""The submodule that defines each exported name."""


def __getattr__(name: str) -> Any:
    """Import an exported name's submodule on first use (PEP 562)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

"""What the dispatcher receives and sends, declared once for the AsyncAPI document.

Read by :mod:`orra_events.asyncapi` (entry point ``orra.asyncapi``). The dispatcher's
intake is the hot path: it runs on :class:`orra_events.consumers.PushConsumer`, never on
these declarations, and never imports this module.
"""

from __future__ import annotations

from orra_dispatcher.handlers import CONSUMED, DURABLE
from orra_events import (
    EVENT_TYPES,
    OrchestrationAborted,
    OrchestrationAwaitingApproval,
    OrchestrationCompensated,
    OrchestrationCompensating,
    OrchestrationDone,
    OrchestrationFailed,
    OrchestrationPaused,
    OrchestrationRejected,
    OrchestrationResumed,
    TaskApprovalRequested,
    TaskCompensating,
    TaskCompensationAbandoned,
    TaskDispatched,
    TaskRetrying,
    TaskTimedOut,
    Topology,
)
from orra_events.asyncapi import Declarations

__all__ = ["DISPATCHER"]

_TOPOLOGY = Topology()

DISPATCHER = Declarations("dispatcher")
"""The dispatcher's subscriptions and publications."""

for _type in CONSUMED:
    DISPATCHER.receive(
        EVENT_TYPES[_type],
        how="push",
        stream=_TOPOLOGY.events_stream,
        consumer=DURABLE,
        description="Advances the orchestration (one push group shared by the replicas; "
        "acked once its outputs and snapshot are stored).",
    )
DISPATCHER.follow_registry()
DISPATCHER.send(TaskDispatched)
DISPATCHER.send(
    TaskDispatched,
    family="work.{service}",
    description="Tasks for one service; its replicas share them (work-queue stream, "
    "durable svc_<service>).",
)
for _event in (
    TaskRetrying,
    TaskTimedOut,
    TaskCompensating,
    TaskCompensationAbandoned,
    TaskApprovalRequested,
    OrchestrationDone,
    OrchestrationFailed,
    OrchestrationAborted,
    OrchestrationRejected,
    OrchestrationCompensating,
    OrchestrationCompensated,
    OrchestrationPaused,
    OrchestrationResumed,
    OrchestrationAwaitingApproval,
):
    DISPATCHER.send(_event)
DISPATCHER.send(None)

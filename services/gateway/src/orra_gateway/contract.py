"""What the gateway receives and sends, declared once for the AsyncAPI document.

Read by :mod:`orra_events.asyncapi` (entry point ``orra.asyncapi``); the gateway never
imports this module. It follows the whole events stream (the read model, the index and
server-sent events: ordered consumers from a sequence) and the registry.
"""

from __future__ import annotations

from orra_events import (
    ALL_EVENTS,
    ActionSubmitted,
    OrchestrationAborted,
    OrchestrationApproved,
    OrchestrationRejected,
    ServiceEvent,
    TaskCompensationResolved,
    Topology,
)
from orra_events.asyncapi import Declarations

__all__ = ["GATEWAY"]

_TOPOLOGY = Topology()

GATEWAY = Declarations("gateway")
"""The gateway's subscriptions and publications."""

for _event in ALL_EVENTS:
    if not issubclass(_event, ServiceEvent):
        GATEWAY.receive(
            _event,
            how="ordered",
            stream=_TOPOLOGY.events_stream,
            description="Folded into the read model and streamed to clients.",
        )
GATEWAY.follow_registry()
for _sent in (
    ActionSubmitted,
    OrchestrationAborted,
    OrchestrationApproved,
    OrchestrationRejected,
    TaskCompensationResolved,
):
    GATEWAY.send(_sent)
GATEWAY.send(None)

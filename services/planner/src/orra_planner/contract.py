"""What the planner receives and sends, declared once for the AsyncAPI document.

Read by :mod:`orra_events.asyncapi` (entry point ``orra.asyncapi``); the planner runs on
:mod:`orra_events.consumers` (its intake is a push group) and never imports this module.
"""

from __future__ import annotations

from orra_events import EVENT_TYPES, PlanCreated, PlanFailed, Topology
from orra_events.asyncapi import Declarations
from orra_planner.app import CONSUMED, DURABLE

__all__ = ["PLANNER"]

_TOPOLOGY = Topology()

PLANNER = Declarations("planner")
"""The planner's subscriptions and publications."""

for _type in CONSUMED:
    PLANNER.receive(
        EVENT_TYPES[_type],
        how="push",
        stream=_TOPOLOGY.events_stream,
        consumer=DURABLE,
        description="Plans the action (one push group shared by the planner's replicas).",
    )
PLANNER.follow_registry()
PLANNER.send(PlanCreated)
PLANNER.send(PlanFailed)
PLANNER.send(None)

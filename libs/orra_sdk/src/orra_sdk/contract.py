"""What users' services and agents receive and send, declared for the AsyncAPI document.

Read by :mod:`orra_events.asyncapi` (entry point ``orra.asyncapi``). The workers are a
hot path: they run on :class:`orra_events.consumers.PullConsumer`, never on these
declarations, and the SDK never imports this module (nor FastStream).
"""

from __future__ import annotations

from orra_events import (
    EVENT_TYPES,
    ServiceHeartbeat,
    ServiceRegistered,
    TaskAborted,
    TaskCompensated,
    TaskCompensationFailed,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    TaskProgress,
    Topology,
)
from orra_events.asyncapi import Declarations
from orra_sdk.client import STOP_SIGNALS

__all__ = ["SDK"]

_TOPOLOGY = Topology()

SDK = Declarations("sdk")
"""The subscriptions and publications of a service or agent built with the SDK."""

SDK.receive(
    TaskDispatched,
    how="pull",
    family="work.{service}",
    stream=_TOPOLOGY.work_stream,
    consumer="svc_{service}",
    description="The service's tasks: a bounded pull consumer its replicas share.",
)
for _type in STOP_SIGNALS:
    SDK.receive(
        EVENT_TYPES[_type],
        how="core",
        description="Tells the running tasks of that orchestration to stop.",
    )
for _sent in (
    TaskCompleted,
    TaskFailed,
    TaskProgress,
    TaskAborted,
    TaskCompensated,
    TaskCompensationFailed,
    ServiceRegistered,
    ServiceHeartbeat,
):
    SDK.send(_sent)
SDK.send(None)

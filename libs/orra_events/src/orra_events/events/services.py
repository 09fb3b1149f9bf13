"""Service events: a service registered, and its instances' heartbeats."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec

from orra_events.events.base import ServiceEvent

__all__ = ["ServiceHeartbeat", "ServiceRegistered"]


class ServiceRegistered(ServiceEvent, frozen=True, kw_only=True, tag="service.registered"):
    """A service or agent declared itself: what it does and its input/output JSON Schemas.

    Its subject is ``service.registered.<service>.<version token>``: one registration per
    name and version, never replaced (see :mod:`orra_events.registrations`). ``examples``
    are phrases of what the service does, in its users' words, that teach the planner the
    service's synonyms. ``retry_on_timeout`` false says that a task of the service that
    timed out must not be run again (its effect may have happened and a repeat would do it
    twice): the dispatcher fails it for good and leaves it for an operator instead of
    retrying it (see docs/architecture.md, "Retries and timeouts"). ``approval_when`` is
    a condition on a task's input (:mod:`orra_events.gates`; ``"true"`` for a service
    registered with ``requires_approval=True``): when it holds, the dispatcher holds the
    task until a person approves it.
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
    approval_when: str | None = None


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

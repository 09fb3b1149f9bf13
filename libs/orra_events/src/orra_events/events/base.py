"""The bases of every event: :class:`Event`, and the orchestration and service families."""

from __future__ import annotations

import time
from typing import ClassVar, Literal

import msgspec

__all__ = ["Event", "ExecutionMode", "OrchestrationEvent", "ServiceEvent", "now"]

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

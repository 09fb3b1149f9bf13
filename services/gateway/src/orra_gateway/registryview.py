"""``GET /services``: the registry as the planner sees it, with each service's health.

Registrations are folded with the rule every follower applies
(:class:`~orra_events.registrations.RegistrationBook`: the first definition of a name and
version counts, another one is refused), heartbeats with
:class:`~orra_events.liveness.Liveness`. A service is shown at the version new plans use:
its highest version that is not down (or its highest, when every version is down), with
every registered version listed under ``versions``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from orra_events import ServiceHeartbeat, ServiceRegistered
from orra_events.liveness import Liveness, LivenessSettings, ServiceHealth
from orra_events.registrations import RegistrationBook

if TYPE_CHECKING:
    from orra_events import Event
    from orra_events.registrations import Registration

__all__ = ["ServiceRegistryView", "ServiceVersionView", "ServiceView"]


class ServiceVersionView(msgspec.Struct, kw_only=True, rename="camel"):
    """One registered version of a service.

    Attributes:
        version: The version (canonical).
        health: ``healthy``, ``unhealthy``, ``down`` or ``unknown`` (see ``ServiceView``).
        registered_at: When this version was registered.
        last_heartbeat_at: When an instance of this version last sent a heartbeat.
    """

    version: str
    health: ServiceHealth = "unknown"
    registered_at: float | None = None
    last_heartbeat_at: float | None = None


class ServiceView(msgspec.Struct, kw_only=True, rename="camel"):
    """A registered service or agent with its health; one item of ``GET /services``.

    Attributes:
        name: Service name (its ``work.<name>`` subject).
        project: Project it registered in.
        kind: ``service`` or ``agent``.
        description: What it does (the planner reads it).
        version: The version new plans use: the highest one that is not down.
        revertible: Whether its effects can be reverted.
        input_schema: JSON Schema of its input.
        output_schema: JSON Schema of its output.
        examples: Phrases of what it does, in its users' words (the planner reads them).
        registered_at: When that version was registered.
        last_heartbeat_at: When an instance (of any version) last sent a heartbeat.
        heartbeat_interval_s: The interval that instance announced.
        instance_id: The instance that sent the last heartbeat.
        health: The health of that version: ``healthy`` (a heartbeat within
            ``ORRA_HEALTH_FACTOR`` (3) intervals), ``unhealthy`` (none for longer: its
            tasks wait), ``down`` (no live instance for ``ORRA_SERVICE_DOWN_AFTER_S``: left
            out of new plans) or ``unknown`` (registered recently, no heartbeat seen).
        versions: Every registered version, highest first.
    """

    name: str
    project: str
    kind: Literal["service", "agent"] = "service"
    description: str = ""
    version: str = "1"
    revertible: bool = False
    input_schema: dict[str, Any] = msgspec.field(default_factory=dict)
    output_schema: dict[str, Any] = msgspec.field(default_factory=dict)
    examples: list[str] = msgspec.field(default_factory=list)
    registered_at: float | None = None
    last_heartbeat_at: float | None = None
    heartbeat_interval_s: float | None = None
    instance_id: str | None = None
    health: ServiceHealth = "unknown"
    versions: list[ServiceVersionView] = msgspec.field(default_factory=list)


class ServiceRegistryView:
    """Registrations and heartbeats folded for ``GET /services`` (no I/O).

    Args:
        settings: When a service is unhealthy or down.
    """

    def __init__(self, settings: LivenessSettings | None = None) -> None:
        self.settings = settings or LivenessSettings()
        self.book = RegistrationBook()
        self.liveness = Liveness()

    def __len__(self) -> int:
        return len(self.book.names)

    def apply(self, event: Event) -> str | None:
        """Take a registry event into account; return why it is refused, if it is."""
        if isinstance(event, ServiceRegistered):
            return self.book.apply(event).reason
        if isinstance(event, ServiceHeartbeat):
            self.liveness.observe(event)
        return None

    def services(self, project: str, *, now: float | None = None) -> list[ServiceView]:
        """``project``'s services by name, each at its current version, as of ``now``."""
        at = time.time() if now is None else now
        out: list[ServiceView] = []
        for name in self.book.names:
            registrations = [r for r in self.book.versions(name) if r.event.project == project]
            if not registrations:
                continue
            versions = [self._version(r, at) for r in registrations]
            current = next((i for i, v in enumerate(versions) if v.health != "down"), 0)
            out.append(self._view(registrations[current], versions, current))
        return out

    def _version(self, registration: Registration, now: float) -> ServiceVersionView:
        beat = self.liveness.last_beat(registration.name, registration.version)
        return ServiceVersionView(
            version=registration.version,
            health=self.liveness.health(
                registration.name,
                registration.version,
                registered_at=registration.registered_at,
                now=now,
                settings=self.settings,
            ),
            registered_at=registration.registered_at,
            last_heartbeat_at=beat.at if beat is not None else None,
        )

    def _view(
        self, registration: Registration, versions: list[ServiceVersionView], current: int
    ) -> ServiceView:
        event = registration.event
        beat = self.liveness.last_beat(event.service)
        return ServiceView(
            name=event.service,
            project=event.project,
            kind=event.kind,
            description=event.description,
            version=registration.version,
            revertible=event.revertible,
            input_schema=event.input_schema,
            output_schema=event.output_schema,
            examples=list(event.examples),
            registered_at=event.at,
            last_heartbeat_at=beat.at if beat is not None else None,
            heartbeat_interval_s=beat.interval_s if beat is not None else None,
            instance_id=beat.instance_id if beat is not None else None,
            health=versions[current].health,
            versions=versions,
        )

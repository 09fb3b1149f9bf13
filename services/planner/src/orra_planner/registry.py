"""The service registry: which services each project has, with their schemas.

:class:`Registry` is pure: it folds ``service.registered`` events into one
:class:`ServiceCatalog` per project. :class:`RegistryFollower` is its I/O side: an
ordered push consumer on the ``ORRA_SERVICES`` stream (which keeps the last message per
subject) that loads every registration at start and then follows live ones.

Before planning an action, the handler calls :meth:`RegistryFollower.sync`, which waits
until the registry has seen everything the services stream held at that moment, so a
service registered just before an action is submitted is part of its plan.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import structlog

from orra_events import DecodeError, ServiceRegistered, decode
from orra_planner import schema

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from orra_events import Bus

__all__ = ["Registry", "RegistryFollower", "ServiceCatalog", "ServiceSpec"]

log = structlog.get_logger("orra.planner.registry")


@dataclass(frozen=True)
class ServiceSpec:
    """What the planner knows of one registered service or agent.

    Attributes:
        name: The service name (also its ``work.<name>`` subject token).
        description: What it does, in the words of its author.
        input_schema: JSON Schema of its input object.
        output_schema: JSON Schema of its output object.
        project: The project it belongs to.
        kind: ``service`` or ``agent``.
        revertible: Whether it can undo its work.
        version: Its declared version.
    """

    name: str
    description: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    project: str = "default"
    kind: Literal["service", "agent"] = "service"
    revertible: bool = False
    version: str = "1"
    schema_hash: str = ""

    @classmethod
    def from_event(cls, event: ServiceRegistered) -> ServiceSpec:
        """Build the spec from a ``service.registered`` event."""
        return cls(
            name=event.service,
            description=event.description,
            input_schema=event.input_schema,
            output_schema=event.output_schema,
            project=event.project,
            kind=event.kind,
            revertible=event.revertible,
            version=event.version,
            schema_hash=event.schema_hash,
        )

    def to_event(self) -> ServiceRegistered:
        """The registration this spec describes (for strategies that take events)."""
        return ServiceRegistered(
            event_id=f"reg:{self.name}:{self.schema_hash}",
            service=self.name,
            project=self.project,
            description=self.description,
            input_schema=dict(self.input_schema),
            output_schema=dict(self.output_schema),
            revertible=self.revertible,
            version=self.version,
            kind=self.kind,
            schema_hash=self.schema_hash,
        )

    @property
    def inputs(self) -> dict[str, Any]:
        """Input field name → its schema."""
        return schema.properties(self.input_schema)

    @property
    def required_inputs(self) -> frozenset[str]:
        """Names of the input fields that must be given."""
        return schema.required(self.input_schema)

    @property
    def outputs(self) -> dict[str, Any]:
        """Output field name → its schema."""
        return schema.properties(self.output_schema)

    def input_types(self, name: str) -> frozenset[str] | None:
        """JSON types accepted for input ``name`` (``None``: any)."""
        return schema.types_of(self.inputs.get(name, {}), self.input_schema)

    def output_types(self, name: str) -> frozenset[str] | None:
        """JSON types produced for output ``name`` (``None``: any)."""
        return schema.types_of(self.outputs.get(name, {}), self.output_schema)


@dataclass(frozen=True)
class ServiceCatalog(Mapping[str, ServiceSpec]):
    """The services of one project, by name: what a plan for that project may use."""

    project: str
    services: Mapping[str, ServiceSpec] = field(default_factory=dict)

    @classmethod
    def of(cls, project: str, specs: list[ServiceSpec] | tuple[ServiceSpec, ...]) -> ServiceCatalog:
        """A catalogue of ``specs`` (later specs with the same name win)."""
        return cls(project, {spec.name: spec for spec in specs})

    def __getitem__(self, name: str) -> ServiceSpec:
        return self.services[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.services))

    def __len__(self) -> int:
        return len(self.services)


class Registry:
    """Every project's services, folded from ``service.registered`` events (no I/O)."""

    def __init__(self) -> None:
        self._projects: dict[str, dict[str, ServiceSpec]] = {}
        self._catalogs: dict[str, ServiceCatalog] = {}

    def apply(self, event: ServiceRegistered) -> None:
        """Record a registration; a later one of the same project and name replaces it."""
        spec = ServiceSpec.from_event(event)
        self._projects.setdefault(spec.project, {})[spec.name] = spec
        self._catalogs.pop(spec.project, None)

    def catalog(self, project: str) -> ServiceCatalog:
        """The services of ``project`` only (an immutable snapshot)."""
        cached = self._catalogs.get(project)
        if cached is None:
            cached = ServiceCatalog(project, dict(self._projects.get(project, {})))
            self._catalogs[project] = cached
        return cached

    @property
    def projects(self) -> list[str]:
        """Projects that have at least one service."""
        return sorted(self._projects)


class RegistryFollower:
    """Keeps a :class:`Registry` up to date from the services stream of a bus."""

    def __init__(self, bus: Bus, registry: Registry | None = None) -> None:
        self.bus = bus
        self.registry = registry or Registry()
        self._last_seq = 0
        self._advanced = asyncio.Event()
        self._sub: Any = None

    @property
    def last_seq(self) -> int:
        """Stream sequence of the last services-stream message folded in."""
        return self._last_seq

    async def start(self, timeout_s: float = 10.0) -> None:
        """Subscribe from the start of the stream and wait until the backlog is loaded."""
        self._sub = await self.bus.js.subscribe(
            self.bus.topology.subject("service", ">"),
            stream=self.bus.topology.services_stream,
            cb=self._on_message,
            ordered_consumer=True,
        )
        await self.sync(timeout_s)

    async def _on_message(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        try:
            event = decode(msg.data)
        except DecodeError as exc:
            log.warning("ignored undecodable registry message", subject=msg.subject, error=str(exc))
        else:
            if isinstance(event, ServiceRegistered):
                self.registry.apply(event)
                log.debug("service registered", service=event.service, project=event.project)
        self._last_seq = max(self._last_seq, seq)
        self._advanced.set()

    async def sync(self, timeout_s: float = 2.0) -> bool:
        """Wait until everything the services stream holds now has been folded in.

        Returns:
            Whether the registry caught up within ``timeout_s`` (it is used as it is when
            not; a message deleted from the stream's end can make that happen).
        """
        info = await self.bus.js.stream_info(self.bus.topology.services_stream)
        target = int(info.state.last_seq or 0)
        if info.state.messages == 0:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._last_seq < target:
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning(
                    "registry behind the services stream", seen=self._last_seq, target=target
                )
                return False
            self._advanced.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._advanced.wait(), remaining)
        return True

    async def stop(self) -> None:
        """Stop following."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

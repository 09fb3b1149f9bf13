"""The service registry: which services each project has, with their schemas.

:class:`Registry` is pure: it folds ``service.registered`` events into one
:class:`ServiceCatalog` per project. :class:`RegistryFollower` is its I/O side: an
ordered push consumer on the ``ORRA_SERVICES`` stream (which keeps the last message per
subject) that loads every registration at start and then follows live ones.

Before planning an action, the handler calls :meth:`RegistryFollower.sync`, which waits
until the registry has seen everything the services stream held at that moment, so a
service registered just before an action is submitted is part of its plan. Actions
handled at the same time share one look-up of the stream's last sequence: a look-up sent
after an action arrived covers it.

Malformed messages on ``service.*`` (undecodable, not a service event, or on another
service's subject) are copied to the dead-letter subject with their reason and skipped;
the follower keeps going. An ordered consumer does not acknowledge, so nothing is dropped
from the services stream: the copy is deduplicated by the original stream sequence (a
``Nats-Msg-Id`` within the duplicate window, and a look at the last parked message
beyond it), so the planner and the dispatcher, their replicas and their restarts park
one message once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import msgspec
import structlog
from nats.js.errors import APIError

from orra_events import (
    DecodeError,
    ServiceRegistered,
    decode,
)
from orra_events.bus import FOLLOW_HEARTBEAT_S
from orra_events.registry import park_registry_message, registry_problem
from orra_planner import schema

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from orra_events import Bus

__all__ = [
    "Registry",
    "RegistryFollower",
    "ServiceCatalog",
    "ServiceSpec",
]

log = structlog.get_logger("orra.planner.registry")

_T = TypeVar("_T")
_LOOKUP_TIMEOUT_S = 5.0
_MESSAGE_IDS = ("orchestration_id", "task_id")
"""Log context keys of one message's handling, which long-lived tasks must not inherit."""


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

    # A spec is immutable, so what is read off its schemas is computed once.

    @cached_property
    def inputs(self) -> Mapping[str, Any]:
        """Input field name → its schema (read-only)."""
        return MappingProxyType(schema.properties(self.input_schema))

    @cached_property
    def required_inputs(self) -> frozenset[str]:
        """Names of the input fields that must be given."""
        return schema.required(self.input_schema)

    @cached_property
    def outputs(self) -> Mapping[str, Any]:
        """Output field name → its schema (read-only)."""
        return MappingProxyType(schema.properties(self.output_schema))

    def input_types(self, name: str) -> frozenset[str] | None:
        """JSON types accepted for input ``name`` (``None``: any)."""
        return self._input_types.get(name) if name in self.inputs else None

    def output_types(self, name: str) -> frozenset[str] | None:
        """JSON types produced for output ``name`` (``None``: any)."""
        return self._output_types.get(name) if name in self.outputs else None

    def scalar_input_problem(self, name: str, value: str | float | bool | None) -> str | None:
        """What is wrong with a scalar ``value`` for declared input ``name`` (``None``: fine).

        The verdict of :func:`~orra_planner.schema.check_value`; remembered per JSON type
        when the field's schema judges scalars by their type alone (no ``enum``/``const``).
        """
        field_schema = self.inputs[name]
        if not self._judged_by_type[name]:
            return schema.check_value(value, field_schema, self.input_schema)
        key = (name, schema.type_name(value))
        try:
            return self._scalar_verdicts[key]
        except KeyError:
            verdict = schema.check_value(value, field_schema, self.input_schema)
            self._scalar_verdicts[key] = verdict
            return verdict

    @cached_property
    def _judged_by_type(self) -> dict[str, bool]:
        return {n: schema.verdict_by_type(s, self.input_schema) for n, s in self.inputs.items()}

    @cached_property
    def _scalar_verdicts(self) -> dict[tuple[str, str], str | None]:
        return {}

    @cached_property
    def _input_types(self) -> dict[str, frozenset[str] | None]:
        return {n: schema.types_of(s, self.input_schema) for n, s in self.inputs.items()}

    @cached_property
    def _output_types(self) -> dict[str, frozenset[str] | None]:
        return {n: schema.types_of(s, self.output_schema) for n, s in self.outputs.items()}


@dataclass(frozen=True)
class ServiceCatalog(Mapping[str, ServiceSpec]):
    """The services of one project, by name: what a plan for that project may use."""

    project: str
    services: Mapping[str, ServiceSpec] = field(default_factory=dict)
    _derived: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

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

    def derived(self, key: str, build: Callable[[ServiceCatalog], _T]) -> _T:
        """``build(self)``, computed once per catalogue and ``key``.

        A catalogue never changes (the registry makes a new one when a service registers),
        so what a strategy precomputes from it (word stems, lookup tables) stays valid for
        as long as the catalogue is the current one.
        """
        try:
            return cast("_T", self._derived[key])
        except KeyError:
            value = self._derived[key] = build(self)
            return value


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


class _StreamState(msgspec.Struct):
    last_seq: int = 0
    messages: int = 0


class _ApiError(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _StreamInfo(msgspec.Struct):
    """The two figures :meth:`RegistryFollower.sync` reads of a stream info response."""

    state: _StreamState | None = None
    error: _ApiError | None = None


class RegistryFollower:
    """Keeps a :class:`Registry` up to date from the services stream of a bus."""

    def __init__(self, bus: Bus, registry: Registry | None = None) -> None:
        self.bus = bus
        self.registry = registry or Registry()
        self._last_seq = 0
        self._advanced = asyncio.Event()
        self._sub: Any = None
        self._next: asyncio.Future[int | None] | None = None
        self._querier: asyncio.Task[None] | None = None
        self.lookups = 0
        """Look-ups of the services stream's last sequence made so far."""

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
            idle_heartbeat=FOLLOW_HEARTBEAT_S,
        )
        await self.sync(timeout_s)

    async def _on_message(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        try:
            event = decode(msg.data)
        except DecodeError as exc:
            problem: str | None = f"{type(exc).__name__}: {exc}"
        else:
            problem = registry_problem(self.bus.topology, event, msg.subject)
            if problem is None and isinstance(event, ServiceRegistered):
                self.registry.apply(event)
                log.debug("service registered", service=event.service, project=event.project)
        if problem is not None:
            await park_registry_message(self.bus, msg, problem)
        self._last_seq = max(self._last_seq, seq)
        self._advanced.set()

    async def sync(self, timeout_s: float = 2.0) -> bool:
        """Wait until everything the services stream holds now has been folded in.

        "Now" is any moment after the call: callers that overlap share one look-up of the
        stream's last sequence, sent after each of them called.

        Returns:
            Whether the registry caught up within ``timeout_s`` (it is used as it is when
            not; a message deleted from the stream's end can make that happen).

        Raises:
            nats.errors.Error: the look-up failed (no broker, timeout).
        """
        target = await self._target()
        if target is None:
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

    async def _target(self) -> int | None:
        """The services stream's last sequence (``None``: empty), looked up after this call.

        Joins the next look-up, which is not sent yet: every caller that joins it called
        before it was sent. One look-up is in flight at a time; the next one starts when
        it returns.
        """
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        joined = self._next
        if self._querier is None or self._querier.done():
            # It outlives the action that started it: not in that action's log context.
            self._querier = asyncio.create_task(self._query_loop(), context=_detached())
        return await asyncio.shield(joined)

    async def _query_loop(self) -> None:
        while (waiting := self._next) is not None:
            self._next = None  # callers from now on wait for the look-up after this one
            try:
                target = await self._query()
            except asyncio.CancelledError:
                waiting.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - handed to every caller waiting
                if not waiting.done():
                    waiting.set_exception(exc)
                    waiting.exception()  # retrieved: each caller re-raises it
            else:
                if not waiting.done():
                    waiting.set_result(target)

    async def _query(self) -> int | None:
        self.lookups += 1
        stream = self.bus.topology.services_stream
        # What js.stream_info asks, without building a StreamInfo: the handler's hot path.
        reply = await self.bus.nc.request(
            f"{self.bus.js._prefix}.STREAM.INFO.{stream}", b"", timeout=_LOOKUP_TIMEOUT_S
        )
        info = msgspec.json.decode(reply.data, type=_StreamInfo)
        if info.error is not None:
            APIError.from_error(msgspec.structs.asdict(info.error))
        if info.state is None:
            raise APIError(description=f"no state in the stream info of {stream}")
        if info.state.messages == 0:
            return None
        return info.state.last_seq

    async def stop(self) -> None:
        """Stop following."""
        if self._querier is not None:
            self._querier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._querier
            self._querier = None
        if self._next is not None and not self._next.done():
            self._next.cancel()
        self._next = None
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None


def _detached() -> contextvars.Context:
    """A copy of the current context without the ids of the message being handled."""
    context = contextvars.copy_context()
    context.run(structlog.contextvars.unbind_contextvars, *_MESSAGE_IDS)
    return context

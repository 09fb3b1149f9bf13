"""The service registry: which services each project has, with their schemas.

:class:`Registry` is pure: it folds ``service.registered`` events (with the rules of
:mod:`orra_events.registrations`: one definition per name and version, the first counts)
and ``service.heartbeat`` events (:mod:`orra_events.liveness`) into one
:class:`ServiceCatalog` per project. A catalogue holds, for each service name, its highest
version that is not down; a name whose every version is down (no live instance for
``ORRA_SERVICE_DOWN_AFTER_S``) is left out and listed in :attr:`ServiceCatalog.down`, so a
plan never uses it and a refusal can say why. :class:`RegistryFollower` is its I/O side:
ordered push consumers on the ``ORRA_SERVICES`` stream (one registration per name and
version, never replaced) and the ``ORRA_HEARTBEATS`` stream (the last beat per service and
version) that load everything at start and then follow live messages.

Before planning an action, the handler calls :meth:`RegistryFollower.sync`, which waits
until the registry has seen everything the services stream held at that moment, so a
service registered just before an action is submitted is part of its plan. Actions
handled at the same time share one look-up of the stream's last sequence: a look-up sent
after an action arrived covers it.

Malformed messages on ``service.*`` (undecodable, not a service event, on another
service's subject, a bad version or malformed examples) and registrations refused by the
rule (another definition of a registered name and version) are copied to the dead-letter
subject with their reason and skipped; the follower keeps going. An ordered consumer does
not acknowledge, so nothing is dropped from the services stream: the copy is deduplicated
by the original stream sequence (a ``Nats-Msg-Id`` within the duplicate window, and a
look at the last parked message beyond it), so the planner and the dispatcher, their
replicas and their restarts park one message once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import msgspec
import structlog
from nats.js.api import DeliverPolicy
from nats.js.errors import APIError

from orra_events import (
    DecodeError,
    ServiceHeartbeat,
    ServiceRegistered,
    decode,
    ids,
)
from orra_events.bus import FOLLOW_HEARTBEAT_S
from orra_events.liveness import Beat, Liveness, LivenessSettings, down_reason, health_of
from orra_events.registrations import RegistrationBook, Verdict
from orra_events.registry import park_registry_message, registry_problem
from orra_planner import schema

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from orra_events import Bus, Plan

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
        version: Its version (canonical: ``"1"``, ``"1.4"``); plans record it per task.
        schema_hash: The hash of its definition.
        examples: Phrases of what it does, in its users' words.
        approval_when: Its approval condition (:mod:`orra_events.gates`), if it has one.
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
    examples: tuple[str, ...] = ()
    approval_when: str | None = None

    @classmethod
    def from_event(cls, event: ServiceRegistered, *, version: str | None = None) -> ServiceSpec:
        """Build the spec from a ``service.registered`` event (``version``: its canonical)."""
        return cls(
            name=event.service,
            description=event.description,
            input_schema=event.input_schema,
            output_schema=event.output_schema,
            project=event.project,
            kind=event.kind,
            revertible=event.revertible,
            version=version or event.version,
            schema_hash=event.schema_hash,
            examples=tuple(event.examples),
            approval_when=event.approval_when,
        )

    def to_event(self) -> ServiceRegistered:
        """The registration this spec describes (for strategies that take events)."""
        return ServiceRegistered(
            event_id=ids.registration_id(self.name, self.schema_hash),
            service=self.name,
            project=self.project,
            description=self.description,
            input_schema=dict(self.input_schema),
            output_schema=dict(self.output_schema),
            revertible=self.revertible,
            version=self.version,
            kind=self.kind,
            schema_hash=self.schema_hash,
            examples=list(self.examples),
            approval_when=self.approval_when,
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
    """The services of one project, by name: what a plan for that project may use.

    Attributes:
        project: The project.
        services: Each usable service name's spec (its highest version not down).
        down: Services left out because they are down: name → when an instance was
            last seen (a heartbeat, or the registration); see :meth:`down_reasons`.
        unavailable: The specs of the services in ``down`` (their highest version), to
            find out whether an action needs one of them.
    """

    project: str
    services: Mapping[str, ServiceSpec] = field(default_factory=dict)
    down: Mapping[str, float] = field(default_factory=dict)
    unavailable: Mapping[str, ServiceSpec] = field(default_factory=dict, repr=False, compare=False)
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

    def down_reasons(
        self, names: list[str] | None = None, *, now: float | None = None
    ) -> list[str]:
        """Why ``names`` (every down service by default) are left out of plans, as of ``now``."""
        at = time.time() if now is None else now
        return [
            down_reason(n, self.down[n], at) for n in names or sorted(self.down) if n in self.down
        ]

    def versioned(self, plan: Plan) -> Plan:
        """``plan`` with each task's service version recorded in the task (``PlanTask.version``).

        The dispatcher sends it with the task, and only a replica of that version runs it:
        a rolling upgrade does not change what was planned. The version's approval
        condition is recorded too (``PlanTask.gate``): the dispatcher holds the task when
        it holds, with no look-up of its own.
        """
        services = self.services
        stamped = []
        for task in plan.tasks:
            spec = services.get(task.service)
            if spec is None or (task.version == spec.version and task.gate == spec.approval_when):
                stamped.append(task)
            else:
                stamped.append(
                    msgspec.structs.replace(task, version=spec.version, gate=spec.approval_when)
                )
        return msgspec.structs.replace(plan, tasks=stamped)

    def with_unavailable(self) -> ServiceCatalog:
        """This catalogue with the down services put back (to see whether a plan needs them)."""
        return self.derived(
            "with_unavailable",
            lambda c: ServiceCatalog(c.project, {**c.unavailable, **c.services}),
        )

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
    """Every project's services, folded from registrations and heartbeats (no I/O).

    Args:
        liveness: When a service is down (``ORRA_SERVICE_DOWN_AFTER_S``); defaults.
    """

    def __init__(self, liveness: LivenessSettings | None = None) -> None:
        self.liveness_settings = liveness or LivenessSettings()
        self.book = RegistrationBook()
        self.liveness = Liveness()
        self._specs: dict[tuple[str, str], ServiceSpec] = {}
        self._projects: dict[str, list[str]] = {}
        self._catalogs: dict[str, tuple[tuple[tuple[str, str], ...], ServiceCatalog]] = {}
        self._valid: dict[str, tuple[float, float]] = {}
        """Per project, the times between which its cached catalogue holds without news."""

    def apply(self, event: ServiceRegistered) -> Verdict:
        """Take a registration into account (the first of a name and version counts).

        Returns:
            The verdict: a refused registration changes nothing (park it with its reason).
        """
        verdict = self.book.apply(event)
        if verdict.accepted:
            registration = self.book.get(event.service, event.version)
            assert registration is not None
            spec = ServiceSpec.from_event(event, version=registration.version)
            self._specs[(spec.name, spec.version)] = spec
            names = self._projects.setdefault(spec.project, [])
            if spec.name not in names:
                names.append(spec.name)
            self._catalogs.pop(spec.project, None)
            self._valid.pop(spec.project, None)
        return verdict

    def observe(self, event: ServiceHeartbeat) -> None:
        """Take a heartbeat into account (it may bring a down service back)."""
        self.liveness.observe(event)
        self._valid.clear()

    def catalog(self, project: str, *, now: float | None = None) -> ServiceCatalog:
        """The services of ``project`` that plans may use as of ``now`` (an immutable snapshot).

        Each name's highest version that is not down; a name whose every version is down
        is in :attr:`ServiceCatalog.down` instead. The same snapshot is returned while
        neither the registrations nor the chosen versions change.
        """
        at = time.time() if now is None else now
        valid = self._valid.get(project)
        if valid is not None and valid[0] <= at < valid[1]:
            return self._catalogs[project][1]  # nothing registered, beaten or expired since
        settings = self.liveness_settings
        chosen: list[tuple[str, str]] = []
        down: dict[str, float] = {}
        until = float("inf")
        for name in self._projects.get(project, ()):
            last_seen = 0.0
            for registration in self.book.versions(name):
                if registration.event.project != project:
                    continue
                beat = self.liveness.last_beat(name, registration.version)
                health = health_of(
                    last_beat_at=beat.at if beat is not None else None,
                    interval_s=beat.interval_s if beat is not None else None,
                    registered_at=registration.registered_at,
                    now=at,
                    settings=settings,
                )
                if health != "down":
                    chosen.append((name, registration.version))
                    until = min(until, _down_at(beat, registration.registered_at, settings))
                    break
                last_seen = max(last_seen, registration.registered_at, beat.at if beat else 0.0)
            else:
                down[name] = last_seen
                chosen.append((name, ""))
        self._valid[project] = (at, until)
        key = tuple(chosen)
        cached = self._catalogs.get(project)
        if cached is not None and cached[0] == key:
            return cached[1]
        services = {name: self._specs[(name, v)] for name, v in chosen if v}
        unavailable = {name: self._highest(project, name) for name in down}
        catalog = ServiceCatalog(project, services, down=down, unavailable=unavailable)
        self._catalogs[project] = (key, catalog)
        return catalog

    def _highest(self, project: str, name: str) -> ServiceSpec:
        for registration in self.book.versions(name):
            if registration.event.project == project:
                return self._specs[(name, registration.version)]
        raise KeyError(name)

    @property
    def projects(self) -> list[str]:
        """Projects that have at least one service."""
        return sorted(self._projects)


def _down_at(beat: Beat | None, registered_at: float, settings: LivenessSettings) -> float:
    """When a version last seen so (beat, else registration) is down, barring news."""
    if beat is None:
        return registered_at + settings.down_after_s
    return beat.at + max(settings.down_after_s, settings.factor * beat.interval_s)


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
    """Keeps a :class:`Registry` up to date from the registry streams of a bus."""

    def __init__(self, bus: Bus, registry: Registry | None = None) -> None:
        self.bus = bus
        self.registry = registry or Registry()
        self._last_seq = 0
        self._advanced = asyncio.Event()
        self._sub: Any = None
        self._beats_sub: Any = None
        self._beats_loaded = asyncio.Event()
        self._next: asyncio.Future[int | None] | None = None
        self._querier: asyncio.Task[None] | None = None
        self.lookups = 0
        """Look-ups of the services stream's last sequence made so far."""

    @property
    def last_seq(self) -> int:
        """Stream sequence of the last services-stream message folded in."""
        return self._last_seq

    async def start(self, timeout_s: float = 10.0) -> None:
        """Subscribe from the start of both streams and wait until their backlogs are loaded.

        The heartbeats are loaded before the first plan: without them, every service
        registered longer ago than ``ORRA_SERVICE_DOWN_AFTER_S`` would look down.
        """
        topology = self.bus.topology
        beats = await self.bus.js.stream_info(topology.heartbeats_stream)
        if beats.state.messages == 0:
            self._beats_loaded.set()
        self._beats_sub = await self.bus.js.subscribe(
            topology.heartbeats_filter(),
            stream=topology.heartbeats_stream,
            cb=self._on_beat,
            ordered_consumer=True,
            idle_heartbeat=FOLLOW_HEARTBEAT_S,
            deliver_policy=DeliverPolicy.ALL,
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
        )
        self._sub = await self.bus.js.subscribe(
            topology.registrations_filter(),
            stream=topology.services_stream,
            cb=self._on_message,
            ordered_consumer=True,
            idle_heartbeat=FOLLOW_HEARTBEAT_S,
        )
        await self.sync(timeout_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._beats_loaded.wait(), timeout_s)

    async def _on_message(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        try:
            event = decode(msg.data)
        except DecodeError as exc:
            problem: str | None = f"{type(exc).__name__}: {exc}"
        else:
            problem = registry_problem(self.bus.topology, event, msg.subject)
            if problem is None and isinstance(event, ServiceRegistered):
                verdict = self.registry.apply(event)
                problem = verdict.reason
                if verdict.accepted:
                    log.debug(
                        "service registered",
                        service=event.service,
                        version=event.version,
                        project=event.project,
                    )
        if problem is not None:
            await park_registry_message(self.bus, msg, problem)
        self._last_seq = max(self._last_seq, seq)
        self._advanced.set()

    async def _on_beat(self, msg: Msg) -> None:
        try:
            event = decode(msg.data)
        except DecodeError as exc:
            problem: str | None = f"{type(exc).__name__}: {exc}"
        else:
            problem = registry_problem(self.bus.topology, event, msg.subject)
            if problem is None and isinstance(event, ServiceHeartbeat):
                self.registry.observe(event)
        if problem is not None:
            await park_registry_message(self.bus, msg, problem)
        if msg.metadata.num_pending == 0:
            self._beats_loaded.set()

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
        for sub in (self._sub, self._beats_sub):
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        self._sub = self._beats_sub = None


def _detached() -> contextvars.Context:
    """A copy of the current context without the ids of the message being handled."""
    context = contextvars.copy_context()
    context.run(structlog.contextvars.unbind_contextvars, *_MESSAGE_IDS)
    return context

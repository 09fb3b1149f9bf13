"""The gateway's read model: orchestrations and services, folded from JetStream.

At start the gateway reads the whole event log with an ordered consumer (from the first
message, then live) and folds every event with :mod:`orra_events.projection`; it does the
same with the service registry stream. Two replicas fold the same log, so they give the
same answers. Nothing here is persisted: the log is the state.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import contextlib
import time
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import structlog
from nats.js.api import DeliverPolicy

from orra_events import (
    ActionSubmitted,
    DecodeError,
    ServiceHeartbeat,
    ServiceRegistered,
    TaskCompensationAbandoned,
    decode,
)
from orra_events.projection import (
    OrchestrationStatus,
    OrchestrationSummary,
    OrchestrationView,
    apply,
    summarize,
)
from orra_gateway.errors import FieldError, InvalidInput, NotFound

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.aio.msg import Msg

    from orra_events import Bus

__all__ = ["HEALTH_FACTOR", "ReadModel", "ServiceView", "decode_cursor", "encode_cursor"]

log = structlog.get_logger("orra.gateway.readmodel")

HEALTH_FACTOR = 3.0
"""A service is healthy while its last heartbeat is younger than this many intervals."""

ServiceHealth = Literal["healthy", "unhealthy", "unknown"]


class ServiceView(msgspec.Struct, kw_only=True, rename="camel"):
    """A registered service or agent with its health; one item of ``GET /services``.

    Attributes:
        name: Service name (its ``work.<name>`` subject).
        project: Project it registered in.
        kind: ``service`` or ``agent``.
        description: What it does (the planner reads it).
        version: Version it declared.
        revertible: Whether its effects can be reverted.
        input_schema: JSON Schema of its input.
        output_schema: JSON Schema of its output.
        registered_at: When it last registered.
        last_heartbeat_at: When an instance last sent a heartbeat.
        heartbeat_interval_s: The interval that instance announced.
        instance_id: The instance that sent the last heartbeat.
        health: ``healthy`` (last heartbeat within 3 intervals), ``unhealthy`` or
            ``unknown`` (no heartbeat seen).
    """

    name: str
    project: str
    kind: Literal["service", "agent"] = "service"
    description: str = ""
    version: str = "1"
    revertible: bool = False
    input_schema: dict[str, Any] = msgspec.field(default_factory=dict)
    output_schema: dict[str, Any] = msgspec.field(default_factory=dict)
    registered_at: float | None = None
    last_heartbeat_at: float | None = None
    heartbeat_interval_s: float | None = None
    instance_id: str | None = None
    health: ServiceHealth = "unknown"


def encode_cursor(created_at: float, orchestration_id: str) -> str:
    """Opaque pagination cursor pointing after an orchestration of a list."""
    raw = f"{created_at!r}|{orchestration_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The position a cursor of :func:`encode_cursor` points at.

    Raises:
        InvalidInput: naming ``cursor`` when it is not one of ours.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, orchestration_id = raw.partition("|")
        position = (float(at), orchestration_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "invalid cursor", [FieldError("cursor", "not a cursor returned by this API")]
        ) from None
    if not orchestration_id:
        raise InvalidInput(
            "invalid cursor", [FieldError("cursor", "not a cursor returned by this API")]
        )
    return position


class ReadModel:
    """Every orchestration's view and every service's registration, kept up to date.

    Args:
        bus: Connected bus whose topology names the streams.
    """

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self.views: dict[str, OrchestrationView] = {}
        self._index: dict[str, list[tuple[float, str]]] = {}
        self._indexed: set[str] = set()
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._services: dict[str, ServiceView] = {}
        self.compensation_failed: dict[str, None] = {}
        """Orchestrations with a compensation that finally failed, in order of failure."""
        self._subs: list[Any] = []
        self.applied_seq = 0
        self.events_applied = 0
        self.undecodable = 0
        self.caught_up = asyncio.Event()
        self._services_caught_up = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, timeout_s: float = 120.0) -> float:
        """Fold the whole event log and registry, then follow them live.

        Returns:
            Seconds the initial rebuild took.
        """
        started = time.perf_counter()
        topology = self._bus.topology
        js = self._bus.js
        events_info = await js.stream_info(topology.events_stream)
        services_info = await js.stream_info(topology.services_stream)
        if events_info.state.messages == 0:
            self.caught_up.set()
        if services_info.state.messages == 0:
            self._services_caught_up.set()
        self._subs.append(
            # The whole stream (no multi-subject filter: the server delivers those far more
            # slowly when the subjects interleave, which the event log always does).
            await js.subscribe(
                f"{topology.namespace}.>" if topology.namespace else ">",
                stream=topology.events_stream,
                cb=self._on_event,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.ALL,
                pending_msgs_limit=-1,
                pending_bytes_limit=-1,
            )
        )
        self._subs.append(
            await js.subscribe(
                topology.subject("service", ">"),
                stream=topology.services_stream,
                cb=self._on_service,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.ALL,
                pending_msgs_limit=-1,
                pending_bytes_limit=-1,
            )
        )
        async with asyncio.timeout(timeout_s):
            await self.caught_up.wait()
            await self._services_caught_up.wait()
        elapsed = time.perf_counter() - started
        log.info(
            "read model rebuilt",
            events=self.events_applied,
            orchestrations=len(self.views),
            services=len(self._services),
            seconds=round(elapsed, 3),
        )
        return elapsed

    async def stop(self) -> None:
        """Stop following the streams."""
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()

    # --- folding ----------------------------------------------------------------------------

    async def _on_event(self, msg: Msg) -> None:
        meta = msg.metadata
        self.applied_seq = meta.sequence.stream
        try:
            event = decode(msg.data)
        except DecodeError as exc:
            self.undecodable += 1
            log.warning("undecodable event skipped", subject=msg.subject, error=str(exc))
        else:
            self.apply(event)
        if meta.num_pending == 0:
            self.caught_up.set()

    def apply(self, event: Any) -> None:
        """Fold one decoded event into the model and wake whoever waits on its orchestration."""
        orchestration_id = getattr(event, "orchestration_id", None)
        if orchestration_id is None:
            return
        view = apply(self.views.get(orchestration_id), event)
        if view is None:
            return
        self.views[orchestration_id] = view
        self.events_applied += 1
        if isinstance(event, TaskCompensationAbandoned):
            self.compensation_failed.pop(orchestration_id, None)
            self.compensation_failed[orchestration_id] = None
        if isinstance(event, ActionSubmitted) and orchestration_id not in self._indexed:
            self._indexed.add(orchestration_id)
            index = self._index.setdefault(view.project, [])
            entry = (view.created_at, orchestration_id)
            if not index or index[-1] < entry:
                index.append(entry)
            else:
                bisect.insort(index, entry)
        for waiter in self._waiters.get(orchestration_id, ()):
            waiter.set()

    async def _on_service(self, msg: Msg) -> None:
        try:
            event = decode(msg.data)
        except DecodeError as exc:
            log.warning("undecodable registry message skipped", subject=msg.subject, error=str(exc))
        else:
            if isinstance(event, ServiceRegistered):
                view = self._services.get(event.service)
                if view is None or view.project != event.project:
                    view = ServiceView(name=event.service, project=event.project)
                    self._services[event.service] = view
                view.kind = event.kind
                view.description = event.description
                view.version = event.version
                view.revertible = event.revertible
                view.input_schema = event.input_schema
                view.output_schema = event.output_schema
                view.registered_at = event.at
            elif isinstance(event, ServiceHeartbeat):
                view = self._services.get(event.service)
                if view is None:
                    view = ServiceView(name=event.service, project=event.project)
                    self._services[event.service] = view
                if view.last_heartbeat_at is None or event.at >= view.last_heartbeat_at:
                    view.last_heartbeat_at = event.at
                    view.heartbeat_interval_s = event.interval_s
                    view.instance_id = event.instance_id
        if msg.metadata.num_pending == 0:
            self._services_caught_up.set()

    # --- queries ------------------------------------------------------------------------------

    def find(self, orchestration_id: str) -> OrchestrationView | None:
        """The view of an orchestration of any project, or ``None``."""
        return self.views.get(orchestration_id)

    def get(self, project: str, orchestration_id: str) -> OrchestrationView:
        """The view of one of ``project``'s orchestrations.

        Raises:
            NotFound: it does not exist, or belongs to another project.
        """
        view = self.views.get(orchestration_id)
        if view is None or view.project != project or orchestration_id not in self._indexed:
            raise NotFound(f"no orchestration {orchestration_id!r}")
        return view

    def page(
        self,
        project: str,
        *,
        status: OrchestrationStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[OrchestrationSummary], str | None]:
        """A page of ``project``'s orchestrations, newest first.

        Returns:
            The page and the cursor of the next one (``None`` on the last page).
        """
        index = self._index.get(project, [])
        end = len(index)
        if cursor is not None:
            end = bisect.bisect_left(index, decode_cursor(cursor))
        items: list[OrchestrationSummary] = []
        position = end - 1
        while position >= 0 and len(items) < limit:
            view = self.views[index[position][1]]
            if status is None or view.status == status:
                items.append(summarize(view))
            position -= 1
        has_more = any(
            status is None or self.views[index[p][1]].status == status
            for p in range(position, -1, -1)
        )
        last = items[-1] if items else None
        next_cursor = encode_cursor(last.created_at, last.id) if last and has_more else None
        return items, next_cursor

    def services(self, project: str, *, now: float | None = None) -> list[ServiceView]:
        """``project``'s services by name, each with its health as of ``now``."""
        at = time.time() if now is None else now
        out: list[ServiceView] = []
        for name in sorted(self._services):
            view = self._services[name]
            if view.project != project or view.registered_at is None:
                continue
            health: ServiceHealth = "unknown"
            if view.last_heartbeat_at is not None and view.heartbeat_interval_s is not None:
                fresh = at - view.last_heartbeat_at <= HEALTH_FACTOR * view.heartbeat_interval_s
                health = "healthy" if fresh else "unhealthy"
            out.append(msgspec.structs.replace(view, health=health))
        return out

    async def wait_for(
        self,
        orchestration_id: str,
        predicate: Callable[[OrchestrationView | None], bool],
        timeout_s: float,
    ) -> OrchestrationView | None:
        """Wait until ``predicate`` holds for the orchestration's view, or time out.

        Returns:
            The view as it is when the predicate held or time ran out (``None`` if the
            read model has not seen the orchestration yet).
        """
        waiter = asyncio.Event()
        waiters = self._waiters.setdefault(orchestration_id, set())
        waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                while not predicate(self.views.get(orchestration_id)):
                    await waiter.wait()
                    waiter.clear()
        except TimeoutError:
            pass
        finally:
            waiters.discard(waiter)
            if not waiters:
                self._waiters.pop(orchestration_id, None)
        return self.views.get(orchestration_id)

"""Read one orchestration's events straight from the JetStream event stream.

An ordered consumer filtered on ``*.*.<id>`` (``Topology.history_of``) replays the history
first, then delivers new events as they are appended: ``orra inspect -f`` and
``orra logs`` never poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import nats
from nats.errors import NoServersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from orra_cli.errors import CliError
from orra_events import Event, Topology, decode
from orra_events.errors import DecodeError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

__all__ = [
    "COMPENSATION_GRACE_S",
    "TERMINAL_EVENT_TYPES",
    "BrokerUnreachable",
    "NoEvents",
    "StreamedEvent",
    "Tick",
    "connect",
    "orchestration_events",
]

TERMINAL_EVENT_TYPES = frozenset(
    {"orchestration.done", "orchestration.failed", "orchestration.aborted"}
)
"""Event types that end an orchestration."""

COMPENSATION_GRACE_S = 1.0
"""How long ``inspect -f`` waits after a user's abort for the compensation to start."""


class BrokerUnreachable(CliError):
    """NATS cannot be reached."""


class NoEvents(CliError):
    """The event stream has no events of the orchestration (unknown id, or expired)."""


@dataclass(frozen=True)
class StreamedEvent:
    """One stored event of an orchestration.

    Attributes:
        seq: Its sequence in the event stream.
        subject: Its subject, without the namespace.
        raw: The event as stored (JSON object).
        event: The decoded event, or ``None`` when this CLI cannot decode it.
        caught_up: Whether it was the last stored event when it was delivered.
    """

    seq: int
    subject: str
    raw: dict[str, Any]
    event: Event | None
    caught_up: bool


@dataclass(frozen=True)
class Tick:
    """Nothing new for a while: a chance to refresh a live display."""


async def _quiet(_error: Exception) -> None:
    """nats-py logs every failed connection attempt with a traceback; the CLI says it once."""


async def connect(nats_url: str) -> NatsClient:
    """Connect to the broker.

    Raises:
        CliError: it cannot be reached; says how to fix it.
    """
    from orra_cli.common import quiet_library_logs

    quiet_library_logs()
    try:
        return await nats.connect(
            nats_url,
            name="orra-cli",
            connect_timeout=3,
            max_reconnect_attempts=3,
            reconnect_time_wait=0.5,
            allow_reconnect=False,
            error_cb=_quiet,
        )
    except (NoServersError, OSError, TimeoutError, NatsTimeout) as exc:
        raise BrokerUnreachable(
            f"cannot reach NATS at {nats_url}: start the stack with `orra up` or set "
            f"ORRA_NATS_URL ({type(exc).__name__}: {exc})"
        ) from None


async def orchestration_events(
    nats_url: str,
    namespace: str,
    orchestration_id: str,
    *,
    follow: bool,
    tick_s: float = 0.5,
) -> AsyncIterator[StreamedEvent | Tick]:
    """Yield the events of one orchestration in order.

    Args:
        nats_url: Broker URL.
        namespace: Subject namespace (``ORRA_NAMESPACE``).
        orchestration_id: The orchestration.
        follow: Keep going after the history until a terminal event (after a user's abort,
            until the compensation that follows it has ended, or no compensation started
            within :data:`COMPENSATION_GRACE_S`); otherwise stop once the stored history has
            been read.
        tick_s: Yield a :class:`Tick` after this long without an event (when following).

    Raises:
        BrokerUnreachable: the broker is unreachable.
        NoEvents: the orchestration has no events (unknown, or removed by the retention).
    """
    topology = Topology(namespace=namespace)
    nc = await connect(nats_url)
    try:
        sub = await _subscribe(nc, topology, nats_url, orchestration_id)
        loop = asyncio.get_running_loop()
        ending = _Ending(tick_s)
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=ending.tick_s)
                except (TimeoutError, NatsTimeout):
                    if ending.idle_over(loop.time()):
                        return
                    yield Tick()
                    continue
                streamed = _streamed(topology, msg)
                yield streamed
                if not follow:
                    if streamed.caught_up:
                        return
                    continue
                if ending.ends_with(streamed.raw, loop.time()):
                    return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


async def _subscribe(
    nc: NatsClient, topology: Topology, nats_url: str, orchestration_id: str
) -> JetStreamContext.PushSubscription:
    """An ordered consumer of the orchestration's events, from the first.

    Raises:
        NoEvents: the stream has no ``action.submitted`` event of the orchestration.
    """
    js = nc.jetstream()
    stream = topology.events_stream
    try:
        await js.get_last_msg(stream, topology.subject("action.submitted", orchestration_id))
    except NotFoundError:
        raise NoEvents(
            f"orchestration {orchestration_id} has no events in stream {stream} at "
            f"{nats_url}: check the id with `orra ps` (and ORRA_NAMESPACE="
            f"{topology.namespace!r})"
        ) from None
    return await js.subscribe(
        topology.history_of(orchestration_id),
        stream=stream,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
        idle_heartbeat=2.0,
    )


def _streamed(topology: Topology, msg: Msg) -> StreamedEvent:
    """The stored event of a message: as stored, and decoded when this CLI can."""
    meta = msg.metadata
    try:
        raw = json.loads(msg.data)
    except ValueError:
        raw = {"type": "<malformed>", "data": msg.data.decode(errors="replace")}
    try:
        event: Event | None = decode(msg.data)
    except DecodeError:
        event = None
    return StreamedEvent(
        seq=meta.sequence.stream,
        subject=topology.strip(msg.subject),
        raw=raw if isinstance(raw, dict) else {"value": raw},
        event=event,
        caught_up=meta.num_pending == 0,
    )


class _Ending:
    """When following ends: at a terminal event, except after a user's abort.

    After a user's abort the terminal event comes first and the dispatcher may then
    compensate: follow on for a short while, and to the end of a compensation.
    """

    def __init__(self, tick_s: float) -> None:
        self.tick_s = tick_s
        self._grace_until: float | None = None
        self._compensating = False

    def idle_over(self, now: float) -> bool:
        """Whether the grace after an abort ran out with no compensation under way."""
        return self._grace_until is not None and not self._compensating and now > self._grace_until

    def ends_with(self, raw: dict[str, Any], now: float) -> bool:
        """Whether the event ``raw`` (just delivered) is the last one to follow."""
        kind = raw.get("type")
        if kind == "orchestration.compensating":
            self._compensating = True
        elif kind == "orchestration.compensated":
            self._compensating = False
            return self._grace_until is not None
        elif kind in TERMINAL_EVENT_TYPES:
            if kind != "orchestration.aborted" or raw.get("compensation") is not None:
                return True
            self._grace_until = now + COMPENSATION_GRACE_S
            if not self._compensating:
                self.tick_s = min(self.tick_s, COMPENSATION_GRACE_S)
        return False

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
        js = nc.jetstream()
        stream = topology.events_stream
        try:
            await js.get_last_msg(stream, topology.subject("action.submitted", orchestration_id))
        except NotFoundError:
            raise NoEvents(
                f"orchestration {orchestration_id} has no events in stream {stream} at "
                f"{nats_url}: check the id with `orra ps` (and ORRA_NAMESPACE="
                f"{namespace!r})"
            ) from None
        sub = await js.subscribe(
            topology.history_of(orchestration_id),
            stream=stream,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
            idle_heartbeat=2.0,
        )
        loop = asyncio.get_running_loop()
        # After a user's abort the terminal event comes first and the dispatcher may then
        # compensate: follow on for a short while, and to the end of a compensation.
        grace_until: float | None = None
        compensating = False
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=tick_s)
                except (TimeoutError, NatsTimeout):
                    if grace_until is not None and not compensating and loop.time() > grace_until:
                        return
                    yield Tick()
                    continue
                meta = msg.metadata
                caught_up = meta.num_pending == 0
                try:
                    raw = json.loads(msg.data)
                except ValueError:
                    raw = {"type": "<malformed>", "data": msg.data.decode(errors="replace")}
                try:
                    event: Event | None = decode(msg.data)
                except DecodeError:
                    event = None
                yield StreamedEvent(
                    seq=meta.sequence.stream,
                    subject=topology.strip(msg.subject),
                    raw=raw if isinstance(raw, dict) else {"value": raw},
                    event=event,
                    caught_up=caught_up,
                )
                kind = raw.get("type") if isinstance(raw, dict) else None
                if not follow:
                    if caught_up:
                        return
                    continue
                if kind == "orchestration.compensating":
                    compensating = True
                elif kind == "orchestration.compensated":
                    compensating = False
                    if grace_until is not None:
                        return
                elif kind in TERMINAL_EVENT_TYPES:
                    compensated = isinstance(raw, dict) and raw.get("compensation") is not None
                    if kind != "orchestration.aborted" or compensated:
                        return
                    grace_until = loop.time() + COMPENSATION_GRACE_S
                    if not compensating:
                        tick_s = min(tick_s, COMPENSATION_GRACE_S)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
    finally:
        with contextlib.suppress(Exception):
            await nc.close()

"""The JetStream side of Orra: connect, declare streams, publish events, park.

Every service talks to the broker through a :class:`Bus`. It publishes every event with a
``Nats-Msg-Id`` header equal to the event id, so a retried publish within the stream's
duplicate window is stored once. Consuming is done by the two primitives of
:mod:`orra_events.consumers` (:meth:`Bus.consume` starts a push consumer of events); they
park what they cannot handle with :meth:`Bus.park`, and :meth:`Bus.close` stops those still
running. :attr:`Bus.publisher` is the connection's pipelined publisher (acknowledgements,
batches, compare-and-set writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import nats
import structlog
from nats.errors import NoServersError
from nats.js.errors import BadRequestError, NotFoundError

from orra_events._fastpub import FastPublisher
from orra_events.codec import encode
from orra_events.consumers import DELIVER_PREFIX, Durable, PushConsumer, Retry
from orra_events.deadletter import (
    HDR_ORIGINAL_SEQUENCE,
    HDR_ORIGINAL_STREAM,
    HDR_ORIGINAL_SUBJECT,
    HDR_REASON,
    dead_letter_headers,
)
from orra_events.errors import OrraEventsError
from orra_events.metrics import observe_event
from orra_events.publishing import raise_first_error

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext
    from nats.js.api import PubAck, StreamConfig
    from nats.js.kv import KeyValue

    from orra_events.consumers import Consumer
    from orra_events.events import Event
    from orra_events.publishing import PubAck as StoredAck
    from orra_events.topology import Topology

__all__ = [
    "BROKER_PATIENCE_S",
    "DEFAULT_NATS_URL",
    "DELIVER_PREFIX",
    "FOLLOW_HEARTBEAT_S",
    "HDR_ORIGINAL_SEQUENCE",
    "HDR_ORIGINAL_STREAM",
    "HDR_ORIGINAL_SUBJECT",
    "HDR_REASON",
    "BrokerUnavailable",
    "Bus",
    "EventHandler",
    "Retry",
]

DEFAULT_NATS_URL: Final = "nats://127.0.0.1:4222"
BROKER_PATIENCE_S: Final = 1.0
"""While a process stops, how long it still waits for work that needs the broker once the
broker is unreachable (see :meth:`Bus.wait_while_reachable`)."""
FOLLOW_HEARTBEAT_S: Final = 1.0
"""Idle heartbeat of the ordered consumers a process follows a stream with for its whole
life (the registries). A restarted nats-server has lost these in-memory consumers; nats-py
recreates one after two missed heartbeats, so this bounds the stall after a restart (with
nats-py's default of 5 s it lasted about 16 s)."""

log = structlog.get_logger("orra.bus")
_ERROR_LOG_EVERY_S: Final = 30.0

EventHandler = Callable[["Event", "Msg"], Awaitable[None]]
"""A consumer's handler: the decoded event and its message (for metadata and in-progress)."""


class BrokerUnavailable(OrraEventsError):
    """The broker cannot be reached."""


class Bus:
    """A connection to JetStream bound to one :class:`~orra_events.topology.Topology`."""

    def __init__(self, nc: NatsClient, topology: Topology, *, name: str) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(publish_async_max_pending=20_000)
        self.topology = topology
        self.name = name
        self._consumers: list[Consumer[Any]] = []
        self._publisher: FastPublisher | None = None
        self.closing = False

    @classmethod
    async def connect(
        cls,
        url: str,
        topology: Topology,
        *,
        name: str,
        connect_timeout: float = 5.0,
        retry_forever: bool = True,
        connect_attempts: int = 3,
    ) -> Bus:
        """Connect to the broker; once connected, reconnect by itself forever.

        The first connection is tried ``connect_attempts`` times (0.5 s apart) and then
        fails, so a process started without a broker says so instead of hanging. Once
        connected, the client reconnects forever (``retry_forever``) or three times.

        Args:
            url: Broker URL, ``nats://host:port`` (credentials and TLS in the URL).
            topology: Names of the subjects and streams this bus uses.
            name: Connection name, shown by the broker's monitoring.
            connect_timeout: Seconds for one connection attempt.
            retry_forever: Reconnect forever after a connection loss.
            connect_attempts: How many times to try the first connection.

        Raises:
            BrokerUnavailable: the first connection failed.
        """
        made: list[Bus] = []
        # While the broker is away every reconnection attempt (2 a second) fails: log the
        # first failure of an outage, then one line per _ERROR_LOG_EVERY_S with a count.
        outage = {"logged_at": 0.0, "unlogged": 0}

        async def _on_error(exc: Exception) -> None:
            reconnecting = bool(made) and not made[0].connected
            if reconnecting:
                now = time.monotonic()
                if outage["logged_at"] and now - outage["logged_at"] < _ERROR_LOG_EVERY_S:
                    outage["unlogged"] += 1
                    return
                outage["logged_at"] = now
            log.warning(
                "nats error",
                error=str(exc),
                client=name,
                **({"failed_since_last_line": outage["unlogged"]} if outage["unlogged"] else {}),
            )
            outage["unlogged"] = 0

        async def _on_disconnect() -> None:
            if not (made and made[0].closing):
                log.warning("nats disconnected", client=name)

        async def _on_reconnect() -> None:
            log.info("nats reconnected", client=name, failed_attempts=outage["unlogged"])
            outage.update(logged_at=0.0, unlogged=0)

        try:
            nc = await nats.connect(
                url,
                name=name,
                connect_timeout=connect_timeout,
                # nats-py applies max_reconnect_attempts to the first connection too, and
                # -1 there would retry forever: bound it now, lift the bound once connected.
                max_reconnect_attempts=max(1, connect_attempts),
                reconnect_time_wait=0.5,
                allow_reconnect=True,
                error_cb=_on_error,
                disconnected_cb=_on_disconnect,
                reconnected_cb=_on_reconnect,
            )
        except (NoServersError, OSError, TimeoutError) as exc:
            raise BrokerUnavailable(f"cannot reach NATS at {url}: {exc}") from None
        nc.options["max_reconnect_attempts"] = -1 if retry_forever else 3
        made.append(cls(nc, topology, name=name))
        return made[0]

    @property
    def connected(self) -> bool:
        """Whether the connection to the broker is up now."""
        return bool(self.nc.is_connected)

    @property
    def publisher(self) -> FastPublisher:
        """The connection's pipelined publisher (one per connection, made on first use).

        Acknowledgements and core publishes need nothing more; batches, single publishes
        and requests need ``await bus.publisher.start()`` first (idempotent).
        """
        if self._publisher is None:
            self._publisher = FastPublisher(self.nc)
        return self._publisher

    async def ensure_streams(self) -> None:
        """Create every stream of the topology, or update it to the current definition.

        A services stream of the layout before ``ORRA_HEARTBEATS`` existed (subjects
        ``service.>``: registrations and heartbeats together) is narrowed to the
        registrations, which it keeps (they are read from their old subjects), and its
        heartbeats, which now live in their own stream, are purged.
        """
        topology = self.topology
        legacy = False
        with contextlib.suppress(NotFoundError):
            info = await self.js.stream_info(topology.services_stream)
            legacy = info.config.subjects == [topology.subject("service", ">")]
        for config in topology.stream_configs():
            await self.ensure_stream(config)
        if legacy:
            await self.js.purge_stream(
                topology.services_stream, subject=topology.heartbeats_filter()
            )
            log.info("services stream narrowed to registrations", stream=topology.services_stream)

    async def ensure_stream(self, config: StreamConfig) -> None:
        """Create one stream, or update it when it exists."""
        try:
            await self.js.add_stream(config)
        except BadRequestError:
            await self.js.update_stream(config)

    async def bind_streams(self, timeout_s: float = 30.0) -> None:
        """Wait until every stream of the topology exists (created by another component)."""
        deadline = time.monotonic() + timeout_s
        for config in self.topology.stream_configs():
            assert config.name is not None
            while True:
                try:
                    await self.js.stream_info(config.name)
                    break
                except NotFoundError:
                    if time.monotonic() > deadline:
                        raise BrokerUnavailable(f"stream {config.name} does not exist") from None
                    await asyncio.sleep(0.2)

    # --- publishing ----------------------------------------------------------------------

    def _headers(self, event: Event, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Nats-Msg-Id": event.event_id}
        if extra:
            headers.update(extra)
        return headers

    async def publish(
        self,
        event: Event,
        *,
        subject: str | None = None,
        expected_last_subject_seq: int | None = None,
        expected_last_subject: str | None = None,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
    ) -> PubAck:
        """Append an event and wait for the broker's acknowledgement.

        Args:
            event: The event; its ``event_id`` deduplicates retried publishes.
            subject: Where to publish; the event's own subject by default.
            expected_last_subject_seq: Optimistic concurrency: the write is refused unless
                the subject's last sequence is this one (0: the subject must be empty).
            expected_last_subject: The subject, wildcards allowed, whose last sequence
                ``expected_last_subject_seq`` is checked against instead of the published
                subject (``plan.*.<orch>``: no plan event of any type yet). Needs
                nats-server 2.11 or later; older servers ignore it.
            timeout: Seconds to wait for the acknowledgement.
            headers: More headers (the trace context, :mod:`orra_events.tracing`).
        """
        observe_event(event)
        extra = dict(headers) if headers else None
        if expected_last_subject_seq is not None:
            extra = extra or {}
            extra |= {"Nats-Expected-Last-Subject-Sequence": str(expected_last_subject_seq)}
            if expected_last_subject is not None:
                extra["Nats-Expected-Last-Subject-Sequence-Subject"] = expected_last_subject
        return await self.js.publish(
            subject or self.topology.subject_for(event),
            encode(event),
            timeout=timeout,
            headers=self._headers(event, extra),
        )

    async def publish_all(self, events: Iterable[Event]) -> list[StoredAck]:
        """Append events together (one pipelined batch) and wait for every acknowledgement.

        Raises:
            PublishError: the broker refused one of them (the first refusal is raised).
            TimeoutError: the acknowledgements did not all come in time.
        """
        publisher = self.publisher
        await publisher.start()
        batch = publisher.batch()
        subject_for = self.topology.subject_for
        for event in events:
            observe_event(event)
            batch.add(subject_for(event), encode(event), msg_id=event.event_id)
        return raise_first_error(await batch.send())

    async def park(self, msg: Msg, reason: str) -> None:
        """Move a message to the dead-letter subject with its reason, then drop the original.

        The parked copy keeps the payload and gains the headers of
        :func:`orra_events.deadletter.dead_letter_headers` (the reason, where it came from;
        a message parked twice is stored once).
        """
        original = msg.subject
        headers = dead_letter_headers(msg, reason)
        await self.js.publish(self.topology.dead_letter(original), msg.data, headers=headers)
        log.error("message parked on dead-letter subject", subject=original, reason=reason)
        with contextlib.suppress(Exception):
            self.publisher.term(msg)

    # --- consuming -----------------------------------------------------------------------

    async def consume(
        self,
        *,
        stream: str,
        durable: str,
        filter_subjects: Sequence[str],
        handler: EventHandler,
        ack_wait_s: float = 30.0,
        max_deliver: int = 20,
        max_ack_pending: int = 1000,
        deliver_new_only: bool = False,
        retry_delay_s: float = 1.0,
        concurrency: int = 1,
    ) -> PushConsumer[Event]:
        """Start a durable push consumer of events (:class:`orra_events.consumers.PushConsumer`).

        Several processes calling this with the same ``durable`` share the messages; they
        may start at the same moment. The message is acked when ``handler`` returns; on
        :class:`~orra_events.consumers.Retry` or another exception it is redelivered after
        a delay; on :class:`~orra_events.consumers.Park`, after ``max_deliver`` deliveries,
        or when it cannot be decoded, it is parked on the dead-letter subject. An existing
        durable consumer with other filters, ack wait or max ack pending is updated.
        :meth:`close` stops it.

        Args:
            stream: Stream to consume, e.g. ``topology.events_stream``.
            durable: Durable consumer name, also the deliver (queue) group.
            filter_subjects: Subjects to receive, e.g. ``[topology.all_of("plan.created")]``.
            handler: Called with each decoded event and its message.
            ack_wait_s: Seconds before an unacknowledged message is redelivered.
            max_deliver: Deliveries after which a failing message is parked.
            max_ack_pending: Messages in flight at once across the group.
            deliver_new_only: Start with new messages only (when the consumer is created).
            retry_delay_s: Delay of the redelivery after the handler raised.
            concurrency: Handlers running at once (1: sequential, in delivery order).

        Raises:
            ValueError: ``concurrency`` is below 1.
        """
        consumer: PushConsumer[Event] = PushConsumer(
            self,
            Durable(
                stream=stream,
                name=durable,
                filter_subjects=tuple(filter_subjects),
                ack_wait_s=ack_wait_s,
                max_ack_pending=max_ack_pending,
                deliver_new_only=deliver_new_only,
            ),
            handler,
            max_deliver=max_deliver,
            retry_delay_s=retry_delay_s,
            concurrency=concurrency,
        )
        await consumer.start()
        return consumer

    def attach(self, consumer: Consumer[Any]) -> None:
        """Have :meth:`close` stop ``consumer`` (a started consumer calls it)."""
        self._consumers.append(consumer)

    def detach(self, consumer: Consumer[Any]) -> None:
        """Forget ``consumer`` (it stops by itself)."""
        with contextlib.suppress(ValueError):
            self._consumers.remove(consumer)

    # --- key-value -----------------------------------------------------------------------

    async def kv(self, name: str, *, history: int = 1, ttl_s: float | None = None) -> KeyValue:
        """Open (creating it when missing) the key-value bucket ``name`` of this topology."""
        bucket = self.topology.bucket(name)
        try:
            return await self.js.key_value(bucket)
        except (NotFoundError, nats.js.errors.BucketNotFoundError):
            return await self.js.create_key_value(
                bucket=bucket,
                history=history,
                ttl=ttl_s,
                replicas=self.topology.replicas,
            )

    async def close(self, handler_timeout_s: float = 10.0) -> None:
        """Stop the consumers still running, let their handlers finish, close the connection.

        Args:
            handler_timeout_s: How long running handlers may still run; those still running
                then are cancelled, and their messages are redelivered.
        """
        self.closing = True
        consumers, self._consumers = list(self._consumers), []
        if consumers:
            await asyncio.gather(
                *(consumer.stop(handler_timeout_s) for consumer in consumers),
                return_exceptions=True,
            )
        if self._publisher is not None:
            await self._publisher.stop()
        with contextlib.suppress(Exception):
            await self.nc.drain()
        with contextlib.suppress(Exception):
            await self.nc.close()

    async def wait_while_reachable(
        self, awaitable: Awaitable[Any], timeout_s: float, *, what: str = "running work"
    ) -> bool:
        """Wait for ``awaitable`` (work that needs the broker) while stopping; bounded.

        Waits up to ``timeout_s``, but no longer than :data:`BROKER_PATIENCE_S` once the
        broker is unreachable: that work cannot finish without it, and a process must stop
        within its grace period even while the broker is down. ``awaitable`` is not
        cancelled (the caller decides what to do with what did not finish).

        Returns:
            Whether ``awaitable`` finished.
        """
        future = asyncio.ensure_future(awaitable)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout_s, 0.0)
        down_since: float | None = None
        try:
            while not future.done():
                now = loop.time()
                if now >= deadline:
                    return False
                if self.connected:
                    down_since = None
                elif down_since is None:
                    down_since = now
                elif now - down_since >= BROKER_PATIENCE_S:
                    log.warning("the broker is unreachable: not waiting", waiting_for=what)
                    return False
                await asyncio.wait({future}, timeout=min(0.1, deadline - now))
            return True
        finally:
            if not future.done():
                future.cancel()

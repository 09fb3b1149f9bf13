"""The JetStream side of Orra: connect, declare streams, publish events, consume, park.

Every service talks to the broker through a :class:`Bus`. It publishes every event with a
``Nats-Msg-Id`` header equal to the event id, so a retried publish within the stream's
duplicate window is stored once. Consumers built with :meth:`Bus.consume` decode each
message, park undecodable ones on the dead-letter subject with their reason, and choose
their acknowledgement on purpose: ack after the handler succeeded, ``nak`` with a delay
when it raised, park after too many deliveries. By default a consumer handles one message
at a time; ``concurrency=N`` runs up to N handlers at once, with the same acknowledgements.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Final

import nats
import structlog
from nats.errors import NoServersError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from orra_events.codec import decode, encode
from orra_events.errors import DecodeError, OrraEventsError
from orra_events.metrics import observe_event

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext
    from nats.js.api import ConsumerInfo, PubAck
    from nats.js.kv import KeyValue

    from orra_events.events import Event
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
HDR_REASON: Final = "Orra-Dead-Letter-Reason"
HDR_ORIGINAL_SUBJECT: Final = "Orra-Original-Subject"
HDR_ORIGINAL_STREAM: Final = "Orra-Original-Stream"
HDR_ORIGINAL_SEQUENCE: Final = "Orra-Original-Sequence"
DELIVER_PREFIX: Final = "_INBOX.orra"
"""Prefix of the deliver subjects of Orra's push consumers (``_INBOX.>`` is commonly allowed)."""
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


class Retry(OrraEventsError):
    """Raised by a handler to have its message redelivered after ``delay_s``."""

    def __init__(self, reason: str, delay_s: float = 1.0) -> None:
        super().__init__(reason)
        self.delay_s = delay_s


class Bus:
    """A connection to JetStream bound to one :class:`~orra_events.topology.Topology`."""

    def __init__(self, nc: NatsClient, topology: Topology, *, name: str) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(publish_async_max_pending=20_000)
        self.topology = topology
        self.name = name
        self._subs: list[Any] = []
        self._handlers: set[asyncio.Task[None]] = set()
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
        """
        observe_event(event)
        extra = None
        if expected_last_subject_seq is not None:
            extra = {"Nats-Expected-Last-Subject-Sequence": str(expected_last_subject_seq)}
            if expected_last_subject is not None:
                extra["Nats-Expected-Last-Subject-Sequence-Subject"] = expected_last_subject
        return await self.js.publish(
            subject or self.topology.subject_for(event),
            encode(event),
            timeout=timeout,
            headers=self._headers(event, extra),
        )

    async def publish_nowait(
        self, event: Event, *, subject: str | None = None
    ) -> asyncio.Future[PubAck]:
        """Append an event without waiting for its ack; await the returned future for it."""
        observe_event(event)
        return await self.js.publish_async(
            subject or self.topology.subject_for(event),
            encode(event),
            headers=self._headers(event, None),
        )

    async def park(self, msg: Msg, reason: str) -> None:
        """Move a message to the dead-letter subject with its reason, then drop the original.

        The parked copy keeps the payload and the application headers, and gains
        ``Orra-Dead-Letter-Reason``, ``Orra-Original-Subject`` and, for a JetStream
        message, ``Orra-Original-Stream`` / ``Orra-Original-Sequence``. The broker's own
        ``Nats-*`` headers of the original (its message id, optimistic-concurrency
        expectations) are dropped: they would be re-applied to the dead-letter stream. A
        message parked twice (the process died between parking and dropping it) is stored
        once, deduplicated by its original stream and sequence.
        """
        original = msg.subject
        headers = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("Nats-")}
        headers[HDR_REASON] = reason[:2000]
        headers[HDR_ORIGINAL_SUBJECT] = original
        with contextlib.suppress(Exception):  # a plain NATS message has no metadata
            meta = msg.metadata
            headers[HDR_ORIGINAL_STREAM] = meta.stream
            headers[HDR_ORIGINAL_SEQUENCE] = str(meta.sequence.stream)
            headers["Nats-Msg-Id"] = f"dlq:{meta.stream}:{meta.sequence.stream}"
        await self.js.publish(self.topology.dead_letter(original), msg.data, headers=headers)
        log.error("message parked on dead-letter subject", subject=original, reason=reason)
        with contextlib.suppress(Exception):
            await msg.term()

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
    ) -> None:
        """Start a durable, shared (queue-group) consumer that calls ``handler`` per event.

        Several processes calling this with the same ``durable`` share the messages; they
        may start at the same moment. The message is acked when ``handler`` returns; on
        :class:`Retry` or another exception it is redelivered after a delay; after
        ``max_deliver`` deliveries, or when it cannot be decoded, it is parked on the
        dead-letter subject. If the durable consumer exists with other filters, ack wait
        or max ack pending (a new version of the service), it is updated to these.

        With ``concurrency`` 1 (the default) messages are handled one at a time, in
        delivery order. With N > 1 each message is handled in a task of its own, at most N
        at once (the subscription waits for a free slot before taking the next message),
        so handlers must not rely on order; acknowledgements are the same. :meth:`close`
        waits for running handlers, then cancels those still running (their messages are
        redelivered after ``ack_wait_s``).

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
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        config = ConsumerConfig(
            durable_name=durable,
            deliver_group=durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait_s,
            max_deliver=-1,
            max_ack_pending=max_ack_pending,
            deliver_policy=DeliverPolicy.NEW if deliver_new_only else DeliverPolicy.ALL,
            filter_subjects=list(filter_subjects),
        )
        info = await self._ensure_consumer(stream, config)

        async def _on_message(msg: Msg) -> None:
            await self._dispatch(msg, handler, max_deliver, retry_delay_s)

        callback = _on_message if concurrency == 1 else self._concurrent(_on_message, concurrency)
        sub = await self.js.subscribe_bind(
            stream=stream,
            config=info.config,
            consumer=durable,
            cb=callback,
            manual_ack=True,
        )
        self._subs.append(sub)

    def _concurrent(
        self, on_message: Callable[[Msg], Coroutine[Any, Any, None]], limit: int
    ) -> Callable[[Msg], Awaitable[None]]:
        """Wrap a subscription callback to run it in a task, at most ``limit`` at once."""
        slots = asyncio.Semaphore(limit)
        handlers = self._handlers

        def _done(task: asyncio.Task[None]) -> None:
            handlers.discard(task)
            slots.release()
            if not task.cancelled() and (exc := task.exception()) is not None:
                log.warning("message handling failed", error=f"{type(exc).__name__}: {exc}")

        async def _schedule(msg: Msg) -> None:
            await slots.acquire()
            task = asyncio.create_task(on_message(msg))
            handlers.add(task)
            task.add_done_callback(_done)

        return _schedule

    async def _ensure_consumer(self, stream: str, config: ConsumerConfig) -> ConsumerInfo:
        """Create the durable push consumer, or bring an existing one to ``config``.

        Its deliver subject is derived from the stream and durable names, so replicas that
        start at the same moment create the very same consumer instead of racing with two
        different inboxes. An existing consumer whose filters, ack wait or max ack pending
        differ from ``config`` (a new version of the service) is updated.
        """
        durable = config.durable_name
        assert durable is not None
        try:
            info: ConsumerInfo | None = await self.js.consumer_info(stream, durable)
        except NotFoundError:
            info = None
        if info is None:
            try:
                return await self.js.add_consumer(
                    stream, config.evolve(deliver_subject=f"{DELIVER_PREFIX}.{stream}.{durable}")
                )
            except BadRequestError:  # created meanwhile by another replica
                info = await self.js.consumer_info(stream, durable)
        current = info.config
        if not current.deliver_subject or current.deliver_group != config.deliver_group:
            raise OrraEventsError(
                f"consumer {durable} of {stream} exists but is not a push consumer with deliver "
                f"group {config.deliver_group!r}; delete it or use another durable name"
            )
        filters = current.filter_subjects or (
            [current.filter_subject] if current.filter_subject else []
        )
        wanted = list(config.filter_subjects or [])
        if (
            sorted(filters) != sorted(wanted)
            or abs((current.ack_wait or 0.0) - (config.ack_wait or 0.0)) > 1e-3
            or current.max_ack_pending != config.max_ack_pending
        ):
            log.info("updating consumer", stream=stream, consumer=durable, filters=wanted)
            info = await self.js.add_consumer(
                stream,
                current.evolve(
                    filter_subject=None,
                    filter_subjects=wanted,
                    ack_wait=config.ack_wait,
                    max_ack_pending=config.max_ack_pending,
                ),
            )
        return info

    async def _dispatch(
        self, msg: Msg, handler: EventHandler, max_deliver: int, retry_delay_s: float
    ) -> None:
        try:
            event = decode(msg.data)
        except DecodeError as exc:
            await self._park_or_retry(msg, f"{type(exc).__name__}: {exc}", retry_delay_s)
            return
        try:
            await handler(event, msg)
        except Retry as exc:
            await self._retry_or_park(msg, str(exc), exc.delay_s, max_deliver)
            return
        except Exception as exc:
            log.exception("handler failed", subject=msg.subject, event_type=event.TYPE)
            await self._retry_or_park(
                msg, f"{type(exc).__name__}: {exc}", retry_delay_s, max_deliver
            )
            return
        await msg.ack()

    async def _retry_or_park(self, msg: Msg, reason: str, delay_s: float, max_deliver: int) -> None:
        if msg.metadata.num_delivered >= max_deliver:
            await self._park_or_retry(
                msg, f"gave up after {max_deliver} deliveries: {reason}", delay_s
            )
        else:
            await msg.nak(delay=delay_s)

    async def _park_or_retry(self, msg: Msg, reason: str, delay_s: float) -> None:
        """Park ``msg``; if even that fails (broker trouble), have it redelivered later."""
        try:
            await self.park(msg, reason)
        except Exception as exc:  # noqa: BLE001 - losing the message is the one bad outcome
            log.warning("cannot park message, will retry", subject=msg.subject, error=str(exc))
            with contextlib.suppress(Exception):
                await msg.nak(delay=delay_s)

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
        """Stop consuming, let running handlers finish, and close the connection.

        Args:
            handler_timeout_s: How long handlers of concurrent consumers (see
                :meth:`consume`) may still run; those still running then are cancelled,
                and their messages are redelivered.
        """
        self.closing = True
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        await self._finish_handlers(handler_timeout_s)
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

    async def _finish_handlers(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for running handler tasks, then cancel the rest.

        Not longer than :data:`BROKER_PATIENCE_S` while the broker is unreachable.
        """
        if not self._handlers:
            return
        await self.wait_while_reachable(
            asyncio.wait(set(self._handlers)), timeout_s, what="running handlers"
        )
        pending = {task for task in self._handlers if not task.done()}
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled running handlers at close", count=len(pending))
            await asyncio.wait(pending)

"""The bounded pull consumer: replicas that take only what they can run (SDK, notifier).

A pull consumer hands a message only to a replica that asks for it, so a replica never
holds more messages than it has free slots (their ack timers would run while they wait) and
replicas split the work by how fast each one works. It is driven by a callback, not by
``fetch()``: the consumer subscribes a private inbox and sends
``$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>`` requests to it, asking for as many messages
as it has free slots; the broker delivers them to the inbox and the callback starts a task
per message. That keeps pull semantics at push speed (``fetch()`` and iterators cost a task,
a timer and a uuid per message; see BENCHMARKS.md).

Requests. A new request is sent when at least a quarter of the slots are free (or none is
outstanding), for the free slots, and lives ``expires_s``. The broker ends it with a ``408``
status (expired; its header says how many messages it did not deliver) or ``409`` (too many
waiting requests, the consumer deleted or moved): outstanding counts are corrected and the
consumer asks again. A ticker (every :data:`TICK_S`) asks again when a request expired
without its status and, after the client reconnected (a broker restart forgets the
requests), at once: a restarted broker gets new requests within a tick of the reconnection.

The ack policy, parking and the durable's updates are those of
:class:`~orra_events.consumers.Consumer`. Stopping unsubscribes the inbox first (the broker
then drops the open requests, so nothing more comes), hands back what still arrives, and
lets running handlers finish for ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Final, Generic, TypeVar

import structlog

from orra_events.codec import decode
from orra_events.consumers._base import Consumer, Decoder, Durable, Handler, ensure_durable

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from orra_events.bus import Bus

__all__ = ["TICK_S", "PullConsumer"]

T = TypeVar("T")

TICK_S: Final = 0.25
"""How often a pull consumer checks its requests (expired, or lost with a connection)."""
_STATUS: Final = "Status"
_EXPIRED_GRACE_S: Final = 1.0

log = structlog.get_logger("orra.consumer")


class PullConsumer(Consumer[T], Generic[T]):
    """A durable pull consumer that runs at most ``concurrency`` handlers at once.

    Args:
        bus: The connection.
        durable: The durable consumer.
        handler: Called with each decoded message and the message, in a task of its own.
        concurrency: Handlers running at once in this process (also what it asks for).
        expires_s: Lifetime of one pull request.
        max_waiting: The consumer's limit of waiting requests (set when it is created).
        decoder: Turns bytes into what ``handler`` takes (default: an Orra event).
        manual_ack: The handler acknowledges (see :class:`~orra_events.consumers.Consumer`).
        max_deliver: Deliveries after which a failing message is parked (``None``: never).
        retry_delay_s: Delay of the redelivery after the handler raised.

    Raises:
        ValueError: ``concurrency`` is below 1 or ``expires_s`` is not positive.
    """

    def __init__(
        self,
        bus: Bus,
        durable: Durable,
        handler: Handler[T],
        *,
        concurrency: int,
        expires_s: float = 10.0,
        max_waiting: int = 4096,
        decoder: Decoder[T] = decode,  # type: ignore[assignment]
        manual_ack: bool = False,
        max_deliver: int | None = 20,
        retry_delay_s: float = 1.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if expires_s <= 0:
            raise ValueError(f"expires_s must be positive, got {expires_s}")
        super().__init__(
            bus,
            durable,
            handler,
            decoder=decoder,
            manual_ack=manual_ack,
            max_deliver=max_deliver,
            retry_delay_s=retry_delay_s,
        )
        self.concurrency = concurrency
        self.expires_s = expires_s
        self.max_waiting = max_waiting
        self._refill_at = max(1, concurrency // 4)
        self._outstanding = 0
        self._last_deadline = 0.0
        self._inflight = 0
        self._sub: Subscription | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{durable.stream}.{durable.name}"
        self._inbox = ""
        self._request_tail = f',"expires":{int(expires_s * 1e9)}}}'.encode()
        self._epoch = 0

    @property
    def inflight(self) -> int:
        """Messages received whose handler has not finished."""
        return self._inflight

    @property
    def bound(self) -> bool:
        """Whether it takes messages (started, not stopping)."""
        return self._sub is not None and not self._stopping

    async def start(self) -> None:
        """Create (or update) the durable consumer and start asking for messages."""
        await ensure_durable(self.bus.js, self.durable, push=False, max_waiting=self.max_waiting)
        nc = self.bus.nc
        self._inbox = nc.new_inbox()
        self._sub = await nc.subscribe(self._inbox, cb=self._on_message)
        self._epoch = self._reconnects()
        self._pull()
        self._ticker = asyncio.create_task(self._tick(), name=f"orra-pull-{self.name}")
        self.bus.attach(self)

    # --- asking for messages -------------------------------------------------------------

    def _pull(self) -> None:
        if self._stopping or self._sub is None or not self.bus.nc.is_connected:
            return
        free = self.concurrency - self._inflight - self._outstanding
        if free <= 0 or (self._outstanding > 0 and free < self._refill_at):
            return
        self._outstanding += free
        self._last_deadline = time.monotonic() + self.expires_s
        try:
            self._acks.send(
                self._next_subject, b'{"batch":%d' % free + self._request_tail, self._inbox
            )
        except Exception as exc:  # noqa: BLE001 - the ticker asks again
            self._outstanding -= free
            log.warning("pull request failed", consumer=self.name, error=str(exc))

    async def _tick(self) -> None:
        while not self._stopping:
            await asyncio.sleep(TICK_S)
            epoch = self._reconnects()
            if epoch != self._epoch:
                # The broker that held our requests is gone (or was restarted).
                self._epoch = epoch
                self._outstanding = 0
            elif self._outstanding and time.monotonic() > self._last_deadline + _EXPIRED_GRACE_S:
                # Expired without its 408 (a lost status message): it no longer counts.
                self._outstanding = 0
            self._pull()

    def _reconnects(self) -> int:
        return int(self.bus.nc.stats.get("reconnects", 0))

    async def _on_message(self, msg: Msg) -> None:
        if msg.reply:
            self._outstanding = max(0, self._outstanding - 1)
            if self._stopping:
                self.nak(msg)  # handed back to another replica at once
                return
            self._inflight += 1
            self._track(asyncio.create_task(self._run(msg)))
            return
        headers = msg.headers or {}
        status = headers.get(_STATUS)
        if status == "408":
            self._outstanding = max(
                0, self._outstanding - int(headers.get("Nats-Pending-Messages", "0"))
            )
            self._pull()
        elif status == "409":
            # The server dropped our requests (too many waiting, consumer deleted,
            # leadership change): forget them; ask again at the next tick.
            log.warning(
                "pull request ended by the server",
                consumer=self.name,
                description=headers.get("Description"),
            )
            self._outstanding = 0

    async def _run(self, msg: Msg) -> None:
        try:
            await self._handle(msg)
        finally:
            self._inflight -= 1
            self._pull()

    # --- stopping ------------------------------------------------------------------------

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop asking for messages, let running handlers finish for ``timeout_s``.

        Args:
            timeout_s: How long running handlers may still run (not longer than a moment
                while the broker is unreachable); those still running are then cancelled
                and their messages are redelivered after the ack wait.
        """
        self._stopping = True
        self.bus.detach(self)
        # Drop the inbox first: the broker then discards our open requests, so a message
        # abandoned below goes to another replica. Acks do not use the inbox.
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
                await self.bus.nc.flush(timeout=1)
        await self._finish(timeout_s)
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.wait({self._ticker})
            self._ticker = None

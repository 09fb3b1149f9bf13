"""The push-group consumer: the hot paths (the dispatcher's intake, the planner).

The broker pushes the messages of a durable consumer to a deliver subject that the
replicas subscribe as one queue group, and nats-py calls a callback per message: the
fastest way to consume with nats-py (about 4.5 times ``fetch()`` or an iterator, see
BENCHMARKS.md). The ack policy, parking and the durable's updates are those of
:class:`~orra_events.consumers.Consumer`.

With ``concurrency`` 1 the handler runs inside the callback: messages are handled one at
a time, in delivery order, and a handler that returns quickly (the dispatcher hands each
input to a mailbox) costs no task. With N > 1 each message is handled in a task of its own,
at most N at once (the callback waits for a free slot before taking the next message).

Stopping drains the subscription: the broker stops sending, messages already received are
handed back at once (``nak``), running handlers get ``timeout_s`` to finish, and those
still running are then cancelled (their messages come back after the ack wait). After a
broker restart nats-py subscribes again and the durable consumer, stored by the broker,
resumes where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from orra_events.codec import decode
from orra_events.consumers._base import Consumer, Decoder, Durable, Handler, ensure_durable

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from orra_events.bus import Bus

__all__ = ["PushConsumer"]

T = TypeVar("T")


class PushConsumer(Consumer[T], Generic[T]):
    """A durable push consumer shared by a component's replicas (a deliver group).

    Args:
        bus: The connection.
        durable: The durable consumer (its name is also the deliver group).
        handler: Called with each decoded message and the message.
        decoder: Turns bytes into what ``handler`` takes (default: an Orra event).
        manual_ack: The handler acknowledges (see :class:`~orra_events.consumers.Consumer`).
        max_deliver: Deliveries after which a failing message is parked (``None``: never).
        retry_delay_s: Delay of the redelivery after the handler raised.
        concurrency: Handlers running at once (1: inline, in delivery order).

    Raises:
        ValueError: ``concurrency`` is below 1.
    """

    def __init__(
        self,
        bus: Bus,
        durable: Durable,
        handler: Handler[T],
        *,
        decoder: Decoder[T] = decode,  # type: ignore[assignment]
        manual_ack: bool = False,
        max_deliver: int | None = 20,
        retry_delay_s: float = 1.0,
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
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
        self._slots = asyncio.Semaphore(concurrency)
        self._sub: Any = None
        self._callback_task: asyncio.Task[Any] | None = None
        self._inline_busy = False

    async def start(self) -> None:
        """Create (or update) the durable consumer and subscribe to its deliveries."""
        info = await ensure_durable(self.bus.js, self.durable, push=True)
        callback = self._on_message if self.concurrency == 1 else self._schedule
        self._sub = await self.bus.js.subscribe_bind(
            stream=self.durable.stream,
            config=info.config,
            consumer=self.durable.name,
            cb=callback,
            manual_ack=True,
        )
        self.bus.attach(self)

    async def _on_message(self, msg: Msg) -> None:
        if self._stopping:
            self.nak(msg)
            return
        if self._callback_task is None:
            self._callback_task = asyncio.current_task()
        self._inline_busy = True
        try:
            await self._handle(msg)
        finally:
            self._inline_busy = False

    async def _schedule(self, msg: Msg) -> None:
        if self._stopping:
            self.nak(msg)
            return
        await self._slots.acquire()
        if self.stopping:  # stop() began while this waited for a slot
            self._slots.release()
            self.nak(msg)
            return
        task = asyncio.create_task(self._handle(msg))
        self._track(task)
        task.add_done_callback(self._release)

    def _release(self, _: asyncio.Task[None]) -> None:
        self._slots.release()

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop taking messages, hand back those received, let running handlers finish.

        Args:
            timeout_s: How long running handlers may still run (not longer than a moment
                while the broker is unreachable); those still running are then cancelled
                and their messages are redelivered after the ack wait.
        """
        self._stopping = True
        self.bus.detach(self)
        sub, self._sub = self._sub, None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout_s, 0.0)
        if sub is not None:
            drained = await self.bus.wait_while_reachable(
                _drain(sub), timeout_s, what=f"messages of {self.name}"
            )
            if not drained and self._inline_busy and self._callback_task is not None:
                # A handler still runs inside the subscription's callback: cancel it (and
                # with it the subscription's delivery task).
                self._callback_task.cancel()
        await self._finish(max(deadline - loop.time(), 0.0))


async def _drain(sub: Any) -> None:
    try:
        await sub.drain()
    except Exception:  # noqa: BLE001 - closed connection or subscription
        with contextlib.suppress(Exception):
            await sub.unsubscribe()

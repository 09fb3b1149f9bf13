"""A durable JetStream pull consumer that runs a bounded number of messages at once.

The notifier pulls instead of being pushed to: it fetches only as many messages as it has
free slots, so a slow webhook never leaves fetched messages waiting in a client buffer
while their ack timer runs, and replicas sharing the durable consumer each get distinct
messages. Stopping finishes the messages in hand (up to a grace period) before it returns,
so nothing a stopped replica fetched waits for its ack timer to be handed out again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js.api import ConsumerConfig

    from orra_events import Bus

__all__ = ["MessageHandler", "PullConsumer"]

MessageHandler = Callable[["Msg"], Awaitable[None]]
"""Handles one message and acknowledges it (ack, nak, term or park) itself."""

log = structlog.get_logger("orra.notifier")


class PullConsumer:
    """Runs ``handler`` for each message of a durable pull consumer, ``concurrency`` at once.

    Args:
        bus: The connection.
        stream: The stream the consumer reads.
        config: The consumer's definition; ``durable_name`` names it.
        handler: Called once per fetched message, in its own task.
        concurrency: Messages handled at once by this process.
        poll_s: How long one fetch waits for messages (also the stop latency).
    """

    def __init__(
        self,
        bus: Bus,
        *,
        stream: str,
        config: ConsumerConfig,
        handler: MessageHandler,
        concurrency: int,
        poll_s: float = 1.0,
    ) -> None:
        self._bus = bus
        self._stream = stream
        self._config = config
        self._handler = handler
        self._concurrency = concurrency
        self._poll_s = poll_s
        self._sub: Any = None
        self._loop_task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    @property
    def name(self) -> str:
        """The durable consumer's name."""
        return str(self._config.durable_name)

    async def start(self) -> None:
        """Create (or update) the durable consumer, bind to it and start fetching."""
        await self._bus.js.add_consumer(self._stream, config=self._config)
        self._sub = await self._bus.js.pull_subscribe_bind(durable=self.name, stream=self._stream)
        self._loop_task = asyncio.create_task(self._run(), name=f"pull:{self.name}")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            free = self._concurrency - len(self._inflight)
            if free <= 0:
                await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                msgs = await self._sub.fetch(batch=free, timeout=self._poll_s)
            except TimeoutError:
                continue
            except Exception as exc:  # noqa: BLE001 - broker away: wait, fetch again
                log.warning("fetch failed", consumer=self.name, error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self._poll_s)
                continue
            for msg in msgs:
                task = asyncio.create_task(self._handle(msg))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def _handle(self, msg: Msg) -> None:
        try:
            await self._handler(msg)
        except Exception:  # the handler acks by itself; a bug must not stop the loop
            log.exception("message handler failed", consumer=self.name, subject=msg.subject)

    async def stop(self, grace_s: float) -> None:
        """Stop fetching, let messages in hand finish for up to ``grace_s``, then unbind.

        Messages still running after the grace period are cancelled unacknowledged;
        JetStream hands them out again after the consumer's ack wait.
        """
        self._stopping.set()
        if self._loop_task is not None:
            await self._loop_task
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

"""Reading the event log: in order with bounded memory, one orchestration's history.

The read model never keeps the log in memory: it reads what it needs when it needs it. An
orchestration's history is ``*.*.<id>`` (every event subject ends with the orchestration
id), which JetStream serves from its subject index without scanning the rest of the log.

:class:`LogFollower` reads the whole log from a sequence on, then live. It does not use an
ordered push consumer: with a callback, nats-py answers the server's flow control as soon
as a message is *received*, not handled, so a consumer that replays a long log buffers all
of it in memory. The follower pulls batches instead (callback-driven ``MSG.NEXT`` requests
on an inbox, as fast as a push consumer) and asks for more only as it handles them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import json
import time
from typing import TYPE_CHECKING, Any

import structlog
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nats.aio.msg import Msg

    from orra_events import Bus

__all__ = [
    "HistoryUnavailable",
    "LogFollower",
    "SeqWaiters",
    "from_sequence",
    "position",
    "read_history",
]

log = structlog.get_logger("orra.gateway.logread")

_V1_TOKENS = 9
_V2_TOKENS = 12


class HistoryUnavailable(Exception):
    """An orchestration's history could not be read from the log in time."""


def from_sequence(start_seq: int) -> ConsumerConfig:
    """Consumer settings that deliver the stream from ``start_seq`` on (all of it for 1)."""
    if start_seq <= 1:
        return ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    return ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq)


def position(msg: Msg) -> tuple[int, int]:
    """The stream sequence of a JetStream message and the consumer's pending count after it.

    The same as ``msg.metadata.sequence.stream`` and ``msg.metadata.num_pending``, without
    building the metadata object (its timestamp conversion costs more than the rest) on the
    paths that see every event.
    """
    reply = msg.reply
    if reply:
        tokens = reply.split(".")
        if len(tokens) == _V1_TOKENS:
            return int(tokens[5]), int(tokens[8])
        if len(tokens) >= _V2_TOKENS:
            return int(tokens[7]), int(tokens[10])
    meta = msg.metadata
    return meta.sequence.stream, meta.num_pending


async def read_history(bus: Bus, orchestration_id: str, *, timeout_s: float = 10.0) -> list[Msg]:
    """Every message stored so far on ``*.*.<orchestration_id>``, in log order.

    Everything stored before the call is in the answer; messages stored while it runs may
    be too (callers that also follow the log live skip what they already have by sequence).

    Raises:
        HistoryUnavailable: the broker did not deliver the history within ``timeout_s``.
    """
    topology = bus.topology
    msgs: list[Msg] = []
    done = asyncio.Event()

    async def on_message(msg: Msg) -> None:
        msgs.append(msg)
        if position(msg)[1] == 0:
            done.set()

    try:
        async with asyncio.timeout(timeout_s):
            sub = await bus.js.subscribe(
                topology.history_of(orchestration_id),
                stream=topology.events_stream,
                cb=on_message,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.ALL,
                pending_msgs_limit=-1,
                pending_bytes_limit=-1,
            )
            try:
                info = await sub.consumer_info()
                delivered = info.delivered.consumer_seq if info.delivered else 0
                if info.num_pending or delivered:
                    await done.wait()
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
    except TimeoutError:
        raise HistoryUnavailable(
            f"the history of {orchestration_id} was not read in time"
        ) from None
    return sorted(msgs, key=lambda m: position(m)[0])


class SeqWaiters:
    """Callers waiting until a follower has applied the log up to a stream sequence."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._tiebreak = itertools.count()

    async def wait(self, seq: int, timeout_s: float) -> bool:
        """Wait until :meth:`applied` reaches ``seq``; ``False`` on timeout."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (seq, next(self._tiebreak), future))
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return False
        return True

    def applied(self, seq: int) -> None:
        """Everything up to ``seq`` is applied: release whoever waits for it."""
        heap = self._heap
        while heap and heap[0][0] <= seq:
            _, _, future = heapq.heappop(heap)
            if not future.done():
                future.set_result(None)


class LogFollower:
    """Hands every message of the events stream to ``handler``, in order, then follows live.

    At most ``1.5 * batch`` messages are buffered. A lost delivery (a gap in the consumer's
    delivery sequence), a consumer the server dropped or a silence longer than three
    heartbeats makes the follower start a fresh consumer after the last message handled,
    so the handler sees each stream sequence once, in order.

    Args:
        bus: Connected bus whose topology names the events stream.
        handler: Called with each message; the next one waits for it to return. If it
            raises, the message is read again (after a restart of the consumer).
        batch: Messages asked for per pull request.
        heartbeat_s: Idle heartbeat asked of the server while no message is due.
    """

    def __init__(
        self,
        bus: Bus,
        handler: Callable[[Msg], Awaitable[None]],
        *,
        batch: int = 1000,
        heartbeat_s: float = 5.0,
    ) -> None:
        self._bus = bus
        self._handler = handler
        self._batch = max(2, batch)
        self._heartbeat_s = heartbeat_s
        self._next_seq = 1
        self._consumer: str | None = None
        self._inbox = ""
        self._sub: Any = None
        self._expected = 1
        self._outstanding = 0
        self._last_activity = time.monotonic()
        self._restart_wanted = False
        self._lock = asyncio.Lock()
        self._watchdog: asyncio.Task[None] | None = None
        self._restarts: set[asyncio.Task[None]] = set()
        self._stopped = False
        self._failures = 0
        self.restarts = 0

    @property
    def next_seq(self) -> int:
        """Stream sequence of the next message to hand over."""
        return self._next_seq

    async def start(self, start_seq: int) -> None:
        """Start with the message at ``start_seq`` (or the first one after it)."""
        self._next_seq = max(1, start_seq)
        async with self._lock:
            await self._open()
        self._watchdog = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        """Stop reading; the consumer is deleted.

        Never waits for a broker that is gone: a restart in progress is cancelled, and
        without a connection the consumer is left to expire by itself (it is ephemeral,
        in memory, with an inactivity threshold).
        """
        self._stopped = True
        tasks = [t for t in (self._watchdog, *self._restarts) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._watchdog = None
        async with self._lock:
            await self._close(delete=self._bus.connected)

    async def _open(self) -> None:
        nc = self._bus.nc
        stream = self._bus.topology.events_stream
        self._inbox = nc.new_inbox()
        inbox = self._inbox
        self._sub = await nc.subscribe(
            inbox,
            cb=functools.partial(self._on_message, inbox=inbox),
            pending_msgs_limit=4 * self._batch,
            pending_bytes_limit=-1,
        )
        config = from_sequence(self._next_seq)
        config.ack_policy = AckPolicy.NONE
        config.mem_storage = True
        config.num_replicas = 1
        config.inactive_threshold = max(60.0, 12 * self._heartbeat_s)
        info = await self._bus.js.add_consumer(stream, config)
        self._consumer = info.name
        self._expected = 1
        self._outstanding = 0
        self._restart_wanted = False
        self._last_activity = time.monotonic()
        await self._pull()

    async def _close(self, *, delete: bool = True) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            if delete:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2.0):
                        await self._bus.js.delete_consumer(
                            self._bus.topology.events_stream, consumer
                        )

    async def _restart(self) -> None:
        async with self._lock:
            if self._stopped:
                return
            self.restarts += 1
            self._failures += 1
            log.info("log follower restarting", next_seq=self._next_seq)
            await self._close()
            # Back off when restarts do not help (a handler failing on the same message).
            await asyncio.sleep(min(5.0, 0.05 * 2 ** min(self._failures - 1, 7)))
            await self._open()

    async def _pull(self) -> None:
        """Keep between half a batch and a batch and a half requested."""
        if self._consumer is None or self._outstanding > self._batch // 2:
            return
        request = {
            "batch": self._batch,
            "expires": int(6 * self._heartbeat_s * 1e9),
            "idle_heartbeat": int(self._heartbeat_s * 1e9),
        }
        self._outstanding += self._batch
        stream = self._bus.topology.events_stream
        await self._bus.nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{self._consumer}",
            json.dumps(request).encode(),
            reply=self._inbox,
        )

    async def _on_message(self, msg: Msg, inbox: str) -> None:
        if inbox != self._inbox or self._restart_wanted:
            return  # from a consumer that was replaced
        self._last_activity = time.monotonic()
        headers = msg.headers or {}
        status = headers.get("Status")
        if status is not None:
            if status in ("404", "408"):  # a request ended before it was filled
                unfilled = int(headers.get("Nats-Pending-Messages") or 0)
                self._outstanding = max(0, self._outstanding - unfilled)
                await self._pull()
            elif status != "100":  # 409 and others: the consumer is gone or refused us
                self._want_restart(f"status {status} {headers.get('Description', '')}")
            return
        seq, delivered = _sequences(msg)
        if delivered != self._expected:
            self._want_restart(f"delivery {delivered} where {self._expected} was due")
            return
        self._expected += 1
        self._outstanding -= 1
        if seq >= self._next_seq:
            try:
                await self._handler(msg)
            except Exception as exc:  # read it again, from a fresh consumer
                log.exception("log follower handler failed", seq=seq)
                self._want_restart(f"handler failed: {exc!r}")
                return
            self._next_seq = seq + 1
            self._failures = 0
        await self._pull()

    def _want_restart(self, reason: str) -> None:
        if not self._restart_wanted:
            self._restart_wanted = True
            log.warning("log follower will restart", reason=reason, next_seq=self._next_seq)
            task = asyncio.get_running_loop().create_task(self._restart())
            self._restarts.add(task)
            task.add_done_callback(self._restarts.discard)
            task.add_done_callback(_log_failure)

    def _reconnects(self) -> int:
        return int(self._bus.nc.stats.get("reconnects", 0))

    async def _watch(self) -> None:
        reconnects = self._reconnects()
        while True:
            await asyncio.sleep(min(1.0, self._heartbeat_s))
            if not self._bus.connected:
                continue  # nothing can come; the client reconnects by itself
            silent = time.monotonic() - self._last_activity > 3 * self._heartbeat_s
            # After a reconnection the server may have lost the consumer and our requests
            # (a restarted server keeps no in-memory consumer): start afresh at once.
            reconnected = self._reconnects() != reconnects
            if reconnected:
                reconnects = self._reconnects()
                self._failures = 0
            if self._consumer is None or silent or reconnected:
                try:
                    await self._restart()
                except Exception as exc:  # noqa: BLE001 - tried again at the next tick
                    log.warning("log follower cannot restart", error=repr(exc))


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("log follower restart failed", error=repr(task.exception()))


def _sequences(msg: Msg) -> tuple[int, int]:
    """Stream sequence and consumer delivery sequence of a JetStream message."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == _V1_TOKENS:
        return int(tokens[5]), int(tokens[6])
    if len(tokens) >= _V2_TOKENS:
        return int(tokens[7]), int(tokens[8])
    meta = msg.metadata
    return meta.sequence.stream, meta.sequence.consumer

"""Intake: what the worker does with each message of ``work.<service>`` before running it.

The consumer calls :meth:`Intake._process` once per message, in its own asyncio task. It
parks what is not a task of this service, hands back a task planned for another version,
answers a task of a stopped orchestration (``task.failed``, ``stopped: <reason>``) and a
poison task (delivered past ``max_deliveries`` after a handler ran) without running them,
and runs the rest under their idempotency key's lock: one run per key in this process.

While a task is handled, its ``orchestration_id``, ``task_id``, ``attempt`` and ``service``
are bound with :mod:`structlog.contextvars` in the task's own asyncio task, so every line
logged meanwhile, by the SDK or by the handler through structlog, carries them; they are
reset when the task is done.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import structlog
from nats.js.errors import KeyNotFoundError

from orra_events import TaskCompensating, TaskDispatched, now
from orra_events.consumers import Park, delivery
from orra_sdk._metrics import IN_FLIGHT_TASKS
from orra_sdk._results import kv_key, record_of
from orra_sdk._worker.reverting import Reverting
from orra_sdk._worker.running import Running

if TYPE_CHECKING:
    from collections.abc import Coroutine, Mapping
    from contextvars import Token

    from nats.aio.msg import Msg

    from orra_events import Event

__all__ = ["Intake", "KeyLocks"]

log = structlog.get_logger("orra.sdk")

_HAND_BACK_S = 0.2
_HAND_BACK_MAX_S = 2.0


class KeyLocks:
    """One holder per key at a time; waiters are served in arrival order.

    Cheaper than an ``asyncio.Lock`` per key: an uncontended key costs a dict entry.
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[str, deque[asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        return len(self._held)

    async def acquire(self, key: str) -> None:
        """Wait until ``key`` is free, then hold it."""
        waiters = self._held.get(key)
        if waiters is None:
            self._held[key] = deque()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # Handed the key just as we were cancelled: pass it on.
                self.release(key)
            else:
                waiters.remove(future)
            raise

    def release(self, key: str) -> None:
        """Hand ``key`` to its next waiter, or free it."""
        waiters = self._held[key]
        while waiters:
            future = waiters.popleft()
            if not future.done():
                future.set_result(None)
                return
        del self._held[key]


class Intake(Running, Reverting):
    """Checks each work message and runs it (a task or a compensation) under its key."""

    _locks: KeyLocks

    async def _process(self, decoded: Event, msg: Msg) -> None:
        # Runs in its own asyncio task (a copy of the context): what is bound here is seen
        # by this task's logs only, and by the tasks its handler starts. An exception goes
        # to the consumer: logged, and the message redelivered after a second.
        if not isinstance(decoded, TaskDispatched | TaskCompensating):
            raise Park(f"{decoded.TYPE} is not a task for a service")
        event = decoded
        IN_FLIGHT_TASKS.add(self.service.name, 1)
        bound: Mapping[str, Token[Any]] = {}
        try:
            bound = structlog.contextvars.bind_contextvars(
                orchestration_id=event.orchestration_id,
                task_id=event.task_id,
                service=self.service.name,
                attempt=event.attempt,
            )
            work = await self._accept(msg, event)
            if work is not None:
                # One run per idempotency key in this process; other processes are kept
                # out by the claim in the result store.
                key, run = work
                try:
                    await self._locks.acquire(key)
                except BaseException:
                    run.close()
                    raise
                try:
                    await run
                finally:
                    self._locks.release(key)
        finally:
            if bound:
                structlog.contextvars.reset_contextvars(**bound)
            IN_FLIGHT_TASKS.add(self.service.name, -1)

    async def _accept(
        self, msg: Msg, event: TaskDispatched | TaskCompensating
    ) -> tuple[str, Coroutine[Any, Any, None]] | None:
        """Check a task; return the run to do under its key's lock."""
        if event.service != self.service.name:
            raise Park(f"task for service {event.service!r} arrived on {self.subject}")
        deliveries, _ = delivery(msg)
        if event.version is not None and event.version != self.service.version:
            # Planned against another version (a rolling upgrade): a replica of that
            # version runs it. Handed back after a short delay, growing with each hand-back.
            self.publisher.nak(msg, min(_HAND_BACK_S * deliveries, _HAND_BACK_MAX_S))
            log.debug(
                "task of another version handed back",
                task_version=event.version,
                version=self.service.version,
                deliveries=deliveries,
            )
            return None
        if isinstance(event, TaskCompensating):
            return event.idempotency_key, self._revert(msg, event, deliveries)
        stopped = self._stopped.get(event.orchestration_id)
        if stopped is not None:
            await self._fail(
                msg, event, now(), time.perf_counter(), f"stopped: {stopped}", retryable=False
            )
            return None
        if deliveries > self.max_deliveries and await self._ran_before(event):
            await self._fail(
                msg,
                event,
                now(),
                time.perf_counter(),
                f"{self.service.name} was delivered this task {deliveries} times without "
                "finishing it (the service crashed or hung each time)",
                retryable=False,
            )
            return None
        return event.idempotency_key, self._run(msg, event, deliveries)

    async def _ran_before(self, event: TaskDispatched) -> bool:
        """Whether an earlier delivery of this attempt started the handler (and never ended).

        Deliveries also count hand-backs (a replica of another version, a stopping
        replica), which ran nothing; only a claim of this attempt left behind shows that
        the handler ran and its process died or hung. Read only past ``max_deliveries``.
        """
        try:
            entry = await self.store.kv.get(kv_key(self.service.name, event.idempotency_key))
        except KeyNotFoundError:
            return False
        if entry.value is None:
            return False
        record = record_of(entry.value)
        return record is not None and record.state == "running" and record.attempt == event.attempt

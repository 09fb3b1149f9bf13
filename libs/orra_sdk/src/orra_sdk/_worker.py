"""Runs one service's tasks: pulls ``work.<service>``, validates, calls the handler, reports.

The work stream is read through the durable pull consumer ``svc_<service>`` that every
replica shares. Pulling is callback driven: the worker subscribes a private inbox and sends
``$JS.API.CONSUMER.MSG.NEXT`` requests to it, asking for as many messages as it has free
slots, so it keeps pull semantics (replicas split the work, nobody takes more than it can
run) at push-consumer speed (see PERFORMANCE-NOTES.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

import structlog
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import BaseModel, ValidationError

from orra_events import TaskCompleted, TaskDispatched, TaskFailed, decode_as, now
from orra_events.errors import DecodeError
from orra_sdk._results import Busy, Claimed, Done, ResultStore, kv_key
from orra_sdk.errors import NonRetryableError
from orra_sdk.service import Task

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from orra_events import Bus
    from orra_sdk.service import Service

__all__ = ["ServiceWorker", "describe_validation_error"]

log = structlog.get_logger("orra.sdk")

_PUBLISH_TIMEOUT_S = 10.0
_STATUS = "Status"


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming every invalid field: ``amount: Input should be a valid number``."""
    parts = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(p) for p in error["loc"]) or "<root>"
        parts.append(f"{field}: {error['msg']}")
    return "; ".join(parts)


class _KeyLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class _KeepAlive:
    """While a handler runs: in-progress acks on its message and renewals of its claim."""

    def __init__(
        self,
        msg: Msg,
        store: ResultStore,
        claim: Claimed,
        *,
        attempt: int,
        every: float,
        lease: float,
    ) -> None:
        self._msg = msg
        self._store = store
        self._claim = claim
        self._attempt = attempt
        self._every = every
        self._lease = lease
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._handle = self._loop.call_later(every, self._fire)

    def _fire(self) -> None:
        self._task = self._loop.create_task(self._beat())

    async def _beat(self) -> None:
        try:
            await self._msg.in_progress()
            if not await self._store.renew(self._claim, attempt=self._attempt, lease_s=self._lease):
                log.warning("claim taken over by another instance", key=self._claim.key)
        except Exception as exc:  # noqa: BLE001 - a missed beat is retried at the next one
            log.warning("keep-alive failed", key=self._claim.key, error=str(exc))
        if not self._stopped:
            self._handle = self._loop.call_later(self._every, self._fire)

    async def stop(self) -> None:
        self._stopped = True
        self._handle.cancel()
        if self._task is not None and not self._task.done():
            with contextlib.suppress(Exception):
                await self._task


class ServiceWorker:
    """Pulls and runs the tasks of one service in this process."""

    def __init__(
        self,
        bus: Bus,
        service: Service[Any, Any],
        *,
        store: ResultStore,
        concurrency: int,
        ack_wait_s: float,
        pull_expires_s: float,
        max_deliveries: int,
    ) -> None:
        self.bus = bus
        self.service = service
        self.store = store
        self.concurrency = concurrency
        self.ack_wait_s = ack_wait_s
        self.pull_expires_s = pull_expires_s
        self.max_deliveries = max_deliveries
        self.durable = bus.topology.consumer(f"svc_{service.name}")
        self.subject = bus.topology.work(service.name)
        self._progress_every = ack_wait_s / 3
        self._lease_s = max(ack_wait_s * 2, 2.0)
        self._refill_at = max(1, concurrency // 4)
        self._outstanding = 0
        self._last_deadline = 0.0
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[str, _KeyLock] = {}
        self._stopping = False
        self._sub: Subscription | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._next_subject = ""
        self._inbox = ""

    @property
    def inflight(self) -> int:
        """Tasks received and not finished yet."""
        return self._inflight

    async def start(self) -> None:
        """Create (or update) the shared consumer and start pulling."""
        stream = self.bus.topology.work_stream
        config = ConsumerConfig(
            durable_name=self.durable,
            description=f"Orra SDK: replicas of {self.service.name}",
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait_s,
            max_deliver=-1,
            max_ack_pending=100_000,
            max_waiting=4096,
            filter_subject=self.subject,
        )
        await self.bus.js.add_consumer(stream, config)
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{self.durable}"
        self._inbox = self.bus.nc.new_inbox()
        self._sub = await self.bus.nc.subscribe(self._inbox, cb=self._on_message)
        await self._pull()
        self._ticker = asyncio.create_task(self._tick(), name=f"orra-sdk-{self.service.name}")

    # --- pulling -------------------------------------------------------------------------

    async def _pull(self) -> None:
        if self._stopping:
            return
        free = self.concurrency - self._inflight - self._outstanding
        if free <= 0 or (self._outstanding > 0 and free < self._refill_at):
            return
        request = {"batch": free, "expires": int(self.pull_expires_s * 1e9)}
        self._outstanding += free
        self._last_deadline = time.monotonic() + self.pull_expires_s
        try:
            await self.bus.nc.publish(
                self._next_subject, json.dumps(request).encode(), reply=self._inbox
            )
        except Exception as exc:  # noqa: BLE001 - the ticker pulls again
            self._outstanding -= free
            log.warning("pull request failed", service=self.service.name, error=str(exc))

    async def _tick(self) -> None:
        interval = min(1.0, self._progress_every)
        while not self._stopping:
            await asyncio.sleep(interval)
            # A request whose expiry passed without its 408 (a broker restart, a lost
            # status message) no longer counts; otherwise the worker would starve.
            if self._outstanding and time.monotonic() > self._last_deadline + 1.0:
                self._outstanding = 0
            await self._pull()

    async def _on_message(self, msg: Msg) -> None:
        if msg.reply:
            self._outstanding = max(0, self._outstanding - 1)
            if self._stopping:
                with contextlib.suppress(Exception):
                    await msg.nak()
                return
            self._inflight += 1
            task = asyncio.create_task(self._process(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status == "408":
            pending = int(msg.headers.get("Nats-Pending-Messages", "0")) if msg.headers else 0
            self._outstanding = max(0, self._outstanding - pending)
            await self._pull()
        elif status == "409":
            # The server dropped our pull requests (consumer deleted, leadership change,
            # too many waiting requests): forget them; the ticker asks again.
            log.warning(
                "pull request ended by the server",
                service=self.service.name,
                description=msg.headers.get("Description") if msg.headers else None,
            )
            self._outstanding = 0

    # --- running a task ------------------------------------------------------------------

    async def _process(self, msg: Msg) -> None:
        try:
            await self._handle(msg)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task processing failed; redelivering", service=self.service.name)
            with contextlib.suppress(Exception):
                await msg.nak(delay=1.0)
        finally:
            self._inflight -= 1
            await self._pull()

    async def _handle(self, msg: Msg) -> None:
        try:
            event = decode_as(msg.data, TaskDispatched)
        except DecodeError as exc:
            await self.bus.park(msg, f"{type(exc).__name__}: {exc}")
            return
        if event.service != self.service.name:
            await self.bus.park(
                msg, f"task for service {event.service!r} arrived on {self.subject}"
            )
            return
        deliveries = msg.metadata.num_delivered
        if deliveries > self.max_deliveries:
            await self._fail(
                msg,
                event,
                now(),
                time.perf_counter(),
                f"{self.service.name} was delivered this task {deliveries} times without "
                "finishing it (the service crashed or hung each time)",
                retryable=False,
            )
            return
        lock = self._locks.get(event.idempotency_key)
        if lock is None:
            lock = self._locks[event.idempotency_key] = _KeyLock()
        lock.users += 1
        try:
            # One run per idempotency key in this process; other processes are kept out
            # by the claim in the result store.
            async with lock.lock:
                await self._run(msg, event, deliveries)
        finally:
            lock.users -= 1
            if lock.users == 0:
                del self._locks[event.idempotency_key]

    async def _run(self, msg: Msg, event: TaskDispatched, deliveries: int) -> None:
        service = self.service
        started_at = now()
        t0 = time.perf_counter()
        try:
            data = service.input_model.model_validate(event.input)
        except ValidationError as exc:
            await self._fail(
                msg,
                event,
                started_at,
                t0,
                f"invalid input for {service.name}: {describe_validation_error(exc)}",
                retryable=False,
            )
            return
        key = kv_key(service.name, event.idempotency_key)
        claim = await self.store.claim(key, attempt=event.attempt, lease_s=self._lease_s)
        if isinstance(claim, Done):
            record = claim.record
            log.info(
                "replaying recorded result",
                service=service.name,
                idempotency_key=event.idempotency_key,
                attempt=event.attempt,
            )
            await self._complete(
                msg,
                event,
                record.output or {},
                record.started_at,
                record.duration_ms,
                replayed=True,
            )
            return
        if isinstance(claim, Busy):
            # Another instance runs this key now; come back when its lease would end, by
            # when its result is normally recorded.
            await msg.nak(delay=claim.retry_after_s)
            return
        task = Task(
            input=data,
            orchestration_id=event.orchestration_id,
            task_id=event.task_id,
            service=service.name,
            attempt=event.attempt,
            idempotency_key=event.idempotency_key,
            deliveries=deliveries,
            timeout_s=event.timeout_s,
        )
        keepalive = _KeepAlive(
            msg,
            self.store,
            claim,
            attempt=event.attempt,
            every=self._progress_every,
            lease=self._lease_s,
        )
        error: str | None = None
        retryable = True
        output: dict[str, Any] = {}
        try:
            result = await service.handle(task)
        except asyncio.CancelledError:
            await keepalive.stop()
            await self._abandon(msg, claim)
            raise
        except NonRetryableError as exc:
            error, retryable = f"{type(exc).__name__}: {exc}", False
        except Exception as exc:  # noqa: BLE001 - every handler error becomes task.failed
            log.warning(
                "handler raised", service=service.name, task_id=event.task_id, error=repr(exc)
            )
            error = f"{type(exc).__name__}: {exc}"
        else:
            try:
                output = self._dump_output(result)
            except ValidationError as exc:
                error = f"invalid output from {service.name}: {describe_validation_error(exc)}"
                retryable = False
        await keepalive.stop()
        duration_ms = (time.perf_counter() - t0) * 1000.0
        if error is not None:
            await self.store.release(claim)
            await self._fail(msg, event, started_at, t0, error, retryable=retryable)
            return
        await self.store.complete(
            claim,
            output=output,
            attempt=event.attempt,
            started_at=started_at,
            duration_ms=duration_ms,
        )
        await self._complete(msg, event, output, started_at, duration_ms, replayed=False)

    def _dump_output(self, result: object) -> dict[str, Any]:
        model = self.service.output_model
        validated: BaseModel
        if isinstance(result, model):
            validated = result
        elif isinstance(result, BaseModel):
            validated = model.model_validate(result.model_dump())
        else:
            validated = model.model_validate(result)
        dumped: dict[str, Any] = validated.model_dump(mode="json", by_alias=True)
        return dumped

    async def _abandon(self, msg: Msg, claim: Claimed) -> None:
        """The worker stops mid-task: free the key and hand the message to another replica."""
        with contextlib.suppress(Exception):
            await self.store.release(claim)
        with contextlib.suppress(Exception):
            await msg.nak()

    # --- reporting -----------------------------------------------------------------------

    async def _complete(
        self,
        msg: Msg,
        event: TaskDispatched,
        output: dict[str, Any],
        started_at: float,
        duration_ms: float,
        *,
        replayed: bool,
    ) -> None:
        result = TaskCompleted(
            event_id=f"r:{event.orchestration_id}:{event.task_id}:{event.attempt}",
            orchestration_id=event.orchestration_id,
            task_id=event.task_id,
            service=self.service.name,
            output=output,
            attempt=event.attempt,
            idempotency_key=event.idempotency_key,
            started_at=started_at,
            duration_ms=duration_ms,
            replayed=replayed,
        )
        await self._report(msg, result)

    async def _fail(
        self,
        msg: Msg,
        event: TaskDispatched,
        started_at: float,
        t0: float,
        error: str,
        *,
        retryable: bool,
    ) -> None:
        result = TaskFailed(
            event_id=f"r:{event.orchestration_id}:{event.task_id}:{event.attempt}",
            orchestration_id=event.orchestration_id,
            task_id=event.task_id,
            service=self.service.name,
            error=error,
            attempt=event.attempt,
            idempotency_key=event.idempotency_key,
            started_at=started_at,
            duration_ms=(time.perf_counter() - t0) * 1000.0,
            retryable=retryable,
        )
        await self._report(msg, result)

    async def _report(self, msg: Msg, result: TaskCompleted | TaskFailed) -> None:
        # The work message is acked only once its result is stored in the event log, so a
        # crash in between redelivers the task (and the record replays the result).
        ack = await self.bus.publish_nowait(result)
        async with asyncio.timeout(_PUBLISH_TIMEOUT_S):
            await ack
        await msg.ack()

    # --- stopping ------------------------------------------------------------------------

    async def stop(self, drain_timeout_s: float) -> None:
        """Stop pulling, let running tasks finish for ``drain_timeout_s``, abandon the rest."""
        self._stopping = True
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.wait({self._ticker})
        # Drop the inbox first: the broker then discards our open pull requests, so a task
        # abandoned below is redelivered to another replica, not to us. Acks do not use
        # the inbox, so running tasks still report.
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
                await self.bus.nc.flush()
            self._sub = None
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=drain_timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "abandoned running tasks", service=self.service.name, count=len(pending)
                )
                # Bounded: a handler may swallow its cancellation.
                await asyncio.wait(pending, timeout=max(drain_timeout_s, 1.0))

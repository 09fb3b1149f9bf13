"""Runs one service's tasks: pulls ``work.<service>``, validates, calls the handler, reports.

The work stream is read through the durable pull consumer ``svc_<service>`` that every
replica shares, with :class:`orra_events.consumers.PullConsumer`: callback driven, asking
for as many messages as the worker has free slots, so it keeps pull semantics (replicas
split the work, nobody takes more than it can run) at push-consumer speed. The consumer
parks what is not a task (``manual_ack``: the worker acks a task once its result is
stored).

The work subject carries two kinds of message: ``task.dispatched`` runs the handler;
``task.compensating`` runs the revert handler (compensation), with the same idempotency
record (key ``<orch>:<task>:revert``), keep-alives and reporting
(``task.compensated`` / ``task.compensation_failed``).

Reporting. The idempotency record (the result, or the release of the claim after a
failure) and the result event (``task.completed``...) are published together, in one
batch of the connection's pipelined publisher (``Bus.publisher``), and their acks
awaited together: one round trip instead of two in sequence. The work message is acked
once both are stored. Keep-alives of running handlers (in-progress acks and claim
renewals) are fired by the worker's ticker, not by a timer per task.

Stopping. :meth:`ServiceWorker.stop_orchestration` (the client calls it when it sees
``orchestration.aborted``, ``orchestration.failed`` or ``orchestration.compensating``)
cancels the running handlers of that orchestration: each reports ``task.failed`` (not
retryable, ``stopped: <reason>``) and its message is acknowledged; a task of that
orchestration received later is answered the same way without running. Revert handlers
are never stopped.

Logging. While a task is handled, its ``orchestration_id``, ``task_id``, ``attempt`` and
``service`` are bound with :mod:`structlog.contextvars` in the task's own asyncio task (one
per message), so every line logged meanwhile, by the SDK or by the handler through
structlog, carries them; they are reset when the task is done.

Metrics. Results are counted by service and outcome, handler calls timed, and the tasks in
flight shown as a gauge (see :mod:`orra_sdk._metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

import structlog
from nats.errors import ConnectionReconnectingError, OutboundBufferLimitError
from nats.js.errors import KeyNotFoundError

from orra_events import (
    TaskAborted,
    TaskCompensated,
    TaskCompensating,
    TaskCompensationFailed,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    TaskProgress,
    ids,
    now,
)
from orra_events.codec import encode
from orra_events.consumers import Durable, Park, PullConsumer, delivery
from orra_events.metrics import observe_event
from orra_events.publishing import PublishError
from orra_sdk._metrics import IN_FLIGHT_TASKS, count_result, observe_handler, prepare
from orra_sdk._results import Busy, Claimed, Done, ResultStore, kv_key, record_of, released
from orra_sdk.errors import AbortOrchestration, InvalidData, NonRetryableError, OutcomeUnknown
from orra_sdk.service import RevertTask, Task, describe_validation_error

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping
    from contextvars import Token

    from nats.aio.msg import Msg

    from orra_events import Bus, Event, Topology
    from orra_events._fastpub import Batch, FastPublisher
    from orra_sdk.service import Service

__all__ = ["ServiceWorker", "describe_validation_error"]

log = structlog.get_logger("orra.sdk")

_STOPPED_MEMORY = 10_000
_HAND_BACK_S = 0.2
_HAND_BACK_MAX_S = 2.0
_RETRY_FIRST_S = 0.2
_RETRY_MAX_S = 5.0
"""Backoff between two tries of recording a result the broker did not store."""


def _temporary(error: PublishError) -> bool:
    """Whether the broker may store the write later (unavailable, not refusing it)."""
    return error.code >= 500 and not error.conflict


def _ignore_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class _KeyLocks:
    """One holder per key at a time; waiters are served in arrival order.

    Cheaper than an ``asyncio.Lock`` per key: an uncontended key costs a dict entry.
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[str, deque[asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        return len(self._held)

    async def acquire(self, key: str) -> None:
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
        waiters = self._held[key]
        while waiters:
            future = waiters.popleft()
            if not future.done():
                future.set_result(None)
                return
        del self._held[key]


class _Beat:
    """Keep-alive of one running handler: in-progress acks and claim renewals.

    The worker's ticker fires it every third of the ack wait (no timer per task).
    """

    __slots__ = ("attempt", "claim", "due", "msg", "task")

    def __init__(self, msg: Msg, claim: Claimed, attempt: int, due: float) -> None:
        self.msg = msg
        self.claim = claim
        self.attempt = attempt
        self.due = due
        self.task: asyncio.Task[None] | None = None


class _Progress:
    """Publishes a task attempt's ``task.progress`` events, numbered from 1.

    An update published with ``wait=False`` is not waited for by the handler; the worker
    waits for it (and logs a failure) before it reports the task's result.
    """

    __slots__ = ("event", "pending", "publisher", "seq", "topology")

    def __init__(self, publisher: FastPublisher, topology: Topology, event: TaskDispatched) -> None:
        self.publisher = publisher
        self.topology = topology
        self.event = event
        self.seq = 0
        self.pending: list[asyncio.Future[list[Any]]] = []

    async def __call__(self, update: dict[str, Any], *, wait: bool = True) -> None:
        self.seq += 1
        event = self.event
        progress = TaskProgress(
            event_id=ids.progress_id(
                event.orchestration_id, event.task_id, event.attempt, self.seq
            ),
            orchestration_id=event.orchestration_id,
            task_id=event.task_id,
            service=event.service,
            attempt=event.attempt,
            seq=self.seq,
            update=update,
        )
        future = self.publisher.publish(
            self.topology.subject_for(progress), encode(progress), msg_id=progress.event_id
        )
        if not wait:
            self.pending.append(future)
            return
        (result,) = await future
        if isinstance(result, PublishError):
            raise result

    async def settle(self) -> None:
        """Wait for the updates published without waiting; log those that failed.

        Called once the task's result is published: the updates went out before it on the
        same connection, so this costs no extra round trip.
        """
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        for future in pending:
            try:
                (result,) = await future
            except TimeoutError:
                log.warning("progress update not acknowledged", task_id=self.event.task_id)
                continue
            if isinstance(result, PublishError):
                log.warning(
                    "progress update refused", task_id=self.event.task_id, error=str(result)
                )


class ServiceWorker:
    """Pulls and runs the tasks of one service in this process."""

    def __init__(
        self,
        bus: Bus,
        service: Service[Any, Any],
        *,
        store: ResultStore,
        publisher: FastPublisher,
        concurrency: int,
        ack_wait_s: float,
        pull_expires_s: float,
        max_deliveries: int,
    ) -> None:
        self.bus = bus
        self.service = service
        self.store = store
        self.publisher = publisher
        self.concurrency = concurrency
        self.ack_wait_s = ack_wait_s
        self.pull_expires_s = pull_expires_s
        self.max_deliveries = max_deliveries
        self.durable = bus.topology.consumer(f"svc_{service.name}")
        self.subject = bus.topology.work(service.name)
        self._topology = bus.topology
        self._progress_every = ack_wait_s / 3
        self._lease_s = max(ack_wait_s * 2, 2.0)
        self._locks = _KeyLocks()
        self._beats: dict[int, _Beat] = {}
        self._beat_ids = 0
        self._stopping = False
        self._ticker: asyncio.Task[None] | None = None
        self._consumer = PullConsumer(
            bus,
            Durable(
                stream=bus.topology.work_stream,
                name=self.durable,
                filter_subjects=(self.subject,),
                ack_wait_s=ack_wait_s,
                max_ack_pending=100_000,
                description=f"Orra SDK: replicas of {service.name}",
            ),
            self._process,
            concurrency=concurrency,
            expires_s=pull_expires_s,
            max_waiting=4096,
            manual_ack=True,  # acked once the task's result is stored
            max_deliver=None,  # the poison guard is the worker's (see _accept)
        )
        self._running: dict[str, set[asyncio.Task[Any]]] = {}
        self._stops: dict[asyncio.Task[Any], str] = {}
        self._stopped: OrderedDict[str, str] = OrderedDict()

    @property
    def inflight(self) -> int:
        """Tasks received and not finished yet."""
        return self._consumer.inflight

    @property
    def bound(self) -> bool:
        """Whether the worker is bound to its consumer and takes tasks (started, not stopping)."""
        return self._consumer.bound and not self._stopping

    async def start(self) -> None:
        """Create (or update) the shared consumer and start pulling."""
        prepare(self.service.name, revertible=self.service.revertible)
        await self._consumer.start()
        self._ticker = asyncio.create_task(self._tick(), name=f"orra-sdk-{self.service.name}")

    async def _tick(self) -> None:
        # Often enough that a keep-alive is never more than half an interval late. It
        # keeps running while the worker stops, for the handlers that finish meanwhile.
        interval = min(1.0, self._progress_every / 2)
        while True:
            await asyncio.sleep(interval)
            self._keep_alive()

    # --- keep-alives ---------------------------------------------------------------------

    def _watch(self, msg: Msg, claim: Claimed, attempt: int) -> int:
        """Keep a running handler's message in progress and its claim alive."""
        self._beat_ids += 1
        self._beats[self._beat_ids] = _Beat(
            msg, claim, attempt, time.monotonic() + self._progress_every
        )
        return self._beat_ids

    async def _unwatch(self, beat_id: int) -> None:
        """Stop the keep-alives of a handler that returned (after a beat in flight)."""
        beat = self._beats.pop(beat_id, None)
        if beat is not None and beat.task is not None and not beat.task.done():
            with contextlib.suppress(Exception):
                await beat.task

    def _keep_alive(self) -> None:
        now = time.monotonic()
        for beat in self._beats.values():
            if beat.due <= now and (beat.task is None or beat.task.done()):
                beat.due = now + self._progress_every
                beat.task = asyncio.create_task(self._beat(beat))

    async def _beat(self, beat: _Beat) -> None:
        claim = beat.claim
        try:
            self.publisher.in_progress(beat.msg)
            if not await self.store.renew(claim, attempt=beat.attempt, lease_s=self._lease_s):
                log.warning("claim taken over by another instance", key=claim.key)
        except Exception as exc:  # noqa: BLE001 - a missed beat is retried at the next one
            log.warning("keep-alive failed", key=claim.key, error=str(exc))

    # --- stop signals --------------------------------------------------------------------

    def stop_orchestration(self, orchestration_id: str, reason: str) -> int:
        """Cancel this worker's running handlers of an orchestration; return how many."""
        self._stopped[orchestration_id] = reason
        if len(self._stopped) > _STOPPED_MEMORY:
            self._stopped.popitem(last=False)
        running = self._running.get(orchestration_id, ())
        for task in running:
            if task not in self._stops:
                self._stops[task] = reason
                task.cancel()
        if running:
            log.info(
                "stopping running tasks",
                service=self.service.name,
                orchestration_id=orchestration_id,
                count=len(running),
                reason=reason,
            )
        return len(running)

    # --- running a task ------------------------------------------------------------------

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

    async def _run(self, msg: Msg, event: TaskDispatched, deliveries: int) -> None:
        service = self.service
        started_at = now()
        t0 = time.perf_counter()
        try:
            data = service.parse_input(event.input)
        except InvalidData as exc:
            await self._fail(
                msg,
                event,
                started_at,
                t0,
                f"invalid input for {service.name}: {exc}",
                retryable=False,
            )
            return
        key = kv_key(service.name, event.idempotency_key)
        claim = await self._claim(msg, key, event.attempt)
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
            # Another instance runs this key and this worker is stopping: hand it back.
            self.publisher.nak(msg, claim.retry_after_s)
            return
        if claim.interrupted and not service.retry_on_timeout:
            # The handler ran for this key in a process that died (or hung) before it
            # recorded a result; this service must not run a task twice.
            await self._fail(
                msg,
                event,
                started_at,
                t0,
                f"{service.name} was interrupted while running this task (its process "
                "stopped before recording a result), and it is registered with "
                "retry_on_timeout=False, so it is not run again",
                retryable=False,
                outcome_unknown=True,
                release=claim,
            )
            return
        progress = _Progress(self.publisher, self._topology, event)
        task = Task(
            input=data,
            orchestration_id=event.orchestration_id,
            task_id=event.task_id,
            service=service.name,
            attempt=event.attempt,
            idempotency_key=event.idempotency_key,
            deliveries=deliveries,
            timeout_s=event.timeout_s,
            _progress=progress,
        )
        beat = self._watch(msg, claim, event.attempt)
        error: str | None = None
        retryable = True
        unknown = False
        output: dict[str, Any] = {}
        current = asyncio.current_task()
        assert current is not None
        running = self._running.setdefault(event.orchestration_id, set())
        running.add(current)
        h0 = time.perf_counter()
        try:
            result = await service.handle(task)
        except asyncio.CancelledError:
            stop_reason = self._stops.pop(current, None)
            if stop_reason is None or self._stopping:
                await self._unwatch(beat)
                await self._abandon(msg, claim)
                raise
            # Told to stop: the orchestration ended or is being compensated.
            current.uncancel()
            error, retryable = f"stopped: {stop_reason}", False
        except AbortOrchestration as exc:
            observe_handler(service.name, "aborted", time.perf_counter() - h0)
            await self._unwatch(beat)
            await self._abort(msg, event, started_at, t0, exc, release=claim, progress=progress)
            return
        except OutcomeUnknown as exc:
            error, retryable, unknown = f"{type(exc).__name__}: {exc}", False, True
        except NonRetryableError as exc:
            error, retryable = f"{type(exc).__name__}: {exc}", False
        except Exception as exc:  # noqa: BLE001 - every handler error becomes task.failed
            log.warning(
                "handler raised", service=service.name, task_id=event.task_id, error=repr(exc)
            )
            error = f"{type(exc).__name__}: {exc}"
        else:
            try:
                output = service.dump_output(result)
            except InvalidData as exc:
                error = f"invalid output from {service.name}: {exc}"
                retryable = False
        finally:
            running.discard(current)
            if not running:
                self._running.pop(event.orchestration_id, None)
            self._stops.pop(current, None)
        observe_handler(
            service.name, "failed" if error is not None else "completed", time.perf_counter() - h0
        )
        await self._unwatch(beat)
        duration_ms = (time.perf_counter() - t0) * 1000.0
        if error is not None:
            await self._fail(
                msg,
                event,
                started_at,
                t0,
                error,
                retryable=retryable,
                outcome_unknown=unknown,
                release=claim,
                progress=progress,
            )
            return
        await self._complete(
            msg,
            event,
            output,
            started_at,
            duration_ms,
            replayed=False,
            record=claim,
            progress=progress,
        )

    async def _revert(self, msg: Msg, event: TaskCompensating, deliveries: int) -> None:
        """Run the revert handler of a completed task (one compensation attempt)."""
        service = self.service
        started_at = now()
        t0 = time.perf_counter()
        reverter = service.reverter
        if reverter is None:
            await self._comp_failed(
                msg,
                event,
                started_at,
                t0,
                f"{service.name} has no revert handler: decorate one with @service.revert",
                retryable=False,
            )
            return
        if deliveries > self.max_deliveries:
            await self._comp_failed(
                msg,
                event,
                started_at,
                t0,
                f"{service.name} was delivered this compensation {deliveries} times without "
                "finishing it",
                retryable=False,
            )
            return
        try:
            data = service.parse_input(event.input)
            output = service.parse_output(event.output)
        except InvalidData as exc:
            await self._comp_failed(
                msg,
                event,
                started_at,
                t0,
                f"cannot revert: the task's input or output no longer matches {service.name}'s "
                f"schema: {exc}",
                retryable=False,
            )
            return
        key = kv_key(service.name, event.idempotency_key)
        claim = await self._claim(msg, key, event.attempt)
        if isinstance(claim, Done):
            record = claim.record
            await self._report(
                msg,
                self._compensated(event, record.started_at, record.duration_ms),
            )
            return
        if isinstance(claim, Busy):
            self.publisher.nak(msg, claim.retry_after_s)
            return
        task = RevertTask(
            input=data,
            output=output,
            reason=event.reason,
            orchestration_id=event.orchestration_id,
            task_id=event.task_id,
            service=service.name,
            attempt=event.attempt,
            idempotency_key=event.idempotency_key,
            timeout_s=event.timeout_s,
        )
        beat = self._watch(msg, claim, event.attempt)
        error: str | None = None
        retryable = True
        h0 = time.perf_counter()
        try:
            await reverter(task)
        except asyncio.CancelledError:
            await self._unwatch(beat)
            await self._abandon(msg, claim)
            raise
        except NonRetryableError as exc:
            error, retryable = f"{type(exc).__name__}: {exc}", False
        except Exception as exc:  # noqa: BLE001 - every revert error becomes a failed attempt
            log.warning(
                "revert handler raised",
                service=service.name,
                task_id=event.task_id,
                error=repr(exc),
            )
            error = f"{type(exc).__name__}: {exc}"
        observe_handler(
            service.name,
            "compensation_failed" if error is not None else "compensated",
            time.perf_counter() - h0,
        )
        await self._unwatch(beat)
        duration_ms = (time.perf_counter() - t0) * 1000.0
        if error is not None:
            await self._comp_failed(
                msg, event, started_at, t0, error, retryable=retryable, release=claim
            )
            return
        result = self._compensated(event, started_at, duration_ms)
        await self._report(
            msg,
            result,
            lambda batch: self.store.add_complete(
                batch,
                claim,
                output={},
                attempt=event.attempt,
                started_at=started_at,
                duration_ms=duration_ms,
            ),
            claim=claim,
        )

    def _compensated(
        self, event: TaskCompensating, started_at: float, duration_ms: float
    ) -> TaskCompensated:
        return TaskCompensated(
            event_id=ids.compensation_result_id(
                event.orchestration_id, event.task_id, event.attempt
            ),
            orchestration_id=event.orchestration_id,
            task_id=event.task_id,
            service=self.service.name,
            attempt=event.attempt,
            started_at=started_at,
            duration_ms=duration_ms,
        )

    async def _comp_failed(
        self,
        msg: Msg,
        event: TaskCompensating,
        started_at: float,
        t0: float,
        error: str,
        *,
        retryable: bool,
        release: Claimed | None = None,
    ) -> None:
        result = TaskCompensationFailed(
            event_id=ids.compensation_result_id(
                event.orchestration_id, event.task_id, event.attempt
            ),
            orchestration_id=event.orchestration_id,
            task_id=event.task_id,
            service=self.service.name,
            attempt=event.attempt,
            error=error,
            retryable=retryable,
            started_at=started_at,
            duration_ms=(time.perf_counter() - t0) * 1000.0,
        )
        await self._report(msg, result, self._releaser(release), claim=release)

    async def _abort(
        self,
        msg: Msg,
        event: TaskDispatched,
        started_at: float,
        t0: float,
        exc: AbortOrchestration,
        *,
        release: Claimed,
        progress: _Progress,
    ) -> None:
        log.info(
            "handler aborted the orchestration",
            service=self.service.name,
            orchestration_id=event.orchestration_id,
            task_id=event.task_id,
            reason=exc.reason,
        )
        result = TaskAborted(
            event_id=ids.result_id(event.orchestration_id, event.task_id, event.attempt),
            orchestration_id=event.orchestration_id,
            task_id=event.task_id,
            service=self.service.name,
            attempt=event.attempt,
            idempotency_key=event.idempotency_key,
            reason=exc.reason,
            payload=exc.payload,
            started_at=started_at,
            duration_ms=(time.perf_counter() - t0) * 1000.0,
        )
        await self._report(msg, result, self._releaser(release), progress, claim=release)

    async def _claim(self, msg: Msg, key: str, attempt: int) -> Claimed | Done | Busy:
        """Claim ``key``; while another instance holds it, wait here instead of a nak.

        A nak counts as one more delivery, so a task whose holder was killed (its claim
        lives until the lease ends) would reach ``max_deliveries`` in a few polls and be
        failed as a poison task after a single crash. Waiting keeps the message in
        progress and polls the claim until the holder records its result (then it is
        replayed) or its lease ends (then this instance takes over). ``Busy`` is returned
        only when the worker is stopping.
        """
        beat = time.monotonic()
        while True:
            claim = await self.store.claim(key, attempt=attempt, lease_s=self._lease_s)
            if not isinstance(claim, Busy) or self._stopping:
                return claim
            await asyncio.sleep(claim.retry_after_s)
            if time.monotonic() - beat >= self._progress_every:
                beat = time.monotonic()
                with contextlib.suppress(Exception):
                    self.publisher.in_progress(msg)

    async def _abandon(self, msg: Msg, claim: Claimed) -> None:
        """The worker stops mid-task: free the key and hand the message to another replica.

        Best effort and bounded: without a broker the claim simply runs out.
        """
        if self.bus.connected:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self.store.release(claim)
        with contextlib.suppress(Exception):
            self.publisher.nak(msg)

    def _releaser(self, claim: Claimed | None) -> Callable[[Batch], None] | None:
        if claim is None:
            return None
        return lambda batch: self.store.add_release(batch, claim)

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
        record: Claimed | None = None,
        progress: _Progress | None = None,
    ) -> None:
        result = TaskCompleted(
            event_id=ids.result_id(event.orchestration_id, event.task_id, event.attempt),
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
        writes = None
        if record is not None:
            claim = record

            def writes(batch: Batch) -> None:
                self.store.add_complete(
                    batch,
                    claim,
                    output=output,
                    attempt=event.attempt,
                    started_at=started_at,
                    duration_ms=duration_ms,
                )

        await self._report(msg, result, writes, progress, claim=record)

    async def _fail(
        self,
        msg: Msg,
        event: TaskDispatched,
        started_at: float,
        t0: float,
        error: str,
        *,
        retryable: bool,
        outcome_unknown: bool = False,
        release: Claimed | None = None,
        progress: _Progress | None = None,
    ) -> None:
        result = TaskFailed(
            event_id=ids.result_id(event.orchestration_id, event.task_id, event.attempt),
            orchestration_id=event.orchestration_id,
            task_id=event.task_id,
            service=self.service.name,
            error=error,
            attempt=event.attempt,
            idempotency_key=event.idempotency_key,
            started_at=started_at,
            duration_ms=(time.perf_counter() - t0) * 1000.0,
            retryable=retryable,
            outcome_unknown=outcome_unknown,
        )
        await self._report(msg, result, self._releaser(release), progress, claim=release)

    async def _report(
        self,
        msg: Msg,
        result: TaskCompleted | TaskFailed | TaskAborted | TaskCompensated | TaskCompensationFailed,
        record: Callable[[Batch], None] | None = None,
        progress: _Progress | None = None,
        *,
        claim: Claimed | None = None,
    ) -> None:
        """Store the result event, with the idempotency record's write, then ack the task.

        Both go out in one batch and are awaited together (one round trip): the record (the
        result, or the release of the claim after a failure) and the event. The work
        message is acked only once both are stored, so a crash in between redelivers the
        task; the record then replays the result, or, if the crash came before the record
        was stored, the handler runs again (the documented window, docs/guarantees.md).
        Progress updates published without waiting are awaited here too.

        A broker that does not answer (an outage, a restart, JetStream not ready yet) never
        makes the worker drop a result: it keeps it and sends the batch again, with backoff,
        until the broker stores it, keeping the message in progress and ``claim`` alive
        meanwhile, so no other delivery runs the handler again. Only a worker that stops
        while the broker is unreachable gives up (the process is going away; see
        :meth:`stop`).

        Raises:
            PublishError: the broker refused a write for good (not a conflict, not a
                temporary unavailability).
        """
        observe_event(result)
        payload = encode(result)
        subject = self._topology.subject_for(result)
        delay = _RETRY_FIRST_S
        attempts = 0
        kept_alive = time.monotonic()
        while True:
            attempts += 1
            epoch = self._reconnects()
            failure = await self._send_result(subject, payload, result.event_id, record)
            if failure is None:
                break
            if self._stopping and not self.bus.connected:
                log.error(
                    "result not recorded: the service is stopping while the broker is "
                    "unreachable; the task will run again when it is redelivered",
                    event_id=result.event_id,
                    error=failure,
                )
                return
            if attempts == 1 or attempts % 10 == 0:
                log.warning(
                    "result not recorded yet; keeping it and trying again",
                    event_id=result.event_id,
                    attempts=attempts,
                    error=failure,
                )
            # Back at once when the connection came back (the broker restarted), so that
            # the result is recorded (and the claim renewed) well before another delivery
            # could take the claim over (ResultStore.takeover_after_s).
            if self._reconnects() == epoch:
                await self._pause(delay, epoch)
                delay = min(delay * 2, _RETRY_MAX_S)
            if self._reconnects() != epoch or time.monotonic() - kept_alive >= self._progress_every:
                kept_alive = time.monotonic()
                await self._keep_claim(msg, claim, result.attempt)
        if attempts > 1:
            log.info("result recorded", event_id=result.event_id, attempts=attempts)
        if progress is not None:
            await progress.settle()
        self.publisher.ack(msg)
        count_result(result)

    async def _send_result(
        self,
        subject: str,
        payload: bytes,
        event_id: str,
        record: Callable[[Batch], None] | None,
    ) -> str | None:
        """Send the record's write and the result event once; ``None`` once both are stored.

        Returns:
            Why the broker did not store them this time (to try again).

        Raises:
            PublishError: a write was refused for good.
        """
        batch = self.publisher.batch()
        try:
            if record is not None:
                record(batch)
            batch.add(subject, payload, msg_id=event_id)
        except (OutboundBufferLimitError, ConnectionReconnectingError) as exc:
            # Reconnecting with a full buffer: what was queued times out by itself.
            if len(batch):
                batch.send().add_done_callback(_ignore_result)
            return f"{type(exc).__name__}: {exc}"
        try:
            results = await batch.send()  # the publisher times the wait out
        except TimeoutError as exc:
            return str(exc)
        for outcome in results:
            if isinstance(outcome, PublishError) and _temporary(outcome):
                return str(outcome)
        *records, stored = results
        for outcome in records:
            released(outcome)  # a release refused as taken over is fine; other errors raise
        if isinstance(stored, PublishError):
            raise stored
        return None

    def _reconnects(self) -> int:
        return int(self.bus.nc.stats.get("reconnects", 0))

    async def _pause(self, delay_s: float, epoch: int) -> None:
        """Sleep ``delay_s``, or less if the client reconnects meanwhile."""
        for _ in range(max(1, round(delay_s / 0.1))):
            await asyncio.sleep(0.1)
            if self._reconnects() != epoch:
                return

    async def _keep_claim(self, msg: Msg, claim: Claimed | None, attempt: int) -> None:
        """Keep a task whose result waits for the broker in progress, and its claim alive."""
        try:
            self.publisher.in_progress(msg)
            if claim is not None and not await self.store.renew(
                claim, attempt=attempt, lease_s=self._lease_s
            ):
                log.warning("claim taken over by another instance", key=claim.key)
        except Exception as exc:  # noqa: BLE001 - the broker is still away; tried again later
            log.debug("keep-alive failed", error=str(exc))

    # --- stopping ------------------------------------------------------------------------

    async def stop(self, drain_timeout_s: float) -> None:
        """Stop pulling, let running tasks finish for ``drain_timeout_s``, abandon the rest.

        The consumer drops its inbox first, so a task abandoned here (its claim released,
        the message handed back) is redelivered to another replica. Results need the
        broker: while it is unreachable, running tasks are not waited for beyond a moment
        (they are redelivered once it is back).
        """
        self._stopping = True
        await self._consumer.stop(drain_timeout_s)
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.wait({self._ticker})

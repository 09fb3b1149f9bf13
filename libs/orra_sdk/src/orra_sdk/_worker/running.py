"""Running a task's handler: its claim, its progress updates, its outcome.

A delivery claims the task's idempotency key (:mod:`orra_sdk._worker.keepalive`), calls
the handler with a :class:`~orra_sdk.Task` whose progress updates go out as
``task.progress`` events, keeps the message and the claim alive while it runs, and reports
the outcome (:mod:`orra_sdk._worker.reporting`). A key that already holds a result replays
it. A handler told to stop (its orchestration ended, see
:meth:`orra_sdk._worker.ServiceWorker.stop_orchestration`) reports ``task.failed``, not
retryable; one cancelled because the worker stops is abandoned (claim released, message
handed back).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import structlog

from orra_events import TaskAborted, TaskProgress, ids, now, tracing
from orra_events.codec import encode
from orra_events.publishing import PublishError
from orra_sdk._metrics import observe_handler
from orra_sdk._results import Claimed, Done, kv_key
from orra_sdk._wording import invalid_input, invalid_output
from orra_sdk._worker.reporting import Reporting
from orra_sdk.errors import AbortOrchestration, InvalidData, NonRetryableError, OutcomeUnknown
from orra_sdk.service import Task

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from orra_events import TaskDispatched, Topology
    from orra_events._fastpub import FastPublisher
    from orra_sdk._results import Busy

__all__ = ["Progress", "Running"]

log = structlog.get_logger("orra.sdk")


class Progress:
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


class Running(Reporting):
    """Runs the handler of a ``task.dispatched`` and reports its outcome."""

    async def _run(self, msg: Msg, event: TaskDispatched, deliveries: int) -> None:  # noqa: PLR0915
        service = self.service
        started_at = now()
        t0 = time.perf_counter()
        try:
            data = service.parse_input(event.input)
        except InvalidData as exc:
            await self._fail(
                msg, event, started_at, t0, invalid_input(service.name, exc), retryable=False
            )
            return
        claim = await self._claim(msg, kv_key(service.name, event.idempotency_key), event.attempt)
        if not isinstance(claim, Claimed) or (claim.interrupted and not service.retry_on_timeout):
            await self._decline(msg, event, claim, started_at, t0)
            return
        progress = Progress(self.publisher, self._topology, event)
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
            with tracing.handler_span(msg.headers, "handle", event, service.name):
                result = await service.handle(task)
        except asyncio.CancelledError:
            error = await self._cancelled(current, msg, claim, beat)
            if error is None:
                raise
            retryable = False
        except AbortOrchestration as exc:
            await self._abort(
                msg, event, started_at, t0, exc, h0=h0, claim=claim, beat=beat, progress=progress
            )
            return
        except Exception as exc:  # noqa: BLE001 - every handler error becomes task.failed
            error, retryable, unknown = self._failure(event, exc)
        else:
            try:
                output = service.dump_output(result)
            except InvalidData as exc:
                error, retryable = invalid_output(service.name, exc), False
        finally:
            running.discard(current)
            if not running:
                self._running.pop(event.orchestration_id, None)
            self._stops.pop(current, None)
        observe_handler(
            service.name, "failed" if error is not None else "completed", time.perf_counter() - h0
        )
        await self._unwatch(beat)
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
            (time.perf_counter() - t0) * 1000.0,
            replayed=False,
            record=claim,
            progress=progress,
        )

    async def _decline(
        self,
        msg: Msg,
        event: TaskDispatched,
        claim: Claimed | Done | Busy,
        started_at: float,
        t0: float,
    ) -> None:
        """A claimed task the handler does not run: replayed, handed back or refused."""
        if isinstance(claim, Done):
            record = claim.record
            log.info(
                "replaying recorded result",
                service=self.service.name,
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
        if not isinstance(claim, Claimed):
            # Another instance runs this key and this worker is stopping: hand it back.
            self.publisher.nak(msg, claim.retry_after_s)
            return
        # The handler ran for this key in a process that died (or hung) before it
        # recorded a result; this service must not run a task twice.
        await self._fail(
            msg,
            event,
            started_at,
            t0,
            f"{self.service.name} was interrupted while running this task (its process "
            "stopped before recording a result), and it is registered with "
            "retry_on_timeout=False, so it is not run again",
            retryable=False,
            outcome_unknown=True,
            release=claim,
        )

    async def _cancelled(
        self, current: asyncio.Task[Any], msg: Msg, claim: Claimed, beat: int
    ) -> str | None:
        """The handler was cancelled: why it was told to stop, or ``None`` to re-raise.

        Told to stop (the orchestration ended or is being compensated), the task reports
        ``task.failed``; cancelled because the worker stops, it is abandoned.
        """
        stop_reason = self._stops.pop(current, None)
        if stop_reason is None or self._stopping:
            await self._unwatch(beat)
            await self._abandon(msg, claim)
            return None
        current.uncancel()
        return f"stopped: {stop_reason}"

    def _failure(self, event: TaskDispatched, exc: Exception) -> tuple[str, bool, bool]:
        """What a handler's exception reports: the error, retryable, outcome unknown."""
        if isinstance(exc, OutcomeUnknown):
            return f"{type(exc).__name__}: {exc}", False, True
        if isinstance(exc, NonRetryableError):
            return f"{type(exc).__name__}: {exc}", False, False
        log.warning(
            "handler raised", service=self.service.name, task_id=event.task_id, error=repr(exc)
        )
        return f"{type(exc).__name__}: {exc}", True, False

    async def _abort(
        self,
        msg: Msg,
        event: TaskDispatched,
        started_at: float,
        t0: float,
        exc: AbortOrchestration,
        *,
        h0: float,
        claim: Claimed,
        beat: int,
        progress: Progress,
    ) -> None:
        """The handler raised :class:`~orra_sdk.AbortOrchestration`: report ``task.aborted``."""
        observe_handler(self.service.name, "aborted", time.perf_counter() - h0)
        await self._unwatch(beat)
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
        await self._report(msg, result, self._releaser(claim), progress, claim=claim)

"""Reporting a task's result: the idempotency record and the result event, then the ack.

The idempotency record (the result, or the release of the claim after a failure) and the
result event (``task.completed``...) are published together, in one batch of the
connection's pipelined publisher (``Bus.publisher``), and their acks awaited together: one
round trip instead of two in sequence. The work message is acked once both are stored.

A broker that does not answer (an outage, a restart, JetStream not ready yet) never makes
the worker drop a result: it keeps it and sends the batch again, with backoff, keeping the
message in progress and the claim alive meanwhile (:mod:`orra_sdk._worker.keepalive`).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import structlog
from nats.errors import ConnectionReconnectingError, OutboundBufferLimitError

from orra_events import TaskCompleted, TaskFailed, ids, tracing
from orra_events.codec import encode
from orra_events.metrics import observe_event
from orra_events.publishing import PublishError
from orra_sdk._metrics import count_result
from orra_sdk._results import released
from orra_sdk._worker.keepalive import KeepAlive

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.aio.msg import Msg

    from orra_events import (
        TaskAborted,
        TaskCompensated,
        TaskCompensationFailed,
        TaskDispatched,
    )
    from orra_events._fastpub import Batch
    from orra_sdk._results import Claimed
    from orra_sdk._worker.running import Progress

__all__ = ["Reporting"]

log = structlog.get_logger("orra.sdk")

_RETRY_FIRST_S = 0.2
_RETRY_MAX_S = 5.0
"""Backoff between two tries of recording a result the broker did not store."""


def _temporary(error: PublishError) -> bool:
    """Whether the broker may store the write later (unavailable, not refusing it)."""
    return error.code >= 500 and not error.conflict


def _ignore_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class Reporting(KeepAlive):
    """Records a task's result and its idempotency record, through broker outages."""

    def _releaser(self, claim: Claimed | None) -> Callable[[Batch], None] | None:
        if claim is None:
            return None
        return lambda batch: self.store.add_release(batch, claim)

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
        progress: Progress | None = None,
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
        progress: Progress | None = None,
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
        progress: Progress | None = None,
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
        :meth:`orra_sdk._worker.ServiceWorker.stop`).

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
        trace = tracing.passed_on(msg.headers)  # the result continues the task's trace
        while True:
            attempts += 1
            epoch = self._reconnects()
            failure = await self._send_result(subject, payload, result.event_id, record, trace)
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
        trace: dict[str, str] | None = None,
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
            batch.add(subject, payload, trace, msg_id=event_id)
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

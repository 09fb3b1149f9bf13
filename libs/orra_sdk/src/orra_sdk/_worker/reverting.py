"""Compensation: running a completed task's revert handler on ``task.compensating``.

Same machinery as a task: an idempotency record (key ``<orch>:<task>:revert``),
keep-alives and reporting (``task.compensated`` / ``task.compensation_failed``). Revert
handlers are never told to stop.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import structlog

from orra_events import TaskCompensated, TaskCompensationFailed, ids, now, tracing
from orra_sdk._metrics import observe_handler
from orra_sdk._results import Busy, Done, kv_key
from orra_sdk._wording import no_revert_handler, unrevertible
from orra_sdk._worker.reporting import Reporting
from orra_sdk.errors import InvalidData, NonRetryableError
from orra_sdk.service import RevertTask

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from orra_events import TaskCompensating
    from orra_sdk._results import Claimed

__all__ = ["Reverting"]

log = structlog.get_logger("orra.sdk")


class Reverting(Reporting):
    """Runs the revert handler of a ``task.compensating`` and reports its outcome."""

    async def _revert(self, msg: Msg, event: TaskCompensating, deliveries: int) -> None:
        """Run the revert handler of a completed task (one compensation attempt)."""
        service = self.service
        started_at = now()
        t0 = time.perf_counter()
        reverter = service.reverter
        if reverter is None:
            await self._comp_failed(
                msg, event, started_at, t0, no_revert_handler(service.name), retryable=False
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
                msg, event, started_at, t0, unrevertible(service.name, exc), retryable=False
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
            with tracing.handler_span(msg.headers, "revert", event, service.name):
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

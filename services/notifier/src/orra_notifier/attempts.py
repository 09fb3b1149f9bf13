"""One webhook attempt, made under the lease of the message that holds it.

Both of the notifier's handlers make attempts (:mod:`orra_notifier.handlers`): the fan-out
makes each delivery's first attempt while it holds the terminal event, the delivery
worker makes the retries while it holds the delivery job. In both cases the message held
is the claim: JetStream hands an unacknowledged message to one consumer instance at a
time, the attempt keeps it ``in_progress`` while the request runs, and the outcome is
recorded before the message is acknowledged, so two replicas or a redelivery never run one
attempt twice, and a delivery whose outcome is recorded is never posted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import structlog

from orra_events import tracing
from orra_notifier.domain import (
    Decision,
    DeliveryOutcome,
    RetryPolicy,
    Verdict,
    decide,
    delivery_key,
    describe,
    log_attempt,
    outcome_event,
    retrying_event,
    webhook_id,
)
from orra_notifier.signing import webhook_headers

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from nats.aio.msg import Msg

    from orra_events import Bus
    from orra_events.jobs import DeliveryJob
    from orra_notifier.delivery import Deliverer
    from orra_notifier.settings import NotifierSettings
    from orra_notifier.stores import Stores

__all__ = ["Attempter"]

log = structlog.get_logger("orra.notifier")


class Attempter:
    """Makes one attempt of a delivery and records what came of it.

    Args:
        bus: The connection, to append outcomes.
        stores: Secrets and delivery outcomes.
        deliverer: The HTTP side.
        settings: Retry policy and ack wait.
        clock: UNIX seconds now (tests may pass another).
        rand: Uniform random numbers in ``[0, 1)`` for the jitter.
    """

    def __init__(
        self,
        bus: Bus,
        stores: Stores,
        deliverer: Deliverer,
        settings: NotifierSettings,
        *,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._bus = bus
        self._stores = stores
        self._deliverer = deliverer
        self._settings = settings
        self.clock = clock
        self.rand = rand
        self.stopping = False
        """Set when the notifier stops: an outcome the broker cannot take is then given up."""
        self.policy = RetryPolicy(
            base_s=settings.backoff_base_s,
            max_s=settings.backoff_max_s,
            deadline_s=settings.deadline_s,
        )

    @contextlib.contextmanager
    def bound(self, job: DeliveryJob) -> Iterator[None]:
        """Bind the delivery's ids to the log lines written inside the block."""
        with structlog.contextvars.bound_contextvars(
            orchestration_id=job.orchestration_id,
            webhook_id=webhook_id(job.orchestration_id, job.url, job.kind),
            delivery_kind=job.kind,
        ):
            yield

    def span(
        self, job: DeliveryJob, msg: Msg, attempt: int
    ) -> contextlib.AbstractContextManager[object]:
        """The attempt's client span, a child of the context ``msg`` carries."""
        return tracing.span(
            f"orra webhook {job.kind}",
            headers=msg.headers,
            kind=tracing.SpanKind.CLIENT,
            attributes={
                tracing.ATTR_ORCHESTRATION: job.orchestration_id,
                "orra.webhook.attempt": attempt,
                "orra.webhook.kind": job.kind,
                "server.address": urlsplit(job.url).hostname or "",
            },
        )

    async def attempt(self, job: DeliveryJob, msg: Msg, attempt: int) -> Decision | None:
        """Make attempt number ``attempt`` of ``job`` while holding ``msg``.

        Returns:
            ``None`` when the delivery had already ended (its event is appended again);
            otherwise the decision. A final one (delivered, given up) has been recorded
            and its event appended; for ``RETRY`` the attempt log has been kept and
            ``webhook.retrying`` appended, and the caller schedules the next attempt.

        Raises:
            Exception: a broker or KV error before the outcome could be decided (the
                caller retries the whole step).
        """
        key = delivery_key(job.orchestration_id, job.url, job.kind)
        recorded = await self._stores.outcome(key)
        if recorded is not None:
            log.info("delivery already finished", orchestration_id=job.orchestration_id)
            await self._finish(key, recorded, record=False)
            return None
        msg_id = webhook_id(job.orchestration_id, job.url, job.kind)
        earlier = await self._stores.attempt_log(key) if attempt > 1 else []
        started_at, began = self.clock(), time.monotonic()
        result = await self._deliverer.check_url(job.url)
        if result is None:
            secrets = await self._stores.signing_secrets(job.project, self.clock())
            body = job.body.encode()
            headers = webhook_headers(secrets, msg_id, int(self.clock()), body)
            headers.update(tracing.current_headers())  # traceparent: the receiver joins
            async with self.keep_alive(msg):
                result = await self._deliverer.post(job.url, body, headers)
        history = log_attempt(
            earlier, result, attempt=attempt, at=started_at, duration_s=time.monotonic() - began
        )
        now = self.clock()
        decision = decide(
            result,
            attempt=attempt,
            first_attempt_at=job.created_at,
            now=now,
            policy=self.policy,
            rand=self.rand(),
        )
        fields = {
            "orchestration_id": job.orchestration_id,
            "url": job.url,
            "attempt": attempt,
            "result": describe(result),
        }
        if decision.verdict is Verdict.RETRY:
            log.info("webhook attempt failed; will retry", retry_in_s=decision.delay_s, **fields)
            await self._stores.record_attempts(key, history)
            await self._bus.publish(
                retrying_event(
                    orchestration_id=job.orchestration_id,
                    url=job.url,
                    kind=job.kind,
                    result=result,
                    attempt=attempt,
                    attempt_log=history,
                    at=now,
                    next_attempt_at=now + decision.delay_s,
                ),
                headers=tracing.current_headers(),
            )
            return decision
        delivered = decision.verdict is Verdict.DELIVERED
        if delivered:
            log.info("webhook delivered", **fields)
        else:
            log.warning("webhook failed", reason=decision.reason, **fields)
        outcome = DeliveryOutcome(
            orchestration_id=job.orchestration_id,
            url=job.url,
            delivered=delivered,
            attempts=attempt,
            status_code=result.status_code,
            error=None if delivered else decision.reason,
            webhook_id=msg_id,
            at=now,
            kind=job.kind,
            attempt_log=history,
        )
        await self._finish_soon(msg, key, outcome)
        return decision

    async def _finish_soon(self, msg: Msg, key: str, outcome: DeliveryOutcome) -> None:
        """Record a final outcome, retrying in place for as long as the broker is away.

        The HTTP request has been made: if the message were redelivered without the outcome
        recorded, the receiver would get the same delivery again. So a failed write is
        kept and retried here, the message kept in progress (at once when the connection
        comes back, so that JetStream does not redeliver it meanwhile), however long the
        outage lasts. Only a notifier stopping while the broker is unreachable gives up:
        the message is then redelivered and the receiver may see that ``webhook-id`` again
        (docs/guarantees.md). The first try costs nothing more than :meth:`_finish`.
        """
        try:
            await self._finish(key, outcome, record=True)
        except Exception as exc:  # noqa: BLE001 - kept and retried below
            log.warning("recording a delivery outcome failed; retrying", error=str(exc))
        else:
            return
        pause, tries = 0.05, 1
        async with self.keep_alive(msg):
            while True:
                epoch = self._reconnects()
                await self._pause(pause, epoch)
                if self._reconnects() != epoch:
                    with contextlib.suppress(Exception):
                        await msg.in_progress()
                try:
                    await self._finish(key, outcome, record=True)
                except Exception as exc:
                    tries += 1
                    if self.stopping and not self._bus.connected:
                        raise
                    pause = min(pause * 2, 1.0)
                    if tries % 10 == 0:
                        log.warning(
                            "delivery outcome not recorded yet; keeping it and trying again",
                            tries=tries,
                            error=str(exc),
                        )
                else:
                    return

    def _reconnects(self) -> int:
        return int(self._bus.nc.stats.get("reconnects", 0))

    async def _pause(self, delay_s: float, epoch: int) -> None:
        """Sleep ``delay_s``, or less if the client reconnects or the notifier stops."""
        for _ in range(max(1, round(delay_s / 0.05))):
            await asyncio.sleep(0.05)
            if self._reconnects() != epoch or self.stopping:
                return

    async def _finish(self, key: str, outcome: DeliveryOutcome, *, record: bool) -> None:
        if record:
            await self._stores.record(key, outcome)
        await self._bus.publish(outcome_event(outcome), headers=tracing.current_headers())

    @contextlib.asynccontextmanager
    async def keep_alive(self, msg: Msg) -> AsyncIterator[None]:
        """Tell JetStream the message is being worked on, every third of the ack wait."""
        interval = self._settings.ack_wait_s / 3

        async def beat() -> None:
            while True:
                await asyncio.sleep(interval)
                with contextlib.suppress(Exception):
                    await msg.in_progress()

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

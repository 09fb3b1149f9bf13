"""The notifier's two message handlers: fan-out of results, then durable delivery.

Flow::

    orchestration.{done,failed,aborted,compensated}.<orch>  (events stream, durable ``notifier``)
        └─ FanOut: one DeliveryJob per target URL ─▶ notifier.delivery.<orch>
                   (work-queue stream ORRA_WEBHOOKS, durable ``notifier_delivery``)
                       └─ DeliveryWorker: sign, POST, retry ─▶ webhook.delivered|failed.<orch>

Splitting the fan-out from the delivery gives every (orchestration, URL) its own message,
so each URL has its own attempt count (``num_delivered``), its own backoff and its own
outcome: a retry never re-sends to a URL that already succeeded.

Both run on :class:`orra_events.consumers.PullConsumer`, which settles each message by what
its handler does: a return acks it, :class:`~orra_events.consumers.Retry` redelivers it
after the handler's delay (never parked: ``max_deliver=None``),
:class:`~orra_events.consumers.Park` parks it with its reason, and a message that cannot be
decoded is parked. The policies, chosen on purpose:

**FanOut** (events stream). Undecodable message: parked on the dead-letter subject (it
will never decode; it must not block the consumer). Terminal event: every job is
published with ``Nats-Msg-Id = job:<orch>:<url hash>`` and *then* the event is acked, so a
crash in between republishes jobs that JetStream stores once. A broker or KV error: ``nak``
with a growing delay (at most 30 s), forever, never parked: these errors are transient and
parking a terminal event would lose its webhooks.

**DeliveryWorker** (jobs stream). The job message stays unacknowledged until its delivery
ends; that unacked message *is* the pending retry, so it survives a notifier restart and,
as JetStream hands one message to one consumer instance at a time, two replicas never run
the same attempt. ``msg.metadata.num_delivered`` is the attempt number. While a request
runs, ``in_progress()`` keeps JetStream from handing the message to another replica.

* 2xx, or a final failure (other 4xx, a URL that cannot be sent or is refused, deadline
  passed): the outcome is put in
  the ``notifier_deliveries`` bucket, ``webhook.delivered`` / ``webhook.failed`` is appended
  (event id ``w:<orch>:<url hash>``), then the message is acked. Each step repeats safely:
  a job that arrives with an outcome already recorded only re-appends the event (stored
  once) and is acked, so a crash after recording never sends the webhook twice.
* Timeout, connection error, 408, 429, 5xx within the deadline: the attempt's record is
  appended to the delivery's attempt log (key ``<delivery key>.log`` in the same bucket),
  ``webhook.retrying`` is appended (event id ``wr:<orch>:<url hash>:<attempt>``: the
  attempts so far and when the next one is due, so ``orra inspect -d`` and ``orra logs``
  show a pending delivery), then ``nak(delay=backoff)`` (or ``Retry-After``) — JetStream
  redelivers it then, to whichever replica asks. The final attempt joins the log in the
  outcome and the event's ``attempt_log``, so the history survives redeliveries and
  restarts at the cost of one KV write and one event per failed attempt (none when the
  first attempt succeeds); the latest 20 attempts are kept.
* Undecodable job: parked. Unexpected error (broker away while recording, invalid secret
  record): ``nak`` with the backoff until the deadline, then parked with the reason.

A replica that crashes in the middle of a request leaves its message unacked; JetStream
redelivers it after ``ORRA_NOTIFIER_ACK_WAIT_S`` and the receiver may see that attempt's
``webhook-id`` twice (delivery is at least once; receivers deduplicate on ``webhook-id``).

Logs. Every line written while a message is handled (by these handlers, the stores, the
HTTP side or :mod:`orra_events`) carries the ``orchestration_id``; a delivery's lines also
carry its ``webhook_id`` (the ``webhook-id`` header the receiver sees) and ``delivery_kind``.
They are bound with :mod:`structlog.contextvars` in the message's own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import TYPE_CHECKING, Final

import structlog
from nats.js.errors import NotFoundError

from orra_events import (
    DecodeError,
    Event,
    OrchestrationAborted,
    OrchestrationCompensated,
    Park,
    Retry,
    TaskApprovalRequested,
    decode,
    ids,
)
from orra_events.jobs import DeliveryJob, encode_job
from orra_notifier.domain import (
    COMPENSATION,
    RESULT,
    TERMINAL_EVENTS,
    DeliveryOutcome,
    RetryPolicy,
    TerminalEvent,
    Verdict,
    WebhookPayload,
    approval_kind,
    approval_request,
    backoff_s,
    build_payload,
    compensation_report,
    decide,
    delivery_key,
    describe,
    encode_payload,
    log_attempt,
    needs_compensation_report,
    outcome_event,
    retrying_event,
    target_urls,
    webhook_id,
)
from orra_notifier.signing import webhook_headers

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from nats.aio.msg import Msg

    from orra_events import Bus, Topology
    from orra_notifier.delivery import Deliverer
    from orra_notifier.settings import NotifierSettings
    from orra_notifier.stores import Stores

__all__ = [
    "DELIVERY_CONSUMER",
    "FANOUT_CONSUMER",
    "DeliveryWorker",
    "FanOut",
    "job_subject",
    "jobs_filter",
    "jobs_stream",
]

FANOUT_CONSUMER: Final = "notifier"
DELIVERY_CONSUMER: Final = "notifier_delivery"

log = structlog.get_logger("orra.notifier")


# --- the jobs stream -----------------------------------------------------------------------


def jobs_stream(topology: Topology) -> str:
    """Name of the notifier's work-queue stream of delivery jobs (``ORRA_WEBHOOKS``).

    The stream is defined with the others in :meth:`orra_events.Topology.stream_configs`,
    so the provisioning job creates it.
    """
    return topology.webhooks_stream


def job_subject(topology: Topology, orchestration_id: str) -> str:
    """Subject of an orchestration's delivery jobs: ``notifier.delivery.<orch>``."""
    return topology.subject("notifier.delivery", orchestration_id)


def jobs_filter(topology: Topology) -> str:
    """Subject filter of every delivery job."""
    return topology.subject("notifier.delivery", "*")


# --- fan-out -------------------------------------------------------------------------------


class FanOut:
    """Turns a terminal orchestration event into one delivery job per target URL."""

    def __init__(self, bus: Bus, stores: Stores, *, clock: Callable[[], float] = time.time) -> None:
        self._bus = bus
        self._stores = stores
        self._clock = clock

    async def __call__(self, event: Event, msg: Msg) -> None:
        """Handle one event of the events stream (see the module for how it is settled)."""
        if not isinstance(
            event, (*TERMINAL_EVENTS, OrchestrationCompensated, TaskApprovalRequested)
        ):
            return
        with structlog.contextvars.bound_contextvars(orchestration_id=event.orchestration_id):
            await self._handle(event, msg)

    async def _handle(
        self, event: TerminalEvent | OrchestrationCompensated | TaskApprovalRequested, msg: Msg
    ) -> None:
        try:
            if isinstance(event, OrchestrationCompensated):
                await self.report_compensation(event)
            elif isinstance(event, TaskApprovalRequested):
                await self.fan_out(event, approval_request(event), approval_kind(event.task_id))
            else:
                await self.fan_out(event)
        except Exception as exc:
            delay = min(30.0, 2.0 ** min(msg.metadata.num_delivered, 5))
            reason = f"{type(exc).__name__}: {exc}"
            log.warning(
                "fan-out failed; will retry",
                orchestration_id=event.orchestration_id,
                error=reason,
                retry_in_s=delay,
            )
            raise Retry(reason, delay) from exc

    async def fan_out(
        self,
        event: TerminalEvent | TaskApprovalRequested,
        payload: WebhookPayload | None = None,
        kind: str = RESULT,
    ) -> list[str]:
        """Publish a delivery job for each of the event's target URLs; return the URLs.

        Args:
            event: The terminal event (or a task's approval request): its webhook, project
                and orchestration.
            payload: The body to send (default: the event's result,
                :class:`~orra_events.webhooks.WebhookResult`).
            kind: The delivery kind (:data:`~orra_notifier.domain.RESULT` or
                :data:`~orra_notifier.domain.COMPENSATION`).
        """
        urls = target_urls(event.webhook, await self._stores.project_webhooks(event.project))
        if not urls:
            log.info("no webhook to notify", orchestration_id=event.orchestration_id)
            return urls
        if payload is None:
            assert not isinstance(event, TaskApprovalRequested)
            payload = build_payload(event)
        body = encode_payload(payload).decode()  # exactly the type
        created_at = self._clock()
        subject = job_subject(self._bus.topology, event.orchestration_id)
        for url in urls:
            job = DeliveryJob(
                orchestration_id=event.orchestration_id,
                project=event.project,
                url=url,
                body=body,
                created_at=created_at,
                kind=kind,
            )
            await self._bus.js.publish(
                subject,
                encode_job(job),
                headers={"Nats-Msg-Id": ids.webhook_job_id(event.orchestration_id, url, kind)},
            )
        log.info(
            "webhooks queued", orchestration_id=event.orchestration_id, count=len(urls), kind=kind
        )
        return urls

    async def report_compensation(self, event: OrchestrationCompensated) -> list[str]:
        """After a user's abort, report a compensation that finally failed by webhook.

        The abort's terminal event was appended (and delivered) before the compensation
        ran; this second delivery carries the same fields plus ``compensation``, under its
        own ``webhook-id``. Returns the URLs (none when no report is needed).
        """
        topology = self._bus.topology
        try:
            stored = await self._bus.js.get_last_msg(
                topology.events_stream,
                topology.subject("orchestration.aborted", event.orchestration_id),
            )
        except NotFoundError:
            return []
        try:
            terminal = decode(stored.data or b"")
        except DecodeError as exc:
            log.error(
                "the abort event is unreadable; compensation not reported",
                orchestration_id=event.orchestration_id,
                error=str(exc),
            )
            return []
        if not isinstance(terminal, OrchestrationAborted) or not needs_compensation_report(
            terminal, event.compensation
        ):
            return []
        log.warning(
            "compensation failed after an abort; reporting it",
            orchestration_id=event.orchestration_id,
            failed=event.compensation.failed,
        )
        return await self.fan_out(
            terminal, compensation_report(terminal, event.compensation), COMPENSATION
        )


# --- delivery ------------------------------------------------------------------------------


class DeliveryWorker:
    """Runs one attempt of a delivery job and acknowledges it (see the module).

    Args:
        bus: The connection, to append outcomes and park bad jobs.
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
        self._clock = clock
        self._rand = rand
        self.stopping = False
        """Set when the notifier stops: an outcome the broker cannot take is then given up."""
        self._policy = RetryPolicy(
            base_s=settings.backoff_base_s,
            max_s=settings.backoff_max_s,
            deadline_s=settings.deadline_s,
        )

    async def __call__(self, job: DeliveryJob, msg: Msg) -> None:
        """Handle one delivery job (see the module for how it is settled)."""
        with structlog.contextvars.bound_contextvars(
            orchestration_id=job.orchestration_id,
            webhook_id=webhook_id(job.orchestration_id, job.url, job.kind),
            delivery_kind=job.kind,
        ):
            await self._run(job, msg)

    async def _run(self, job: DeliveryJob, msg: Msg) -> None:
        attempt = msg.metadata.num_delivered
        try:
            await self._attempt(job, msg, attempt)
        except Retry:
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if self._clock() > job.created_at + self._settings.deadline_s:
                raise Park(f"delivery failed past its deadline: {reason}") from exc
            delay = backoff_s(attempt, self._policy, self._rand())
            log.exception(
                "delivery step failed; will retry",
                orchestration_id=job.orchestration_id,
                url=job.url,
                attempt=attempt,
                retry_in_s=round(delay, 3),
            )
            raise Retry(reason, delay) from exc

    async def _attempt(self, job: DeliveryJob, msg: Msg, attempt: int) -> None:
        key = delivery_key(job.orchestration_id, job.url, job.kind)
        recorded = await self._stores.outcome(key)
        if recorded is not None:
            log.info("delivery already finished", orchestration_id=job.orchestration_id)
            await self._finish(key, recorded, record=False)
            return
        msg_id = webhook_id(job.orchestration_id, job.url, job.kind)
        earlier = await self._stores.attempt_log(key) if attempt > 1 else []
        started_at, began = self._clock(), time.monotonic()
        result = await self._deliverer.check_url(job.url)
        if result is None:
            secrets = await self._stores.signing_secrets(job.project, self._clock())
            body = job.body.encode()
            headers = webhook_headers(secrets, msg_id, int(self._clock()), body)
            async with self._keep_alive(msg):
                result = await self._deliverer.post(job.url, body, headers)
        history = log_attempt(
            earlier, result, attempt=attempt, at=started_at, duration_s=time.monotonic() - began
        )
        now = self._clock()
        decision = decide(
            result,
            attempt=attempt,
            first_attempt_at=job.created_at,
            now=now,
            policy=self._policy,
            rand=self._rand(),
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
                )
            )
            raise Retry(f"webhook attempt failed: {describe(result)}", decision.delay_s)
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

    async def _finish_soon(self, msg: Msg, key: str, outcome: DeliveryOutcome) -> None:
        """Record a final outcome, retrying in place for as long as the broker is away.

        The HTTP request has been made: if the job were redelivered without its outcome
        recorded, the receiver would get the same delivery again. So a failed write is
        kept and retried here, the message kept in progress (at once when the connection
        comes back, so that JetStream does not redeliver it meanwhile), however long the
        outage lasts. Only a notifier stopping while the broker is unreachable gives up:
        the job is then redelivered and the receiver may see that ``webhook-id`` again
        (docs/guarantees.md). The first try costs nothing more than :meth:`_finish`.
        """
        try:
            await self._finish(key, outcome, record=True)
        except Exception as exc:  # noqa: BLE001 - kept and retried below
            log.warning("recording a delivery outcome failed; retrying", error=str(exc))
        else:
            return
        pause, tries = 0.05, 1
        async with self._keep_alive(msg):
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
        await self._bus.publish(outcome_event(outcome))

    @contextlib.asynccontextmanager
    async def _keep_alive(self, msg: Msg) -> AsyncIterator[None]:
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

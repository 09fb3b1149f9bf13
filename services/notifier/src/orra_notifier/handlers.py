"""The notifier's two message handlers: fan-out of results, then durable delivery.

Flow::

    orchestration.{done,failed,aborted,compensated}.<orch>  (events stream, durable ``notifier``)
        └─ FanOut: first attempt per target URL (sign, POST) ─▶ webhook.delivered|failed.<orch>
             └─ only when it must be retried: a DeliveryJob ─▶ notifier.delivery.<orch>
                   (work-queue stream ORRA_WEBHOOKS, durable ``notifier_delivery``)
                       └─ DeliveryWorker: sign, POST, retry ─▶ webhook.delivered|failed.<orch>

Each (orchestration, URL) has its own attempts, its own backoff and its own outcome: a
retry never re-sends to a URL that already succeeded. Every attempt runs under the lease
of the message that holds it (:mod:`orra_notifier.attempts`): the terminal event for a
first attempt, the delivery job for the retries.

Both run on :class:`orra_events.consumers.PullConsumer`, which settles each message by what
its handler does: a return acks it, :class:`~orra_events.consumers.Retry` redelivers it
after the handler's delay (never parked: ``max_deliver=None``),
:class:`~orra_events.consumers.Park` parks it with its reason, and a message that cannot be
decoded is parked. The policies, chosen on purpose:

**FanOut** (events stream). Undecodable message: parked on the dead-letter subject (it
will never decode; it must not block the consumer). Terminal event, first delivery: the
first attempt to each URL is made at once, concurrently, with the event held (kept
``in_progress`` while a request runs); its outcome is recorded as the worker records one
(below); a delivery that must be retried gets a job (``attempts_made=1`` and the time the
next attempt is due), published with ``Nats-Msg-Id = job:<orch>:<url hash>``; *then* the
event is acked. Terminal event redelivered (its earlier holder died or failed before the
ack, maybe in the middle of a request): a job per URL, and the worker, which checks the
recorded outcome first, takes over; a crash in between republishes jobs that JetStream
stores once. A broker or KV error: ``nak`` with a growing delay (at most 30 s), forever,
never parked: these errors are transient and parking a terminal event would lose its
webhooks. docs/guarantees.md lists what a crash at each step of a first attempt does.

**DeliveryWorker** (jobs stream). The job message stays unacknowledged until its delivery
ends; that unacked message *is* the pending retry, so it survives a notifier restart and,
as JetStream hands one message to one consumer instance at a time, two replicas never run
the same attempt. ``msg.metadata.num_delivered`` is the attempt number (plus the fan-out's
attempt, less the first delivery, which only waits until the retry is due, for a job
written after a first attempt). While a request
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
import time
from typing import TYPE_CHECKING, Final

import msgspec
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
    tracing,
)
from orra_events.jobs import DeliveryJob, encode_job
from orra_notifier.domain import (
    COMPENSATION,
    RESULT,
    TERMINAL_EVENTS,
    TerminalEvent,
    Verdict,
    WebhookPayload,
    approval_kind,
    approval_request,
    backoff_s,
    build_payload,
    compensation_report,
    encode_payload,
    needs_compensation_report,
    target_urls,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.aio.msg import Msg

    from orra_events import Bus, Topology
    from orra_notifier.attempts import Attempter
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
    """Makes the first attempt of each delivery a terminal event causes; queues the retries.

    Args:
        bus: The connection.
        stores: Project webhooks and delivery outcomes.
        attempter: Makes first attempts; without it every delivery goes through a job.
        clock: UNIX seconds now (tests may pass another).
    """

    def __init__(
        self,
        bus: Bus,
        stores: Stores,
        attempter: Attempter | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bus = bus
        self._stores = stores
        self._attempter = attempter
        self._clock = clock

    async def __call__(self, event: Event, msg: Msg) -> None:
        """Handle one event of the events stream (see the module for how it is settled)."""
        if not isinstance(
            event, (*TERMINAL_EVENTS, OrchestrationCompensated, TaskApprovalRequested)
        ):
            return
        with (
            structlog.contextvars.bound_contextvars(orchestration_id=event.orchestration_id),
            tracing.attached(msg.headers),  # the jobs continue the orchestration's trace
        ):
            await self._handle(event, msg)

    async def _handle(
        self, event: TerminalEvent | OrchestrationCompensated | TaskApprovalRequested, msg: Msg
    ) -> None:
        try:
            if isinstance(event, OrchestrationCompensated):
                await self.report_compensation(event, msg)
            elif isinstance(event, TaskApprovalRequested):
                await self.fan_out(
                    event, approval_request(event), approval_kind(event.task_id), msg=msg
                )
            else:
                await self.fan_out(event, msg=msg)
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
        *,
        msg: Msg | None = None,
    ) -> list[str]:
        """Deliver the event to each of its target URLs, or queue a job for each; return them.

        On the event's first delivery (``msg`` given, not redelivered) each URL's first
        attempt is made here, concurrently, while ``msg`` is held: a job is written only for
        a delivery that must be retried. A redelivered event (an earlier holder crashed, or
        this step failed) queues a job per URL instead: an attempt may have been made, and
        the delivery worker, which checks the recorded outcome first, takes it from there.

        Args:
            event: The terminal event (or a task's approval request): its webhook, project
                and orchestration.
            payload: The body to send (default: the event's result,
                :class:`~orra_events.webhooks.WebhookResult`).
            kind: The delivery kind (:data:`~orra_notifier.domain.RESULT` or
                :data:`~orra_notifier.domain.COMPENSATION`).
            msg: The message held (the event's), under whose lease first attempts run.
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
        jobs = [
            DeliveryJob(
                orchestration_id=event.orchestration_id,
                project=event.project,
                url=url,
                body=body,
                created_at=created_at,
                kind=kind,
            )
            for url in urls
        ]
        if self._attempter is not None and msg is not None and msg.metadata.num_delivered == 1:
            attempter = self._attempter
            done = await asyncio.gather(
                *(self._first_attempt(attempter, job, msg) for job in jobs),
                return_exceptions=True,
            )
            retries: list[DeliveryJob] = []
            for job, result in zip(jobs, done, strict=True):
                if isinstance(result, BaseException):
                    if not isinstance(result, Exception):
                        raise result
                    # Whether it was posted is unknown: the worker checks the outcome first.
                    log.warning(
                        "first attempt failed; queued for the delivery worker",
                        url=job.url,
                        error=f"{type(result).__name__}: {result}",
                    )
                    retries.append(job)
                elif result is not None:
                    retries.append(result)
            jobs = retries
            if not jobs:
                return urls
        await self._queue(jobs)
        return urls

    async def _first_attempt(
        self, attempter: Attempter, job: DeliveryJob, msg: Msg
    ) -> DeliveryJob | None:
        """Attempt ``job`` once; the job of its retries, or ``None`` when it has ended."""
        with attempter.bound(job), attempter.span(job, msg, 1):
            decision = await attempter.attempt(job, msg, 1)
        if decision is None or decision.verdict is not Verdict.RETRY:
            return None
        return msgspec.structs.replace(
            job, attempts_made=1, next_attempt_at=attempter.clock() + decision.delay_s
        )

    async def _queue(self, jobs: list[DeliveryJob]) -> None:
        """Store a delivery job per delivery (once each: ``Nats-Msg-Id``), awaiting each ack."""
        for job in jobs:
            await self._bus.js.publish(
                job_subject(self._bus.topology, job.orchestration_id),
                encode_job(job),
                headers={
                    "Nats-Msg-Id": ids.webhook_job_id(job.orchestration_id, job.url, job.kind),
                    **tracing.current_headers(),
                },
            )
        log.info(
            "webhooks queued",
            orchestration_id=jobs[0].orchestration_id,
            count=len(jobs),
            kind=jobs[0].kind,
        )

    async def report_compensation(
        self, event: OrchestrationCompensated, msg: Msg | None = None
    ) -> list[str]:
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
            terminal, compensation_report(terminal, event.compensation), COMPENSATION, msg=msg
        )


# --- delivery ------------------------------------------------------------------------------


class DeliveryWorker:
    """Runs one retry of a delivery job and acknowledges it (see the module).

    Args:
        bus: The connection.
        attempter: Makes the attempt and records its outcome.
        settings: The retry deadline.
    """

    def __init__(self, bus: Bus, attempter: Attempter, settings: NotifierSettings) -> None:
        self._bus = bus
        self._attempter = attempter
        self._settings = settings

    async def __call__(self, job: DeliveryJob, msg: Msg) -> None:
        """Handle one delivery job (see the module for how it is settled)."""
        with self._attempter.bound(job):
            await self._run(job, msg)

    async def _run(self, job: DeliveryJob, msg: Msg) -> None:
        num = msg.metadata.num_delivered
        attempter = self._attempter
        if job.attempts_made:
            # Written by the fan-out after a first attempt that failed: its first delivery
            # only waits for the next attempt's time (a job is delivered at once).
            if num == 1:
                wait = max(0.0, (job.next_attempt_at or 0.0) - attempter.clock())
                raise Retry("the next attempt is not due yet", wait)
            attempt = job.attempts_made + num - 1
        else:
            attempt = num
        try:
            with attempter.span(job, msg, attempt):
                decision = await attempter.attempt(job, msg, attempt)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if attempter.clock() > job.created_at + self._settings.deadline_s:
                raise Park(f"delivery failed past its deadline: {reason}") from exc
            delay = backoff_s(attempt, attempter.policy, attempter.rand())
            log.exception(
                "delivery step failed; will retry",
                orchestration_id=job.orchestration_id,
                url=job.url,
                attempt=attempt,
                retry_in_s=round(delay, 3),
            )
            raise Retry(reason, delay) from exc
        if decision is not None and decision.verdict is Verdict.RETRY:
            raise Retry(f"webhook attempt failed: {decision.reason}", decision.delay_s)

"""Pure logic of the notifier: payloads, targets, retry decisions, stored records.

Nothing here does I/O or reads the clock; callers pass ``now`` and a random number, so
every rule is tested directly. The records shared with the gateway (project webhooks,
signing secrets) and their rules are defined once in :mod:`orra_events.records`.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import math
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

import msgspec

from orra_events import (
    CompensationSummary,
    OrchestrationAborted,
    OrchestrationDone,
    OrchestrationFailed,
    TaskApprovalRequested,
    WebhookAttempt,
    WebhookDelivered,
    WebhookFailed,
    WebhookRetrying,
    ids,
)
from orra_events.ids import url_hash
from orra_events.webhook_urls import InvalidWebhookUrl, is_private_address, parse_webhook_url
from orra_events.webhooks import (
    WebhookApprovalRequested,
    WebhookCompensationReport,
    WebhookPayload,
    WebhookResult,
    encode_payload,
)
from orra_notifier.errors import UnsafeWebhookUrl

__all__ = [
    "COMPENSATION",
    "MAX_ATTEMPT_LOG",
    "RESULT",
    "TERMINAL_EVENTS",
    "AttemptLog",
    "AttemptResult",
    "Decision",
    "DeliveryOutcome",
    "RetryPolicy",
    "Status",
    "TerminalEvent",
    "Verdict",
    "WebhookPayload",
    "approval_kind",
    "approval_request",
    "backoff_s",
    "build_payload",
    "check_url_shape",
    "compensation_report",
    "decide",
    "delivery_event_id",
    "delivery_key",
    "describe",
    "encode_payload",
    "is_public_address",
    "log_attempt",
    "needs_compensation_report",
    "non_public_refusal",
    "outcome_event",
    "parse_retry_after",
    "retrying_event",
    "status_of",
    "target_urls",
    "url_hash",
    "webhook_id",
]

Status = Literal["completed", "failed", "aborted"]
"""The ``status`` of the webhook payload."""

TerminalEvent = OrchestrationDone | OrchestrationFailed | OrchestrationAborted
TERMINAL_EVENTS = (
    OrchestrationDone,
    OrchestrationFailed,
    OrchestrationAborted,
)
"""The events that end an orchestration and trigger its webhooks."""

RESULT = ids.RESULT_DELIVERY
"""Delivery kind of an orchestration's result (its terminal event)."""

COMPENSATION = "compensation"
"""Delivery kind of the report of a compensation that failed after a user's abort."""

MAX_ATTEMPT_LOG = 20
"""Attempts kept in a delivery's ``attempt_log`` (the latest ones; the count is kept apart)."""

MAX_ATTEMPT_ERROR = 200
"""Longest ``error`` text of one logged attempt."""

RETRYABLE_STATUS = frozenset({408, 429})
"""4xx statuses that are retried: the receiver asks to be tried again later."""


# --- payload ------------------------------------------------------------------------------


def status_of(event: TerminalEvent) -> Status:
    """The payload ``status`` of a terminal event."""
    if isinstance(event, OrchestrationDone):
        return "completed"
    if isinstance(event, OrchestrationFailed):
        return "failed"
    return "aborted"


def build_payload(event: TerminalEvent) -> WebhookResult:
    """The result delivery of a terminal event (:class:`~orra_events.webhooks.WebhookResult`).

    The seed's four fields keep their meaning: ``results`` is the flat view of the merged
    task outputs on completion (as the dispatcher recorded it in ``orchestration.done``),
    the abort payload of a service's abort, ``null`` otherwise; ``error`` is ``null`` on
    completion, the failure for ``failed`` and the abort reason for ``aborted``.
    ``resultsByTask`` is each task's output under its task id on completion. When the
    dispatcher compensated before ending the orchestration, ``compensation`` says how
    (``compensated``, ``failed`` and ``skipped`` task ids); a ``failed`` entry waits for an
    operator (``orra comp-fail ls``). Every field is always sent; ``uncovered`` lists the
    parts of the action the plan left out (``[{"part", "reason"}]``, empty when it covered
    everything).
    """
    if isinstance(event, OrchestrationDone):
        return WebhookResult(
            orchestration_id=event.orchestration_id,
            status="completed",
            results=event.results,
            results_by_task=event.outputs,
            error=None,
            uncovered=list(event.uncovered),
        )
    if isinstance(event, OrchestrationFailed):
        return WebhookResult(
            orchestration_id=event.orchestration_id,
            status="failed",
            results=None,
            results_by_task=None,
            error=event.error,
            compensation=event.compensation,
            uncovered=list(event.uncovered),
        )
    return WebhookResult(
        orchestration_id=event.orchestration_id,
        status="aborted",
        results=event.payload,
        results_by_task=None,
        error=event.reason,
        compensation=event.compensation,
        uncovered=list(event.uncovered),
    )


def needs_compensation_report(
    terminal: TerminalEvent | None, compensation: CompensationSummary
) -> bool:
    """Whether a finished compensation gets a webhook of its own.

    Only after a user's abort: that terminal event was appended before the compensation
    ran, so its webhook could not say how the compensation went. When the dispatcher ends
    an orchestration, its terminal event follows the compensation and carries the summary.
    A compensation is reported only when one of them finally failed (an operator must act).
    """
    return (
        isinstance(terminal, OrchestrationAborted)
        and terminal.compensation is None
        and bool(compensation.failed)
    )


def compensation_report(
    aborted: OrchestrationAborted, compensation: CompensationSummary
) -> WebhookCompensationReport:
    """The body of a compensation report: the abort's fields plus ``compensation``."""
    return WebhookCompensationReport(
        orchestration_id=aborted.orchestration_id,
        status="aborted",
        results=aborted.payload,
        results_by_task=None,
        error=aborted.reason,
        compensation=compensation,
        uncovered=list(aborted.uncovered),
    )


def approval_kind(task_id: str) -> str:
    """Delivery kind of the request to approve ``task_id`` (one per held task)."""
    return f"approval-{task_id}"


def approval_request(event: TaskApprovalRequested) -> WebhookApprovalRequested:
    """The body of an ``approval_requested`` delivery."""
    return WebhookApprovalRequested(
        orchestration_id=event.orchestration_id,
        task_id=event.task_id,
        service=event.service,
        input=dict(event.input),
        condition=event.condition,
        reason=event.reason,
        expires_at=event.expires_at,
    )


# --- targets and identities -----------------------------------------------------------------


def webhook_id(orchestration_id: str, url: str, kind: str = RESULT) -> str:
    """The ``webhook-id`` of an orchestration's delivery to ``url``; equal on every retry.

    ``kind`` tells an orchestration's deliveries to one URL apart: its result, and a later
    compensation report (:data:`COMPENSATION`).
    """
    seed = f"{orchestration_id}\n{url}" if kind == RESULT else f"{orchestration_id}\n{kind}\n{url}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:24]
    return f"msg_{digest}"


def delivery_event_id(orchestration_id: str, url: str, kind: str = RESULT) -> str:
    """Event id of the ``webhook.delivered`` / ``webhook.failed`` of one delivery."""
    return ids.webhook_outcome_id(orchestration_id, url, kind)


def delivery_key(orchestration_id: str, url: str, kind: str = RESULT) -> str:
    """KV key of a delivery's outcome in the ``notifier_deliveries`` bucket."""
    middle = "" if kind == RESULT else f"{kind}."
    return f"{orchestration_id}.{middle}{url_hash(url)}"


def target_urls(event_webhook: str | None, project_webhooks: list[str]) -> list[str]:
    """Where a result goes: the action's webhook, then the project's, each once."""
    seen: dict[str, None] = {}
    for url in [event_webhook, *project_webhooks]:
        if url and url.strip():
            seen.setdefault(url.strip(), None)
    return list(seen)


# --- URL safety ------------------------------------------------------------------------------


def check_url_shape(url: str) -> tuple[str, int]:
    """The host and port of a webhook URL the HTTP client can send.

    The rule is the one the gateway applied when it accepted the URL
    (:func:`orra_events.webhook_urls.parse_webhook_url`): what it refuses, ``httpx`` could
    not send either, so retrying it would only fail again.

    Raises:
        UnsafeWebhookUrl: the URL cannot be sent (saying why).
    """
    try:
        target = parse_webhook_url(url)
    except InvalidWebhookUrl as exc:
        raise UnsafeWebhookUrl(f"webhook URL {url!r} cannot be sent: {exc}") from None
    return target.host, target.port


def is_public_address(address: str) -> bool:
    """Whether an IP address is publicly routable (not loopback, private, link-local...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not is_private_address(ip)


def non_public_refusal(host: str, addresses: list[str]) -> str | None:
    """Why ``host`` may not be called when private targets are refused; ``None`` if it may.

    Every one of its ``addresses`` must be public (a name with one private address among
    public ones is refused: the connection could go to any of them).
    """
    private = [a for a in addresses if not is_public_address(a)]
    if not private and addresses:
        return None
    return (
        f"webhook host {host} resolves to a non-public address "
        f"({', '.join(private) or 'none'}); private targets are not allowed "
        "(ORRA_ALLOW_PRIVATE_WEBHOOKS=false)"
    )


# --- retry decisions -------------------------------------------------------------------------


class AttemptResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one HTTP attempt gave.

    Attributes:
        kind: ``response`` (a status came back), ``timeout``, ``connection`` (refused,
            reset, DNS failure, TLS error) or ``refused`` (the URL is not allowed).
        status_code: The HTTP status, for ``response``.
        retry_after_s: The receiver's ``Retry-After``, in seconds from now, when given.
        error: What went wrong, for humans.
    """

    kind: Literal["response", "timeout", "connection", "refused"]
    status_code: int | None = None
    retry_after_s: float | None = None
    error: str | None = None


class Verdict(enum.Enum):
    """What to do after an attempt."""

    DELIVERED = "delivered"
    RETRY = "retry"
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by a deadline.

    Attributes:
        base_s: Delay before the second attempt.
        max_s: The longest computed delay.
        deadline_s: No attempt starts later than this after the first one.
    """

    base_s: float
    max_s: float
    deadline_s: float


@dataclass(frozen=True)
class Decision:
    """The verdict after an attempt, and the delay before the next one for ``RETRY``."""

    verdict: Verdict
    delay_s: float = 0.0
    reason: str = ""


def backoff_s(attempt: int, policy: RetryPolicy, rand: float) -> float:
    """Delay after failed attempt number ``attempt`` (1-based), with "equal jitter".

    The nominal delay ``base * 2**(attempt-1)``, capped at ``max_s``, is scaled by a
    factor in ``[0.5, 1)`` taken from ``rand`` in ``[0, 1)``, so replicas and receivers
    that failed together do not retry in lockstep, and no delay is shorter than half the
    nominal one.
    """
    exponent = min(max(attempt - 1, 0), 62)
    nominal = min(policy.max_s, policy.base_s * math.pow(2.0, exponent))
    return nominal * (0.5 + 0.5 * min(max(rand, 0.0), 1.0))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def describe(result: AttemptResult) -> str:
    """A short human description of an attempt's result."""
    if result.kind == "response":
        return f"HTTP {result.status_code}"
    return f"{result.kind}: {result.error}" if result.error else result.kind


def decide(
    result: AttemptResult,
    *,
    attempt: int,
    first_attempt_at: float,
    now: float,
    policy: RetryPolicy,
    rand: float,
) -> Decision:
    """Whether an attempt delivered, should be retried (and when), or is given up.

    2xx delivers. Timeouts, connection errors, 408, 429 and 5xx are retried after the
    backoff, or after ``Retry-After`` when the receiver sent one; a retry that could not
    start before ``first_attempt_at + deadline_s`` is given up. Every other status (other
    4xx, and 3xx since redirects are not followed) and a refused URL are given up at once.
    """
    code = result.status_code
    if result.kind == "refused":
        return Decision(Verdict.GIVE_UP, reason=f"refused: {result.error}")
    if result.kind == "response" and code is not None and 200 <= code < 300:
        return Decision(Verdict.DELIVERED)
    retryable = result.kind in {"timeout", "connection"} or (
        result.kind == "response" and code is not None and (code in RETRYABLE_STATUS or code >= 500)
    )
    what = describe(result)
    if not retryable:
        return Decision(Verdict.GIVE_UP, reason=f"{what} is not retried")
    delay = backoff_s(attempt, policy, rand)
    if result.retry_after_s is not None:
        delay = max(result.retry_after_s, 0.0)
    if now + delay > first_attempt_at + policy.deadline_s:
        return Decision(
            Verdict.GIVE_UP,
            reason=f"{what}; gave up after {attempt} attempts: the retry deadline of "
            f"{policy.deadline_s:g}s has passed",
        )
    return Decision(Verdict.RETRY, delay_s=delay, reason=what)


# --- records kept in JetStream ---------------------------------------------------------------


def log_attempt(
    log: list[WebhookAttempt],
    result: AttemptResult,
    *,
    attempt: int,
    at: float,
    duration_s: float,
) -> list[WebhookAttempt]:
    """``log`` with the record of one more attempt appended, capped to the latest ones.

    The record keeps the status code, or for an attempt that got no answer a short error
    (at most :data:`MAX_ATTEMPT_ERROR` characters); only the latest
    :data:`MAX_ATTEMPT_LOG` records are kept.
    """
    error = None if result.kind == "response" else describe(result)
    if error is not None and len(error) > MAX_ATTEMPT_ERROR:
        error = error[: MAX_ATTEMPT_ERROR - 1] + "…"
    record = WebhookAttempt(
        n=attempt,
        at=at,
        status_code=result.status_code if result.kind == "response" else None,
        error=error,
        duration_ms=round(max(duration_s, 0.0) * 1000, 1),
    )
    earlier = [a for a in log if a.n < attempt]  # a redelivered attempt replaces its record
    return [*earlier, record][-MAX_ATTEMPT_LOG:]


class AttemptLog(msgspec.Struct, frozen=True, kw_only=True):
    """The failed attempts of a delivery still being retried, kept in KV between them."""

    attempts: list[WebhookAttempt] = msgspec.field(default_factory=list)


class DeliveryOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """How a delivery ended, kept in KV so a repeated job is not delivered twice."""

    orchestration_id: str
    url: str
    delivered: bool
    attempts: int
    status_code: int | None
    error: str | None
    webhook_id: str
    at: float
    kind: str = RESULT
    attempt_log: list[WebhookAttempt] = msgspec.field(default_factory=list)


def retrying_event(
    *,
    orchestration_id: str,
    url: str,
    kind: str,
    result: AttemptResult,
    attempt: int,
    attempt_log: list[WebhookAttempt],
    at: float,
    next_attempt_at: float,
) -> WebhookRetrying:
    """The ``webhook.retrying`` event of a failed attempt that will be retried.

    Its id is deterministic per attempt (``wr:<orch>:<url hash>:<attempt>``), so an attempt
    repeated after a crash is recorded once.
    """
    return WebhookRetrying(
        event_id=ids.webhook_retry_id(orchestration_id, url, attempt, kind),
        at=at,
        orchestration_id=orchestration_id,
        url=url,
        attempt=attempt,
        webhook_id=webhook_id(orchestration_id, url, kind),
        next_attempt_at=next_attempt_at,
        status_code=result.status_code if result.kind == "response" else None,
        error=None if result.kind == "response" else describe(result),
        attempt_log=list(attempt_log),
    )


def outcome_event(outcome: DeliveryOutcome) -> WebhookDelivered | WebhookFailed:
    """The ``webhook.delivered`` / ``webhook.failed`` event recording an outcome."""
    event_id = delivery_event_id(outcome.orchestration_id, outcome.url, outcome.kind)
    if outcome.delivered:
        return WebhookDelivered(
            event_id=event_id,
            at=outcome.at,
            orchestration_id=outcome.orchestration_id,
            url=outcome.url,
            attempt=outcome.attempts,
            status_code=outcome.status_code or 0,
            webhook_id=outcome.webhook_id,
            attempt_log=list(outcome.attempt_log),
        )
    return WebhookFailed(
        event_id=event_id,
        at=outcome.at,
        orchestration_id=outcome.orchestration_id,
        url=outcome.url,
        attempts=outcome.attempts,
        status_code=outcome.status_code,
        error=outcome.error or "failed",
        webhook_id=outcome.webhook_id,
        attempt_log=list(outcome.attempt_log),
    )

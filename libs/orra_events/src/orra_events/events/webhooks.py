"""Webhook delivery events: delivered, failed, retrying, and the log of attempts."""

from __future__ import annotations

from typing import ClassVar

import msgspec

from orra_events.events.base import OrchestrationEvent

__all__ = ["WebhookAttempt", "WebhookDelivered", "WebhookFailed", "WebhookRetrying"]


class WebhookAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """One HTTP attempt of a webhook delivery (an entry of ``attempt_log``).

    Attributes:
        n: The attempt's number (1-based). Numbers may skip one: an attempt cut short by a
            notifier crash leaves no record.
        at: When the attempt started, UNIX epoch seconds.
        status_code: The HTTP status the receiver answered, ``None`` when no answer came.
        error: Why no answer came (timeout, connection error, refused URL), short.
        duration_ms: How long the attempt took.
    """

    n: int
    at: float
    status_code: int | None = None
    error: str | None = None
    duration_ms: float = 0.0


class WebhookDelivered(OrchestrationEvent, frozen=True, kw_only=True, tag="webhook.delivered"):
    """The notifier delivered the result to a webhook.

    ``attempt_log`` holds the delivery's attempts, oldest first, the last one the success;
    only the latest 20 are kept (``attempt`` counts them all). Events written before the
    log existed have it empty.
    """

    TYPE: ClassVar[str] = "webhook.delivered"

    url: str
    attempt: int
    status_code: int
    webhook_id: str
    attempt_log: list[WebhookAttempt] = msgspec.field(default_factory=list)


class WebhookFailed(OrchestrationEvent, frozen=True, kw_only=True, tag="webhook.failed"):
    """The notifier gave up delivering the result to a webhook.

    ``attempt_log`` holds the delivery's attempts, oldest first, the last one the failure
    that ended it; only the latest 20 are kept (``attempts`` counts them all). Events
    written before the log existed have it empty.
    """

    TYPE: ClassVar[str] = "webhook.failed"

    url: str
    attempts: int
    status_code: int | None
    error: str
    webhook_id: str
    attempt_log: list[WebhookAttempt] = msgspec.field(default_factory=list)


class WebhookRetrying(OrchestrationEvent, frozen=True, kw_only=True, tag="webhook.retrying"):
    """An attempt to deliver to a webhook failed; the notifier will try again.

    Appended once per failed attempt that is retried (never when the first attempt
    succeeds), so every view shows a delivery that is still pending: how many attempts it
    took so far, how the last one went and when the next one starts. The delivery's
    ``webhook.delivered`` or ``webhook.failed`` follows in the end.

    Attributes:
        url: Where the result is being delivered.
        attempt: The attempt that failed (1-based).
        webhook_id: The ``webhook-id`` header the receiver sees.
        next_attempt_at: When the next attempt is due (UNIX epoch seconds).
        status_code: The receiver's HTTP status, ``None`` when no answer came.
        error: Why no answer came (timeout, connection error), short.
        attempt_log: The delivery's attempts so far, oldest first (the latest 20).
    """

    TYPE: ClassVar[str] = "webhook.retrying"

    url: str
    attempt: int
    webhook_id: str
    next_attempt_at: float
    status_code: int | None = None
    error: str | None = None
    attempt_log: list[WebhookAttempt] = msgspec.field(default_factory=list)

"""Work items on work-queue streams that are not events of the log: one definition each.

An event records what happened and lives on the event stream for ever; a job is a unit of
work a consumer retries until it is done, then it is gone (work-queue retention). Jobs are
defined here, beside the events, so that every message format on the broker is found in
``orra_events``.

===================================  ==============  ========================================
subject                              stream          message
===================================  ==============  ========================================
``notifier.delivery.<orchestration>``  ``ORRA_WEBHOOKS``  :class:`DeliveryJob` (JSON)
===================================  ==============  ========================================
"""

from __future__ import annotations

from typing import Final

import msgspec

from orra_events.errors import MalformedEvent, UnsupportedVersion

__all__ = ["DELIVERY_JOB_VERSION", "DeliveryJob", "decode_delivery_job", "encode_job"]

DELIVERY_JOB_VERSION: Final = 1
"""The schema version of :class:`DeliveryJob` this code writes and reads."""


class DeliveryJob(msgspec.Struct, frozen=True, kw_only=True):
    """One (orchestration, URL) webhook delivery: the message a notifier worker retries.

    Attributes:
        orchestration_id: Whose result this is.
        project: Whose secret signs it.
        url: Where it goes.
        body: The exact JSON body, fixed at fan-out so every attempt sends the same bytes.
        created_at: When the job was made (UNIX seconds); the retry deadline counts from here.
        kind: ``result`` (the orchestration's outcome) or ``compensation`` (the report of a
            compensation that failed after a user's abort); each kind of one orchestration
            has its own ``webhook-id`` and its own outcome per URL.
        attempts_made: Attempts already made before the job was written: the notifier's
            fan-out makes a delivery's first attempt itself and writes a job only when
            it must be retried (then 1); 0 for a job written before any attempt.
        next_attempt_at: When the next attempt is due (UNIX seconds), for a job written
            after an attempt; its first delivery only waits until then.
        v: Schema version (jobs written before versions existed decode as 1).
    """

    orchestration_id: str
    project: str
    url: str
    body: str
    created_at: float
    kind: str = "result"
    attempts_made: int = 0
    next_attempt_at: float | None = None
    v: int = DELIVERY_JOB_VERSION


_DECODER: Final = msgspec.json.Decoder(DeliveryJob)


def encode_job(job: DeliveryJob) -> bytes:
    """The JSON bytes of ``job``."""
    return msgspec.json.encode(job)


def decode_delivery_job(data: bytes) -> DeliveryJob:
    """Decode a delivery job.

    Raises:
        MalformedEvent: the bytes are not a delivery job (the message says which field).
        UnsupportedVersion: the job was written by a newer notifier.
    """
    try:
        job = _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedEvent(f"invalid delivery job: {exc}") from None
    if job.v > DELIVERY_JOB_VERSION:
        raise UnsupportedVersion(
            f"delivery job version {job.v} is newer than this notifier reads "
            f"({DELIVERY_JOB_VERSION}); upgrade the notifier"
        )
    return job

"""Compact summaries of the orchestrations whose events the retention removed.

When :mod:`orra_gateway.retention` removes an ended orchestration's events from the log it
first writes the orchestration's list line, with its project and error, to the
``summaries`` bucket (key: the orchestration id; TTL ``ORRA_RETENTION_SUMMARY_MAX_AGE_S``).
``GET /orchestrations/{id}`` then answers that summary as an *expired* view
(``expired: true``), an ``Idempotency-Key`` replay finds it instead of submitting the
action again, and ``orra inspect`` says that the details expired.

A summary costs about 300 bytes of broker memory (one key) against about 2 KB for the
events it replaces (one subject per event type of the orchestration; see BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import TYPE_CHECKING, Final

import msgspec
import structlog
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NotFoundError

from orra_events.projection import OrchestrationStatus, OrchestrationView

if TYPE_CHECKING:
    from nats.js.kv import KeyValue

    from orra_events import Bus

__all__ = ["SUMMARIES_BUCKET", "ExpiredSummary", "SummaryStore"]

SUMMARIES_BUCKET: Final = "summaries"
"""Name (within the topology) of the bucket of expired orchestrations' summaries."""

FORMAT: Final = 1

_WRITES_IN_FLIGHT = 256

log = structlog.get_logger("orra.gateway.summaries")


class ExpiredSummary(msgspec.Struct, kw_only=True, rename="camel"):
    """What is kept of an orchestration once its events are removed.

    Attributes:
        format: Layout version (:data:`FORMAT`).
        id: Orchestration id.
        project: Project that owns it.
        action: The action's text (cut to the list line's length).
        action_truncated: Whether ``action`` was cut.
        status: Its final status.
        task_count: Tasks of its plan.
        created_at: When the action was submitted.
        finished_at: When it ended.
        error: Why it failed, was aborted or is not actionable (cut).
        expired_at: When its events were removed.
    """

    format: int
    id: str
    project: str
    action: str
    status: OrchestrationStatus
    task_count: int
    created_at: float
    expired_at: float
    action_truncated: bool = False
    finished_at: float | None = None
    error: str | None = None

    def view(self) -> OrchestrationView:
        """The expired view of ``GET /orchestrations/{id}``: the summary, details gone."""
        return OrchestrationView(
            id=self.id,
            project=self.project,
            action=self.action,
            status=self.status,
            created_at=self.created_at,
            updated_at=self.finished_at or self.created_at,
            finished_at=self.finished_at,
            error=self.error,
            expired=True,
            expired_at=self.expired_at,
            task_count=self.task_count,
        )


_decoder = msgspec.json.Decoder(ExpiredSummary)


class SummaryStore:
    """Reads and writes of the ``summaries`` bucket.

    Args:
        kv: The bucket.
    """

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, bus: Bus, ttl_s: float) -> SummaryStore:
        """Open the bucket (creating it with ``ttl_s``, 0 for no TTL); align its TTL.

        An existing bucket whose TTL differs from ``ttl_s`` is updated to it, so that
        changing ``ORRA_RETENTION_SUMMARY_MAX_AGE_S`` takes effect at the next start.
        """
        kv = await bus.kv(SUMMARIES_BUCKET, ttl_s=ttl_s or None)
        with contextlib.suppress(NotFoundError, BucketNotFoundError):
            info = await bus.js.stream_info(f"KV_{bus.topology.bucket(SUMMARIES_BUCKET)}")
            if abs((info.config.max_age or 0.0) - ttl_s) > 1e-3:
                log.info("updating the summaries' time to live", ttl_s=ttl_s)
                await bus.js.update_stream(dataclasses.replace(info.config, max_age=ttl_s))
        return cls(kv)

    async def get(self, orchestration_id: str) -> ExpiredSummary | None:
        """The summary of an expired orchestration, or ``None``."""
        try:
            entry = await self.kv.get(orchestration_id)
        except KeyNotFoundError:
            return None
        try:
            summary = _decoder.decode(entry.value or b"")
        except msgspec.DecodeError:
            log.warning("unreadable summary ignored", orchestration_id=orchestration_id)
            return None
        return summary if summary.format == FORMAT else None

    async def put_all(self, summaries: list[ExpiredSummary]) -> None:
        """Write summaries, many at a time; returns once every write is stored.

        Raises:
            Exception: a write failed (the caller must then not remove the events).
        """
        slots = asyncio.Semaphore(_WRITES_IN_FLIGHT)

        async def put(summary: ExpiredSummary) -> None:
            async with slots:
                await self.kv.put(summary.id, msgspec.json.encode(summary))

        await asyncio.gather(*(put(s) for s in summaries))

"""A task's claim and its keep-alives: in-progress acks and claim renewals.

While a handler runs, the worker's ticker (one per worker, not a timer per task) keeps
its work message in progress and renews its claim in the result store, every third of
the ack wait. The same is done for a task whose claim another instance holds (the
delivery waits for it instead of a nak) and for a result that waits for the broker
(:mod:`orra_sdk._worker.reporting`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import structlog

from orra_sdk._results import Busy
from orra_sdk._worker.core import WorkerCore

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from orra_sdk._results import Claimed, Done

__all__ = ["Beat", "KeepAlive"]

log = structlog.get_logger("orra.sdk")


class Beat:
    """Keep-alive of one running handler: in-progress acks and claim renewals.

    The worker's ticker fires it every third of the ack wait (no timer per task).
    """

    __slots__ = ("attempt", "claim", "due", "msg", "task")

    def __init__(self, msg: Msg, claim: Claimed, attempt: int, due: float) -> None:
        self.msg = msg
        self.claim = claim
        self.attempt = attempt
        self.due = due
        self.task: asyncio.Task[None] | None = None


class KeepAlive(WorkerCore):
    """Claims a task's key and keeps it, and its message, alive while the task runs."""

    async def _tick(self) -> None:
        # Often enough that a keep-alive is never more than half an interval late. It
        # keeps running while the worker stops, for the handlers that finish meanwhile.
        interval = min(1.0, self._progress_every / 2)
        while True:
            await asyncio.sleep(interval)
            self._keep_alive()

    def _watch(self, msg: Msg, claim: Claimed, attempt: int) -> int:
        """Keep a running handler's message in progress and its claim alive."""
        self._beat_ids += 1
        self._beats[self._beat_ids] = Beat(
            msg, claim, attempt, time.monotonic() + self._progress_every
        )
        return self._beat_ids

    async def _unwatch(self, beat_id: int) -> None:
        """Stop the keep-alives of a handler that returned (after a beat in flight)."""
        beat = self._beats.pop(beat_id, None)
        if beat is not None and beat.task is not None and not beat.task.done():
            with contextlib.suppress(Exception):
                await beat.task

    def _keep_alive(self) -> None:
        now = time.monotonic()
        for beat in self._beats.values():
            if beat.due <= now and (beat.task is None or beat.task.done()):
                beat.due = now + self._progress_every
                beat.task = asyncio.create_task(self._beat(beat))

    async def _beat(self, beat: Beat) -> None:
        claim = beat.claim
        try:
            self.publisher.in_progress(beat.msg)
            if not await self.store.renew(claim, attempt=beat.attempt, lease_s=self._lease_s):
                log.warning("claim taken over by another instance", key=claim.key)
        except Exception as exc:  # noqa: BLE001 - a missed beat is retried at the next one
            log.warning("keep-alive failed", key=claim.key, error=str(exc))

    async def _claim(self, msg: Msg, key: str, attempt: int) -> Claimed | Done | Busy:
        """Claim ``key``; while another instance holds it, wait here instead of a nak.

        A nak counts as one more delivery, so a task whose holder was killed (its claim
        lives until the lease ends) would reach ``max_deliveries`` in a few polls and be
        failed as a poison task after a single crash. Waiting keeps the message in
        progress and polls the claim until the holder records its result (then it is
        replayed) or its lease ends (then this instance takes over). ``Busy`` is returned
        only when the worker is stopping.
        """
        beat = time.monotonic()
        while True:
            claim = await self.store.claim(key, attempt=attempt, lease_s=self._lease_s)
            if not isinstance(claim, Busy) or self._stopping:
                return claim
            await asyncio.sleep(claim.retry_after_s)
            if time.monotonic() - beat >= self._progress_every:
                beat = time.monotonic()
                with contextlib.suppress(Exception):
                    self.publisher.in_progress(msg)

    async def _abandon(self, msg: Msg, claim: Claimed) -> None:
        """The worker stops mid-task: free the key and hand the message to another replica.

        Best effort and bounded: without a broker the claim simply runs out.
        """
        if self.bus.connected:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self.store.release(claim)
        with contextlib.suppress(Exception):
            self.publisher.nak(msg)

    async def _keep_claim(self, msg: Msg, claim: Claimed | None, attempt: int) -> None:
        """Keep a task whose result waits for the broker in progress, and its claim alive."""
        try:
            self.publisher.in_progress(msg)
            if claim is not None and not await self.store.renew(
                claim, attempt=attempt, lease_s=self._lease_s
            ):
                log.warning("claim taken over by another instance", key=claim.key)
        except Exception as exc:  # noqa: BLE001 - the broker is still away; tried again later
            log.debug("keep-alive failed", error=str(exc))

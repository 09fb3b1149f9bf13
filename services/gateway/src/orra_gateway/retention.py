"""Retention of the event log: remove the events of orchestrations that ended long ago.

The ``ORRA_EVENTS`` stream has no JetStream limits: a broker's ``MaxAge`` or ``MaxBytes``
removes the oldest messages whatever they belong to, including the first events of an
orchestration that is still running, paused for days, or being compensated. Instead the
gateway removes events itself, from the front of the log (a purge up to a sequence), and
never further than the first event of anything that may still need its events:

* an orchestration that has not ended (planning, running, paused, compensating), or an
  aborted one whose compensation is still running (its last ``orchestration.*`` event is
  ``orchestration.compensating``);
* an orchestration whose compensation waits for an operator (``orra comp-fail``);
* an event some durable consumer of the stream has not acknowledged yet (the planner,
  dispatcher and notifier: a stopped service finds its backlog intact), and the end of an
  orchestration that one of them has not processed yet (the notifier reads the abort when
  it reports a compensation);
* an event the saved list index does not cover (a restarted gateway replays from there);
* an orchestration that ended less than ``max_age_s`` ago (the age rule counts from the
  end, not from the start). When the stream is larger than ``max_bytes`` the oldest ended
  orchestrations go sooner, down to 90% of the cap, still never those above.

Each pass (every ``interval_s``) walks every project's list lines in log order from the
oldest one still in the log, stops at the first that must stay, writes a compact summary
of each orchestration it passed (:mod:`orra_gateway.summaries`) and then purges the
stream up to the first event that must stay. Lines in the pages that stay are never
rewritten: a line is *expired* when its ``action.submitted`` is older than the log's first
sequence. Replicas may run passes at the same time: each computes a safe point from its
own index, summaries are idempotent and a purge up to a sequence never goes back.

Removing from the front means that one long-lived orchestration holds back the removal of
everything after it; the pass logs what holds it (and :attr:`Retention.last` says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import structlog
from nats.js.api import AckPolicy

from orra_gateway.summaries import FORMAT, ExpiredSummary

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from orra_events import Bus
    from orra_events.projection import OrchestrationView
    from orra_gateway.index import IndexEntry, ListingIndex
    from orra_gateway.summaries import SummaryStore

__all__ = ["BYTES_LOW_WATER", "PassOutcome", "Retention"]

log = structlog.get_logger("orra.gateway.retention")

BYTES_LOW_WATER: Final = 0.9
"""Above ``max_bytes``, a pass removes events down to this fraction of it."""

_CONSUMER_PAGE = 256


@dataclass(frozen=True)
class PassOutcome:
    """What one retention pass did.

    Attributes:
        first_seq: The log's first sequence before the pass.
        target_seq: Where the age and size limits alone would have cut (exclusive).
        cut_seq: Where the pass cut: events below it were removed (``first_seq``: none).
        removed: Events removed.
        expired: Orchestrations whose events were removed (summaries written).
        held_by: Why the pass stopped before ``target_seq`` (``None`` when it did not).
        bytes_before: Size of the stream before the pass.
    """

    first_seq: int
    target_seq: int
    cut_seq: int
    removed: int
    expired: int
    held_by: str | None
    bytes_before: int


class Retention:
    """Removes the events of long-ended orchestrations from the log, periodically.

    Args:
        bus: Connected bus whose topology names the events stream.
        index: The list index (every orchestration's line, in log order).
        summaries: Where the summaries of expired orchestrations go.
        find_view: The full view of an orchestration (to check its compensation failures).
        forget: Called with the ids of the orchestrations whose events a pass removed (so
            that caches of their full views drop them).
        max_age_s: Age, counted from its end, at which an orchestration's events go (0: none).
        max_bytes: Size of the events stream above which the oldest ended ones go (0: none).
        interval_s: Seconds between passes.
        max_per_pass: Orchestrations one pass expires at most (the rest wait for the next).
    """

    def __init__(
        self,
        bus: Bus,
        index: ListingIndex,
        summaries: SummaryStore,
        find_view: Callable[[str], Awaitable[OrchestrationView | None]],
        forget: Callable[[list[str]], None] | None = None,
        *,
        max_age_s: float,
        max_bytes: int,
        interval_s: float,
        max_per_pass: int = 50_000,
    ) -> None:
        self._bus = bus
        self._index = index
        self._summaries = summaries
        self._find_view = find_view
        self._forget = forget
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self.interval_s = interval_s
        self.max_per_pass = max(1, max_per_pass)
        self._cursors: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._last_held: str | None = None
        self.first_seq = 0
        """The log's first sequence as of the last pass (lines below it are expired)."""
        self.last: PassOutcome | None = None
        """The outcome of the last pass."""
        self.expired_total = 0
        """Orchestrations this process expired since it started."""

    @property
    def enabled(self) -> bool:
        """Whether any limit is set."""
        return self.max_age_s > 0 or self.max_bytes > 0

    def start(self) -> None:
        """Run passes every ``interval_s`` in the background (when a limit is set)."""
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop the background passes (a pass in progress is cancelled)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - the next pass tries again
                log.warning("retention pass failed", error=repr(exc))

    # --- one pass ---------------------------------------------------------------------------

    async def run_once(self, now: float | None = None) -> PassOutcome | None:
        """Run one pass now; ``None`` when it could not run (the index is not ready)."""
        index = self._index
        if not index.caught_up.is_set() or index.rebuilding:
            return None
        async with self._lock:
            outcome = await self._pass(time.time() if now is None else now)
        self.last = outcome
        if outcome.removed:
            log.info(
                "events removed by retention",
                removed=outcome.removed,
                orchestrations=outcome.expired,
                first_seq=outcome.cut_seq,
                held_by=outcome.held_by,
            )
        if outcome.held_by is not None and outcome.held_by != self._last_held:
            log.info("retention held back", held_by=outcome.held_by, target_seq=outcome.target_seq)
        self._last_held = outcome.held_by
        return outcome

    async def _pass(self, now: float) -> PassOutcome:
        js = self._bus.js
        stream = self._bus.topology.events_stream
        info = await js.stream_info(stream)
        state = info.state
        first, last = state.first_seq, state.last_seq
        self.first_seq = first
        target, pressure_until = await self._target(first, last, state.messages, state.bytes, now)

        def outcome(cut: int, expired: int, held: str | None) -> PassOutcome:
            return PassOutcome(
                first_seq=first,
                target_seq=target,
                cut_seq=cut,
                removed=0,
                expired=expired,
                held_by=held,
                bytes_before=state.bytes,
            )

        if target <= first or state.messages == 0:
            return outcome(first, 0, None)
        bound, held = target, None
        covered = await self._index.stored_covers() + 1
        if covered < bound:
            bound, held = covered, f"the saved list index covers only up to {covered - 1}"
        floor, floor_holder = await self._consumer_floor()
        if floor < bound:
            bound, held = floor, f"consumer {floor_holder} has not acknowledged {floor}"
        passed: list[tuple[str, int, IndexEntry]] = []
        operator = {oid for oid, _ in self._index.compensation_failed}
        for project in self._index.projects():
            ordinal = await self._cursor(project, first)
            count = self._index.count(project)
            while ordinal < count:
                entry = await self._index.entry(project, ordinal)
                if entry is None or entry.seq >= bound:
                    break
                if entry.seq < first:  # removed by another replica, which summarized it
                    ordinal += 1
                    self._cursors[project] = ordinal
                    continue
                if len(passed) >= self.max_per_pass:
                    bound, held = entry.seq, None  # the rest in the next pass
                    break
                reason = await self._must_stay(
                    entry, now, floor, pressure=entry.seq < pressure_until, operator=operator
                )
                if reason is not None:
                    bound, held = entry.seq, f"orchestration {entry.id} {reason}"
                    break
                passed.append((project, ordinal, entry))
                ordinal += 1
        if bound <= first:
            return outcome(first, 0, held)
        expiring = [(p, o, e) for p, o, e in passed if e.seq < bound]
        await self._summaries.put_all([_summary(p, e, now) for p, _, e in expiring])
        await js.purge_stream(stream, seq=bound)
        if self._forget is not None:
            self._forget([e.id for _, _, e in expiring])
        for project, ordinal, _ in expiring:
            self._cursors[project] = max(self._cursors.get(project, 0), ordinal + 1)
        self.first_seq = bound
        self.expired_total += len(expiring)
        return PassOutcome(
            first_seq=first,
            target_seq=target,
            cut_seq=bound,
            removed=bound - first,
            expired=len(expiring),
            held_by=held,
            bytes_before=state.bytes,
        )

    async def _target(
        self, first: int, last: int, messages: int, size: int, now: float
    ) -> tuple[int, int]:
        """Where the limits alone would cut, and where the size limit alone would.

        Returns:
            The target sequence (events below it are due) and the end of the size
            pressure (events below it are due whatever their age).
        """
        target = first
        if self.max_age_s > 0:
            target = max(target, await self._seq_at(now - self.max_age_s, last))
        pressure = first
        if self.max_bytes > 0 and size > self.max_bytes and messages > 0:
            excess = size - int(self.max_bytes * BYTES_LOW_WATER)
            pressure = min(last + 1, first + math.ceil(excess / (size / messages)))
            target = max(target, pressure)
        return target, pressure

    async def _seq_at(self, at: float, last: int) -> int:
        """The first sequence stored at or after ``at`` (``last + 1`` when none is)."""
        when = dt.datetime.fromtimestamp(at, dt.UTC).isoformat().replace("+00:00", "Z")
        message = await self._get({"start_time": when})
        return last + 1 if message is None else int(message["seq"])

    async def _get(self, request: dict[str, str]) -> dict[str, Any] | None:
        """One message of the log (from the stream leader), ``None`` when there is none.

        Raises:
            RuntimeError: the broker refused the request.
        """
        reply = await self._bus.nc.request(
            f"$JS.API.STREAM.MSG.GET.{self._bus.topology.events_stream}",
            json.dumps(request).encode(),
            timeout=5.0,
        )
        body = json.loads(reply.data)
        error = body.get("error")
        if error is not None:
            if error.get("code") == 404:
                return None
            raise RuntimeError(f"cannot read the event log ({request}): {error}")
        message: dict[str, Any] = body["message"]
        return message

    async def _consumer_floor(self) -> tuple[int, str | None]:
        """The first sequence a durable consumer of the log has not acknowledged yet.

        Consumers that do not acknowledge (readers such as the list index's) and consumers
        with nothing pending or unacknowledged do not count.
        """
        js = self._bus.js
        stream = self._bus.topology.events_stream
        floor: int = 2**63
        holder: str | None = None
        offset = 0
        while True:
            batch = await js.consumers_info(stream, offset=offset or None)
            for ci in batch:
                if ci.config.ack_policy == AckPolicy.NONE:
                    continue
                if not ci.num_pending and not ci.num_ack_pending:
                    continue
                acked = ci.ack_floor.stream_seq if ci.ack_floor is not None else 0
                if acked + 1 < floor:
                    floor, holder = acked + 1, ci.name
            if len(batch) < _CONSUMER_PAGE:
                return floor, holder
            offset += len(batch)

    async def _cursor(self, project: str, first: int) -> int:
        """The first ordinal of ``project`` whose line may still have events in the log."""
        known = self._cursors.get(project)
        if known is not None:
            return known
        lo, hi = 0, self._index.count(project)
        while lo < hi:  # the first line with seq >= first (lines are in log order)
            mid = (lo + hi) // 2
            entry = await self._index.entry(project, mid)
            if entry is not None and entry.seq < first:
                lo = mid + 1
            else:
                hi = mid
        self._cursors[project] = lo
        return lo

    async def _must_stay(
        self, entry: IndexEntry, now: float, floor: int, *, pressure: bool, operator: set[str]
    ) -> str | None:
        """Why an orchestration's events must stay, or ``None`` when they may go.

        Args:
            entry: Its list line.
            now: The time of the pass.
            floor: The first sequence some durable consumer has not acknowledged.
            pressure: Whether the size cap wants it gone whatever its age.
            operator: Orchestrations that had a compensation abandoned to an operator.
        """
        state = entry.state
        if not state.terminal:
            return f"is {state.status}"
        if entry.end_seq >= floor:
            return "ended in an event a consumer has not processed yet"
        if not pressure and self.max_age_s > 0:
            ended = state.finished_at if state.finished_at is not None else entry.created_at
            if ended > now - self.max_age_s:
                return "ended less than the maximum age ago"
        if state.status == "aborted":
            last = await self._last_orchestration_event(entry.id)
            if last is not None:
                kind, seq = last
                if kind == "orchestration.compensating":
                    return "is being compensated"
                if kind == "orchestration.compensated" and seq >= floor:
                    return "ended its compensation in an event not processed yet"
        if entry.id in operator:
            view = await self._find_view(entry.id)
            if view is not None and not view.expired:
                for task in view.tasks:
                    if task.compensation is not None and task.compensation.status == "failed":
                        return "has a compensation waiting for an operator"
        return None

    async def _last_orchestration_event(self, orchestration_id: str) -> tuple[str, int] | None:
        """Type and sequence of the orchestration's last ``orchestration.*`` event."""
        topo = self._bus.topology
        message = await self._get(
            {"last_by_subj": topo.subject("orchestration.*", orchestration_id)}
        )
        if message is None:
            return None
        return topo.strip(message["subject"]).rsplit(".", 1)[0], int(message["seq"])


def _summary(project: str, entry: IndexEntry, now: float) -> ExpiredSummary:
    state = entry.state
    return ExpiredSummary(
        format=FORMAT,
        id=entry.id,
        project=project,
        action=entry.action,
        action_truncated=entry.action_truncated,
        status=state.status,
        task_count=state.task_count,
        created_at=entry.created_at,
        finished_at=state.finished_at,
        error=state.error,
        expired_at=now,
    )

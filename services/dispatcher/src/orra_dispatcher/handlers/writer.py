"""The dispatcher's write-behind: apply in memory, publish at once, store in order.

Task results and fresh plans are applied to the state held in memory (a
:class:`~orra_dispatcher.handlers.core.Line` per orchestration) and their outputs published
at once; a writer task per orchestration then awaits the outputs' acks, writes the newest
state in one compare-and-set, acks every input that write covered and arms their timers. A
write that fails gives its inputs back (conflict) or has them redelivered.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import structlog

from orra_dispatcher import spans
from orra_dispatcher.domain import ORCHESTRATION_TIMER, Orchestration, apply, timers_of
from orra_dispatcher.errors import StateConflict
from orra_dispatcher.handlers.core import (
    MAX_BATCH,
    RESULTS,
    Again,
    Core,
    Item,
    Line,
    Received,
    Step,
    fresh_first_delivery,
    is_result,
)
from orra_events import Event, PlanCreated
from orra_events.publishing import raise_first_error

if TYPE_CHECKING:
    from collections import deque

__all__ = ["Writer"]

log = structlog.get_logger("orra.dispatcher")


class Writer(Core):
    """Applies inputs in memory and stores them behind the caller's back, in order."""

    def _try_fast(
        self, orchestration_id: str, item: Received, box: deque[Item] | None = None
    ) -> bool:
        """Apply a result (with the results queued behind it) or a new plan in memory.

        Publishes the outputs at once and leaves their storage to the orchestration's
        writer (:meth:`_stage`). Returns False, having published nothing, when the input
        needs the stored state or applying it failed (the slow path then takes it).
        """
        try:
            event, msg = item
            line = self._lines.get(orchestration_id)
            if isinstance(event, RESULTS):
                if line is not None:
                    base: Orchestration | None = line.state
                    revision = line.revision
                else:
                    cached = self._cache.get(orchestration_id)
                    if cached is None:
                        return False
                    base, revision = cached
                inputs = [item]
                while box and len(inputs) < MAX_BATCH and is_result(box[0]):
                    inputs.append(box.popleft())  # type: ignore[arg-type]
            elif isinstance(event, PlanCreated):
                if (
                    line is not None
                    or orchestration_id in self._cache
                    or orchestration_id in self._ended
                    or not fresh_first_delivery(msg, self._plan_age_s)
                ):
                    return False
                base, revision, inputs = None, 0, [item]
            else:
                return False
            # Called, not inlined, only to keep each method readable: the call replaces
            # the one this method made before it took the choice of the base state.
            return self._stage(orchestration_id, line, base, revision, inputs, box)
        except Exception:
            log.exception("applying in memory failed", orchestration_id=orchestration_id)
            return False

    def _stage(  # noqa: PLR0917 - once per message: positional arguments, like the rest
        self,
        orchestration_id: str,
        line: Line | None,
        base: Orchestration | None,
        revision: int,
        inputs: list[Received],
        box: deque[Item] | None,
    ) -> bool:
        """Apply ``inputs`` to ``base``, publish their outputs, queue their storage.

        Returns False, having published nothing and given the batched inputs back to
        ``box``, when an input is ahead of ``base`` (it needs the stored state).
        """
        try:
            state, emit, touched = self._apply_all(base, inputs)
            changed = state is not None and state is not base
            if state is None or (not changed and line is None):
                published = None
            else:
                published = self._send(emit, state) if emit else None
        except BaseException:
            if box is not None:
                box.extendleft(reversed(inputs[1:]))
            raise
        if state is None:
            # Ahead of this state (or no state): it needs the stored one. Nothing was sent.
            if box is not None:
                box.extendleft(reversed(inputs[1:]))
            return False
        if not changed and line is None:
            # A no-op against the stored state: nothing to store.
            for _, msg in inputs:
                self.publisher.ack(msg)
            return True
        step = Step(inputs, published, state if changed else None, tuple(touched))
        if line is None:
            line = self._lines[orchestration_id] = Line(revision, state)
        line.state = state
        line.steps.append(step)
        if line.writer is None:
            line.writer = self._spawn(self._write(orchestration_id, line), orchestration_id)
        log.debug("applied in memory", orchestration_id=orchestration_id, inputs=len(inputs))
        return True

    def _apply_all(
        self, base: Orchestration | None, inputs: list[Received]
    ) -> tuple[Orchestration | None, list[Event], dict[str, None]]:
        """Apply inputs in order to ``base``: the state, the outputs, the tasks touched.

        The state is ``None`` when an input is ahead of ``base`` (stale) or none results.
        """
        now = time.time()
        state = base
        emit: list[Event] = []
        touched: dict[str, None] = {}
        for event, msg in inputs:
            outcome = apply(state, event, self.policy, now, self._services)  # type: ignore[arg-type]
            if outcome.stale:
                return None, [], {}
            if outcome.changed and outcome.state is not None:
                state = spans.adopt(outcome.state, event, msg)
                emit.extend(outcome.emit)
                touched.update(dict.fromkeys(outcome.touched))
        return state, emit, touched

    async def _write(self, orchestration_id: str, line: Line) -> None:
        """Store an orchestration's applied steps in order; ack each input once stored."""
        try:
            while line.steps:
                steps = list(line.steps)
                for step in steps:
                    if step.published is not None:
                        # The publisher fails the wait with TimeoutError after its timeout.
                        raise_first_error(await step.published)
                final = next((s.state for s in reversed(steps) if s.state is not None), None)
                if final is not None:
                    if final.terminal:
                        await self.store.end(orchestration_id, line.revision)
                    else:
                        line.revision = await self.store.save(final, line.revision)
                for _ in steps:
                    line.steps.popleft()
                self._stored(orchestration_id, final, line.revision, steps)
                for step in steps:
                    for _, msg in step.inputs:
                        self.publisher.ack(msg)
        except Exception as exc:  # noqa: BLE001 - every failure gives the inputs back
            await self._abandon(orchestration_id, line, exc)
        finally:
            line.writer = None
            if self._lines.get(orchestration_id) is line and not line.steps:
                del self._lines[orchestration_id]

    def _stored(
        self,
        orchestration_id: str,
        final: Orchestration | None,
        revision: int,
        steps: list[Step],
    ) -> None:
        """Bookkeeping once the snapshot of ``steps`` is stored: cache, timers, index."""
        if final is None:
            return
        if final.terminal:
            self._forget(orchestration_id)
            return
        self._cache[orchestration_id] = (final, revision)
        touched: dict[str, None] = {}
        for step in steps:
            touched.update(dict.fromkeys(step.touched))
        if final.paused_since is not None or ORCHESTRATION_TIMER in touched:
            self._index_paused(final)
        for task_id in touched:
            entry = self._timers.pop((orchestration_id, task_id), None)
            if entry is not None:
                entry[0].cancel()
        # The timers the stored state needs for what changed (a task dispatched by one
        # step and completed by a later one needs none).
        for timer in timers_of(final):
            if timer.task_id in touched:
                self._arm(timer)

    async def _abandon(self, orchestration_id: str, line: Line, exc: Exception) -> None:
        """A write failed: drop the state in memory; its inputs go back or are redelivered."""
        if self._lines.get(orchestration_id) is line:
            del self._lines[orchestration_id]
        self._cache.pop(orchestration_id, None)
        inputs = [i for step in line.steps for i in step.inputs]
        line.steps.clear()
        if isinstance(exc, StateConflict):
            log.debug("snapshot conflict, applying again", orchestration_id=orchestration_id)
            self._requeue(orchestration_id, [Again(e, m) for e, m in inputs])
            return
        log.warning(
            "storing the outputs or snapshot failed; inputs will be redelivered",
            orchestration_id=orchestration_id,
            error=f"{type(exc).__name__}: {exc}",
        )
        for _, msg in inputs:
            await self._retry_or_park(msg, f"{type(exc).__name__}: {exc}", 1.0)

    async def _settle(self, line: Line) -> None:
        """Wait until an orchestration's writer has stored (or given back) its steps."""
        writer = line.writer
        if writer is not None:
            await asyncio.wait({writer})

"""The dispatcher's engine: apply inputs against the stored state, publish, store, ack.

Inputs that need the stored state (timers, aborts, compensation results, redelivered or old
plans, and results the write-behind could not take) are applied here one orchestration at a
time: load the snapshot (or the cached copy), :func:`~orra_dispatcher.domain.apply`, publish
every output and await their acks, compare-and-set the snapshot, then ack. A conflict
reloads and applies again; an input ahead of every stored state is retried later.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import msgspec
import structlog

from orra_dispatcher import spans
from orra_dispatcher.domain import ORCHESTRATION_TIMER, Outcome, Timer, apply, timers_of
from orra_dispatcher.errors import DispatcherError, StateConflict
from orra_dispatcher.handlers.core import (
    ENDED_IN_LOG,
    ENDED_MEMORY,
    HANDLED,
    MAX_ROUNDS,
    RESULTS,
    TERMINAL,
    WORK,
    Core,
    NotYet,
    Received,
    fresh_first_delivery,
)
from orra_dispatcher.store import Found, Snapshot
from orra_events import Event, OrchestrationAborted, PlanCreated, PlanFailed, encode, tracing
from orra_events.metrics import observe_event
from orra_events.publishing import raise_first_error

if TYPE_CHECKING:
    import asyncio

    from nats.aio.msg import Msg

    from orra_dispatcher.domain import Orchestration
    from orra_events.publishing import Result

__all__ = ["Engine"]

log = structlog.get_logger("orra.dispatcher")


class Engine(Core):
    """Applies inputs to the stored state; reads and writes snapshots; publishes outputs."""

    async def _handle_message(self, event: Event, msg: Msg, *, again: bool = False) -> None:
        try:
            await self._process(event, msg, again=again)
        except NotYet as exc:
            await self._retry_or_park(msg, str(exc), _not_yet_delay(msg))
            return
        except Exception as exc:
            log.exception("dispatcher input failed", subject=msg.subject, event_type=event.TYPE)
            await self._retry_or_park(msg, f"{type(exc).__name__}: {exc}", 1.0)
            return
        self._ack(msg)

    async def _handle_results(self, orchestration_id: str, batch: list[Received]) -> None:
        try:
            verdicts = await self._process_results(orchestration_id, [e for e, _ in batch])
        except Exception as exc:
            log.exception("dispatcher input failed", orchestration_id=orchestration_id)
            for _, msg in batch:
                await self._retry_or_park(msg, f"{type(exc).__name__}: {exc}", 1.0)
            return
        for (_, msg), verdict in zip(batch, verdicts, strict=True):
            if verdict is not None:
                await self._retry_or_park(msg, str(verdict), _not_yet_delay(msg))
                continue
            self._ack(msg)

    async def _process_results(
        self, orchestration_id: str, events: list[Event]
    ) -> list[NotYet | None]:
        """Apply task results in order; return, per event, ``None`` (done) or why not yet."""
        fresh = False
        for _ in range(MAX_ROUNDS):
            fresh = fresh or orchestration_id not in self._cache
            snap = await self._snapshot(orchestration_id, fresh=fresh)
            if snap.found is Found.ENDED:
                return [None] * len(events)
            if snap.found is Found.UNKNOWN or snap.state is None:
                if await self._ended_in_log(orchestration_id):
                    return [None] * len(events)
                return [NotYet(f"unknown orchestration {orchestration_id}")] * len(events)
            state = snap.state
            emit: list[Event] = []
            touched: dict[str, None] = {}
            verdicts: list[NotYet | None] = []
            for event in events:
                assert isinstance(event, RESULTS)
                outcome = apply(state, event, self.policy, time.time(), self._services)
                if outcome.stale:
                    if not fresh:
                        break
                    verdicts.append(NotYet(f"{event.TYPE} is ahead of the state: {outcome.note}"))
                    continue
                verdicts.append(None)
                if outcome.changed and outcome.state is not None:
                    state = outcome.state
                    emit.extend(outcome.emit)
                    touched.update(dict.fromkeys(outcome.touched))
            if len(verdicts) < len(events):
                fresh = True
                continue
            if state is snap.state:
                return verdicts
            timers = [t for t in timers_of(state) if t.task_id in touched]
            combined = Outcome(state, emit, timers, tuple(touched))
            await self._publish(combined)
            try:
                await self._commit(orchestration_id, snap, combined)
            except StateConflict:
                log.debug("snapshot conflict, reloading", orchestration_id=orchestration_id)
                self._cache.pop(orchestration_id, None)
                fresh = True
                continue
            log.debug("applied results", orchestration_id=orchestration_id, count=len(events))
            return verdicts
        raise StateConflict(f"snapshot of {orchestration_id} kept changing")

    async def _process(self, event: Event, msg: Msg, *, again: bool = False) -> None:
        assert isinstance(event, HANDLED)
        orchestration_id = event.orchestration_id
        starts = isinstance(event, (PlanCreated, PlanFailed))
        # Only a plan's first, fresh delivery may skip the read: a redelivered or old one
        # may belong to an orchestration that ended (its marker possibly expired).
        first = starts and not again and fresh_first_delivery(msg, self._plan_age_s)
        fresh = False
        for round_ in range(MAX_ROUNDS):
            assume_new = first and round_ == 0
            # A state not from the cache is as fresh as it gets: reloading cannot help.
            fresh = fresh or (orchestration_id not in self._cache and not assume_new)
            snap = await self._snapshot(orchestration_id, fresh=fresh, assume_new=assume_new)
            if snap.found is Found.ENDED:
                log.debug("input for an ended orchestration", orchestration_id=orchestration_id)
                return
            if snap.found is Found.UNKNOWN and not assume_new:
                if await self._ended_in_log(
                    orchestration_id, aborted_counts=not isinstance(event, OrchestrationAborted)
                ):
                    log.debug("input for an ended orchestration", orchestration_id=orchestration_id)
                    return
                if isinstance(event, OrchestrationAborted):
                    # Aborted before its plan: the marker stops a later plan.created.
                    await self.store.block(orchestration_id)
                    self._forget(orchestration_id)
                    return
                if not starts:
                    raise NotYet(f"unknown orchestration {orchestration_id}")
            outcome = apply(snap.state, event, self.policy, time.time(), self._services)
            outcome = spans.adopt_outcome(outcome, event, msg)
            if outcome.stale:
                if not fresh:
                    fresh = True
                    continue
                raise NotYet(f"{event.TYPE} is ahead of the stored state: {outcome.note}")
            if not outcome.changed:
                log.debug("no-op", orchestration_id=orchestration_id, note=outcome.note)
                return
            await self._publish(outcome, msg)
            try:
                await self._commit(orchestration_id, snap, outcome)
            except StateConflict:
                log.debug("snapshot conflict, reloading", orchestration_id=orchestration_id)
                self._cache.pop(orchestration_id, None)
                fresh = True
                continue
            log.debug(
                "applied",
                orchestration_id=orchestration_id,
                event_type=event.TYPE,
                emitted=len(outcome.emit),
            )
            return
        raise StateConflict(f"snapshot of {orchestration_id} kept changing")

    async def _handle_timer(self, timer: Timer) -> None:
        orchestration_id = timer.orchestration_id
        try:
            for _ in range(MAX_ROUNDS):
                # Always the stored state: this process's copy may be stale.
                snap = await self._snapshot(orchestration_id, fresh=True)
                if snap.found is not Found.RUNNING:
                    return
                assert snap.state is not None
                outcome = apply(snap.state, timer, self.policy, time.time(), self._services)
                if not outcome.changed:
                    # Another replica moved on; arm what the stored state needs.
                    for t in timers_of(snap.state):
                        if t.task_id == timer.task_id:
                            self._arm(t)
                    return
                await self._publish(outcome)
                try:
                    await self._commit(orchestration_id, snap, outcome)
                except StateConflict:
                    continue
                log.debug("timer applied", orchestration_id=orchestration_id, kind=timer.kind)
                return
            raise StateConflict(f"snapshot of {orchestration_id} kept changing")  # noqa: TRY301
        except Exception:
            if self._stopping:
                return
            log.warning("timer failed, retrying in 1s", timer=str(timer), exc_info=True)
            self._arm(msgspec.structs.replace(timer, due_at=time.time() + 1.0))

    async def _snapshot(
        self, orchestration_id: str, *, fresh: bool, assume_new: bool = False
    ) -> Snapshot:
        cached = self._cache.get(orchestration_id)
        if cached is not None and not fresh:
            return Snapshot(Found.RUNNING, cached[0], cached[1])
        if cached is None and orchestration_id in self._ended:
            return Snapshot(Found.ENDED)
        if cached is None and assume_new:
            # A plan starts a new orchestration: skip the read; the create-only write
            # (revision 0) refuses an existing key or a marker, and then we reload.
            return Snapshot(Found.UNKNOWN)
        snap = await self.store.load(orchestration_id)
        if snap.state is not None:
            self._cache[orchestration_id] = (snap.state, snap.revision)
        else:
            self._cache.pop(orchestration_id, None)
        return snap

    async def _ended_in_log(self, orchestration_id: str, *, aborted_counts: bool = True) -> bool:
        """Whether the log says that an orchestration without a snapshot has ended.

        Its last ``orchestration.*`` event tells: done, failed, aborted or compensated
        (the compensation summary is followed by, or follows, the terminal event).

        Args:
            orchestration_id: The orchestration.
            aborted_counts: Whether a last ``orchestration.aborted`` means ended (not when
                the input being handled is that abort: before its plan it is the only one).
        """
        if orchestration_id in self._ended:
            return True
        topo = self._topology
        request = msgspec.json.encode(
            {"last_by_subj": topo.subject("orchestration.*", orchestration_id)}
        )
        reply = await self.publisher.request(f"$JS.API.DIRECT.GET.{topo.events_stream}", request)
        headers = reply.headers or {}
        subject = headers.get("Nats-Subject")
        if subject is None:
            status = headers.get("Status", "")
            if status not in ("", "404"):
                raise DispatcherError(
                    f"cannot read the log of {orchestration_id}: {status} "
                    f"{headers.get('Description', '')}"
                )
            return False
        event_type = topo.strip(subject).rsplit(".", 1)[0]
        ended = event_type in ENDED_IN_LOG and (
            aborted_counts or event_type != "orchestration.aborted"
        )
        if ended:
            self._remember_ended(orchestration_id)
        return ended

    def _send(
        self, emit: list[Event], state: Orchestration | None = None
    ) -> asyncio.Future[list[Result]]:
        """Publish events (and work messages) in one batch; the future holds their acks.

        With tracing on, each carries the trace headers of ``state`` (:mod:`.spans`).
        """
        traced = state is not None and spans.traced(state)
        headers = spans.headers_for(emit, state) if state is not None and traced else None
        return self._send_with(emit, headers)

    def _send_with(
        self, emit: list[Event], headers: list[dict[str, str]] | None
    ) -> asyncio.Future[list[Result]]:
        """:meth:`_send` with each message's headers given (``None``: no headers)."""
        topo = self._topology
        batch = self.publisher.batch()
        for i, event in enumerate(emit):
            extra = None if headers is None else headers[i]
            data = encode(event)
            batch.add(topo.subject_for(event), data, extra, msg_id=event.event_id)
            if isinstance(event, WORK):
                batch.add(topo.work(event.service), data, extra, msg_id=event.event_id)
            elif isinstance(event, TERMINAL):
                observe_event(event)
        return batch.send()

    async def _publish(self, outcome: Outcome, msg: Msg | None = None) -> None:
        """Publish every output at once, then wait for all their acks.

        Outputs without a state (a failed plan's end) continue the trace of ``msg``.
        """
        if not outcome.emit:
            return
        if outcome.state is None and msg is not None:
            trace = tracing.passed_on(msg.headers)
            if trace is not None:
                sent = self._send_with(outcome.emit, [trace] * len(outcome.emit))
                raise_first_error(await sent)
                return
        raise_first_error(await self._send(outcome.emit, outcome.state))

    async def _commit(self, orchestration_id: str, snap: Snapshot, outcome: Outcome) -> None:
        state = outcome.state
        if state is None:
            return
        if state.terminal:
            await self.store.end(orchestration_id, snap.revision)
            self._forget(orchestration_id)
            return
        revision = await self.store.save(state, snap.revision)
        self._cache[orchestration_id] = (state, revision)
        if state.paused_since is not None or ORCHESTRATION_TIMER in outcome.touched:
            self._index_paused(state)
        for task_id in outcome.touched:
            entry = self._timers.pop((orchestration_id, task_id), None)
            if entry is not None:
                entry[0].cancel()
        for timer in outcome.timers:
            self._arm(timer)

    def _forget(self, orchestration_id: str) -> None:
        """Drop an ended orchestration's cache and timers; remember that it ended."""
        cached = self._cache.pop(orchestration_id, None)
        if cached is not None:
            state = cached[0]
            for task_id in (*state.tasks, ORCHESTRATION_TIMER):
                entry = self._timers.pop((orchestration_id, task_id), None)
                if entry is not None:
                    entry[0].cancel()
            if state.paused_since is not None:
                for ids in self._paused.values():
                    ids.discard(orchestration_id)
        self._remember_ended(orchestration_id)

    def _remember_ended(self, orchestration_id: str) -> None:
        self._ended[orchestration_id] = None
        if len(self._ended) > ENDED_MEMORY:
            self._ended.popitem(last=False)


def _not_yet_delay(msg: Msg) -> float:
    """Redelivery delay of an input that came too early: 0.05 s doubling up to 5 s."""
    return float(min(5.0, 0.05 * 2 ** (msg.metadata.num_delivered - 1)))

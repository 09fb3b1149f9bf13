"""The dispatcher's I/O: consume events, run transitions, publish, store, acknowledge.

Flow of one input (an event, or a timer that fired)::

    decode ─▶ mailbox of its orchestration ─▶ state in memory (else load from KV)
           ─▶ domain.apply ─▶ publish every output at once (one batch, not awaited)
           ─▶ [write-behind] await the outputs' acks ─▶ CAS-write the snapshot ─▶ ack

Durability. The state of each in-flight orchestration is a snapshot in the KV bucket
``dispatcher`` (see :mod:`orra_dispatcher.store`), written with compare-and-set *after*
the outputs are stored in JetStream and *before* the input is acknowledged, and purged
when the orchestration ends. Whatever the crash point, an input that was not acknowledged
is redelivered: if the snapshot was not written, the same transition runs again on the
same state and republishes the same deterministic event ids (``d:<orch>:<task>:<n>``,
``rt:``, ``to:``, ``end:<orch>``), which JetStream deduplicates; if it was written, the
input is a no-op against the stored state. Deadlines are absolute times in the snapshot,
so a restarted process loads every in-flight snapshot and re-arms its timeouts and retries.

Write-behind. The next input of an orchestration does not wait for the previous one's
snapshot write: task results and new plans are applied to the state held in memory
(:class:`_Line`) and their outputs published at once, while a writer task per
orchestration stores, in order, what was applied: it awaits the outputs' acks, writes the
newest state in one compare-and-set (inputs that arrived meanwhile are covered by one
write), then acknowledges every input that write covered and arms their timers. The rule
above holds for each input: it is acked only after its outputs and a snapshot that
includes it are stored. If the write fails, the inputs it covered (and those applied on
top of them) are not acked: after a conflict they are applied again to a reloaded state,
after another error they are redelivered. Other inputs (timers, aborts, compensation
results, redelivered or old plans) first wait for the writer, then run one at a time
against the stored state.

Ended orchestrations. The snapshot of an ended orchestration is replaced by a marker that
expires (``ORRA_DISPATCHER_TOMBSTONE_TTL_S``), so the bucket holds what is in flight and
start-up does not grow with history. An input for an orchestration without a snapshot is
then checked against the log: if the orchestration's last ``orchestration.*`` event is
terminal (done, failed, aborted, compensated) the input is a no-op. A ``plan.created``
skips the snapshot read only on its first delivery and while it is fresh: younger than half
the markers' life (so that an ended orchestration's marker still refuses it, with room for
clock skew), or :data:`REPLAY_AGE_S` with permanent markers. A redelivered or older plan
(a replayed consumer) loads the snapshot and, without one, checks the log the same way, so
an ended orchestration is never started again.

Replicas. Every replica binds the same durable consumer ``dispatcher`` (a deliver group),
so each event goes to one replica. Replicas keep a cache of the states they touched; a
cached state may be stale when another replica handled the orchestration's previous event,
and then the snapshot write fails its compare-and-set: the replica drops its cache, reloads
and applies the inputs again (the outputs of the stale attempt carry the same ids as the
right ones when they are the same events, and are at worst superfluous otherwise). A
result that is ahead of the cached state (an attempt it has not seen dispatched) also
triggers a reload. Timer firings always reload the snapshot first, so a stale replica does
not time out a task that already completed. A periodic sweep re-arms the timers of every
stored snapshot, so a dead replica's timeouts and retries are taken over.

Concurrency. The intake is a push consumer
(:class:`~orra_events.consumers.PushConsumer`, ``manual_ack``: an input is acked once
stored, see below) whose callback runs one message at a time, so it only decodes and hands
the input to its orchestration's mailbox; each mailbox is drained by
its own task, at most ``concurrency`` at once. One orchestration's inputs are therefore
applied in order, while different orchestrations proceed concurrently and their publishes
and KV writes are pipelined on the connection (through its pipelined publisher,
``Bus.publisher``). Task results that queued up for one orchestration are applied together
(one batch of publishes).

A plan's first transition skips the read: it writes with revision 0 (create only), which
fails on an existing snapshot or marker; the dispatcher then reloads and finds the
duplicate (a no-op) or the abort. An abort that arrives before the plan leaves a permanent
marker itself. Residual risk, by design of "publish, then store": a replica holding a
stale copy may publish a ``task.dispatched`` that a concurrent abort or failure on another
replica makes moot; its snapshot write then fails and nothing further follows from it.

Services. A :class:`~orra_dispatcher.registry.ServiceRegistry` follows the services stream
and keeps the sets of revertible and unhealthy services that every transition reads (a set
lookup per dispatch, no await). The dispatcher indexes the orchestrations that hold paused
tasks by service; when a service becomes healthy again each of them gets a ``health``
input (a :class:`~orra_dispatcher.domain.Timer` due now) that dispatches what waited. The
index is rebuilt by every sweep, so replicas and restarts resume what others paused.

Compensation messages. A ``task.compensating`` event is published to the event log and,
like ``task.dispatched``, to ``work.<service>``, where the SDK runs the revert handler and
answers ``task.compensated`` / ``task.compensation_failed``.

Bad input. Undecodable bytes (the consumer parks them), an event type this consumer does
not handle, or a subject that does not match the event are parked at once on the
dead-letter subject. An event for
an orchestration that was never started, or ahead of every stored state, is retried with a
growing delay (it may race with another replica's write) and parked after ``max_deliver``
deliveries. Per-message logs are at DEBUG.

Logs. Every line written while an input is handled carries its ``orchestration_id``, and
its ``task_id`` when it is about one task (bound with :mod:`structlog.contextvars`, so
lines of the store, the registry or :mod:`orra_events` carry them too): the intake binds
them for the message, each orchestration's drain and writer tasks run in a context of
their own bound to the orchestration, and the drain binds the task of each input or timer
(not of a batch of several tasks' results).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, Final

import msgspec
import structlog

from orra_dispatcher.domain import (
    ORCHESTRATION_TIMER,
    Orchestration,
    Outcome,
    Timer,
    apply,
    timers_of,
)
from orra_dispatcher.errors import DispatcherError, StateConflict
from orra_dispatcher.registry import ServiceRegistry
from orra_dispatcher.store import Found, Snapshot, SnapshotStore
from orra_events import (
    Event,
    OrchestrationAborted,
    OrchestrationDone,
    OrchestrationFailed,
    PlanCreated,
    PlanFailed,
    TaskAborted,
    TaskCompensated,
    TaskCompensating,
    TaskCompensationFailed,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    encode,
)
from orra_events.consumers import Durable, PushConsumer, delivery
from orra_events.metrics import observe_event
from orra_events.publishing import raise_first_error
from orra_events.topology import NAME_PATTERN

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nats.aio.msg import Msg

    from orra_dispatcher.settings import DispatcherSettings
    from orra_events import Bus
    from orra_events._fastpub import FastPublisher
    from orra_events.publishing import Result

__all__ = ["CONSUMED", "DURABLE", "REPLAY_AGE_S", "Dispatcher", "NotYet"]

DURABLE: Final = "dispatcher"
"""Name of the durable consumer (and deliver group) that dispatcher replicas share."""

CONSUMED: Final = (
    "plan.created",
    "plan.failed",
    "task.completed",
    "task.failed",
    "task.aborted",
    "task.compensated",
    "task.compensation_failed",
    "orchestration.aborted",
)
"""Event types the dispatcher consumes."""

REPLAY_AGE_S: Final = 60.0
"""With permanent markers, a ``plan.created`` older than this (seconds in the log) may be a
replay: it is checked against the stored snapshot and the log before it starts anything
(with expiring markers the limit is half their life)."""

_HANDLED = (
    PlanCreated,
    PlanFailed,
    TaskCompleted,
    TaskFailed,
    TaskAborted,
    TaskCompensated,
    TaskCompensationFailed,
    OrchestrationAborted,
)
_WORK = (TaskDispatched, TaskCompensating)
_RESULTS = (TaskCompleted, TaskFailed)
_TERMINAL = (OrchestrationDone, OrchestrationFailed, OrchestrationAborted)
_ENDED_IN_LOG = frozenset(
    {
        "orchestration.done",
        "orchestration.failed",
        "orchestration.aborted",
        "orchestration.compensated",
    }
)
"""The last ``orchestration.*`` event types of an orchestration that has ended."""
_MAX_BATCH: Final = 64
_MAX_ROUNDS: Final = 5
_ENDED_MEMORY: Final = 50_000

log = structlog.get_logger("orra.dispatcher")


class _Again:
    """An input to apply again against the stored state (its write-behind write conflicted)."""

    __slots__ = ("event", "msg")

    def __init__(self, event: Event, msg: Msg) -> None:
        self.event = event
        self.msg = msg


_Input = tuple[Event, "Msg"]
_Item = _Input | Timer | _Again


class _Step:
    """Inputs applied in memory at once, and what storing them involves."""

    __slots__ = ("inputs", "published", "state", "touched")

    def __init__(
        self,
        inputs: list[_Input],
        published: asyncio.Future[list[Result]] | None,
        state: Orchestration | None,
        touched: tuple[str, ...],
    ) -> None:
        self.inputs = inputs
        self.published = published
        self.state = state
        self.touched = touched


class _Line:
    """An orchestration's inputs applied in memory whose snapshot is not stored yet.

    Attributes:
        revision: Revision of the stored snapshot the steps build on (0: none yet).
        state: The state after the last step (what the next input applies to).
        steps: Applied steps, oldest first, waiting for the writer.
        writer: The task storing them.
    """

    __slots__ = ("revision", "state", "steps", "writer")

    def __init__(self, revision: int, state: Orchestration) -> None:
        self.revision = revision
        self.state = state
        self.steps: deque[_Step] = deque()
        self.writer: asyncio.Task[None] | None = None


class NotYet(DispatcherError):
    """The input cannot be applied yet: unknown orchestration, or ahead of the state."""


class Dispatcher:
    """Runs plans: one consumer, per-orchestration mailboxes, timers and a snapshot cache.

    Args:
        bus: The connected bus whose topology names the subjects, streams and bucket.
        store: Where snapshots live.
        settings: Retry, timeout, mode and consumer settings.
        publisher: Publishes outputs and acknowledges inputs; the store's publisher (or a
            new one on the bus's connection) when not given.
    """

    def __init__(
        self,
        bus: Bus,
        store: SnapshotStore,
        settings: DispatcherSettings,
        *,
        publisher: FastPublisher | None = None,
    ) -> None:
        self.bus = bus
        self.store = store
        self.settings = settings
        self.policy = settings.policy
        self.publisher = publisher or store.publisher
        self._plan_age_s = REPLAY_AGE_S
        self._topology = bus.topology
        self._cache: dict[str, tuple[Orchestration, int]] = {}
        self._lines: dict[str, _Line] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._boxes: dict[str, deque[_Item]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._timers: dict[tuple[str, str], tuple[asyncio.TimerHandle, Timer]] = {}
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._consumer: PushConsumer[Event] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False
        self.registry = ServiceRegistry(
            bus,
            factor=settings.health_factor,
            check_s=settings.health_check_s,
            on_healthy=self._on_service_healthy,
        )
        self._services = self.registry.services
        self._paused: dict[str, set[str]] = {}

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Load the registry and in-flight snapshots, arm timers, then start consuming."""
        await self.publisher.start()
        if await self.store.enable_marker_ttl(self.bus.js):
            # A plan that skips the read must still find an ended orchestration's marker.
            self._plan_age_s = self.store.tombstone_ttl_s / 2
        await self.registry.start()
        loaded = await self.sweep()
        log.info("dispatcher state loaded", in_flight=loaded)
        topo = self._topology
        self._consumer = PushConsumer(
            self.bus,
            Durable(
                stream=topo.events_stream,
                name=DURABLE,
                filter_subjects=tuple(topo.all_of(t) for t in CONSUMED),
                ack_wait_s=self.settings.ack_wait_s,
                max_ack_pending=self.settings.max_ack_pending,
            ),
            self._on_event,
            manual_ack=True,  # acked once its outputs and snapshot are stored
            max_deliver=self.settings.max_deliver,
        )
        await self._consumer.start()
        if self.settings.sweep_interval_s > 0:
            self._sweeper = asyncio.create_task(self._sweep_loop())

    async def stop(self) -> None:
        """Stop consuming, finish the inputs already received, disarm the timers."""
        self._stopping = True
        await self.registry.stop()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for handle, _ in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._workers:
            await self.bus.wait_while_reachable(
                asyncio.wait(set(self._workers)), 10.0, what="orchestrations being advanced"
            )

    async def sweep(self) -> int:
        """Scan stored snapshots: refresh the cache, arm missing timers; return the count."""
        count = 0
        live: set[str] = set()
        paused: dict[str, set[str]] = {}
        async for state, revision in self.store.running():
            count += 1
            live.add(state.id)
            cached = self._cache.get(state.id)
            busy = state.id in self._boxes or state.id in self._lines
            if not busy and (cached is None or cached[1] < revision):
                self._cache[state.id] = (state, revision)
            for timer in timers_of(state):
                if (state.id, timer.task_id) not in self._timers:
                    self._arm(timer)
            if state.paused_since is not None and state.status == "running":
                waiting = {state.service_of(t) for t in state.paused_tasks}
                for service in waiting:
                    paused.setdefault(service, set()).add(state.id)
                if waiting - self.registry.unhealthy:
                    # A service it waits for is back (this process may not have seen it go).
                    self._poke(state.id)
        self._paused = paused
        for orchestration_id in list(self._cache):
            if (
                orchestration_id not in live
                and orchestration_id not in self._boxes
                and orchestration_id not in self._lines
            ):
                del self._cache[orchestration_id]
        return count

    def _on_service_healthy(self, service: str) -> None:
        for orchestration_id in list(self._paused.get(service, ())):
            self._poke(orchestration_id)

    def _poke(self, orchestration_id: str) -> None:
        """Ask an orchestration to dispatch the tasks that waited for a service."""
        if self._stopping:
            return
        self._enqueue(
            orchestration_id,
            Timer(
                orchestration_id=orchestration_id,
                task_id=ORCHESTRATION_TIMER,
                kind="health",
                attempt=0,
                due_at=time.time(),
            ),
        )

    def _index_paused(self, state: Orchestration) -> None:
        """Keep the service → paused orchestrations index in step with a stored state."""
        waiting = (
            {state.service_of(t) for t in state.paused_tasks}
            if state.paused_since is not None and state.status == "running"
            else set()
        )
        for service, ids in list(self._paused.items()):
            if service not in waiting and state.id in ids:
                ids.discard(state.id)
                if not ids:
                    del self._paused[service]
        for service in waiting:
            self._paused.setdefault(service, set()).add(state.id)

    async def _sweep_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.settings.sweep_interval_s)
            try:
                await self.sweep()
            except Exception:
                log.warning("sweep of stored snapshots failed", exc_info=True)

    # --- intake --------------------------------------------------------------------------

    async def _on_event(self, event: Event, msg: Msg) -> None:
        # Called in one long-lived task: the ids are reset after each message.
        tokens = structlog.contextvars.bind_contextvars(**_log_ids(event))
        try:
            await self._intake(event, msg)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)

    async def _intake(self, event: Event, msg: Msg) -> None:
        if not isinstance(event, _HANDLED):
            await self._park(msg, f"the dispatcher does not handle {event.TYPE} events")
            return
        orchestration_id = event.orchestration_id
        if not NAME_PATTERN.fullmatch(orchestration_id):
            await self._park(msg, f"invalid orchestration id {orchestration_id!r}")
            return
        if msg.subject != self._topology.subject_for(event):
            await self._park(
                msg, f"{event.TYPE} event for {orchestration_id} on subject {msg.subject}"
            )
            return
        if orchestration_id not in self._boxes and self._try_fast(orchestration_id, (event, msg)):
            return  # applied in memory, right here: no task needed
        self._enqueue(orchestration_id, (event, msg))

    def _enqueue(self, orchestration_id: str, item: _Item) -> None:
        box = self._boxes.get(orchestration_id)
        if box is not None:
            box.append(item)
            return
        box = self._boxes[orchestration_id] = deque((item,))
        self._spawn(self._drain(orchestration_id, box), orchestration_id)

    def _requeue(self, orchestration_id: str, items: list[_Item]) -> None:
        """Put inputs back at the front of an orchestration's mailbox, in their order."""
        box = self._boxes.get(orchestration_id)
        if box is not None:
            box.extendleft(reversed(items))
            return
        box = self._boxes[orchestration_id] = deque(items)
        self._spawn(self._drain(orchestration_id, box), orchestration_id)

    def _spawn(self, work: Any, orchestration_id: str) -> asyncio.Task[None]:
        """Run ``work`` for an orchestration in a task whose log context names it only.

        Not the caller's context: it may be bound to another input's task, or be a timer's.
        """
        context = contextvars.copy_context()
        context.run(_bind_orchestration, orchestration_id)
        task: asyncio.Task[None] = asyncio.create_task(work, context=context)
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)
        return task

    async def _drain(self, orchestration_id: str, box: deque[_Item]) -> None:
        try:
            async with self._slots:
                while box:
                    item = box.popleft()
                    if isinstance(item, tuple) and self._try_fast(orchestration_id, item, box):
                        continue
                    line = self._lines.get(orchestration_id)
                    if line is not None:
                        # Against the stored state: let the writer finish first (inputs
                        # whose write conflicted come back to the front of the box).
                        box.appendleft(item)
                        await self._settle(line)
                        continue
                    if isinstance(item, Timer):
                        with _task_logged(item.task_id):
                            await self._handle_timer(item)
                        continue
                    event, msg = (item.event, item.msg) if isinstance(item, _Again) else item
                    if isinstance(event, _RESULTS):
                        # Results queued for one orchestration are applied together.
                        batch: list[_Input] = [(event, msg)]
                        while box and len(batch) < _MAX_BATCH and _is_result(box[0]):
                            batch.append(box.popleft())  # type: ignore[arg-type]
                        with _task_logged(event.task_id if len(batch) == 1 else None):
                            await self._handle_results(orchestration_id, batch)
                    else:
                        with _task_logged(getattr(event, "task_id", None)):
                            await self._handle_message(event, msg, again=isinstance(item, _Again))
        finally:
            if self._boxes.get(orchestration_id) is box:
                del self._boxes[orchestration_id]

    # --- write-behind --------------------------------------------------------------------

    def _try_fast(
        self, orchestration_id: str, item: _Input, box: deque[_Item] | None = None
    ) -> bool:
        """:meth:`_fast`, or False (the slow path then takes the input) if it failed."""
        try:
            return self._fast(orchestration_id, item, box)
        except Exception:
            log.exception("applying in memory failed", orchestration_id=orchestration_id)
            return False

    def _fast(self, orchestration_id: str, item: _Input, box: deque[_Item] | None) -> bool:
        """Apply a result (with the results queued behind it) or a new plan in memory.

        Publishes the outputs at once and leaves their storage to the orchestration's
        writer. Returns False, having published nothing, when the input needs the stored
        state (the slow path takes it).
        """
        event, msg = item
        line = self._lines.get(orchestration_id)
        if isinstance(event, _RESULTS):
            if line is not None:
                base: Orchestration | None = line.state
                revision = line.revision
            else:
                cached = self._cache.get(orchestration_id)
                if cached is None:
                    return False
                base, revision = cached
            inputs = [item]
            while box and len(inputs) < _MAX_BATCH and _is_result(box[0]):
                inputs.append(box.popleft())  # type: ignore[arg-type]
        elif isinstance(event, PlanCreated):
            if (
                line is not None
                or orchestration_id in self._cache
                or orchestration_id in self._ended
                or not _fresh_first_delivery(msg, self._plan_age_s)
            ):
                return False
            base, revision, inputs = None, 0, [item]
        else:
            return False
        try:
            state, emit, touched = self._apply_all(base, inputs)
            changed = state is not None and state is not base
            if state is None or (not changed and line is None):
                published = None
            else:
                published = self._send(emit) if emit else None
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
        step = _Step(inputs, published, state if changed else None, tuple(touched))
        if line is None:
            line = self._lines[orchestration_id] = _Line(revision, state)
        line.state = state
        line.steps.append(step)
        if line.writer is None:
            line.writer = self._spawn(self._write(orchestration_id, line), orchestration_id)
        log.debug("applied in memory", orchestration_id=orchestration_id, inputs=len(inputs))
        return True

    def _apply_all(
        self, base: Orchestration | None, inputs: list[_Input]
    ) -> tuple[Orchestration | None, list[Event], dict[str, None]]:
        """Apply inputs in order to ``base``: the state, the outputs, the tasks touched.

        The state is ``None`` when an input is ahead of ``base`` (stale) or none results.
        """
        now = time.time()
        state = base
        emit: list[Event] = []
        touched: dict[str, None] = {}
        for event, _ in inputs:
            outcome = apply(state, event, self.policy, now, self._services)  # type: ignore[arg-type]
            if outcome.stale:
                return None, [], {}
            if outcome.changed and outcome.state is not None:
                state = outcome.state
                emit.extend(outcome.emit)
                touched.update(dict.fromkeys(outcome.touched))
        return state, emit, touched

    async def _write(self, orchestration_id: str, line: _Line) -> None:
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
        steps: list[_Step],
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

    async def _abandon(self, orchestration_id: str, line: _Line, exc: Exception) -> None:
        """A write failed: drop the state in memory; its inputs go back or are redelivered."""
        if self._lines.get(orchestration_id) is line:
            del self._lines[orchestration_id]
        self._cache.pop(orchestration_id, None)
        inputs = [i for step in line.steps for i in step.inputs]
        line.steps.clear()
        if isinstance(exc, StateConflict):
            log.debug("snapshot conflict, applying again", orchestration_id=orchestration_id)
            self._requeue(orchestration_id, [_Again(e, m) for e, m in inputs])
            return
        log.warning(
            "storing the outputs or snapshot failed; inputs will be redelivered",
            orchestration_id=orchestration_id,
            error=f"{type(exc).__name__}: {exc}",
        )
        for _, msg in inputs:
            await self._retry_or_park(msg, f"{type(exc).__name__}: {exc}", 1.0)

    async def _settle(self, line: _Line) -> None:
        """Wait until an orchestration's writer has stored (or given back) its steps."""
        writer = line.writer
        if writer is not None:
            await asyncio.wait({writer})

    # --- processing against the stored state ---------------------------------------------

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

    def _ack(self, msg: Msg) -> None:
        try:
            self.publisher.ack(msg)
        except Exception:
            log.warning("ack failed", subject=msg.subject, exc_info=True)

    async def _handle_results(self, orchestration_id: str, batch: list[_Input]) -> None:
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
        for _ in range(_MAX_ROUNDS):
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
                assert isinstance(event, _RESULTS)
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

    async def _park(self, msg: Msg, reason: str) -> None:
        """Park an input now (in the caller's log context, which names the input)."""
        assert self._consumer is not None
        await self._consumer.park(msg, reason)

    async def _retry_or_park(self, msg: Msg, reason: str, delay_s: float) -> None:
        """Redeliver an input after ``delay_s``, or park it after ``max_deliver`` deliveries."""
        assert self._consumer is not None
        await self._consumer.retry(msg, reason, delay_s)

    async def _process(self, event: Event, msg: Msg, *, again: bool = False) -> None:
        assert isinstance(event, _HANDLED)
        orchestration_id = event.orchestration_id
        starts = isinstance(event, (PlanCreated, PlanFailed))
        # Only a plan's first, fresh delivery may skip the read: a redelivered or old one
        # may belong to an orchestration that ended (its marker possibly expired).
        first = starts and not again and _fresh_first_delivery(msg, self._plan_age_s)
        fresh = False
        for round_ in range(_MAX_ROUNDS):
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
            if outcome.stale:
                if not fresh:
                    fresh = True
                    continue
                raise NotYet(f"{event.TYPE} is ahead of the stored state: {outcome.note}")
            if not outcome.changed:
                log.debug("no-op", orchestration_id=orchestration_id, note=outcome.note)
                return
            await self._publish(outcome)
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
            for _ in range(_MAX_ROUNDS):
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
        ended = event_type in _ENDED_IN_LOG and (
            aborted_counts or event_type != "orchestration.aborted"
        )
        if ended:
            self._remember_ended(orchestration_id)
        return ended

    def _send(self, emit: list[Event]) -> asyncio.Future[list[Result]]:
        """Publish events (and work messages) in one batch; the future holds their acks."""
        topo = self._topology
        batch = self.publisher.batch()
        for event in emit:
            data = encode(event)
            batch.add(topo.subject_for(event), data, msg_id=event.event_id)
            if isinstance(event, _WORK):
                batch.add(topo.work(event.service), data, msg_id=event.event_id)
            elif isinstance(event, _TERMINAL):
                observe_event(event)
        return batch.send()

    async def _publish(self, outcome: Outcome) -> None:
        """Publish every output at once, then wait for all their acks."""
        if not outcome.emit:
            return
        raise_first_error(await self._send(outcome.emit))

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
        if len(self._ended) > _ENDED_MEMORY:
            self._ended.popitem(last=False)

    # --- timers --------------------------------------------------------------------------

    def _arm(self, timer: Timer) -> None:
        if self._stopping:
            return
        key = (timer.orchestration_id, timer.task_id)
        previous = self._timers.pop(key, None)
        if previous is not None:
            previous[0].cancel()
        delay = max(0.0, timer.due_at - time.time())
        handle = asyncio.get_running_loop().call_later(delay, self._fire, timer)
        self._timers[key] = (handle, timer)

    def _fire(self, timer: Timer) -> None:
        key = (timer.orchestration_id, timer.task_id)
        entry = self._timers.get(key)
        if entry is not None and entry[1] is timer:
            del self._timers[key]
        if not self._stopping:
            self._enqueue(timer.orchestration_id, timer)


def _log_ids(event: Event) -> dict[str, str]:
    """The log context of an input: its orchestration and, if it is about one, its task."""
    ids: dict[str, str] = {}
    orchestration_id = getattr(event, "orchestration_id", None)
    if isinstance(orchestration_id, str):
        ids["orchestration_id"] = orchestration_id
    task_id = getattr(event, "task_id", None)
    if isinstance(task_id, str):
        ids["task_id"] = task_id
    return ids


def _bind_orchestration(orchestration_id: str) -> None:
    """Bind the log context of an orchestration's own task (run inside its new context)."""
    structlog.contextvars.unbind_contextvars("task_id")
    structlog.contextvars.bind_contextvars(orchestration_id=orchestration_id)


@contextlib.contextmanager
def _task_logged(task_id: str | None) -> Iterator[None]:
    """Bind ``task_id`` to the log context while an input about that task is handled."""
    if task_id is None or task_id == ORCHESTRATION_TIMER:
        yield
        return
    tokens = structlog.contextvars.bind_contextvars(task_id=task_id)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def _is_result(item: _Item) -> bool:
    return isinstance(item, tuple) and isinstance(item[0], _RESULTS)


def _fresh_first_delivery(msg: Msg, max_age_s: float) -> bool:
    """Whether a message is delivered for the first time and is younger than ``max_age_s``."""
    try:
        delivered, stored_at = delivery(msg)
    except ValueError:  # not a JetStream message: treat as old
        return False
    return delivered == 1 and time.time() - stored_at < max_age_s


def _not_yet_delay(msg: Msg) -> float:
    """Redelivery delay of an input that came too early: 0.05 s doubling up to 5 s."""
    return float(min(5.0, 0.05 * 2 ** (msg.metadata.num_delivered - 1)))

"""The dispatcher's I/O: consume events, run transitions, publish, store, acknowledge.

Flow of one input (an event, or a timer that fired)::

    decode ─▶ mailbox of its orchestration ─▶ load state (cache, else KV)
           ─▶ domain.apply ─▶ publish every output without waiting (publish_async)
           ─▶ await all their acks together ─▶ CAS-write the snapshot ─▶ ack the input

Durability. The state of each in-flight orchestration is a snapshot in the KV bucket
``dispatcher`` (see :mod:`orra_dispatcher.store`), written with compare-and-set *after*
the outputs are stored in JetStream and *before* the input is acknowledged, and deleted
(leaving a tombstone) when the orchestration ends. Whatever the crash point, the input
is redelivered: if the snapshot was not written, the same transition runs again on the
same state and republishes the same deterministic event ids (``d:<orch>:<task>:<n>``,
``rt:``, ``to:``, ``end:<orch>``), which JetStream deduplicates; if it was written, the
input is a no-op against the stored state. Deadlines are absolute times in the snapshot,
so a restarted process loads every in-flight snapshot and re-arms its timeouts and retries.

Replicas. Every replica binds the same durable consumer ``dispatcher`` (a deliver group),
so each event goes to one replica. Replicas keep a cache of the states they touched; a
cached state may be stale when another replica handled the orchestration's previous event,
and then the snapshot write fails its compare-and-set: the replica drops its cache, reloads
and applies the input again (the outputs of the stale attempt carry the same ids as the
right ones when they are the same events, and are at worst superfluous otherwise). A
result that is ahead of the cached state (an attempt it has not seen dispatched) also
triggers a reload. Timer firings always reload the snapshot first, so a stale replica does
not time out a task that already completed. A periodic sweep re-arms the timers of every
stored snapshot, so a dead replica's timeouts and retries are taken over.

Concurrency. nats-py runs a subscription's callback one message at a time, so the callback
only decodes and hands the input to its orchestration's mailbox; each mailbox is drained by
its own task, at most ``concurrency`` at once. One orchestration's inputs are therefore
processed in order, one at a time, while different orchestrations proceed concurrently and
their publishes and KV writes are pipelined on the connection. Task results that queued
up for one orchestration while its previous input was being stored are applied together
(group commit): one round of publishes, one snapshot write, then every ack.

A plan's first transition skips the read: it writes with revision 0 (create only), which
fails on an existing snapshot or a tombstone; the dispatcher then reloads and finds the
duplicate (a no-op) or the abort. An abort that arrives before the plan writes that
tombstone itself. Residual risk, by design of "publish, then store": a replica holding a
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

Bad input. Undecodable bytes, an event type this consumer does not handle, or a subject
that does not match the event are parked at once on the dead-letter subject. An event for
an orchestration that was never started, or ahead of every stored state, is retried with a
growing delay (it may race with another replica's write) and parked after ``max_deliver``
deliveries. Per-message logs are at DEBUG.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, Final

import msgspec
import structlog
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

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
    DecodeError,
    Event,
    OrchestrationAborted,
    PlanCreated,
    PlanFailed,
    TaskAborted,
    TaskCompensated,
    TaskCompensating,
    TaskCompensationFailed,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    decode,
    encode,
)
from orra_events.topology import NAME_PATTERN

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from orra_dispatcher.settings import DispatcherSettings
    from orra_events import Bus

__all__ = ["CONSUMED", "DURABLE", "Dispatcher", "NotYet"]

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
_MAX_BATCH: Final = 64
_MAX_ROUNDS: Final = 5
_PUBLISH_TIMEOUT_S: Final = 10.0
_ENDED_MEMORY: Final = 50_000

log = structlog.get_logger("orra.dispatcher")

_Item = tuple[Event, "Msg"] | Timer


class NotYet(DispatcherError):
    """The input cannot be applied yet: unknown orchestration, or ahead of the state."""


class Dispatcher:
    """Runs plans: one consumer, per-orchestration mailboxes, timers and a snapshot cache.

    Args:
        bus: The connected bus whose topology names the subjects, streams and bucket.
        store: Where snapshots live.
        settings: Retry, timeout, mode and consumer settings.
    """

    def __init__(self, bus: Bus, store: SnapshotStore, settings: DispatcherSettings) -> None:
        self.bus = bus
        self.store = store
        self.settings = settings
        self.policy = settings.policy
        self._topology = bus.topology
        self._cache: dict[str, tuple[Orchestration, int]] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._boxes: dict[str, deque[_Item]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._timers: dict[tuple[str, str], tuple[asyncio.TimerHandle, Timer]] = {}
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._sub: Any = None
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
        await self.registry.start()
        loaded = await self.sweep()
        log.info("dispatcher state loaded", in_flight=loaded)
        topo = self._topology
        config = ConsumerConfig(
            durable_name=DURABLE,
            deliver_group=DURABLE,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.settings.ack_wait_s,
            max_deliver=-1,
            max_ack_pending=self.settings.max_ack_pending,
            deliver_policy=DeliverPolicy.ALL,
            filter_subjects=[topo.all_of(t) for t in CONSUMED],
        )
        await self._update_filters(config)
        self._sub = await self.bus.js.subscribe(
            "",
            queue=DURABLE,
            durable=DURABLE,
            stream=topo.events_stream,
            cb=self._on_message,
            manual_ack=True,
            config=config,
        )
        if self.settings.sweep_interval_s > 0:
            self._sweeper = asyncio.create_task(self._sweep_loop())

    async def _update_filters(self, config: ConsumerConfig) -> None:
        """Give an existing durable consumer the event types of this version."""
        stream = self._topology.events_stream
        try:
            info = await self.bus.js.consumer_info(stream, DURABLE)
        except NotFoundError:
            return
        wanted = sorted(config.filter_subjects or [])
        if sorted(info.config.filter_subjects or []) != wanted:
            updated = dataclasses.replace(info.config, filter_subjects=wanted, filter_subject=None)
            await self.bus.js.add_consumer(stream, updated)
            log.info("dispatcher consumer filters updated", filters=wanted)

    async def stop(self) -> None:
        """Stop consuming, finish the inputs already received, disarm the timers."""
        self._stopping = True
        await self.registry.stop()
        if self._sub is not None:
            try:
                await self._sub.drain()
            except Exception:  # noqa: BLE001 - closed connection or subscription
                with contextlib.suppress(Exception):
                    await self._sub.unsubscribe()
            self._sub = None
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for handle, _ in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._workers:
            await asyncio.wait(self._workers, timeout=10.0)

    async def sweep(self) -> int:
        """Scan stored snapshots: refresh the cache, arm missing timers; return the count."""
        count = 0
        live: set[str] = set()
        paused: dict[str, set[str]] = {}
        async for state, revision in self.store.running():
            count += 1
            live.add(state.id)
            cached = self._cache.get(state.id)
            if state.id not in self._boxes and (cached is None or cached[1] < revision):
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
            if orchestration_id not in live and orchestration_id not in self._boxes:
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

    async def _on_message(self, msg: Msg) -> None:
        try:
            event = decode(msg.data)
        except DecodeError as exc:
            await self.bus.park(msg, f"{type(exc).__name__}: {exc}")
            return
        if not isinstance(event, _HANDLED):
            await self.bus.park(msg, f"the dispatcher does not handle {event.TYPE} events")
            return
        orchestration_id = event.orchestration_id
        if not NAME_PATTERN.fullmatch(orchestration_id):
            await self.bus.park(msg, f"invalid orchestration id {orchestration_id!r}")
            return
        if msg.subject != self._topology.subject_for(event):
            await self.bus.park(
                msg, f"{event.TYPE} event for {orchestration_id} on subject {msg.subject}"
            )
            return
        self._enqueue(orchestration_id, (event, msg))

    def _enqueue(self, orchestration_id: str, item: _Item) -> None:
        box = self._boxes.get(orchestration_id)
        if box is not None:
            box.append(item)
            return
        box = self._boxes[orchestration_id] = deque((item,))
        task = asyncio.create_task(self._drain(orchestration_id, box))
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)

    async def _drain(self, orchestration_id: str, box: deque[_Item]) -> None:
        try:
            async with self._slots:
                while box:
                    item = box.popleft()
                    if isinstance(item, Timer):
                        await self._handle_timer(item)
                    elif isinstance(item[0], _RESULTS):
                        # Results queued for one orchestration are applied together:
                        # one publish round, one snapshot write, then every ack.
                        batch = [item]
                        while box and len(batch) < _MAX_BATCH and _is_result(box[0]):
                            batch.append(box.popleft())  # type: ignore[arg-type]
                        await self._handle_results(orchestration_id, batch)
                    else:
                        await self._handle_message(*item)
        finally:
            if self._boxes.get(orchestration_id) is box:
                del self._boxes[orchestration_id]

    # --- processing ----------------------------------------------------------------------

    async def _handle_message(self, event: Event, msg: Msg) -> None:
        try:
            await self._process(event)
        except NotYet as exc:
            await self._retry_or_park(msg, str(exc), _not_yet_delay(msg))
            return
        except Exception as exc:
            log.exception("dispatcher input failed", subject=msg.subject, event_type=event.TYPE)
            await self._retry_or_park(msg, f"{type(exc).__name__}: {exc}", 1.0)
            return
        try:
            await msg.ack()
        except Exception:
            log.warning("ack failed", subject=msg.subject, exc_info=True)

    async def _handle_results(self, orchestration_id: str, batch: list[tuple[Event, Msg]]) -> None:
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
            try:
                await msg.ack()
            except Exception:
                log.warning("ack failed", subject=msg.subject, exc_info=True)

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

    async def _retry_or_park(self, msg: Msg, reason: str, delay_s: float) -> None:
        try:
            if msg.metadata.num_delivered >= self.settings.max_deliver:
                await self.bus.park(
                    msg, f"gave up after {self.settings.max_deliver} deliveries: {reason}"
                )
            else:
                await msg.nak(delay=delay_s)
        except Exception:
            log.warning("nak failed", subject=msg.subject, exc_info=True)

    async def _process(self, event: Event) -> None:
        assert isinstance(event, _HANDLED)
        orchestration_id = event.orchestration_id
        starts = isinstance(event, (PlanCreated, PlanFailed))
        fresh = False
        for round_ in range(_MAX_ROUNDS):
            assume_new = starts and round_ == 0
            # A state not from the cache is as fresh as it gets: reloading cannot help.
            fresh = fresh or (orchestration_id not in self._cache and not assume_new)
            snap = await self._snapshot(orchestration_id, fresh=fresh, assume_new=assume_new)
            if snap.found is Found.ENDED:
                log.debug("input for an ended orchestration", orchestration_id=orchestration_id)
                return
            if snap.found is Found.UNKNOWN and not starts:
                if isinstance(event, OrchestrationAborted):
                    # Aborted before its plan: the tombstone stops a later plan.created.
                    await self.store.end(orchestration_id, 0)
                    self._forget(orchestration_id)
                    return
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
            # (revision 0) refuses an existing key or a tombstone, and then we reload.
            return Snapshot(Found.UNKNOWN)
        snap = await self.store.load(orchestration_id)
        if snap.state is not None:
            self._cache[orchestration_id] = (snap.state, snap.revision)
        else:
            self._cache.pop(orchestration_id, None)
        return snap

    async def _publish(self, outcome: Outcome) -> None:
        """Publish every output without waiting, then wait for all their acks at once."""
        if not outcome.emit:
            return
        js = self.bus.js
        topo = self._topology
        futures = []
        for event in outcome.emit:
            data = encode(event)
            headers = {"Nats-Msg-Id": event.event_id}
            futures.append(await js.publish_async(topo.subject_for(event), data, headers=headers))
            if isinstance(event, _WORK):
                futures.append(
                    await js.publish_async(topo.work(event.service), data, headers=dict(headers))
                )
        async with asyncio.timeout(_PUBLISH_TIMEOUT_S):
            await asyncio.gather(*futures)

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


def _is_result(item: _Item) -> bool:
    return not isinstance(item, Timer) and isinstance(item[0], _RESULTS)


def _not_yet_delay(msg: Msg) -> float:
    """Redelivery delay of an input that came too early: 0.05 s doubling up to 5 s."""
    return float(min(5.0, 0.05 * 2 ** (msg.metadata.num_delivered - 1)))

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

Modules, by role: :mod:`~orra_dispatcher.handlers.intake` (the consumer's callback and the
mailboxes), :mod:`~orra_dispatcher.handlers.writer` (write-behind),
:mod:`~orra_dispatcher.handlers.engine` (inputs against the stored state),
:mod:`~orra_dispatcher.handlers.timers` (timers, the sweep, pauses), the shared state in
:mod:`~orra_dispatcher.handlers.core`, combined by
:class:`~orra_dispatcher.handlers.dispatcher.Dispatcher` (mixins of one object: a call from
one role to another costs what a method call did before the split).
"""

from orra_dispatcher.handlers.core import CONSUMED, DURABLE, REPLAY_AGE_S, NotYet
from orra_dispatcher.handlers.dispatcher import Dispatcher

__all__ = ["CONSUMED", "DURABLE", "REPLAY_AGE_S", "Dispatcher", "NotYet"]

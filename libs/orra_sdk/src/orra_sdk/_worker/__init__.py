"""Runs one service's tasks: pulls ``work.<service>``, validates, calls the handler, reports.

The work stream is read through the durable pull consumer ``svc_<service>`` that every
replica shares, with :class:`orra_events.consumers.PullConsumer`: callback driven, asking
for as many messages as the worker has free slots, so it keeps pull semantics (replicas
split the work, nobody takes more than it can run) at push-consumer speed. The consumer
parks what is not a task (``manual_ack``: the worker acks a task once its result is
stored).

The work subject carries two kinds of message: ``task.dispatched`` runs the handler;
``task.compensating`` runs the revert handler (compensation), with the same idempotency
record (key ``<orch>:<task>:revert``), keep-alives and reporting
(``task.compensated`` / ``task.compensation_failed``).

One class, :class:`ServiceWorker`, built from one module per role (each a class on the
one before, so a call between roles is a plain method call, with no object in between):

* :mod:`~orra_sdk._worker.core`: the state the roles share;
* :mod:`~orra_sdk._worker.keepalive`: claiming a task's key; in-progress acks and claim
  renewals, fired by the worker's ticker rather than a timer per task;
* :mod:`~orra_sdk._worker.reporting`: the idempotency record and the result event in one
  batch (one round trip), kept and sent again through broker outages, then the ack;
* :mod:`~orra_sdk._worker.running`: the handler, its progress updates and its outcome;
* :mod:`~orra_sdk._worker.reverting`: the revert handler (compensation);
* :mod:`~orra_sdk._worker.intake`: each message's checks (service, version, stopped
  orchestration, poison task), the per-key lock, the log context;
* :mod:`~orra_sdk._worker.lifecycle`: the consumer, start and stop, and
  :meth:`ServiceWorker.stop_orchestration` (the client calls it when it sees
  ``orchestration.aborted``, ``orchestration.failed`` or ``orchestration.compensating``):
  it cancels the running handlers of that orchestration, each of which reports
  ``task.failed`` (not retryable, ``stopped: <reason>``); a task of that orchestration
  received later is answered the same way without running. Revert handlers are never
  stopped.

Metrics. Results are counted by service and outcome, handler calls timed, and the tasks in
flight shown as a gauge (see :mod:`orra_sdk._metrics`).
"""

from __future__ import annotations

from orra_sdk._worker.lifecycle import ServiceWorker
from orra_sdk.service import describe_validation_error

__all__ = ["ServiceWorker", "describe_validation_error"]

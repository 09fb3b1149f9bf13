"""The read-model projection: a pure fold of orchestration events into an orchestration view.

The gateway answers ``GET /orchestrations/{id}`` from it and the CLI reuses it for
``orra inspect -f`` (it folds the events it reads from the event stream itself), so both
show the same thing. The package does no I/O: give it events, in log order, and it gives
back views.

Usage::

    views = fold(events)                  # every orchestration of a sequence of events
    view = None
    for event in events_of_one_orchestration:
        view = apply(view, event)         # one orchestration, incrementally
    msgspec.json.encode(view)             # the JSON of GET /orchestrations/{id}
    state = ListingState()                # a list line's status without the full view:
    advance_listing(state, event)         #   the status rules below, on a few fields

The views are msgspec structs whose JSON field names are camelCase (``createdAt``,
``durationMs``), except ``parallel_groups``, as the seed spells it. Times are UNIX epoch
seconds (floats), as in the events.

The package is split by role; import every name from ``orra_events.projection``:

* :mod:`~orra_events.projection.views`: the views (:class:`OrchestrationView`,
  :class:`TaskView`, :class:`WebhookDeliveryView`, ...), the statuses and the list line
  (:class:`OrchestrationSummary`, :func:`summarize`).
* :mod:`~orra_events.projection.fold`: :func:`apply` and :func:`fold`, one small function
  per event type.
* :mod:`~orra_events.projection.listing`: :class:`ListingState` and
  :func:`advance_listing`, the status rules without the full view.
* :mod:`~orra_events.projection.failures`: :class:`CompensationFailure` and
  :func:`compensation_failures`, what an operator must resolve.

Rules of the fold (each one is what the dispatcher and the event ids guarantee, applied
defensively so that a replayed or late event never corrupts a view):

* Orchestration status: ``action.submitted`` → ``planning``; ``plan.created`` →
  ``running``; ``plan.failed`` → ``not_actionable`` (planner status ``not_actionable``) or
  ``failed``; ``orchestration.done`` → ``completed``; ``orchestration.failed`` →
  ``failed``; ``orchestration.aborted`` → ``aborted``. The first terminal status wins, as
  the shared ``end:<orch>`` event id makes JetStream keep only the first terminal event.
* Task status: ``pending`` when planned; ``running`` on ``task.dispatched``; ``completed`` on
  ``task.completed`` (final: later events of the task are ignored); ``failed`` on
  ``task.failed`` or ``task.timed_out`` of the current attempt (events of an older attempt
  are ignored); ``retrying`` on ``task.retrying``.
* Pauses: ``orchestration.paused`` → ``paused`` (from ``running``; its tasks ``paused``,
  ``pausedServices`` and ``pauseFailAt`` set); ``orchestration.resumed`` → ``running``.
* Compensation: ``orchestration.compensating`` → ``compensating`` (unless already terminal:
  a user's abort ends the orchestration first) and ``compensation`` is filled in; each
  task to revert gets a ``compensation`` that moves ``pending`` → ``running``
  (``task.compensating``) → ``retrying`` (``task.compensation_failed``) → ``compensated``
  or ``failed`` (``task.compensation_abandoned``) → ``resolved`` / ``ignored``
  (``task.compensation_resolved``, an operator's decision). ``orchestration.compensated``
  closes it. A task whose handler raised ``AbortOrchestration`` is ``aborted``.
* Progress: ``task.progress`` keeps the task's last update (``progress``), its time and the
  number of updates.
* List lines: :func:`advance_listing` applies the status rules alone to a small
  :class:`ListingState` (status, the plan's task count, end time, error), so that a read model
  can keep a line for every orchestration without its full view; an ended line never
  changes again.
* ``dependsOn`` lists the other tasks of the plan whose output a task's input references
  (:func:`orra_events.plan.dependencies`: ``"$payment.status"``, ``"$payment.items.0.id"``,
  at any depth of the input), sorted; ``group`` is the index of the task's parallel group.
"""

from orra_events.projection.failures import CompensationFailure, compensation_failures
from orra_events.projection.fold import apply, fold
from orra_events.projection.listing import (
    LISTING_ERROR_CHARS,
    LISTING_EVENT_TYPES,
    ListingState,
    advance_listing,
)
from orra_events.projection.views import (
    TERMINAL_STATUSES,
    ApprovalView,
    CompensationStatus,
    CompensationView,
    OrchestrationStatus,
    OrchestrationSummary,
    OrchestrationView,
    PlanInfo,
    TaskCompensationView,
    TaskStatus,
    TaskView,
    WebhookAttemptView,
    WebhookDeliveryView,
    is_terminal,
    summarize,
    to_builtins,
)

__all__ = [
    "LISTING_ERROR_CHARS",
    "LISTING_EVENT_TYPES",
    "TERMINAL_STATUSES",
    "ApprovalView",
    "CompensationFailure",
    "CompensationStatus",
    "CompensationView",
    "ListingState",
    "OrchestrationStatus",
    "OrchestrationSummary",
    "OrchestrationView",
    "PlanInfo",
    "TaskCompensationView",
    "TaskStatus",
    "TaskView",
    "WebhookAttemptView",
    "WebhookDeliveryView",
    "advance_listing",
    "apply",
    "compensation_failures",
    "fold",
    "is_terminal",
    "summarize",
    "to_builtins",
]

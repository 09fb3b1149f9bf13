"""The list line of an orchestration, folded without its full view.

A read model (the gateway's listing index) keeps a :class:`ListingState` for every
orchestration but a full :class:`~orra_events.projection.views.OrchestrationView` only for
some; :func:`advance_listing` applies the status rules of the fold (see
:mod:`orra_events.projection`) to its few fields. A property test
(``tests/events/test_projection.py``) shows that the two agree.
"""

from __future__ import annotations

from typing import Final

import msgspec

from orra_events.events import (
    Event,
    OrchestrationAborted,
    OrchestrationApproved,
    OrchestrationCompensating,
    OrchestrationDone,
    OrchestrationFailed,
    OrchestrationPaused,
    OrchestrationResumed,
    PlanCreated,
    PlanFailed,
)
from orra_events.projection._table import EventTable, entry
from orra_events.projection.views import OrchestrationStatus, is_terminal

__all__ = ["LISTING_ERROR_CHARS", "LISTING_EVENT_TYPES", "ListingState", "advance_listing"]


class ListingState(msgspec.Struct, kw_only=True, rename="camel"):
    """The changing part of an orchestration's list line, folded without its full view.

    A read model that keeps a list line for every orchestration but a full
    :class:`~orra_events.projection.views.OrchestrationView` only for some folds
    :data:`LISTING_EVENT_TYPES` into this small state with :func:`advance_listing`. The line
    agrees with :func:`~orra_events.projection.views.summarize` of the full fold for
    ``status`` and ``finishedAt``; ``taskCount`` counts the plan's tasks (a full view also
    shows tasks that only events named), and the line of an orchestration that ended never
    changes again (a plan that arrives after an abort is not counted).

    Attributes:
        status: See :data:`OrchestrationStatus`.
        task_count: Tasks of the plan.
        finished_at: When it reached a terminal status.
        paused_at: When the current pause began (to ignore the end of an earlier pause).
        error: Why it failed, was aborted or is not actionable, as the full view's
            ``error``, cut to :data:`LISTING_ERROR_CHARS` characters.
    """

    status: OrchestrationStatus = "planning"
    task_count: int = 0
    finished_at: float | None = None
    paused_at: float | None = None
    error: str | None = None

    @property
    def terminal(self) -> bool:
        """Whether the orchestration has reached a final status."""
        return is_terminal(self.status)


LISTING_ERROR_CHARS: Final = 500
"""Characters of the error kept in a :class:`ListingState`."""


def _end_listing(
    state: ListingState, status: OrchestrationStatus, at: float, error: str | None = None
) -> bool:
    state.status = status
    state.finished_at = at
    state.paused_at = None
    if error is not None:
        state.error = error[:LISTING_ERROR_CHARS]
    return True


def _on_plan_created(state: ListingState, event: PlanCreated) -> bool:
    changed = state.task_count != len(event.plan.tasks)
    state.task_count = len(event.plan.tasks)
    if state.status == "planning":
        state.status = "running" if event.execute else "awaiting_approval"
        changed = True
    return changed


def _on_approved(state: ListingState, event: OrchestrationApproved) -> bool:
    if event.task_id is not None or state.status != "awaiting_approval":
        return False
    state.status = "running"
    return True


def _on_plan_failed(state: ListingState, event: PlanFailed) -> bool:
    failed: OrchestrationStatus = "not_actionable" if event.status == "not_actionable" else "failed"
    error = "; ".join(event.reasons) or f"planning {event.status}"
    return _end_listing(state, failed, event.at, error)


def _on_done(state: ListingState, event: OrchestrationDone) -> bool:
    return _end_listing(state, "completed", event.at)


def _on_failed(state: ListingState, event: OrchestrationFailed) -> bool:
    return _end_listing(state, "failed", event.at, event.error)


def _on_aborted(state: ListingState, event: OrchestrationAborted) -> bool:
    return _end_listing(state, "aborted", event.at, event.reason)


def _on_paused(state: ListingState, event: OrchestrationPaused) -> bool:
    if state.status not in ("running", "paused"):
        return False
    state.status = "paused"
    state.paused_at = event.at
    return True


def _on_resumed(state: ListingState, event: OrchestrationResumed) -> bool:
    if state.paused_at is not None and event.at < state.paused_at:
        return False
    changed = state.status == "paused" or state.paused_at is not None
    if state.status == "paused":
        state.status = "running"
    state.paused_at = None
    return changed


def _on_compensating(state: ListingState, event: OrchestrationCompensating) -> bool:
    state.status = "compensating"
    state.paused_at = None
    state.error = event.reason[:LISTING_ERROR_CHARS]
    return True


_STEPS: Final = EventTable[ListingState, bool](
    entry(PlanCreated, _on_plan_created),
    entry(PlanFailed, _on_plan_failed),
    entry(OrchestrationDone, _on_done),
    entry(OrchestrationFailed, _on_failed),
    entry(OrchestrationAborted, _on_aborted),
    entry(OrchestrationPaused, _on_paused),
    entry(OrchestrationResumed, _on_resumed),
    entry(OrchestrationCompensating, _on_compensating),
    entry(OrchestrationApproved, _on_approved),
)

LISTING_EVENT_TYPES: Final[frozenset[str]] = frozenset(cls.TYPE for cls in _STEPS.types)
"""Types of the events that can change a :class:`ListingState` (besides its creation)."""


def advance_listing(state: ListingState, event: Event) -> bool:
    """Fold one event of the orchestration into its list line state, in place.

    Applies the status rules of :func:`~orra_events.projection.fold.apply` (see
    :mod:`orra_events.projection`) to the fields of :class:`ListingState` only; events of
    other types leave it as it is.

    Args:
        state: The state so far (a new ``ListingState()`` at ``action.submitted``).
        event: The next event of the same orchestration, in log order.

    Returns:
        Whether ``state`` changed.
    """
    if state.terminal:
        return False
    try:
        step = _STEPS.handlers[type(event)]
    except KeyError:
        step = _STEPS.resolve(type(event))
    return step(state, event) if step is not None else False

"""Approval transitions: a plan held for preview, gated tasks, decisions and expiry.

Pure, like :mod:`orra_dispatcher.domain.transitions` (which routes these inputs here): the
same state, input and time always give the same outcome. A plan submitted with
``execute: false`` starts ``awaiting_approval`` (nothing dispatched); a task whose gate
holds is held by :meth:`~orra_dispatcher.domain.builder.Builder.dispatch`. A decision
(``orchestration.approved`` / ``orchestration.rejected``) applies once: a second one finds
nothing waiting and is a no-op.
"""

from __future__ import annotations

import msgspec

from orra_dispatcher.domain.builder import Builder
from orra_dispatcher.domain.state import (
    ORCHESTRATION_TIMER,
    Ending,
    Orchestration,
    Outcome,
    Policy,
    Services,
    Timer,
    noop,
)
from orra_events import (
    OrchestrationApproved,
    OrchestrationAwaitingApproval,
    OrchestrationRejected,
    ids,
)

__all__ = ["EXPIRY", "hold_plan", "on_approval", "on_approval_timer", "on_decision"]

EXPIRY = "expiry"
"""``by`` of the ``orchestration.rejected`` the dispatcher appends when an approval expires."""


def hold_plan(state: Orchestration, policy: Policy, now: float) -> Outcome:
    """A new plan to preview: wait for approval, dispatch nothing."""
    expires_at = now + (state.approval_timeout_s or policy.approval_timeout_s)
    held = msgspec.structs.replace(
        state, status="awaiting_approval", approval_expires_at=expires_at
    )
    builder = Builder(held, policy, now)
    builder.touch(ORCHESTRATION_TIMER)
    builder.emit.append(
        OrchestrationAwaitingApproval(
            event_id=ids.awaiting_approval_id(state.id),
            at=now,
            orchestration_id=state.id,
            expires_at=expires_at,
            tasks=[t.id for t in state.plan.tasks],
            project=state.project,
        )
    )
    return builder.outcome()


def _decided(event: OrchestrationApproved | OrchestrationRejected) -> str:
    if isinstance(event, OrchestrationRejected) and event.expired:
        return f"approval expired ({event.reason})" if event.reason else "approval expired"
    by = f"rejected by {event.by}"
    return f"{by}: {event.reason}" if event.reason else by


def on_decision(
    state: Orchestration,
    event: OrchestrationApproved | OrchestrationRejected,
    policy: Policy,
    now: float,
    services: Services,
) -> Outcome:
    """Apply a person's approval or rejection of the held plan or of one held task."""
    approved = isinstance(event, OrchestrationApproved)
    if event.task_id is None:
        if state.status != "awaiting_approval":
            return noop(state, "the plan is not awaiting approval (already decided)")
        running = msgspec.structs.replace(state, status="running", approval_expires_at=None)
        builder = Builder(running, policy, now, services)
        builder.touch(ORCHESTRATION_TIMER)
        if approved:
            return builder.advance()
        return builder.stop(Ending(kind="aborted", reason=f"plan {_decided(event)}"))
    ts = state.tasks.get(event.task_id)
    if ts is None or ts.status != "awaiting_approval" or state.status != "running":
        return noop(state, f"task {event.task_id!r} is not awaiting approval")
    builder = Builder(state, policy, now, services)
    if approved:
        builder.approve(event.task_id)
        return builder.outcome()
    assert isinstance(event, OrchestrationRejected)
    service = state.service_of(event.task_id)
    return builder.fail(
        f"task {event.task_id!r} ({service}) was not approved ({_decided(event)}); it is not run",
        event.task_id,
    )


def on_approval_timer(
    state: Orchestration, timer: Timer, policy: Policy, now: float, services: Services
) -> Outcome:
    """An approval waited too long: reject it as expired, and record that in the log."""
    task_id = None if timer.task_id == ORCHESTRATION_TIMER else timer.task_id
    if task_id is None:
        due = state.approval_expires_at
        if state.status != "awaiting_approval" or due is None:
            return noop(state, "expiry of a plan no longer awaiting approval")
    else:
        ts = state.tasks.get(task_id)
        if ts is None or ts.status != "awaiting_approval" or ts.deadline is None:
            return noop(state, "expiry of a task no longer awaiting approval")
        due = ts.deadline
    if now < due:
        return noop(state, "approval not expired yet")
    rejection = OrchestrationRejected(
        event_id=ids.decision_id(state.id, task_id),
        at=now,
        orchestration_id=state.id,
        task_id=task_id,
        by=EXPIRY,
        reason=f"no decision within {state.approval_timeout_s or policy.approval_timeout_s:g}s",
        expired=True,
        project=state.project,
    )
    outcome = on_decision(state, rejection, policy, now, services)
    return Outcome(
        outcome.state,
        [rejection, *outcome.emit],
        outcome.timers,
        outcome.touched,
    )


def on_approval(
    state: Orchestration,
    item: OrchestrationApproved | OrchestrationRejected | Timer,
    policy: Policy,
    now: float,
    services: Services,
) -> Outcome:
    """A decision, or an ``approval`` timer (routed here by ``apply``)."""
    if isinstance(item, Timer):
        return on_approval_timer(state, item, policy, now, services)
    return on_decision(state, item, policy, now, services)

"""The dispatcher's transitions: :func:`apply` one input to an orchestration's state.

Each input kind has its transition here; the steps they share are
:class:`~orra_dispatcher.domain.builder.Builder`'s. Pure: the same state, input and time
always give the same outcome.
"""

from __future__ import annotations

import msgspec

from orra_dispatcher.domain.approvals import hold_plan, on_approval
from orra_dispatcher.domain.builder import Builder
from orra_dispatcher.domain.rules import validate_plan
from orra_dispatcher.domain.state import (
    ALL_HEALTHY,
    CompState,
    Ending,
    Input,
    Orchestration,
    Outcome,
    Policy,
    Services,
    TaskState,
    Timer,
    noop,
)
from orra_dispatcher.errors import InvalidPlan
from orra_events import (
    OrchestrationAborted,
    OrchestrationApproved,
    OrchestrationFailed,
    OrchestrationRejected,
    PlanCreated,
    PlanFailed,
    TaskAborted,
    TaskCompensated,
    TaskCompensationFailed,
    TaskCompleted,
    TaskFailed,
    TaskTimedOut,
    ids,
)

__all__ = ["apply", "start"]


def start(
    event: PlanCreated, policy: Policy, now: float, services: Services = ALL_HEALTHY
) -> Outcome:
    """Create the orchestration of a ``plan.created`` and dispatch what it can release."""
    plan = event.plan
    timeout = event.task_timeout_s
    if timeout is None or timeout <= 0:
        timeout = policy.task_timeout_s
    grace = event.pause_grace_s
    if grace is None or grace < 0:
        grace = policy.pause_grace_s
    try:
        deps = validate_plan(plan)
    except InvalidPlan as exc:
        deps = {t.id: [] for t in plan.tasks}
        error: str | None = f"invalid plan: {exc}"
    else:
        error = None
    state = Orchestration(
        id=event.orchestration_id,
        plan=plan,
        mode=event.mode or policy.mode,
        task_timeout_s=timeout,
        webhook=event.webhook,
        project=event.project,
        tasks={t.id: TaskState() for t in plan.tasks},
        deps=deps,
        pause_grace_s=grace,
        approval_timeout_s=event.approval_timeout_s,
    )
    builder = Builder(state, policy, now, services)
    if error is not None:
        return builder.fail(error, None)
    if not event.execute:
        return hold_plan(state, policy, now)
    return builder.advance()


def _plan_failed(event: PlanFailed, now: float) -> Outcome:
    reasons = "; ".join(event.reasons) or "no reason given"
    return Outcome(
        None,
        [
            OrchestrationFailed(
                event_id=ids.end_id(event.orchestration_id),
                at=now,
                orchestration_id=event.orchestration_id,
                error=f"planning failed ({event.status}): {reasons}",
                webhook=event.webhook,
                project=event.project,
                uncovered=list(event.uncovered),
            )
        ],
    )


def _on_result(
    state: Orchestration,
    event: TaskCompleted | TaskFailed | TaskAborted,
    policy: Policy,
    now: float,
    services: Services,
) -> Outcome:
    ts = state.tasks.get(event.task_id)
    if ts is None:
        return noop(state, f"task {event.task_id!r} is not in the plan")
    if ts.status == "completed":
        return noop(state, "task already completed")
    if ts.status == "pending" or event.attempt > ts.attempt:
        return noop(state, "result of an attempt this state has not dispatched", stale=True)
    builder = Builder(state, policy, now, services)
    if isinstance(event, TaskCompleted):
        # Any attempt's success is the task's success: they share one idempotency key.
        builder.complete(event.task_id, ts.attempt, event.output)
        if state.status == "compensating":
            return _late_completion(builder, event.task_id)
        return builder.advance()
    if state.status != "running":
        return noop(state, f"{event.TYPE} while compensating")
    if isinstance(event, TaskAborted):
        if event.attempt < ts.attempt or ts.status != "running":
            return noop(state, "abort from an attempt that already ended")
        builder.set(event.task_id, msgspec.structs.replace(ts, status="failed", error=event.reason))
        return builder.stop(
            Ending(
                kind="aborted",
                reason=f"aborted by {event.service} (task {event.task_id!r}): {event.reason}",
                task_id=event.task_id,
                payload=event.payload,
            )
        )
    if event.attempt < ts.attempt or ts.status != "running":
        return noop(state, "failure of an attempt that already ended")
    if event.outcome_unknown and not event.retryable:
        return builder.fail_unknown(event.task_id, f"failed ({event.error})")
    return builder.fail_attempt(event.task_id, event.error, retryable=event.retryable)


def _late_completion(builder: Builder, task_id: str) -> Outcome:
    """A task in flight when forward execution stopped completed: compensate it next."""
    if builder.state.service_of(task_id) not in builder.services.revertible:
        builder.skipped = [*builder.skipped, task_id]
        return builder.outcome()
    order = list(builder.comp_order)
    position = next(
        (i for i, t in enumerate(order) if builder.comps[t].status == "pending"), len(order)
    )
    order.insert(position, task_id)
    builder.comp_order = order
    builder.set_comp(task_id, CompState())
    return builder.compensate_next()


def _on_compensation_result(
    state: Orchestration,
    event: TaskCompensated | TaskCompensationFailed,
    policy: Policy,
    now: float,
    services: Services,
) -> Outcome:
    comp = state.comps.get(event.task_id)
    if state.status == "running":
        return noop(state, "compensation result ahead of the state", stale=True)
    if comp is None:
        return noop(state, "compensation result of a task not being compensated")
    if comp.status == "pending" or event.attempt > comp.attempt:
        return noop(state, "compensation result ahead of the state", stale=True)
    if comp.status in ("done", "failed"):
        return noop(state, "compensation already finished")
    builder = Builder(state, policy, now, services)
    if isinstance(event, TaskCompensated):
        builder.set_comp(event.task_id, CompState(status="done", attempt=comp.attempt))
        return builder.compensate_next()
    if event.attempt < comp.attempt or comp.status != "running":
        return noop(state, "failure of a compensation attempt that already ended")
    return builder.comp_failed(event.task_id, event.error, retryable=event.retryable)


def _on_pause_timer(
    state: Orchestration, timer: Timer, policy: Policy, now: float, services: Services
) -> Outcome:
    """A ``health`` timer (a service came back) or a pause's ``grace`` timer."""
    builder = Builder(state, policy, now, services)
    if timer.kind == "health":
        if state.status != "running" or not state.paused_tasks:
            return noop(state, "nothing waits for a service")
        builder.resume_ready()
        if not builder.touched:
            return noop(state, "the services it waits for are still unhealthy")
        return builder.outcome()
    if state.status != "running" or state.paused_since is None or state.pauses != timer.attempt:
        return noop(state, "grace period of a pause that ended")
    if now < state.paused_since + state.pause_grace_s:
        return noop(state, "grace period not over yet")
    held = state.paused_tasks
    services_down = sorted({state.service_of(t) for t in held})
    return builder.fail(
        f"paused for more than {state.pause_grace_s:g}s: "
        f"{', '.join(services_down)} unhealthy (no heartbeat); tasks {', '.join(held)} "
        "could not start",
        None,
    )


def _on_compensation_timer(
    state: Orchestration, timer: Timer, policy: Policy, now: float, services: Services
) -> Outcome:
    """A compensation attempt's ``comp_timeout`` or ``comp_retry`` timer."""
    comp = state.comps.get(timer.task_id)
    if comp is None or state.status != "compensating":
        return noop(state, "compensation timer of a task not being compensated")
    builder = Builder(state, policy, now, services)
    if timer.kind == "comp_timeout":
        if comp.status != "running" or comp.attempt != timer.attempt:
            return noop(state, "timeout of a compensation attempt that already ended")
        return builder.comp_failed(
            timer.task_id, f"timed out after {state.task_timeout_s:g}s", retryable=True
        )
    if comp.status != "retry_wait" or comp.attempt + 1 != timer.attempt:
        return noop(state, "compensation retry that is no longer due")
    builder.comp_dispatch(timer.task_id, timer.attempt, comp.error)
    return builder.outcome()


def _on_task_timer(
    state: Orchestration, timer: Timer, policy: Policy, now: float, services: Services
) -> Outcome:
    """A task attempt's ``timeout`` or ``retry`` timer."""
    ts = state.tasks.get(timer.task_id)
    if ts is None:
        return noop(state, "timer of an unknown task")
    if state.status != "running":
        return noop(state, "forward timer while compensating")
    builder = Builder(state, policy, now, services)
    if timer.kind == "timeout":
        if ts.status != "running" or ts.attempt != timer.attempt:
            return noop(state, "timeout of an attempt that already ended")
        builder.emit.append(
            TaskTimedOut(
                event_id=ids.timeout_id(state.id, timer.task_id, ts.attempt),
                at=now,
                orchestration_id=state.id,
                task_id=timer.task_id,
                attempt=ts.attempt,
                timeout_s=state.task_timeout_s,
            )
        )
        if state.service_of(timer.task_id) in services.no_timeout_retry:
            return builder.fail_unknown(
                timer.task_id,
                f"timed out after {state.task_timeout_s:g}s (its service is registered "
                "with retry_on_timeout=False)",
            )
        return builder.fail_attempt(
            timer.task_id, f"timed out after {state.task_timeout_s:g}s", retryable=True
        )
    if ts.status != "retry_wait" or ts.attempt + 1 != timer.attempt:
        return noop(state, "retry that is no longer due")
    builder.dispatch(timer.task_id, timer.attempt, ts.input or {})
    return builder.outcome()


def _on_abort(
    state: Orchestration,
    event: OrchestrationAborted,
    policy: Policy,
    now: float,
    services: Services,
) -> Outcome:
    if state.status == "compensating":
        # The log's terminal event is now this abort; compensation carries on.
        assert state.ending is not None
        if state.ending.emitted:
            return noop(state, "already aborted")
        ending = msgspec.structs.replace(state.ending, emitted=True)
        return Outcome(msgspec.structs.replace(state, ending=ending))
    builder = Builder(state, policy, now, services)
    return builder.stop(
        Ending(kind="aborted", reason=event.reason, payload=event.payload, emitted=True)
    )


def apply(
    state: Orchestration | None,
    item: Input,
    policy: Policy,
    now: float,
    services: Services = ALL_HEALTHY,
) -> Outcome:
    """Apply one input to an orchestration's state.

    Args:
        state: The current state; ``None`` when no running orchestration is known.
        item: An event from the log, or a timer that fired.
        policy: Retry, timeout and mode settings.
        now: The current UNIX time (deadlines are absolute).
        services: Which services are unhealthy and which are revertible, now.

    Returns:
        The outcome. Results and timers for a ``None`` state are no-ops (the caller decides
        whether the orchestration ended or is unknown); an aborted, done or failed state
        ignores everything.
    """
    if isinstance(item, PlanCreated):
        if state is not None:
            return noop(state, "plan already started")
        return start(item, policy, now, services)
    if isinstance(item, PlanFailed):
        if state is not None:
            return noop(state, "plan already started")
        return _plan_failed(item, now)
    if state is None:
        return noop(None, "no running orchestration")
    if state.terminal:
        return noop(state, f"orchestration already {state.status}")
    if isinstance(item, OrchestrationAborted):
        return _on_abort(state, item, policy, now, services)
    if isinstance(item, OrchestrationApproved | OrchestrationRejected | Timer) and (
        not isinstance(item, Timer) or item.kind == "approval"
    ):
        return on_approval(state, item, policy, now, services)
    if isinstance(item, Timer):
        if item.kind in ("health", "grace"):
            return _on_pause_timer(state, item, policy, now, services)
        if item.kind in ("comp_timeout", "comp_retry"):
            return _on_compensation_timer(state, item, policy, now, services)
        return _on_task_timer(state, item, policy, now, services)
    if isinstance(item, TaskCompensated | TaskCompensationFailed):
        return _on_compensation_result(state, item, policy, now, services)
    return _on_result(state, item, policy, now, services)

"""How one transition is built: changed tasks, events to append, timers to arm.

:class:`Builder` accumulates a transition of :mod:`orra_dispatcher.domain.transitions` and
holds the steps they share: dispatch (or hold for an unhealthy service), complete, retry,
fail, stop and compensate, finish. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import msgspec

from orra_dispatcher.domain.rules import (
    compensation_order,
    merge_results,
    releasable,
    resolve,
    timer_for,
)
from orra_dispatcher.domain.state import (
    ALL_HEALTHY,
    ORCHESTRATION_TIMER,
    CompState,
    Ending,
    Orchestration,
    OrchestrationStatus,
    Outcome,
    Policy,
    Services,
    TaskState,
)
from orra_dispatcher.errors import UnresolvedReference
from orra_events import (
    CompensationSummary,
    Event,
    OrchestrationAborted,
    OrchestrationCompensated,
    OrchestrationCompensating,
    OrchestrationDone,
    OrchestrationFailed,
    OrchestrationPaused,
    OrchestrationResumed,
    TaskApprovalRequested,
    TaskCompensating,
    TaskCompensationAbandoned,
    TaskDispatched,
    TaskRetrying,
    ids,
)
from orra_events.gates import needs_approval

__all__ = ["Builder"]


class Builder:
    """Accumulates one transition: changed tasks, events, timers."""

    __slots__ = (
        "approved",
        "comp_order",
        "completed",
        "comps",
        "emit",
        "ending",
        "now",
        "paused_since",
        "pauses",
        "policy",
        "services",
        "skipped",
        "state",
        "status",
        "tasks",
        "touched",
    )

    def __init__(
        self, state: Orchestration, policy: Policy, now: float, services: Services = ALL_HEALTHY
    ) -> None:
        self.state = state
        self.tasks = dict(state.tasks)
        self.emit: list[Event] = []
        self.touched: list[str] = []
        self.policy = policy
        self.now = now
        self.services = services
        self.status: OrchestrationStatus = state.status
        self.completed = state.completed
        self.comp_order = state.comp_order
        self.comps = state.comps
        self.skipped = state.skipped
        self.ending = state.ending
        self.paused_since = state.paused_since
        self.pauses = state.pauses
        self.approved = state.approved

    def set(self, task_id: str, ts: TaskState) -> None:
        """Replace ``task_id``'s state (its timer is re-armed from it)."""
        self.tasks[task_id] = ts
        self.touch(task_id)

    def touch(self, task_id: str) -> None:
        """Note that ``task_id``'s timers change (``ORCHESTRATION_TIMER``: the pause's)."""
        if task_id not in self.touched:
            self.touched.append(task_id)

    def service(self, task_id: str) -> str:
        """The service that runs ``task_id``."""
        return self.state.service_of(task_id)

    def version(self, task_id: str) -> str | None:
        """The service version the plan pins for ``task_id``, if any."""
        return self.state.task_of(task_id).version

    def complete(self, task_id: str, attempt: int, output: dict[str, Any]) -> None:
        """Record ``task_id``'s output; the input is kept for a compensation."""
        # The input is kept: a compensation hands it back to the service.
        previous = self.tasks[task_id]
        self.set(
            task_id,
            TaskState(status="completed", attempt=attempt, input=previous.input, output=output),
        )
        self.completed = [*self.completed, task_id]

    def dispatch(self, task_id: str, attempt: int, task_input: dict[str, Any]) -> None:
        """Dispatch an attempt of ``task_id``, or hold it while its service is unhealthy.

        A task of a gated service (``PlanTask.gate``) whose condition holds on its input is
        held for approval instead, before its first attempt (once approved, never again).
        """
        state = self.state
        planned = state.task_of(task_id)
        if planned.gate is not None and attempt == 1 and task_id not in self.approved:
            held, why = needs_approval(planned.gate, task_input)
            if held:
                self.hold_for_approval(task_id, planned.gate, why, task_input)
                return
        if self.services.unhealthy and planned.service in self.services.unhealthy:
            # Held until the service is back (or the pause's grace period ends).
            self.set(
                task_id,
                TaskState(
                    status="paused",
                    attempt=attempt - 1,
                    input=task_input,
                    error=self.tasks[task_id].error,
                ),
            )
            return
        self.set(
            task_id,
            TaskState(
                status="running",
                attempt=attempt,
                deadline=self.now + state.task_timeout_s,
                input=task_input,
            ),
        )
        self.emit.append(
            TaskDispatched(
                event_id=ids.dispatch_id(state.id, task_id, attempt),
                at=self.now,
                orchestration_id=state.id,
                task_id=task_id,
                service=planned.service,
                input=task_input,
                attempt=attempt,
                idempotency_key=ids.idempotency_key(state.id, task_id),
                timeout_s=state.task_timeout_s,
                version=planned.version,
            )
        )

    def hold_for_approval(
        self, task_id: str, condition: str, why: str, task_input: dict[str, Any]
    ) -> None:
        """Hold ``task_id`` until a person approves it (or the approval expires)."""
        state = self.state
        expires_at = self.now + (state.approval_timeout_s or self.policy.approval_timeout_s)
        self.set(
            task_id,
            TaskState(status="awaiting_approval", attempt=0, deadline=expires_at, input=task_input),
        )
        self.emit.append(
            TaskApprovalRequested(
                event_id=ids.approval_request_id(state.id, task_id),
                at=self.now,
                orchestration_id=state.id,
                task_id=task_id,
                service=state.service_of(task_id),
                input=task_input,
                condition=condition,
                reason=why,
                expires_at=expires_at,
                project=state.project,
                webhook=state.webhook,
            )
        )

    def approve(self, task_id: str) -> None:
        """A person approved the held ``task_id``: dispatch its first attempt now."""
        self.approved = [*self.approved, task_id]
        self.dispatch(task_id, 1, self.tasks[task_id].input or {})

    # --- stopping forward execution and compensating ---------------------------------------

    def fail(self, error: str, task_id: str | None) -> Outcome:
        """Fail the orchestration (``task_id`` caused it, if given) and stop."""
        if task_id is not None:
            self.set(task_id, msgspec.structs.replace(self.tasks[task_id], status="failed"))
        return self.stop(Ending(kind="failed", reason=error, task_id=task_id))

    def stop(self, ending: Ending) -> Outcome:
        """End forward execution: compensate what completed, or end at once."""
        state = self.state
        self.ending = ending
        if self.paused_since is not None:
            self.paused_since = None
            self.touch(ORCHESTRATION_TIMER)
        service_of = {t.id: t.service for t in state.plan.tasks}
        order, skipped = compensation_order(self.completed, service_of, self.services.revertible)
        self.skipped = skipped
        if not order:
            return self.finish()
        self.status = "compensating"
        self.comp_order = order
        self.comps = {t: CompState() for t in order}
        self.emit.append(
            OrchestrationCompensating(
                event_id=ids.compensating_id(state.id),
                at=self.now,
                orchestration_id=state.id,
                cause=ending.kind,
                reason=ending.reason,
                tasks=list(order),
                skipped=list(skipped),
            )
        )
        return self.compensate_next()

    def compensate_next(self) -> Outcome:
        """Start the next pending compensation, or finish when none is left."""
        for task_id in self.comp_order:
            comp = self.comps[task_id]
            if comp.status in ("running", "retry_wait"):
                return self.outcome()
            if comp.status == "pending":
                self.comp_dispatch(task_id, 1, None)
                return self.outcome()
        return self.finish()

    def comp_dispatch(self, task_id: str, attempt: int, previous_error: str | None) -> None:
        """Send attempt ``attempt`` of ``task_id``'s compensation."""
        state = self.state
        ts = self.tasks[task_id]
        assert self.ending is not None
        self.set_comp(
            task_id,
            CompState(
                status="running",
                attempt=attempt,
                deadline=self.now + state.task_timeout_s,
                error=previous_error,
            ),
        )
        self.emit.append(
            TaskCompensating(
                event_id=ids.compensation_id(state.id, task_id, attempt),
                at=self.now,
                orchestration_id=state.id,
                task_id=task_id,
                service=self.service(task_id),
                input=ts.input or {},
                output=ts.output or {},
                reason=self.ending.reason,
                attempt=attempt,
                idempotency_key=ids.revert_key(state.id, task_id),
                timeout_s=state.task_timeout_s,
                previous_error=previous_error,
                version=self.version(task_id),
            )
        )

    def set_comp(self, task_id: str, comp: CompState) -> None:
        """Replace ``task_id``'s compensation state."""
        self.comps = {**self.comps, task_id: comp}
        self.touch(task_id)

    def comp_failed(self, task_id: str, error: str, *, retryable: bool) -> Outcome:
        """A compensation attempt failed: retry it, or abandon it for an operator."""
        comp = self.comps[task_id]
        n = comp.attempt
        if retryable and n < self.policy.comp_max_attempts:
            delay = self.policy.backoff(n, ids.revert_key(self.state.id, task_id))
            self.set_comp(
                task_id,
                CompState(status="retry_wait", attempt=n, deadline=self.now + delay, error=error),
            )
            return self.outcome()
        self.set_comp(task_id, CompState(status="failed", attempt=n, error=error))
        ts = self.tasks[task_id]
        assert self.ending is not None
        self.emit.append(
            TaskCompensationAbandoned(
                event_id=ids.compensation_abandoned_id(self.state.id, task_id),
                at=self.now,
                orchestration_id=self.state.id,
                task_id=task_id,
                service=self.service(task_id),
                input=ts.input or {},
                output=ts.output or {},
                reason=self.ending.reason,
                error=error,
                attempts=n,
                project=self.state.project,
            )
        )
        return self.compensate_next()

    def finish(self) -> Outcome:
        """Append the compensation summary and the terminal event still owed."""
        state = self.state
        ending = self.ending
        assert ending is not None
        summary: CompensationSummary | None = None
        if self.comp_order:
            summary = CompensationSummary(
                compensated=[t for t in self.comp_order if self.comps[t].status == "done"],
                failed=[t for t in self.comp_order if self.comps[t].status == "failed"],
                skipped=list(self.skipped),
            )
            self.emit.append(
                OrchestrationCompensated(
                    event_id=ids.compensated_id(state.id),
                    at=self.now,
                    orchestration_id=state.id,
                    compensation=summary,
                )
            )
        reason = ending.reason
        if summary is not None and summary.failed:
            failed = ", ".join(f"{t} ({self.service(t)})" for t in summary.failed)
            reason = f"{reason}; compensation failed for {failed}: an operator must resolve it"
        if not ending.emitted:
            terminal: Event
            if ending.kind == "failed":
                terminal = OrchestrationFailed(
                    event_id=ids.end_id(state.id),
                    at=self.now,
                    orchestration_id=state.id,
                    error=reason,
                    task_id=ending.task_id,
                    webhook=state.webhook,
                    project=state.project,
                    uncovered=list(state.plan.uncovered),
                    compensation=summary,
                )
            else:
                terminal = OrchestrationAborted(
                    event_id=ids.end_id(state.id),
                    at=self.now,
                    orchestration_id=state.id,
                    reason=reason,
                    payload=ending.payload,
                    webhook=state.webhook,
                    project=state.project,
                    uncovered=list(state.plan.uncovered),
                    task_id=ending.task_id,
                    compensation=summary,
                )
            self.emit.append(terminal)
        return self.outcome(status=ending.kind, error=ending.reason)

    # --- forward execution ---------------------------------------------------------------

    def advance(self) -> Outcome:
        """Dispatch whatever became releasable; end the orchestration when all completed."""
        state = self.state
        if self.status != "running":
            return self.outcome()
        statuses = {k: v.status for k, v in self.tasks.items()}
        if all(s == "completed" for s in statuses.values()):
            outputs = {t.id: self.tasks[t.id].output or {} for t in state.plan.tasks}
            self.emit.append(
                OrchestrationDone(
                    event_id=ids.end_id(state.id),
                    at=self.now,
                    orchestration_id=state.id,
                    results=merge_results(outputs),
                    outputs=outputs,
                    webhook=state.webhook,
                    project=state.project,
                    uncovered=list(state.plan.uncovered),
                )
            )
            return self.outcome(status="done")
        released = releasable(state.plan, statuses, state.mode, state.deps)
        if released:
            outputs_or_none = {k: v.output for k, v in self.tasks.items()}
            by_id = {t.id: t for t in state.plan.tasks}
            for task_id in released:
                try:
                    task_input = resolve(by_id[task_id].input, outputs_or_none)
                except UnresolvedReference as exc:
                    return self.fail(f"task {task_id!r} cannot start: {exc}", task_id)
                self.dispatch(task_id, 1, task_input)
        return self.outcome()

    def resume_ready(self) -> None:
        """Dispatch every held task whose service is healthy again."""
        for task_id, ts in list(self.tasks.items()):
            if ts.status == "paused" and self.service(task_id) not in self.services.unhealthy:
                self.dispatch(task_id, ts.attempt + 1, ts.input or {})

    def fail_unknown(self, task_id: str, what: str) -> Outcome:
        """A task that may have taken effect ended without a result: fail, ask an operator."""
        ts = self.tasks[task_id]
        service = self.service(task_id)
        state = self.state
        error = (
            f"task {task_id!r} ({service}) {what} on attempt {ts.attempt} and is not run "
            f"again: whether it took effect is unknown; an operator must check {service} "
            "and resolve it (orra comp-fail)"
        )
        self.emit.append(
            TaskCompensationAbandoned(
                event_id=ids.unknown_outcome_id(state.id, task_id),
                at=self.now,
                orchestration_id=state.id,
                task_id=task_id,
                service=service,
                input=ts.input or {},
                output={},
                reason=error,
                error=f"{what}; not retried, its outcome is unknown",
                attempts=ts.attempt,
                project=state.project,
            )
        )
        return self.fail(error, task_id)

    def fail_attempt(self, task_id: str, reason: str, *, retryable: bool) -> Outcome:
        """An attempt failed: retry it after the backoff, or fail the orchestration."""
        ts = self.tasks[task_id]
        service = self.service(task_id)
        n = ts.attempt
        if not retryable:
            return self.fail(
                f"task {task_id!r} ({service}) failed with a non-retryable error on attempt "
                f"{n}: {reason}",
                task_id,
            )
        if n >= self.policy.max_attempts:
            return self.fail(
                f"task {task_id!r} ({service}) failed after {n} attempt"
                f"{'s' if n != 1 else ''}: {reason}",
                task_id,
            )
        state = self.state
        delay = self.policy.backoff(n, ids.idempotency_key(state.id, task_id))
        self.set(
            task_id,
            msgspec.structs.replace(
                ts, status="retry_wait", deadline=self.now + delay, error=reason
            ),
        )
        self.emit.append(
            TaskRetrying(
                event_id=ids.retry_id(state.id, task_id, n + 1),
                at=self.now,
                orchestration_id=state.id,
                task_id=task_id,
                next_attempt=n + 1,
                delay_s=delay,
                reason=reason,
            )
        )
        return self.outcome()

    def _pause_events(self) -> None:
        """Append ``orchestration.paused`` / ``resumed`` when held tasks appear or go."""
        if self.status != "running":
            return
        state = self.state
        held = [k for k, v in self.tasks.items() if v.status == "paused"]
        if held and self.paused_since is None:
            self.paused_since = self.now
            self.pauses += 1
            self.touch(ORCHESTRATION_TIMER)
            services = sorted({self.service(t) for t in held})
            self.emit.append(
                OrchestrationPaused(
                    event_id=ids.pause_id(state.id, self.pauses),
                    at=self.now,
                    orchestration_id=state.id,
                    services=services,
                    tasks=held,
                    grace_s=state.pause_grace_s,
                    fail_at=self.now + state.pause_grace_s,
                )
            )
        elif not held and self.paused_since is not None:
            was_held = [k for k, v in state.tasks.items() if v.status == "paused"]
            self.emit.append(
                OrchestrationResumed(
                    event_id=ids.resume_id(state.id, self.pauses),
                    at=self.now,
                    orchestration_id=state.id,
                    services=sorted({self.service(t) for t in was_held}),
                    paused_s=round(self.now - self.paused_since, 6),
                )
            )
            self.paused_since = None
            self.touch(ORCHESTRATION_TIMER)

    def outcome(
        self, status: OrchestrationStatus | None = None, error: str | None = None
    ) -> Outcome:
        """The transition's outcome: the new state, its events and the timers to arm."""
        if status is not None:
            self.status = status
        self._pause_events()
        new = msgspec.structs.replace(
            self.state,
            tasks=self.tasks,
            status=self.status,
            error=error if error is not None else self.state.error,
            completed=self.completed,
            comp_order=self.comp_order,
            comps=self.comps,
            skipped=self.skipped,
            ending=self.ending,
            paused_since=self.paused_since,
            pauses=self.pauses,
            approved=self.approved,
        )
        timers = [t for task_id in self.touched if (t := timer_for(new, task_id)) is not None]
        return Outcome(new, self.emit, timers, tuple(self.touched))

"""The dispatcher's rules: release, references, results, compensation order, timers.

Pure functions of a plan or a state (no I/O). The group-release rule is :func:`releasable`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orra_dispatcher.domain.state import ORCHESTRATION_TIMER, Orchestration, Timer, TimerKind
from orra_dispatcher.errors import InvalidPlan, UnresolvedReference
from orra_events.errors import UnresolvedReference as ReferenceNotFound
from orra_events.plan import analyse_plan
from orra_events.plan import dependencies as plan_dependencies
from orra_events.plan import resolve as resolve_references
from orra_events.webhooks import flat_results

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from orra_dispatcher.domain.state import TaskStatus
    from orra_events import ExecutionMode, Plan

__all__ = [
    "approval_timer",
    "compensation_order",
    "dependencies",
    "grace_timer",
    "merge_results",
    "releasable",
    "resolve",
    "timer_for",
    "timers_of",
    "validate_plan",
]


def resolve(value: Any, outputs: Mapping[str, Mapping[str, Any] | None]) -> Any:
    """Replace every reference in ``value`` by the referenced output value.

    The grammar and the substitution are :func:`orra_events.plan.resolve`'s.

    Args:
        value: A task's input, or any JSON value within it.
        outputs: Output of each task of the plan by id (``None`` when not completed).

    Raises:
        UnresolvedReference: a referenced task is not in the plan or has no output, or its
            output lacks the referenced path.
    """
    try:
        return resolve_references(value, outputs)
    except ReferenceNotFound as exc:
        raise UnresolvedReference(str(exc)) from None


def dependencies(plan: Plan) -> dict[str, list[str]]:
    """Task ids that each task's input references, in plan order, by task id."""
    return plan_dependencies(plan.tasks)


def releasable(
    plan: Plan,
    statuses: Mapping[str, TaskStatus],
    mode: ExecutionMode,
    deps: Mapping[str, Collection[str]] | None = None,
) -> list[str]:
    """Ids of the pending tasks that may be dispatched now, in plan order.

    Args:
        plan: The plan.
        statuses: Status of every task of the plan, by id.
        mode: ``groups``: the pending tasks of the first group that is not fully completed
            (so group k+1 only once every task of groups 1..k completed). ``eager``: every
            pending task whose referenced tasks all completed.
        deps: The plan's :func:`dependencies`, when already computed.
    """
    if mode == "groups":
        for group in plan.parallel_groups:
            if any(statuses[t] != "completed" for t in group):
                return [t for t in group if statuses[t] == "pending"]
        return []
    graph = dependencies(plan) if deps is None else deps
    return [
        t.id
        for t in plan.tasks
        if statuses[t.id] == "pending" and all(statuses[d] == "completed" for d in graph[t.id])
    ]


def validate_plan(plan: Plan) -> dict[str, list[str]]:
    """Check that the plan can run (:func:`orra_events.plan.check_plan`); return its deps.

    Groups coarser than the dependency levels are accepted: they run, with less parallelism.

    Raises:
        InvalidPlan: every structural issue, ``kind: message`` joined by ``; ``.
    """
    analysis = analyse_plan(plan)
    if analysis.issues:
        raise InvalidPlan("; ".join(str(issue) for issue in analysis.issues))
    return analysis.dependencies


def merge_results(outputs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Merge task outputs into the flat ``results`` of ``orchestration.done``.

    The rule is :func:`orra_events.webhooks.flat_results` (written once, with the webhook
    payload it feeds): outputs merged in plan order, a field that several tasks return
    taking the value of the last of them, so a field never moves between runs of a plan.

    Args:
        outputs: Output of each task, by task id, in plan order.
    """
    return flat_results(outputs)


def compensation_order(
    completed: Sequence[str], service_of: Mapping[str, str], revertible: Collection[str]
) -> tuple[list[str], list[str]]:
    """Which completed tasks to compensate, and in what order.

    Args:
        completed: Task ids in order of completion.
        service_of: Service of each task.
        revertible: Services that can revert.

    Returns:
        The tasks of revertible services in reverse order of completion, and the other
        completed tasks (skipped), in order of completion.
    """
    order = [t for t in reversed(completed) if service_of[t] in revertible]
    skipped = [t for t in completed if service_of[t] not in revertible]
    return order, skipped


def timers_of(state: Orchestration) -> list[Timer]:
    """Every timer a state needs armed: re-armed from absolute deadlines after a restart."""
    if state.terminal:
        return []
    timers = [t for task_id in state.tasks if (t := timer_for(state, task_id)) is not None]
    grace = grace_timer(state) or approval_timer(state)
    if grace is not None:
        timers.append(grace)
    return timers


def approval_timer(state: Orchestration) -> Timer | None:
    """The timer that rejects a held plan as expired, if the plan waits for approval."""
    if state.status != "awaiting_approval" or state.approval_expires_at is None:
        return None
    return Timer(
        orchestration_id=state.id,
        task_id=ORCHESTRATION_TIMER,
        kind="approval",
        attempt=0,
        due_at=state.approval_expires_at,
    )


def grace_timer(state: Orchestration) -> Timer | None:
    """The timer that fails a pause which lasted too long, if the state is paused."""
    if state.paused_since is None or state.status != "running":
        return None
    return Timer(
        orchestration_id=state.id,
        task_id=ORCHESTRATION_TIMER,
        kind="grace",
        attempt=state.pauses,
        due_at=state.paused_since + state.pause_grace_s,
    )


def timer_for(state: Orchestration, task_id: str) -> Timer | None:
    """The timer ``task_id``'s state needs armed (timeout, retry, approval expiry), if any."""
    if task_id == ORCHESTRATION_TIMER:
        return grace_timer(state) or approval_timer(state)
    if state.terminal:
        return None
    comp = state.comps.get(task_id)
    if comp is not None:
        if comp.deadline is None:
            return None
        if comp.status == "running":
            kind: TimerKind = "comp_timeout"
            attempt = comp.attempt
        elif comp.status == "retry_wait":
            kind, attempt = "comp_retry", comp.attempt + 1
        else:
            return None
        return Timer(
            orchestration_id=state.id,
            task_id=task_id,
            kind=kind,
            attempt=attempt,
            due_at=comp.deadline,
        )
    ts = state.tasks[task_id]
    if ts.deadline is None or state.status != "running":
        return None
    if ts.status == "running":
        return Timer(
            orchestration_id=state.id,
            task_id=task_id,
            kind="timeout",
            attempt=ts.attempt,
            due_at=ts.deadline,
        )
    if ts.status == "retry_wait":
        return Timer(
            orchestration_id=state.id,
            task_id=task_id,
            kind="retry",
            attempt=ts.attempt + 1,
            due_at=ts.deadline,
        )
    if ts.status == "awaiting_approval":
        return Timer(
            orchestration_id=state.id,
            task_id=task_id,
            kind="approval",
            attempt=ts.attempt,
            due_at=ts.deadline,
        )
    return None

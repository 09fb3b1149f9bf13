"""The dispatcher's pure logic: an orchestration aggregate and its transitions. No I/O.

An :class:`Orchestration` is the state of one running plan. :func:`apply` takes a state, an
input (an event from the log or a :class:`Timer` firing) and the current time, and returns
an :class:`Outcome`: the new state, the events to append and the timers to arm. The same
state, input and time always give the same outcome, and every emitted event has the
deterministic id of ``docs/architecture.md``, so a repeated transition (after a crash or
a redelivery) appends nothing new.

Rules, in one place:

* **Release** (:func:`releasable`): ``groups`` releases the tasks of parallel group k+1 only
  when every task of groups 1..k completed; ``eager`` releases each task as soon as every
  task that its input references completed (a task without references starts at once).
* **Plans and references**: the grammar is :mod:`orra_events.plan`'s, the planner's too.
  :func:`start` refuses a plan with a structural issue (:func:`validate_plan`: bad or
  duplicate ids, a task in no group or two, a reference that is malformed, unknown, to
  the task itself or not to an earlier group) by failing the orchestration with every
  issue. :func:`resolve` replaces each reference (``"$payment.items.0.id"``, at any depth
  of the input) by the value at that path of the task's output and unescapes ``$$``
  literals; a path the output lacks fails the orchestration
  (:class:`~orra_dispatcher.errors.UnresolvedReference`, saying where the path stops).
* **Retries**: a retryable failure or a timeout of attempt *n* < ``max_attempts`` emits
  ``task.retrying`` and dispatches attempt *n+1* after
  ``min(retry_max_s, retry_base_s * 2**(n-1))``, shortened by a deterministic jitter of
  up to ``retry_jitter`` of itself (derived from the idempotency key, so a replay computes
  the same delay). A non-retryable failure, or the failure of the last attempt, fails the
  orchestration naming the task and the cause.
* **Unknown outcomes**: a timeout of a task whose service is registered with
  ``retry_on_timeout`` false (:attr:`Services.no_timeout_retry`), or a failure reported
  with ``outcome_unknown``, is never retried: the task may have taken effect, and running
  it again could do it twice. The orchestration fails (and compensates what completed),
  and the task is left for an operator with ``task.compensation_abandoned`` (event id
  ``uk:<orch>:<task>``; listed by ``orra comp-fail ls``, settled with ``resolve`` or
  ``ignore``) whose ``error`` says what happened.
* **Stale and duplicate inputs** are no-ops: the completion of a completed task, the
  failure of an older attempt, a timer for an attempt that already ended, anything for an
  ended orchestration. A **late success of an earlier attempt is a success**: all attempts
  share one idempotency key, so any attempt's output is the task's output. A result for an
  attempt newer than the state knows, or for a task the state has not dispatched, means the
  state is stale (another replica moved on): the outcome says ``stale`` and the caller
  reloads the state before trying again.
* **Results** (:func:`merge_results`): see its docstring.
* **Compensation**: when an orchestration fails, or a service aborts it (``task.aborted``),
  or a user aborts it (``orchestration.aborted``), nothing more is dispatched and every
  completed task of a revertible service is compensated, one at a time, in reverse order
  of completion (``orchestration.compensating``, then ``task.compensating`` per attempt).
  A compensation attempt that fails or times out is retried with the same backoff, up to
  ``comp_max_attempts``; then it is abandoned (``task.compensation_abandoned``, kept for an
  operator) and the next task is compensated. When every compensation finished,
  ``orchestration.compensated`` is appended, then the terminal event (``orchestration.failed``
  or ``orchestration.aborted``) with the :class:`~orra_events.CompensationSummary`; a user's
  abort already appended its terminal event, so only the summary follows. A task that
  completes while compensation runs (it was in flight) is compensated next. With nothing
  to compensate the terminal event is appended at once, as before.
* **Pause** (unhealthy services): a task about to be dispatched whose service is unhealthy
  (:attr:`Services.unhealthy`, its heartbeats stopped) is held as ``paused`` instead.
  The first paused task appends ``orchestration.paused`` and arms a grace timer
  (``pause_grace_s``: the plan's, else the policy's); a ``health`` input (a service came
  back) dispatches every held task whose service is healthy, and when none is held any
  more ``orchestration.resumed`` is appended. A grace timer that fires while the same
  pause lasts fails the orchestration.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from orra_dispatcher.errors import InvalidPlan, UnresolvedReference
from orra_events import (
    CompensationSummary,
    Event,
    ExecutionMode,
    OrchestrationAborted,
    OrchestrationCompensated,
    OrchestrationCompensating,
    OrchestrationDone,
    OrchestrationFailed,
    OrchestrationPaused,
    OrchestrationResumed,
    Plan,
    PlanCreated,
    PlanFailed,
    TaskAborted,
    TaskCompensated,
    TaskCompensating,
    TaskCompensationAbandoned,
    TaskCompensationFailed,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    TaskRetrying,
    TaskTimedOut,
    ids,
)
from orra_events.errors import UnresolvedReference as ReferenceNotFound
from orra_events.liveness import is_unhealthy
from orra_events.plan import analyse_plan
from orra_events.plan import dependencies as plan_dependencies
from orra_events.plan import resolve as resolve_references
from orra_events.webhooks import flat_results

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from orra_events import PlanTask

__all__ = [
    "ALL_HEALTHY",
    "SNAPSHOT_VERSION",
    "CompState",
    "Ending",
    "Input",
    "Orchestration",
    "OrchestrationStatus",
    "Outcome",
    "Policy",
    "Services",
    "TaskState",
    "TaskStatus",
    "Timer",
    "TimerKind",
    "apply",
    "compensation_order",
    "dependencies",
    "is_unhealthy",
    "merge_results",
    "releasable",
    "resolve",
    "start",
    "timers_of",
    "validate_plan",
]

SNAPSHOT_VERSION = 1
"""Version of the stored :class:`Orchestration` snapshot format."""

TaskStatus = Literal["pending", "running", "retry_wait", "paused", "completed", "failed"]
"""``pending`` (not dispatched), ``running`` (dispatched, awaiting its result),
``retry_wait`` (an attempt failed, the next one is due at ``deadline``), ``paused`` (due,
but its service is unhealthy; ``attempt`` is the last one dispatched, ``input`` the one to
send), ``completed``, ``failed`` (the task made the orchestration fail)."""

OrchestrationStatus = Literal["running", "compensating", "done", "failed", "aborted"]
TimerKind = Literal["timeout", "retry", "comp_timeout", "comp_retry", "grace", "health"]
CompStatus = Literal["pending", "running", "retry_wait", "done", "failed"]

ORCHESTRATION_TIMER = ""
"""``Timer.task_id`` of timers about the whole orchestration (pause grace, health)."""

# --- state -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """The dispatcher settings that shape transitions.

    Attributes:
        max_attempts: Attempts per task, the first one included (at least 1).
        retry_base_s: Delay before the second attempt; it doubles per attempt.
        retry_max_s: Upper bound of a retry delay.
        retry_jitter: Fraction (0..1) by which a delay may be shortened, deterministically.
        task_timeout_s: Default per-attempt timeout when the plan gives none.
        mode: Default execution mode when the plan gives none.
        comp_max_attempts: Attempts per compensation before it is abandoned.
        pause_grace_s: How long tasks may wait for an unhealthy service, when the plan
            does not say.
    """

    max_attempts: int = 3
    retry_base_s: float = 0.5
    retry_max_s: float = 30.0
    retry_jitter: float = 0.0
    task_timeout_s: float = 30.0
    mode: ExecutionMode = "groups"
    comp_max_attempts: int = 5
    pause_grace_s: float = 300.0

    def backoff(self, failed_attempt: int, key: str = "") -> float:
        """Delay before the attempt after ``failed_attempt`` (1-based)."""
        delay = min(self.retry_max_s, self.retry_base_s * 2 ** max(0, failed_attempt - 1))
        if self.retry_jitter > 0:
            spread = zlib.crc32(f"{key}:{failed_attempt}".encode()) / 0xFFFFFFFF
            delay *= 1.0 - self.retry_jitter * spread
        return float(round(delay, 6))


@dataclass(frozen=True, slots=True)
class Services:
    """What the transitions need to know about services, as of the input being applied.

    The dispatcher passes its registry's live sets (no copy per input).

    Attributes:
        unhealthy: Services whose heartbeats stopped; their tasks are held (paused). A
            service never seen heartbeating is not in it (it may be a test double).
        revertible: Services registered with ``revertible=True``.
        no_timeout_retry: Services registered with ``retry_on_timeout=False``: a task
            of theirs that timed out is not retried but left for an operator.
    """

    unhealthy: Collection[str] = frozenset()
    revertible: Collection[str] = frozenset()
    no_timeout_retry: Collection[str] = frozenset()


ALL_HEALTHY = Services()
"""No unhealthy service, nothing revertible."""


class CompState(msgspec.Struct, frozen=True, kw_only=True):
    """Where the compensation of one completed task stands.

    Attributes:
        status: ``pending`` (its turn has not come), ``running`` (an attempt was sent),
            ``retry_wait`` (the next attempt is due at ``deadline``), ``done``, ``failed``
            (abandoned for an operator).
        attempt: The current (or last) attempt, 0 before the first.
        deadline: Timeout of the running attempt, or due time of the next one.
        error: The last failure.
    """

    status: CompStatus = "pending"
    attempt: int = 0
    deadline: float | None = None
    error: str | None = None


class Ending(msgspec.Struct, frozen=True, kw_only=True):
    """Why forward execution stopped, and the terminal event still owed (if any).

    Attributes:
        kind: ``failed`` or ``aborted``.
        reason: The error (failed) or the abort reason.
        task_id: The task that caused it, if one did.
        payload: The abort payload a service gave.
        emitted: Whether the terminal event is already in the log (a user's abort).
    """

    kind: Literal["failed", "aborted"]
    reason: str
    task_id: str | None = None
    payload: dict[str, Any] | None = None
    emitted: bool = False


class TaskState(msgspec.Struct, frozen=True, kw_only=True):
    """Where one task of an orchestration stands.

    Attributes:
        status: See :data:`TaskStatus`.
        attempt: The current (or last) attempt, 0 before the first dispatch.
        deadline: Absolute UNIX time of the running attempt's timeout, or of the next
            attempt's dispatch in ``retry_wait``.
        input: The resolved input sent with the current attempt.
        output: The output, once completed.
        error: The last failure's cause.
    """

    status: TaskStatus = "pending"
    attempt: int = 0
    deadline: float | None = None
    input: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    error: str | None = None


class Orchestration(msgspec.Struct, frozen=True, kw_only=True):
    """The aggregate: one orchestration's plan and the state of each of its tasks.

    Attributes:
        id: The orchestration id.
        plan: The plan being executed.
        mode: ``groups`` or ``eager``.
        task_timeout_s: Per-attempt timeout of every task.
        webhook: Carried on to the terminal event.
        project: Carried on to the terminal event.
        tasks: State of each task, by task id.
        deps: Task ids each task's input references, by task id.
        status: ``running``, ``compensating`` (forward execution stopped, compensations
            run), then ``done``, ``failed`` or ``aborted``.
        error: Why it failed.
        completed: Task ids in order of completion.
        comp_order: Tasks to compensate, in compensation order.
        comps: Compensation state of each task of ``comp_order``.
        skipped: Completed tasks that are not compensated (service not revertible).
        ending: Why forward execution stopped, once it did.
        pause_grace_s: How long a pause may last before the orchestration fails.
        paused_since: When the current pause began (``None``: not paused).
        pauses: Pauses so far (numbers the pause and resume event ids).
        v: Snapshot format version.
    """

    id: str
    plan: Plan
    mode: ExecutionMode
    task_timeout_s: float
    webhook: str | None = None
    project: str = "default"
    tasks: dict[str, TaskState]
    deps: dict[str, list[str]]
    status: OrchestrationStatus = "running"
    error: str | None = None
    completed: list[str] = msgspec.field(default_factory=list)
    comp_order: list[str] = msgspec.field(default_factory=list)
    comps: dict[str, CompState] = msgspec.field(default_factory=dict)
    skipped: list[str] = msgspec.field(default_factory=list)
    ending: Ending | None = None
    pause_grace_s: float = 300.0
    paused_since: float | None = None
    pauses: int = 0
    v: int = SNAPSHOT_VERSION

    @property
    def terminal(self) -> bool:
        """Whether the orchestration has ended (done, failed or aborted)."""
        return self.status not in ("running", "compensating")

    @property
    def paused_tasks(self) -> list[str]:
        """Ids of the tasks held because their service is unhealthy."""
        return [k for k, v in self.tasks.items() if v.status == "paused"]

    def service_of(self, task_id: str) -> str:
        """The service that runs ``task_id``."""
        return self.task_of(task_id).service

    def task_of(self, task_id: str) -> PlanTask:
        """The plan's task ``task_id`` (its service, input and version)."""
        for task in self.plan.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)


class Timer(msgspec.Struct, frozen=True, kw_only=True):
    """A timer to arm, and the input it becomes when it fires.

    Attributes:
        orchestration_id: Whose task.
        task_id: Which task.
        kind: ``timeout`` of a running attempt, ``retry`` (dispatch the next attempt),
            the same two for a compensation (``comp_timeout``, ``comp_retry``), ``grace``
            (a pause lasted too long; ``attempt`` is the pause number) or ``health`` (a
            service came back: dispatch what waited for it). The last two have the task id
            :data:`ORCHESTRATION_TIMER`.
        attempt: The running attempt (timeout) or the attempt to dispatch (retry).
        due_at: Absolute UNIX time at which it fires.
    """

    orchestration_id: str
    task_id: str
    kind: TimerKind
    attempt: int
    due_at: float


Input = (
    PlanCreated
    | PlanFailed
    | TaskCompleted
    | TaskFailed
    | TaskAborted
    | TaskCompensated
    | TaskCompensationFailed
    | OrchestrationAborted
    | Timer
)
"""What :func:`apply` accepts."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of a transition.

    Attributes:
        state: The new state; ``None`` when there is none (``plan.failed``, unknown id).
        emit: Events to append, in order; every ``task.dispatched`` also goes to
            ``work.<service>``.
        timers: Timers armed by this transition.
        touched: Ids of the tasks whose state changed (their old timers are void).
        changed: Whether anything must be stored and published; ``False`` is a no-op.
        stale: The input is ahead of ``state``: reload the state and apply it again.
        note: Why the transition was a no-op, for debug logs.
    """

    state: Orchestration | None
    emit: list[Event] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    touched: tuple[str, ...] = ()
    changed: bool = True
    stale: bool = False
    note: str = ""


def _noop(state: Orchestration | None, note: str, *, stale: bool = False) -> Outcome:
    return Outcome(state, changed=False, stale=stale, note=note)


# --- references and release --------------------------------------------------------------


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
    timers = [t for task_id in state.tasks if (t := _timer_for(state, task_id)) is not None]
    grace = _grace_timer(state)
    if grace is not None:
        timers.append(grace)
    return timers


def _grace_timer(state: Orchestration) -> Timer | None:
    if state.paused_since is None or state.status != "running":
        return None
    return Timer(
        orchestration_id=state.id,
        task_id=ORCHESTRATION_TIMER,
        kind="grace",
        attempt=state.pauses,
        due_at=state.paused_since + state.pause_grace_s,
    )


def _timer_for(state: Orchestration, task_id: str) -> Timer | None:
    if task_id == ORCHESTRATION_TIMER:
        return _grace_timer(state)
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
    return None


# --- transitions -------------------------------------------------------------------------


class _Builder:
    """Accumulates one transition: changed tasks, events, timers."""

    __slots__ = (
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

    def set(self, task_id: str, ts: TaskState) -> None:
        self.tasks[task_id] = ts
        self.touch(task_id)

    def touch(self, task_id: str) -> None:
        if task_id not in self.touched:
            self.touched.append(task_id)

    def service(self, task_id: str) -> str:
        return self.state.service_of(task_id)

    def version(self, task_id: str) -> str | None:
        return self.state.task_of(task_id).version

    def complete(self, task_id: str, attempt: int, output: dict[str, Any]) -> None:
        # The input is kept: a compensation hands it back to the service.
        previous = self.tasks[task_id]
        self.set(
            task_id,
            TaskState(status="completed", attempt=attempt, input=previous.input, output=output),
        )
        self.completed = [*self.completed, task_id]

    def dispatch(self, task_id: str, attempt: int, task_input: dict[str, Any]) -> None:
        state = self.state
        planned = state.task_of(task_id)
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

    # --- stopping forward execution and compensating ---------------------------------------

    def fail(self, error: str, task_id: str | None) -> Outcome:
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
        self.comps = {**self.comps, task_id: comp}
        self.touch(task_id)

    def comp_failed(self, task_id: str, error: str, *, retryable: bool) -> Outcome:
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
        )
        timers = [t for task_id in self.touched if (t := _timer_for(new, task_id)) is not None]
        return Outcome(new, self.emit, timers, tuple(self.touched))


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
    )
    builder = _Builder(state, policy, now, services)
    if error is not None:
        return builder.fail(error, None)
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
        return _noop(state, f"task {event.task_id!r} is not in the plan")
    if ts.status == "completed":
        return _noop(state, "task already completed")
    if ts.status == "pending" or event.attempt > ts.attempt:
        return _noop(state, "result of an attempt this state has not dispatched", stale=True)
    builder = _Builder(state, policy, now, services)
    if isinstance(event, TaskCompleted):
        # Any attempt's success is the task's success: they share one idempotency key.
        builder.complete(event.task_id, ts.attempt, event.output)
        if state.status == "compensating":
            return _late_completion(builder, event.task_id)
        return builder.advance()
    if state.status != "running":
        return _noop(state, f"{event.TYPE} while compensating")
    if isinstance(event, TaskAborted):
        if event.attempt < ts.attempt or ts.status != "running":
            return _noop(state, "abort from an attempt that already ended")
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
        return _noop(state, "failure of an attempt that already ended")
    if event.outcome_unknown and not event.retryable:
        return builder.fail_unknown(event.task_id, f"failed ({event.error})")
    return builder.fail_attempt(event.task_id, event.error, retryable=event.retryable)


def _late_completion(builder: _Builder, task_id: str) -> Outcome:
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
        return _noop(state, "compensation result ahead of the state", stale=True)
    if comp is None:
        return _noop(state, "compensation result of a task not being compensated")
    if comp.status == "pending" or event.attempt > comp.attempt:
        return _noop(state, "compensation result ahead of the state", stale=True)
    if comp.status in ("done", "failed"):
        return _noop(state, "compensation already finished")
    builder = _Builder(state, policy, now, services)
    if isinstance(event, TaskCompensated):
        builder.set_comp(event.task_id, CompState(status="done", attempt=comp.attempt))
        return builder.compensate_next()
    if event.attempt < comp.attempt or comp.status != "running":
        return _noop(state, "failure of a compensation attempt that already ended")
    return builder.comp_failed(event.task_id, event.error, retryable=event.retryable)


def _on_timer(
    state: Orchestration, timer: Timer, policy: Policy, now: float, services: Services
) -> Outcome:
    builder = _Builder(state, policy, now, services)
    if timer.kind == "health":
        if state.status != "running" or not state.paused_tasks:
            return _noop(state, "nothing waits for a service")
        builder.resume_ready()
        if not builder.touched:
            return _noop(state, "the services it waits for are still unhealthy")
        return builder.outcome()
    if timer.kind == "grace":
        if state.status != "running" or state.paused_since is None or state.pauses != timer.attempt:
            return _noop(state, "grace period of a pause that ended")
        if now < state.paused_since + state.pause_grace_s:
            return _noop(state, "grace period not over yet")
        held = state.paused_tasks
        services_down = sorted({state.service_of(t) for t in held})
        return builder.fail(
            f"paused for more than {state.pause_grace_s:g}s: "
            f"{', '.join(services_down)} unhealthy (no heartbeat); tasks {', '.join(held)} "
            "could not start",
            None,
        )
    if timer.kind in ("comp_timeout", "comp_retry"):
        comp = state.comps.get(timer.task_id)
        if comp is None or state.status != "compensating":
            return _noop(state, "compensation timer of a task not being compensated")
        if timer.kind == "comp_timeout":
            if comp.status != "running" or comp.attempt != timer.attempt:
                return _noop(state, "timeout of a compensation attempt that already ended")
            return builder.comp_failed(
                timer.task_id, f"timed out after {state.task_timeout_s:g}s", retryable=True
            )
        if comp.status != "retry_wait" or comp.attempt + 1 != timer.attempt:
            return _noop(state, "compensation retry that is no longer due")
        builder.comp_dispatch(timer.task_id, timer.attempt, comp.error)
        return builder.outcome()
    ts = state.tasks.get(timer.task_id)
    if ts is None:
        return _noop(state, "timer of an unknown task")
    if state.status != "running":
        return _noop(state, "forward timer while compensating")
    if timer.kind == "timeout":
        if ts.status != "running" or ts.attempt != timer.attempt:
            return _noop(state, "timeout of an attempt that already ended")
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
        return _noop(state, "retry that is no longer due")
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
            return _noop(state, "already aborted")
        ending = msgspec.structs.replace(state.ending, emitted=True)
        return Outcome(msgspec.structs.replace(state, ending=ending))
    builder = _Builder(state, policy, now, services)
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
            return _noop(state, "plan already started")
        return start(item, policy, now, services)
    if isinstance(item, PlanFailed):
        if state is not None:
            return _noop(state, "plan already started")
        return _plan_failed(item, now)
    if state is None:
        return _noop(None, "no running orchestration")
    if state.terminal:
        return _noop(state, f"orchestration already {state.status}")
    if isinstance(item, OrchestrationAborted):
        return _on_abort(state, item, policy, now, services)
    if isinstance(item, Timer):
        return _on_timer(state, item, policy, now, services)
    if isinstance(item, TaskCompensated | TaskCompensationFailed):
        return _on_compensation_result(state, item, policy, now, services)
    return _on_result(state, item, policy, now, services)

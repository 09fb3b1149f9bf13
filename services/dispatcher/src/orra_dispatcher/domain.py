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
* **References** (:func:`resolve`): a string value that is exactly ``$<task id>.<path>``,
  where ``<task id>`` is a task of the plan, is replaced by that task's output at ``path``
  (dot-separated keys; a numeric segment indexes a list). References are found anywhere in
  the input, nested in lists and objects. A ``$`` string whose first segment is not a task
  id (``"$5.00"``) stays a literal. A reference to a field the output lacks fails the
  orchestration (:class:`~orra_dispatcher.errors.UnresolvedReference`).
* **Retries**: a retryable failure or a timeout of attempt *n* < ``max_attempts`` emits
  ``task.retrying`` and dispatches attempt *n+1* after
  ``min(retry_max_s, retry_base_s * 2**(n-1))``, shortened by a deterministic jitter of
  up to ``retry_jitter`` of itself (derived from the idempotency key, so a replay computes
  the same delay). A non-retryable failure, or the failure of the last attempt, fails the
  orchestration naming the task and the cause.
* **Stale and duplicate inputs** are no-ops: the completion of a completed task, the
  failure of an older attempt, a timer for an attempt that already ended, anything for an
  ended orchestration. A **late success of an earlier attempt is a success**: all attempts
  share one idempotency key, so any attempt's output is the task's output. A result for an
  attempt newer than the state knows, or for a task the state has not dispatched, means the
  state is stale (another replica moved on): the outcome says ``stale`` and the caller
  reloads the state before trying again.
* **Results** (:func:`merge_results`): see its docstring.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from orra_dispatcher.errors import InvalidPlan, UnresolvedReference
from orra_events import (
    Event,
    ExecutionMode,
    OrchestrationAborted,
    OrchestrationDone,
    OrchestrationFailed,
    Plan,
    PlanCreated,
    PlanFailed,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    TaskRetrying,
    TaskTimedOut,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

__all__ = [
    "SNAPSHOT_VERSION",
    "Input",
    "Orchestration",
    "OrchestrationStatus",
    "Outcome",
    "Policy",
    "TaskState",
    "TaskStatus",
    "Timer",
    "TimerKind",
    "apply",
    "dependencies",
    "merge_results",
    "references",
    "releasable",
    "resolve",
    "start",
    "timers_of",
    "validate_plan",
]

SNAPSHOT_VERSION = 1
"""Version of the stored :class:`Orchestration` snapshot format."""

TaskStatus = Literal["pending", "running", "retry_wait", "completed", "failed"]
"""``pending`` (not dispatched), ``running`` (dispatched, awaiting its result),
``retry_wait`` (an attempt failed, the next one is due at ``deadline``), ``completed``,
``failed`` (the task made the orchestration fail)."""

OrchestrationStatus = Literal["running", "done", "failed", "aborted"]
TimerKind = Literal["timeout", "retry"]

_REF = re.compile(r"\$([A-Za-z0-9_-]{1,128})\.(\S+)")


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
    """

    max_attempts: int = 3
    retry_base_s: float = 0.5
    retry_max_s: float = 30.0
    retry_jitter: float = 0.0
    task_timeout_s: float = 30.0
    mode: ExecutionMode = "groups"

    def backoff(self, failed_attempt: int, key: str = "") -> float:
        """Delay before the attempt after ``failed_attempt`` (1-based)."""
        delay = min(self.retry_max_s, self.retry_base_s * 2 ** max(0, failed_attempt - 1))
        if self.retry_jitter > 0:
            spread = zlib.crc32(f"{key}:{failed_attempt}".encode()) / 0xFFFFFFFF
            delay *= 1.0 - self.retry_jitter * spread
        return float(round(delay, 6))


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
        status: ``running`` until the orchestration ends.
        error: Why it failed.
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
    v: int = SNAPSHOT_VERSION

    @property
    def terminal(self) -> bool:
        """Whether the orchestration has ended (done, failed or aborted)."""
        return self.status != "running"


class Timer(msgspec.Struct, frozen=True, kw_only=True):
    """A timer to arm, and the input it becomes when it fires.

    Attributes:
        orchestration_id: Whose task.
        task_id: Which task.
        kind: ``timeout`` of a running attempt, or ``retry`` (dispatch the next attempt).
        attempt: The running attempt (timeout) or the attempt to dispatch (retry).
        due_at: Absolute UNIX time at which it fires.
    """

    orchestration_id: str
    task_id: str
    kind: TimerKind
    attempt: int
    due_at: float


Input = PlanCreated | PlanFailed | TaskCompleted | TaskFailed | OrchestrationAborted | Timer
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


def _parse_ref(value: str, task_ids: Collection[str]) -> tuple[str, list[str]] | None:
    if not value.startswith("$"):
        return None
    match = _REF.fullmatch(value)
    if match is None or match.group(1) not in task_ids:
        return None
    return match.group(1), match.group(2).split(".")


def references(value: Any, task_ids: Collection[str]) -> set[str]:
    """Ids of the tasks that ``value`` references, searching nested lists and objects."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            ref = _parse_ref(item, task_ids)
            if ref is not None:
                found.add(ref[0])
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _lookup(output: Any, path: Sequence[str], ref: str) -> Any:
    current = output
    for segment in path:
        if isinstance(current, dict) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            raise UnresolvedReference(f"{ref}: the output has no {'.'.join(path)!r}")
    return current


def resolve(value: Any, outputs: Mapping[str, Mapping[str, Any] | None]) -> Any:
    """Replace every ``$task.field`` reference in ``value`` by the referenced output value.

    Args:
        value: A task's input, or any JSON value within it.
        outputs: Output of each task of the plan by id (``None`` when not completed); its
            keys are the task ids that references may name.

    Raises:
        UnresolvedReference: a referenced task has no output, or not that field.
    """
    if isinstance(value, str):
        ref = _parse_ref(value, outputs)
        if ref is None:
            return value
        output = outputs[ref[0]]
        if output is None:
            raise UnresolvedReference(f"{value}: task {ref[0]!r} has not completed")
        return _lookup(output, ref[1], value)
    if isinstance(value, dict):
        return {k: resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, outputs) for v in value]
    return value


def dependencies(plan: Plan) -> dict[str, list[str]]:
    """Task ids that each task's input references, in plan order, by task id."""
    ids = [t.id for t in plan.tasks]
    return {
        t.id: [d for d in ids if d in refs]
        for t in plan.tasks
        for refs in (references(t.input, ids),)
    }


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
    """Check that the plan can run; return its :func:`dependencies`.

    Raises:
        InvalidPlan: duplicate or unknown task ids, a task in no group or in two, or a
            reference to a task of the same or a later group.
    """
    ids = [t.id for t in plan.tasks]
    if len(set(ids)) != len(ids):
        raise InvalidPlan("duplicate task ids")
    group_of: dict[str, int] = {}
    for index, group in enumerate(plan.parallel_groups):
        for task_id in group:
            if task_id not in ids:
                raise InvalidPlan(f"group {index + 1} names unknown task {task_id!r}")
            if task_id in group_of:
                raise InvalidPlan(f"task {task_id!r} is in more than one group")
            group_of[task_id] = index
    missing = [t for t in ids if t not in group_of]
    if missing:
        raise InvalidPlan(f"tasks in no parallel group: {', '.join(missing)}")
    deps = dependencies(plan)
    for task_id, needed in deps.items():
        for dep in needed:
            if group_of[dep] >= group_of[task_id]:
                raise InvalidPlan(
                    f"task {task_id!r} references {dep!r}, which is not in an earlier group"
                )
    return deps


def merge_results(outputs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Merge task outputs into one ``results`` object.

    The rule: every output field appears at the top level under its own name, when all the
    tasks that produce it produce an equal value. A field that two tasks produce with
    different values is *clashing*: it is left out of the top level and kept once per
    producing task, under the task id (``results["payment"]["status"]``). A top-level field
    whose name is also such a task id would collide with that task's namespace, so it is
    treated as clashing too (repeated until nothing changes). Fields keep plan order.

    Args:
        outputs: Output of each task, by task id, in plan order.
    """
    producers: dict[str, dict[str, Any]] = {}
    for task_id, output in outputs.items():
        for name, value in output.items():
            producers.setdefault(name, {})[task_id] = value
    clashing: set[str] = set()
    for name, by_task in producers.items():
        values = list(by_task.values())
        if any(v != values[0] for v in values[1:]):
            clashing.add(name)
    while True:
        namespaces = {t for name in clashing for t in producers[name]}
        extra = {n for n in producers if n not in clashing and n in namespaces}
        if not extra:
            break
        clashing |= extra
    results: dict[str, Any] = {}
    for name, by_task in producers.items():
        if name not in clashing:
            results[name] = next(iter(by_task.values()))
    for name, by_task in producers.items():
        if name in clashing:
            for task_id, value in by_task.items():
                namespace = results.setdefault(task_id, {})
                namespace[name] = value
    return results


def timers_of(state: Orchestration) -> list[Timer]:
    """Every timer a state needs armed: re-armed from absolute deadlines after a restart."""
    if state.terminal:
        return []
    return [t for task_id in state.tasks if (t := _timer_for(state, task_id)) is not None]


def _timer_for(state: Orchestration, task_id: str) -> Timer | None:
    ts = state.tasks[task_id]
    if ts.deadline is None or state.terminal:
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

    __slots__ = ("emit", "now", "policy", "state", "tasks", "touched")

    def __init__(self, state: Orchestration, policy: Policy, now: float) -> None:
        self.state = state
        self.tasks = dict(state.tasks)
        self.emit: list[Event] = []
        self.touched: list[str] = []
        self.policy = policy
        self.now = now

    def set(self, task_id: str, ts: TaskState) -> None:
        self.tasks[task_id] = ts
        if task_id not in self.touched:
            self.touched.append(task_id)

    def service(self, task_id: str) -> str:
        for task in self.state.plan.tasks:
            if task.id == task_id:
                return task.service
        raise KeyError(task_id)  # pragma: no cover - ids come from the plan

    def dispatch(self, task_id: str, attempt: int, task_input: dict[str, Any]) -> None:
        state = self.state
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
                event_id=f"d:{state.id}:{task_id}:{attempt}",
                at=self.now,
                orchestration_id=state.id,
                task_id=task_id,
                service=self.service(task_id),
                input=task_input,
                attempt=attempt,
                idempotency_key=f"{state.id}:{task_id}",
                timeout_s=state.task_timeout_s,
            )
        )

    def fail(self, error: str, task_id: str | None) -> Outcome:
        state = self.state
        if task_id is not None:
            self.set(task_id, msgspec.structs.replace(self.tasks[task_id], status="failed"))
        self.emit.append(
            OrchestrationFailed(
                event_id=f"end:{state.id}",
                at=self.now,
                orchestration_id=state.id,
                error=error,
                task_id=task_id,
                webhook=state.webhook,
                project=state.project,
            )
        )
        return self.outcome(status="failed", error=error)

    def advance(self) -> Outcome:
        """Dispatch whatever became releasable; end the orchestration when all completed."""
        state = self.state
        statuses = {k: v.status for k, v in self.tasks.items()}
        if all(s == "completed" for s in statuses.values()):
            outputs = {t.id: self.tasks[t.id].output or {} for t in state.plan.tasks}
            self.emit.append(
                OrchestrationDone(
                    event_id=f"end:{state.id}",
                    at=self.now,
                    orchestration_id=state.id,
                    results=merge_results(outputs),
                    outputs=outputs,
                    webhook=state.webhook,
                    project=state.project,
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
        delay = self.policy.backoff(n, f"{state.id}:{task_id}")
        self.set(
            task_id,
            msgspec.structs.replace(
                ts, status="retry_wait", deadline=self.now + delay, error=reason
            ),
        )
        self.emit.append(
            TaskRetrying(
                event_id=f"rt:{state.id}:{task_id}:{n + 1}",
                at=self.now,
                orchestration_id=state.id,
                task_id=task_id,
                next_attempt=n + 1,
                delay_s=delay,
                reason=reason,
            )
        )
        return self.outcome()

    def outcome(self, status: OrchestrationStatus = "running", error: str | None = None) -> Outcome:
        new = msgspec.structs.replace(self.state, tasks=self.tasks, status=status, error=error)
        timers = [t for task_id in self.touched if (t := _timer_for(new, task_id)) is not None]
        return Outcome(new, self.emit, timers, tuple(self.touched))


def start(event: PlanCreated, policy: Policy, now: float) -> Outcome:
    """Create the orchestration of a ``plan.created`` and dispatch what it can release."""
    plan = event.plan
    timeout = event.task_timeout_s
    if timeout is None or timeout <= 0:
        timeout = policy.task_timeout_s
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
    )
    builder = _Builder(state, policy, now)
    if error is not None:
        return builder.fail(error, None)
    return builder.advance()


def _plan_failed(event: PlanFailed, now: float) -> Outcome:
    reasons = "; ".join(event.reasons) or "no reason given"
    return Outcome(
        None,
        [
            OrchestrationFailed(
                event_id=f"end:{event.orchestration_id}",
                at=now,
                orchestration_id=event.orchestration_id,
                error=f"planning failed ({event.status}): {reasons}",
                webhook=event.webhook,
                project=event.project,
            )
        ],
    )


def _on_result(
    state: Orchestration, event: TaskCompleted | TaskFailed, policy: Policy, now: float
) -> Outcome:
    ts = state.tasks.get(event.task_id)
    if ts is None:
        return _noop(state, f"task {event.task_id!r} is not in the plan")
    if ts.status == "completed":
        return _noop(state, "task already completed")
    if ts.status == "pending" or event.attempt > ts.attempt:
        return _noop(state, "result of an attempt this state has not dispatched", stale=True)
    builder = _Builder(state, policy, now)
    if isinstance(event, TaskCompleted):
        # Any attempt's success is the task's success: they share one idempotency key.
        builder.set(
            event.task_id,
            TaskState(status="completed", attempt=ts.attempt, output=event.output),
        )
        return builder.advance()
    if event.attempt < ts.attempt or ts.status != "running":
        return _noop(state, "failure of an attempt that already ended")
    return builder.fail_attempt(event.task_id, event.error, retryable=event.retryable)


def _on_timer(state: Orchestration, timer: Timer, policy: Policy, now: float) -> Outcome:
    ts = state.tasks.get(timer.task_id)
    if ts is None:
        return _noop(state, "timer of an unknown task")
    builder = _Builder(state, policy, now)
    if timer.kind == "timeout":
        if ts.status != "running" or ts.attempt != timer.attempt:
            return _noop(state, "timeout of an attempt that already ended")
        builder.emit.append(
            TaskTimedOut(
                event_id=f"to:{state.id}:{timer.task_id}:{ts.attempt}",
                at=now,
                orchestration_id=state.id,
                task_id=timer.task_id,
                attempt=ts.attempt,
                timeout_s=state.task_timeout_s,
            )
        )
        return builder.fail_attempt(
            timer.task_id, f"timed out after {state.task_timeout_s:g}s", retryable=True
        )
    if ts.status != "retry_wait" or ts.attempt + 1 != timer.attempt:
        return _noop(state, "retry that is no longer due")
    builder.dispatch(timer.task_id, timer.attempt, ts.input or {})
    return builder.outcome()


def apply(state: Orchestration | None, item: Input, policy: Policy, now: float) -> Outcome:
    """Apply one input to an orchestration's state.

    Args:
        state: The current state; ``None`` when no running orchestration is known.
        item: An event from the log, or a timer that fired.
        policy: Retry, timeout and mode settings.
        now: The current UNIX time (deadlines are absolute).

    Returns:
        The outcome. Results and timers for a ``None`` state are no-ops (the caller decides
        whether the orchestration ended or is unknown); an aborted, done or failed state
        ignores everything.
    """
    if isinstance(item, PlanCreated):
        if state is not None:
            return _noop(state, "plan already started")
        return start(item, policy, now)
    if isinstance(item, PlanFailed):
        if state is not None:
            return _noop(state, "plan already started")
        return _plan_failed(item, now)
    if state is None:
        return _noop(None, "no running orchestration")
    if state.terminal:
        return _noop(state, f"orchestration already {state.status}")
    if isinstance(item, OrchestrationAborted):
        return Outcome(msgspec.structs.replace(state, status="aborted", error=item.reason))
    if isinstance(item, Timer):
        return _on_timer(state, item, policy, now)
    return _on_result(state, item, policy, now)

"""The dispatcher's state: an orchestration aggregate, its timers and transition outcomes.

Pure data (no I/O): :class:`Orchestration` is the snapshot stored per running plan,
:class:`Timer` what a transition arms, :class:`Outcome` what it returns. The rules that read
them are in :mod:`orra_dispatcher.domain.rules`, the transitions in
:mod:`orra_dispatcher.domain.transitions`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from orra_events import (
    Event,
    ExecutionMode,
    OrchestrationAborted,
    OrchestrationApproved,
    OrchestrationRejected,
    Plan,
    PlanCreated,
    PlanFailed,
    TaskAborted,
    TaskCompensated,
    TaskCompensationFailed,
    TaskCompleted,
    TaskFailed,
)

if TYPE_CHECKING:
    from collections.abc import Collection

    from orra_events import PlanTask

__all__ = [
    "ALL_HEALTHY",
    "LIVE",
    "ORCHESTRATION_TIMER",
    "SNAPSHOT_VERSION",
    "CompState",
    "CompStatus",
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
    "noop",
]

SNAPSHOT_VERSION = 1
"""Version of the stored :class:`Orchestration` snapshot format."""

TaskStatus = Literal[
    "pending", "running", "retry_wait", "paused", "awaiting_approval", "completed", "failed"
]
"""``pending`` (not dispatched), ``running`` (dispatched, awaiting its result),
``retry_wait`` (an attempt failed, the next one is due at ``deadline``), ``paused`` (due,
but its service is unhealthy; ``attempt`` is the last one dispatched, ``input`` the one to
send), ``awaiting_approval`` (its service's approval gate holds it until a person decides
or ``deadline``; ``input`` the one to send), ``completed``, ``failed`` (the task made the
orchestration fail)."""

OrchestrationStatus = Literal[
    "awaiting_approval", "running", "compensating", "done", "failed", "aborted"
]
TimerKind = Literal["timeout", "retry", "comp_timeout", "comp_retry", "grace", "health", "approval"]
LIVE: tuple[OrchestrationStatus, ...] = ("running", "compensating", "awaiting_approval")
"""The statuses of an orchestration that has not ended."""
CompStatus = Literal["pending", "running", "retry_wait", "done", "failed"]

ORCHESTRATION_TIMER = ""
"""``Timer.task_id`` of timers about the whole orchestration (pause grace, health)."""


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
        approval_timeout_s: How long a plan or a task may wait for approval before it is
            rejected as expired.
    """

    max_attempts: int = 3
    retry_base_s: float = 0.5
    retry_max_s: float = 30.0
    retry_jitter: float = 0.0
    task_timeout_s: float = 30.0
    mode: ExecutionMode = "groups"
    comp_max_attempts: int = 5
    pause_grace_s: float = 300.0
    approval_timeout_s: float = 3600.0

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
        approval_expires_at: While ``awaiting_approval`` (a plan submitted to preview):
            when it is rejected as expired.
        approved: Gated tasks a person approved (they are not held again).
        approval_timeout_s: How long the plan or a gated task may wait for approval
            (``None``: the policy's).
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
    approval_expires_at: float | None = None
    approved: list[str] = msgspec.field(default_factory=list)
    approval_timeout_s: float | None = None
    v: int = SNAPSHOT_VERSION

    @property
    def terminal(self) -> bool:
        """Whether the orchestration has ended (done, failed or aborted)."""
        return self.status not in LIVE

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
            :data:`ORCHESTRATION_TIMER`. ``approval``: a held plan (task id
            :data:`ORCHESTRATION_TIMER`) or task waited too long for approval.
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
    | OrchestrationApproved
    | OrchestrationRejected
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


def noop(state: Orchestration | None, note: str, *, stale: bool = False) -> Outcome:
    """An outcome that changes nothing (``note`` says why; ``stale``: reload and retry)."""
    return Outcome(state, changed=False, stale=stale, note=note)

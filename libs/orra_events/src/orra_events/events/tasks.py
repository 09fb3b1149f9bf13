"""Task events: one task's dispatch, progress, outcome and compensation."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from orra_events.events.base import OrchestrationEvent

__all__ = [
    "TaskAborted",
    "TaskCompensated",
    "TaskCompensating",
    "TaskCompensationAbandoned",
    "TaskCompensationFailed",
    "TaskCompensationResolved",
    "TaskCompleted",
    "TaskDispatched",
    "TaskFailed",
    "TaskProgress",
    "TaskRetrying",
    "TaskTimedOut",
]


class TaskDispatched(OrchestrationEvent, frozen=True, kw_only=True, tag="task.dispatched"):
    """The dispatcher sent a task to its service.

    The same message is what the service receives on ``work.<service>``.
    """

    TYPE: ClassVar[str] = "task.dispatched"

    task_id: str
    service: str
    input: dict[str, Any]
    attempt: int
    idempotency_key: str
    timeout_s: float
    version: str | None = None
    """The service version the task was planned against; a replica of another version
    hands it back instead of running it (``None``: any version runs it)."""


class TaskCompleted(OrchestrationEvent, frozen=True, kw_only=True, tag="task.completed"):
    """A service finished a task."""

    TYPE: ClassVar[str] = "task.completed"

    task_id: str
    service: str
    output: dict[str, Any]
    attempt: int
    idempotency_key: str
    started_at: float
    duration_ms: float
    replayed: bool = False


class TaskFailed(OrchestrationEvent, frozen=True, kw_only=True, tag="task.failed"):
    """A service could not finish a task.

    ``outcome_unknown`` (with ``retryable`` false) says the task may have taken effect
    before it failed (its handler was interrupted, a remote call got no answer): the
    dispatcher does not run it again and leaves it for an operator, as for a timed-out
    task of a service registered with ``retry_on_timeout`` false.
    """

    TYPE: ClassVar[str] = "task.failed"

    task_id: str
    service: str
    error: str
    attempt: int
    idempotency_key: str
    started_at: float
    duration_ms: float
    retryable: bool = True
    outcome_unknown: bool = False


class TaskRetrying(OrchestrationEvent, frozen=True, kw_only=True, tag="task.retrying"):
    """The dispatcher will dispatch a task again after ``delay_s``."""

    TYPE: ClassVar[str] = "task.retrying"

    task_id: str
    next_attempt: int
    delay_s: float
    reason: str


class TaskTimedOut(OrchestrationEvent, frozen=True, kw_only=True, tag="task.timed_out"):
    """A dispatched task did not finish within its timeout."""

    TYPE: ClassVar[str] = "task.timed_out"

    task_id: str
    attempt: int
    timeout_s: float


class TaskProgress(OrchestrationEvent, frozen=True, kw_only=True, tag="task.progress"):
    """A running task reported an interim update (``await task.progress({...})``).

    Informational: the dispatcher does not consume it. ``seq`` counts the updates of one
    attempt from 1, so the event id ``pg:<orch>:<task>:<attempt>:<seq>`` is deterministic.
    """

    TYPE: ClassVar[str] = "task.progress"

    task_id: str
    service: str
    attempt: int
    seq: int
    update: dict[str, Any]


class TaskAborted(OrchestrationEvent, frozen=True, kw_only=True, tag="task.aborted"):
    """A service aborted the whole orchestration from inside a task.

    It is the attempt's result (event id ``r:<orch>:<task>:<attempt>``, like
    ``task.completed``); the dispatcher turns it into ``orchestration.aborted`` with the
    same ``reason`` and ``payload``, after compensating what completed.
    """

    TYPE: ClassVar[str] = "task.aborted"

    task_id: str
    service: str
    attempt: int
    idempotency_key: str
    reason: str
    payload: dict[str, Any] | None = None
    started_at: float = 0.0
    duration_ms: float = 0.0


class TaskCompensating(OrchestrationEvent, frozen=True, kw_only=True, tag="task.compensating"):
    """The dispatcher asks a revertible service to undo a completed task.

    The same message goes to the service on ``work.<service>`` (its type tells the SDK
    to run the revert handler). ``idempotency_key`` is ``<orch>:<task>:revert``.
    """

    TYPE: ClassVar[str] = "task.compensating"

    task_id: str
    service: str
    input: dict[str, Any]
    output: dict[str, Any]
    reason: str
    attempt: int
    idempotency_key: str
    timeout_s: float
    previous_error: str | None = None
    version: str | None = None
    """The service version the task ran on; only a replica of it runs the revert."""


class TaskCompensated(OrchestrationEvent, frozen=True, kw_only=True, tag="task.compensated"):
    """A service's revert handler undid a task."""

    TYPE: ClassVar[str] = "task.compensated"

    task_id: str
    service: str
    attempt: int
    started_at: float = 0.0
    duration_ms: float = 0.0


class TaskCompensationFailed(
    OrchestrationEvent, frozen=True, kw_only=True, tag="task.compensation_failed"
):
    """One attempt of a revert handler failed; the dispatcher may try again."""

    TYPE: ClassVar[str] = "task.compensation_failed"

    task_id: str
    service: str
    attempt: int
    error: str
    retryable: bool = True
    started_at: float = 0.0
    duration_ms: float = 0.0


class TaskCompensationAbandoned(
    OrchestrationEvent, frozen=True, kw_only=True, tag="task.compensation_abandoned"
):
    """The dispatcher gave up compensating a task: an operator must look at it.

    Listed by ``orra comp-fail ls`` until a ``task.compensation_resolved`` settles it.
    """

    TYPE: ClassVar[str] = "task.compensation_abandoned"

    task_id: str
    service: str
    input: dict[str, Any]
    output: dict[str, Any]
    reason: str
    error: str
    attempts: int
    project: str = "default"


class TaskCompensationResolved(
    OrchestrationEvent, frozen=True, kw_only=True, tag="task.compensation_resolved"
):
    """An operator settled a failed compensation: fixed by hand, or ignored."""

    TYPE: ClassVar[str] = "task.compensation_resolved"

    task_id: str
    resolution: Literal["resolved", "ignored"]
    note: str | None = None
    by: str | None = None

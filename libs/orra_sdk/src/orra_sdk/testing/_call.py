"""Calling a service's handler directly, as the SDK's worker would, without a broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from orra_events import TaskProgress
from orra_events.codec import encode
from orra_events.ids import progress_id
from orra_sdk._wording import invalid_input, invalid_output, no_revert_handler, unrevertible
from orra_sdk.errors import InvalidData, ServiceDefinitionError
from orra_sdk.service import RevertTask, Task

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orra_sdk.service import JsonObject, Service

__all__ = ["Called", "ProgressRecorder", "call", "call_revert"]

InT = TypeVar("InT", bound="BaseModel | JsonObject")
OutT = TypeVar("OutT", bound="BaseModel | JsonObject")


class ProgressRecorder:
    """Keeps a task's progress updates, checked as the worker checks them.

    Each update is encoded in a ``task.progress`` event as the worker publishes it, so an
    update that cannot be sent (not JSON) raises here as it would in production.

    Attributes:
        updates: The updates, in the order the handler reported them.
        waited: For each update, whether the handler waited for it to be stored.
    """

    def __init__(self, orchestration_id: str, task_id: str, service: str, attempt: int) -> None:
        self._ids = (orchestration_id, task_id, service, attempt)
        self.updates: list[dict[str, Any]] = []
        self.waited: list[bool] = []

    async def __call__(self, update: dict[str, Any], *, wait: bool = True) -> None:
        """Record one update (the task's progress sink)."""
        orchestration_id, task_id, service, attempt = self._ids
        seq = len(self.updates) + 1
        encode(
            TaskProgress(
                event_id=progress_id(orchestration_id, task_id, attempt, seq),
                orchestration_id=orchestration_id,
                task_id=task_id,
                service=service,
                attempt=attempt,
                seq=seq,
                update=update,
            )
        )
        self.updates.append(update)
        self.waited.append(wait)


@dataclass(frozen=True, slots=True)
class Called(Generic[InT, OutT]):
    """What one call of a handler produced.

    Attributes:
        output: The task's output as the worker records it (JSON, checked against the
            output schema): what ``task.completed`` carries and dependent tasks read.
        value: The output as a revert handler gets it (the output model, or a ``dict``).
        progress: The progress updates the handler reported, in order.
        task: The task the handler was given.
    """

    output: dict[str, Any]
    value: OutT
    task: Task[InT]
    progress: list[dict[str, Any]] = field(default_factory=list)


async def call(
    service: Service[InT, OutT],
    input: Mapping[str, Any] | BaseModel,  # noqa: A002 - mirrors Task.input
    *,
    orchestration_id: str = "o_test",
    task_id: str = "task",
    attempt: int = 1,
    idempotency_key: str | None = None,
    deliveries: int = 1,
    timeout_s: float = 30.0,
) -> Called[InT, OutT]:
    """Run ``service``'s handler on one task, as the SDK's worker does, without a broker.

    The input is validated against the service's input schema, the handler called with a
    :class:`~orra_sdk.Task` whose progress updates are captured, and its result checked
    against the output schema and turned into the recorded JSON output. Example::

        called = await call(payment, {"orderId": "ORD1", "amount": 10})
        assert called.output == {"paymentStatus": "confirmed", "transactionId": "TX-ORD1"}
        assert called.progress == [{"step": "charging"}]

    Args:
        service: The service whose handler to call.
        input: The task's input, as a plan would give it (a JSON object), or a model.
        orchestration_id: The task's orchestration.
        task_id: The task's id within its plan.
        attempt: The dispatch attempt (1 for the first; a retry increments it).
        idempotency_key: Defaults to ``<orchestration_id>:<task_id>``, as the dispatcher's.
        deliveries: The broker's delivery count of this attempt.
        timeout_s: The dispatcher's timeout for this attempt.

    Returns:
        The output, the captured progress updates and the task.

    Raises:
        InvalidData: the input does not match the input schema, or the handler's result
            does not match the output schema (the worker fails such a task, not
            retryable, with the same message).
        ServiceDefinitionError: the service has no handler.
        Exception: whatever the handler raised, unchanged:
            :class:`~orra_sdk.NonRetryableError` (and :class:`~orra_sdk.OutcomeUnknown`)
            fail the task for good, :class:`~orra_sdk.AbortOrchestration` aborts the
            orchestration, anything else fails the attempt and is retried.
    """
    handler = service.handle
    try:
        data = service.parse_input(_json(input))
    except InvalidData as exc:
        raise InvalidData(invalid_input(service.name, exc)) from None
    recorder = ProgressRecorder(orchestration_id, task_id, service.name, attempt)
    task: Task[InT] = Task(
        input=data,
        orchestration_id=orchestration_id,
        task_id=task_id,
        service=service.name,
        attempt=attempt,
        idempotency_key=idempotency_key or f"{orchestration_id}:{task_id}",
        deliveries=deliveries,
        timeout_s=timeout_s,
        _progress=recorder,
    )
    result = await handler(task)
    try:
        output = service.dump_output(result)
    except InvalidData as exc:
        raise InvalidData(invalid_output(service.name, exc)) from None
    return Called(
        output=output, value=service.parse_output(output), task=task, progress=recorder.updates
    )


async def call_revert(
    service: Service[InT, OutT],
    input: Mapping[str, Any] | BaseModel,  # noqa: A002 - mirrors RevertTask.input
    output: Mapping[str, Any] | BaseModel,
    *,
    reason: str = "the orchestration failed",
    orchestration_id: str = "o_test",
    task_id: str = "task",
    attempt: int = 1,
    idempotency_key: str | None = None,
    timeout_s: float = 30.0,
) -> RevertTask[InT, OutT]:
    """Run ``service``'s revert handler on a completed task, as the SDK's worker does.

    Example::

        done = await call(payment, {"orderId": "ORD1", "amount": 10})
        await call_revert(payment, {"orderId": "ORD1", "amount": 10}, done.output)

    Args:
        service: A revertible service with a revert handler.
        input: The task's original input.
        output: What the task returned (its recorded JSON output, or a model).
        reason: Why the orchestration is compensated.
        orchestration_id: The task's orchestration.
        task_id: The task's id within its plan.
        attempt: The compensation attempt (1 for the first).
        idempotency_key: Defaults to ``<orchestration_id>:<task_id>:revert``.
        timeout_s: The dispatcher's timeout for this attempt.

    Returns:
        The task the revert handler was given.

    Raises:
        ServiceDefinitionError: the service has no revert handler (the worker reports
            the compensation failed, for an operator).
        InvalidData: the input or output does not match the service's schemas.
        Exception: whatever the revert handler raised, unchanged
            (:class:`~orra_sdk.NonRetryableError` gives the compensation up; anything
            else is retried with backoff).
    """
    reverter = service.reverter
    if reverter is None:
        raise ServiceDefinitionError(no_revert_handler(service.name))
    try:
        data = service.parse_input(_json(input))
        recorded = service.parse_output(_json(output))
    except InvalidData as exc:
        raise InvalidData(unrevertible(service.name, exc)) from None
    task: RevertTask[InT, OutT] = RevertTask(
        input=data,
        output=recorded,
        reason=reason,
        orchestration_id=orchestration_id,
        task_id=task_id,
        service=service.name,
        attempt=attempt,
        idempotency_key=idempotency_key or f"{orchestration_id}:{task_id}:revert",
        timeout_s=timeout_s,
    )
    await reverter(task)
    return task


def _json(value: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    """A task's data as it travels in an event (JSON), whatever the test passed."""
    if isinstance(value, BaseModel):
        dumped: dict[str, Any] = value.model_dump(mode="json", by_alias=True)
        return dumped
    return dict(value)

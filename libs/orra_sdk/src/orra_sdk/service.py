"""Declaring a service or agent: its name, description, schemas and handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel

from orra_events import check_name
from orra_events.errors import InvalidName, InvalidVersion
from orra_events.registrations import definition_hash, example_problems, normalise_examples
from orra_events.versions import canonical_version
from orra_sdk.errors import ServiceDefinitionError

__all__ = ["Handler", "RevertHandler", "RevertTask", "Service", "Task"]

InT = TypeVar("InT", bound=BaseModel)
OutT = TypeVar("OutT", bound=BaseModel)

Handler = Callable[["Task[InT]"], Awaitable["OutT | dict[str, Any]"]]
"""An async function that runs one task and returns its output (model or plain dict)."""

RevertHandler = Callable[["RevertTask[InT, OutT]"], Awaitable[None]]
"""An async function that undoes one completed task (compensation)."""


class ProgressSink(Protocol):
    """Where a task's progress updates go (the SDK's worker)."""

    def __call__(self, update: dict[str, Any], *, wait: bool = True) -> Awaitable[None]:
        """Publish one update; with ``wait``, return once it is stored."""
        ...


@dataclass(frozen=True, slots=True)
class Task(Generic[InT]):
    """One task given to a handler.

    Attributes:
        input: The task's input, already validated against the service's input model.
        orchestration_id: The orchestration the task belongs to.
        task_id: The task's id within its plan (``"payment"``).
        service: The service that runs it.
        attempt: Dispatch attempt, 1 for the first; a retry by the dispatcher increments it.
        idempotency_key: ``<orchestration id>:<task id>``, stable across attempts; use it
            to make side effects in other systems idempotent too.
        deliveries: How many times the broker delivered this attempt's message (1 unless a
            replica died while running it).
        timeout_s: The dispatcher's timeout for this attempt.
    """

    input: InT
    orchestration_id: str
    task_id: str
    service: str
    attempt: int
    idempotency_key: str
    deliveries: int = 1
    timeout_s: float = 0.0
    _progress: ProgressSink | None = None

    async def progress(self, update: BaseModel | dict[str, Any], *, wait: bool = True) -> None:
        """Report an interim update (a ``task.progress`` event), e.g. ``{"step": 2}``.

        Updates are shown by ``orra inspect`` and streamed to SSE clients; they do not
        change the task's output. By default this returns once the event is stored (one
        broker round trip). With ``wait=False`` it returns at once: the update is published
        ahead of the task's result, on the same connection, and its acknowledgement is
        awaited with the result's; a failure to store it is logged, not raised (use it for
        updates the handler need not wait for).
        """
        if self._progress is None:
            return
        data = update.model_dump(mode="json") if isinstance(update, BaseModel) else dict(update)
        await self._progress(data, wait=wait)


@dataclass(frozen=True, slots=True)
class RevertTask(Generic[InT, OutT]):
    """A completed task to undo, given to a revert handler (compensation).

    Attributes:
        input: The task's original input.
        output: What the task returned.
        reason: Why the orchestration is compensated (its failure or abort reason).
        orchestration_id: The orchestration the task belongs to.
        task_id: The task's id within its plan.
        service: The service that ran it.
        attempt: Compensation attempt, 1 for the first.
        idempotency_key: ``<orchestration id>:<task id>:revert``, stable across attempts.
        timeout_s: The dispatcher's timeout for this attempt.
    """

    input: InT
    output: OutT
    reason: str
    orchestration_id: str
    task_id: str
    service: str
    attempt: int
    idempotency_key: str
    timeout_s: float = 0.0


class Service(Generic[InT, OutT]):
    """A service or agent that Orra can plan tasks for.

    Example::

        payment = Service(
            name="PaymentService",
            description="Charge the payment of an order",
            input=PayIn,
            output=PayOut,
            revertible=True,
        )

        @payment.handler
        async def pay(task: Task[PayIn]) -> PayOut:
            return PayOut(paymentStatus="confirmed", transactionId="TX1")

    Args:
        name: Unique service name; one subject token (letters, digits, ``_``, ``-``).
        description: What the service does, in words the planner matches actions against.
        input: Pydantic model of a task's input; its JSON Schema is registered.
        output: Pydantic model of a task's output; its JSON Schema is registered.
        revertible: Whether the service's effects can be undone; give the revert handler
            with :meth:`revert`.
        version: Version of the service's definition: dotted numbers (``"1"``, ``"2"``,
            ``"1.4.2"``). One name and version has one definition (description,
            examples, schemas, ``revertible``, ``kind``): to change any of them, raise the
            version; a higher version replaces the lower one for new plans, and tasks
            already planned keep the version they were planned against.
        kind: ``"service"`` or ``"agent"``.
        concurrency: Tasks this process runs at once for this service; ``None`` uses the
            client's default.
        examples: Up to 20 short phrases of what the service does, in its users' words
            (``["charge the card", "take the money for an order"]``): they teach the
            planner the words your users use for it.

    Raises:
        ServiceDefinitionError: the name is not a valid token, the version is not dotted
            numbers, an example phrase is malformed (each problem named), or a schema is
            not a pydantic model.
    """

    def __init__(
        self,
        *,
        name: str,
        description: str,
        input: type[InT],  # noqa: A002 - the public keyword mirrors the wire field
        output: type[OutT],
        revertible: bool = False,
        version: str = "1",
        kind: Literal["service", "agent"] = "service",
        concurrency: int | None = None,
        examples: Sequence[str] = (),
    ) -> None:
        try:
            check_name("service name", name)
            canonical = canonical_version(version)
        except (InvalidName, InvalidVersion) as exc:
            raise ServiceDefinitionError(f"{name}: {exc}") from None
        problems = example_problems(examples)
        if problems:
            raise ServiceDefinitionError(f"{name}: " + "; ".join(problems))
        for label, model in (("input", input), ("output", output)):
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise ServiceDefinitionError(
                    f"{name}: {label} must be a pydantic BaseModel subclass, got {model!r}"
                )
        if concurrency is not None and concurrency < 1:
            raise ServiceDefinitionError(f"{name}: concurrency must be at least 1")
        self.name = name
        self.description = description
        self.input_model = input
        self.output_model = output
        self.revertible = revertible
        self.version = canonical
        self.examples: tuple[str, ...] = tuple(normalise_examples(examples))
        self.kind: Literal["service", "agent"] = kind
        self.concurrency = concurrency
        self._handler: Handler[InT, OutT] | None = None
        self._revert: RevertHandler[InT, OutT] | None = None
        self.input_schema: dict[str, Any] = input.model_json_schema()
        self.output_schema: dict[str, Any] = output.model_json_schema()
        self.schema_hash = definition_hash(
            name=name,
            description=description,
            input_schema=self.input_schema,
            output_schema=self.output_schema,
            revertible=revertible,
            version=canonical,
            kind=kind,
            examples=self.examples,
        )

    def handler(self, fn: Handler[InT, OutT]) -> Handler[InT, OutT]:
        """Decorator that sets the service's handler; returns ``fn`` unchanged."""
        self._handler = fn
        return fn

    def revert(self, fn: RevertHandler[InT, OutT]) -> RevertHandler[InT, OutT]:
        """Decorator that sets the revert (compensation) handler; returns ``fn`` unchanged.

        When an orchestration fails or is aborted, Orra calls it for every task of this
        service that completed, in reverse order of completion, with the task's input,
        output and the reason. Raise to fail the attempt (retried with backoff;
        :class:`~orra_sdk.NonRetryableError` gives up at once). Example::

            @payment.revert
            async def refund(task: RevertTask[PayIn, PayOut]) -> None:
                await bank.refund(task.output.transactionId)

        Raises:
            ServiceDefinitionError: the service was not declared ``revertible=True``.
        """
        if not self.revertible:
            raise ServiceDefinitionError(
                f"{self.name} is not revertible: declare it with Service(..., revertible=True)"
            )
        self._revert = fn
        return fn

    @property
    def reverter(self) -> RevertHandler[InT, OutT] | None:
        """The revert handler, if one was set."""
        return self._revert

    @property
    def handle(self) -> Handler[InT, OutT]:
        """The handler.

        Raises:
            ServiceDefinitionError: no handler was set.
        """
        if self._handler is None:
            raise ServiceDefinitionError(
                f"{self.name} has no handler: decorate an async function with @service.handler"
            )
        return self._handler

    def __repr__(self) -> str:
        return f"Service(name={self.name!r}, version={self.version!r}, hash={self.schema_hash})"


def schema_hash(definition: dict[str, Any]) -> str:
    """A short, stable hash of a service definition (canonical JSON, SHA-256).

    ``definition`` holds the keyword arguments of
    :func:`orra_events.registrations.definition_hash`, which is what the SDK and the
    registry followers use.
    """
    return definition_hash(**definition)

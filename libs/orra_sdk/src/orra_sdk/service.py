"""Declaring a service or agent: its name, description, schemas and handler.

A service's schemas are pydantic models (``Service(input=PayIn, output=PayOut)``: the
handler gets a ``PayIn``), or JSON Schema documents for services whose schemas are only
known at run time (``Service.from_json_schema(...)``: the handler gets the input as a
``dict``, validated against the schema with :mod:`jsonschema`, and returns a ``dict``,
validated the same way). The MCP bridge (:mod:`orra_mcp`) declares each MCP tool so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar, cast

from jsonschema import Draft202012Validator, SchemaError
from jsonschema.validators import validator_for
from pydantic import BaseModel, ValidationError

from orra_events import check_name
from orra_events.errors import InvalidName, InvalidVersion
from orra_events.gates import ALWAYS, GateSyntaxError, parse_gate
from orra_events.registrations import definition_hash, example_problems, normalise_examples
from orra_events.versions import canonical_version
from orra_sdk.errors import InvalidData, ServiceDefinitionError

__all__ = ["Handler", "JsonObject", "RevertHandler", "RevertTask", "Service", "Task"]

JsonObject = dict[str, Any]
"""A task's input or output of a service declared with JSON Schema."""

InT = TypeVar("InT", bound=BaseModel | JsonObject)
OutT = TypeVar("OutT", bound=BaseModel | JsonObject)

_MAX_SCHEMA_ERRORS = 10
"""JSON Schema errors named in one message (the rest are counted)."""

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
        retry_on_timeout: ``False`` for a service whose task must never run twice when
            its outcome is unknown (it may have taken effect, and a repeat would do it
            again): a task that times out is failed for good, and the dispatcher leaves it
            for an operator (``orra comp-fail ls``) instead of retrying it; a task
            redelivered after this process died while running it is failed the same way
            instead of being run again. Default ``True``: timeouts are retried.
        requires_approval: Every task of the service waits for a person's approval
            (``orra approve``) before it runs.
        approval_when: A condition on a task's input (``"amount > 1000"``; the grammar of
            :mod:`orra_events.gates`): the task waits for approval when it holds.

    Raises:
        ServiceDefinitionError: the name is not a valid token, the version is not dotted
            numbers, an example phrase is malformed (each problem named), a schema is
            not a pydantic model, or the approval condition does not parse (the parse
            error named).
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
        retry_on_timeout: bool = True,
        requires_approval: bool = False,
        approval_when: str | None = None,
    ) -> None:
        for label, model in (("input", input), ("output", output)):
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise ServiceDefinitionError(
                    f"{name}: {label} must be a pydantic BaseModel subclass, got {model!r} "
                    "(for JSON Schema documents, use Service.from_json_schema)"
                )
        input_model = cast("type[BaseModel]", input)
        output_model = cast("type[BaseModel]", output)
        self._setup(
            name=name,
            description=description,
            input_model=input_model,
            output_model=output_model,
            input_schema=input_model.model_json_schema(),
            output_schema=output_model.model_json_schema(),
            revertible=revertible,
            version=version,
            kind=kind,
            concurrency=concurrency,
            examples=examples,
            retry_on_timeout=retry_on_timeout,
            requires_approval=requires_approval,
            approval_when=approval_when,
        )

    @classmethod
    def from_json_schema(
        cls,
        *,
        name: str,
        description: str,
        input_schema: Mapping[str, Any],
        output_schema: Mapping[str, Any],
        revertible: bool = False,
        version: str = "1",
        kind: Literal["service", "agent"] = "service",
        concurrency: int | None = None,
        examples: Sequence[str] = (),
        retry_on_timeout: bool = True,
        requires_approval: bool = False,
        approval_when: str | None = None,
    ) -> Service[JsonObject, JsonObject]:
        """A service whose input and output are declared as JSON Schema documents.

        The handler gets ``task.input`` as a ``dict`` that matches ``input_schema`` and
        returns a ``dict`` that must match ``output_schema`` (else the task fails, not
        retried, naming every field at fault). Both schemas are checked against their
        metaschema (``$schema``, else JSON Schema 2020-12) and must describe a JSON
        object (a root ``type``, when given, must be ``"object"``).

        Args:
            name: As for :class:`Service`.
            description: As for :class:`Service`.
            input_schema: JSON Schema of a task's input.
            output_schema: JSON Schema of a task's output.
            revertible: As for :class:`Service`.
            version: As for :class:`Service`.
            kind: As for :class:`Service`.
            concurrency: As for :class:`Service`.
            examples: As for :class:`Service`.
            retry_on_timeout: As for :class:`Service`.
            requires_approval: As for :class:`Service`.
            approval_when: As for :class:`Service`.

        Raises:
            ServiceDefinitionError: as for :class:`Service`, or a schema is not a valid
                JSON Schema of an object (the message says what is wrong).
        """
        service = cast("Service[JsonObject, JsonObject]", object.__new__(cls))
        service._setup(
            name=name,
            description=description,
            input_model=None,
            output_model=None,
            input_schema=_checked_schema(name, "input", input_schema),
            output_schema=_checked_schema(name, "output", output_schema),
            revertible=revertible,
            version=version,
            kind=kind,
            concurrency=concurrency,
            examples=examples,
            retry_on_timeout=retry_on_timeout,
            requires_approval=requires_approval,
            approval_when=approval_when,
        )
        return service

    def _setup(
        self,
        *,
        name: str,
        description: str,
        input_model: type[BaseModel] | None,
        output_model: type[BaseModel] | None,
        input_schema: dict[str, Any],
        output_schema: dict[str, Any],
        revertible: bool,
        version: str,
        kind: Literal["service", "agent"],
        concurrency: int | None,
        examples: Sequence[str],
        retry_on_timeout: bool,
        requires_approval: bool = False,
        approval_when: str | None = None,
    ) -> None:
        try:
            check_name("service name", name)
            canonical = canonical_version(version)
        except (InvalidName, InvalidVersion) as exc:
            raise ServiceDefinitionError(f"{name}: {exc}") from None
        problems = example_problems(examples)
        if problems:
            raise ServiceDefinitionError(f"{name}: " + "; ".join(problems))
        if concurrency is not None and concurrency < 1:
            raise ServiceDefinitionError(f"{name}: concurrency must be at least 1")
        self.approval_when = _approval_condition(name, requires_approval, approval_when)
        self.name = name
        self.description = description
        self.input_model = input_model
        self.output_model = output_model
        self.revertible = revertible
        self.retry_on_timeout = retry_on_timeout
        self.version = canonical
        self.examples: tuple[str, ...] = tuple(normalise_examples(examples))
        self.kind: Literal["service", "agent"] = kind
        self.concurrency = concurrency
        self._handler: Handler[InT, OutT] | None = None
        self._revert: RevertHandler[InT, OutT] | None = None
        self.input_schema: dict[str, Any] = input_schema
        self.output_schema: dict[str, Any] = output_schema
        self._input_validator = None if input_model else _validator(input_schema)
        self._output_validator = None if output_model else _validator(output_schema)
        self.schema_hash = definition_hash(
            name=name,
            description=description,
            input_schema=self.input_schema,
            output_schema=self.output_schema,
            revertible=revertible,
            version=canonical,
            kind=kind,
            examples=self.examples,
            retry_on_timeout=retry_on_timeout,
            approval_when=self.approval_when,
        )

    # --- data ----------------------------------------------------------------------------

    def parse_input(self, data: Mapping[str, Any]) -> InT:
        """A task's input as the handler gets it.

        Raises:
            InvalidData: it does not match the input schema (every field at fault named).
        """
        return cast("InT", _parse(self.input_model, self._input_validator, data))

    def parse_output(self, data: Mapping[str, Any]) -> OutT:
        """A recorded output as a revert handler gets it.

        Raises:
            InvalidData: it does not match the output schema.
        """
        return cast("OutT", _parse(self.output_model, self._output_validator, data))

    def dump_output(self, result: object) -> dict[str, Any]:
        """A handler's result as the task's output (JSON), checked against the output schema.

        Raises:
            InvalidData: it does not match the output schema.
        """
        model = self.output_model
        if model is None:
            if isinstance(result, BaseModel):
                result = result.model_dump(mode="json", by_alias=True)
            if not isinstance(result, Mapping):
                raise InvalidData(f"<root>: {type(result).__name__} is not a JSON object")
            data = dict(result)
            assert self._output_validator is not None
            _check(self._output_validator, data)
            return data
        try:
            if isinstance(result, model):
                validated = result
            elif isinstance(result, BaseModel):
                validated = model.model_validate(result.model_dump())
            else:
                validated = model.model_validate(result)
        except ValidationError as exc:
            raise InvalidData(describe_validation_error(exc)) from None
        dumped: dict[str, Any] = validated.model_dump(mode="json", by_alias=True)
        return dumped

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


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming every invalid field: ``amount: Input should be a valid number``."""
    parts = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(p) for p in error["loc"]) or "<root>"
        parts.append(f"{field}: {error['msg']}")
    return "; ".join(parts)


def _checked_schema(name: str, label: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(schema, Mapping):
        raise ServiceDefinitionError(
            f"{name}: the {label} schema must be a JSON object, got {type(schema).__name__}"
        )
    document = dict(schema)
    cls = validator_for(document, default=Draft202012Validator)
    try:
        cls.check_schema(document)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "<root>"
        raise ServiceDefinitionError(
            f"{name}: the {label} schema is not valid JSON Schema: at {where}: {exc.message}"
        ) from None
    root = document.get("type", "object")
    if root != "object" and not (isinstance(root, list) and "object" in root):
        raise ServiceDefinitionError(
            f"{name}: the {label} schema must describe a JSON object (its type is {root!r})"
        )
    return document


def _approval_condition(name: str, always: bool, condition: str | None) -> str | None:
    if condition is None:
        return ALWAYS if always else None
    if always:
        raise ServiceDefinitionError(
            f"{name}: give requires_approval=True or approval_when, not both"
        )
    try:
        parse_gate(condition)
    except GateSyntaxError as exc:
        raise ServiceDefinitionError(
            f"{name}: approval_when {condition!r} is not a valid condition: {exc}"
        ) from None
    return condition


def _validator(schema: dict[str, Any]) -> Any:
    cls = validator_for(schema, default=Draft202012Validator)
    return cls(schema)


def _check(validator: Any, data: Mapping[str, Any]) -> None:
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return
    parts = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in errors[:_MAX_SCHEMA_ERRORS]
    ]
    if len(errors) > _MAX_SCHEMA_ERRORS:
        parts.append(f"and {len(errors) - _MAX_SCHEMA_ERRORS} more")
    raise InvalidData("; ".join(parts))


def _parse(
    model: type[BaseModel] | None, validator: Any, data: Mapping[str, Any]
) -> BaseModel | JsonObject:
    if model is not None:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise InvalidData(describe_validation_error(exc)) from None
    if not isinstance(data, Mapping):
        raise InvalidData(f"<root>: {type(data).__name__} is not a JSON object")
    _check(validator, data)
    return dict(data)


def schema_hash(definition: dict[str, Any]) -> str:
    """A short, stable hash of a service definition (canonical JSON, SHA-256).

    ``definition`` holds the keyword arguments of
    :func:`orra_events.registrations.definition_hash`, which is what the SDK and the
    registry followers use.
    """
    return definition_hash(**definition)

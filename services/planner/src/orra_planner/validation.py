"""Validation of a candidate plan: the one gate every planning strategy goes through.

:func:`validate_plan` checks a candidate (tasks as a planner proposes them) against the
project's :class:`~orra_planner.registry.ServiceCatalog` and the action's data, collects
*every* problem (it never stops at the first) as a :class:`ValidationIssue` with a named
:class:`IssueCode` and a message naming the task and the field, and, when there is none,
returns the accepted :class:`~orra_events.Plan` with its ``parallel_groups`` computed
here (a strategy's own groups are never trusted).

The rules (DESIGN.md, "The plan"): every service exists; every input matches the service's
input schema (names, required fields, JSON types); the structure is sound
(:func:`orra_events.plan.check_tasks`: valid unique ids, every reference well formed and
naming an earlier task, no cycle); every reference's path (``$order.items.0.id``) exists
in the referenced service's output schema as far as that schema describes it
(:mod:`orra_planner.outputs`); every action data field is used by some task.

A data field counts as *used* when its value appears as a concrete input value of some
task (anywhere in the input, also inside lists and objects; an escaped literal counts as
the text it stands for), or as that value converted
to the input's declared type (``"299.99"`` → ``299.99``).

A strategy validates its candidate and :func:`~orra_planner.strategy.finalize` validates
it again; :func:`validate_plan` remembers its last few verdicts (by catalogue and data
object, and the tasks' exact content), so the second look at an unchanged plan is free.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

import msgspec

from orra_events import DataField, Plan, PlanTask
from orra_events.plan import (
    check_tasks,
    find_references,
    parallel_groups,
    parse_reference,
    unescape,
)
from orra_planner import schema
from orra_planner.outputs import check_outputs

if TYPE_CHECKING:
    from orra_planner.registry import ServiceCatalog, ServiceSpec

__all__ = [
    "IssueCode",
    "ValidationIssue",
    "ValidationResult",
    "parse_candidate",
    "validate_plan",
]


class IssueCode(StrEnum):
    """The named kinds of plan validation errors."""

    MALFORMED_PLAN = "malformed_plan"
    EMPTY_PLAN = "empty_plan"
    BAD_TASK_ID = "bad_task_id"
    DUPLICATE_TASK_ID = "duplicate_task_id"
    UNKNOWN_SERVICE = "unknown_service"
    MISSING_INPUT = "missing_input"
    UNEXPECTED_INPUT = "unexpected_input"
    INPUT_TYPE_MISMATCH = "input_type_mismatch"
    UNKNOWN_REFERENCE = "unknown_reference"
    FORWARD_REFERENCE = "forward_reference"
    SELF_REFERENCE = "self_reference"
    MALFORMED_REFERENCE = "malformed_reference"
    UNKNOWN_OUTPUT_FIELD = "unknown_output_field"
    CYCLE = "cycle"
    UNUSED_DATA = "unused_data"
    NO_PARTS = "no_parts"
    PART_NOT_IN_ACTION = "part_not_in_action"
    DUPLICATE_PART = "duplicate_part"
    PART_MISSING = "part_missing"
    SERVES_NOTHING = "serves_nothing"
    UNKNOWN_PART = "unknown_part"
    UNCOVERED_SERVED = "uncovered_served"
    PART_NOT_ACCOUNTED = "part_not_accounted"
    PLAINLY_SERVED = "plainly_served"


@dataclass(frozen=True)
class ValidationIssue:
    """One problem of a candidate plan.

    Attributes:
        code: Its kind.
        message: A sentence naming the task and the field.
        task: The task it concerns, if one.
        field: The input, output or data field it concerns, if one.
    """

    code: IssueCode
    message: str
    task: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


@dataclass(frozen=True)
class ValidationResult:
    """The verdict on a candidate plan.

    Attributes:
        issues: Every problem found, in a stable order; empty when the plan is valid.
        plan: The accepted plan with its parallel groups, when there is no issue.
    """

    issues: tuple[ValidationIssue, ...]
    plan: Plan | None = None

    @property
    def ok(self) -> bool:
        """Whether the candidate is a valid plan."""
        return not self.issues

    @property
    def reasons(self) -> list[str]:
        """The issues as ``code: message`` strings, as ``plan.failed`` carries them."""
        return [str(issue) for issue in self.issues]

    def codes(self) -> set[IssueCode]:
        """The distinct kinds of issues found."""
        return {issue.code for issue in self.issues}


def parse_candidate(raw: Any) -> tuple[list[PlanTask], list[ValidationIssue]]:
    """Read a plan-shaped JSON value (``{"tasks": [...]}`` or a bare task list).

    Meant for strategies that receive JSON (a language model's answer); any
    ``parallel_groups`` in it are ignored, since validation computes them.

    Returns:
        The well-formed tasks, and a ``malformed_plan`` issue per malformed part.
    """
    issues: list[ValidationIssue] = []
    raw_tasks = raw.get("tasks") if isinstance(raw, Mapping) else raw
    if not isinstance(raw_tasks, list):
        return [], [ValidationIssue(IssueCode.MALFORMED_PLAN, "the plan has no 'tasks' list")]
    tasks: list[PlanTask] = []
    for index, item in enumerate(raw_tasks):
        where = f"tasks[{index}]"
        if not isinstance(item, Mapping):
            issues.append(ValidationIssue(IssueCode.MALFORMED_PLAN, f"{where} is not an object"))
            continue
        task_id, service, task_input = item.get("id"), item.get("service"), item.get("input", {})
        problems = [
            f"{where}.{name} must be a {kind}"
            for name, value, kind in (
                ("id", task_id, "string"),
                ("service", service, "string"),
            )
            if not isinstance(value, str)
        ]
        if not isinstance(task_input, Mapping):
            problems.append(f"{where}.input must be an object")
        if problems:
            label = task_id if isinstance(task_id, str) else None
            issues.extend(
                ValidationIssue(IssueCode.MALFORMED_PLAN, p, task=label) for p in problems
            )
            continue
        assert isinstance(task_id, str)
        assert isinstance(service, str)
        assert isinstance(task_input, Mapping)
        tasks.append(PlanTask(id=task_id, service=service, input=dict(task_input)))
    return tasks, issues


class _Verdicts:
    """The last verdicts of :func:`validate_plan`, for a plan validated twice unchanged.

    A verdict is found again only for the very same catalogue and data objects (kept
    alive here, so their ids are not reused) and tasks that encode to the same bytes.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[
            tuple[int, int, bytes], tuple[ServiceCatalog, Sequence[DataField], ValidationResult]
        ] = OrderedDict()
        self._encoder = msgspec.json.Encoder()

    def key(
        self, tasks: Sequence[PlanTask], catalog: ServiceCatalog, data: Sequence[DataField]
    ) -> tuple[int, int, bytes] | None:
        try:
            return (id(catalog), id(data), self._encoder.encode(tasks))
        except (TypeError, msgspec.EncodeError):  # values JSON cannot hold: no memo
            return None

    def get(
        self, key: tuple[int, int, bytes], catalog: ServiceCatalog, data: Sequence[DataField]
    ) -> ValidationResult | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] is not catalog or entry[1] is not data:
            return None
        return entry[2]

    def put(
        self,
        key: tuple[int, int, bytes],
        catalog: ServiceCatalog,
        data: Sequence[DataField],
        result: ValidationResult,
    ) -> None:
        self._entries[key] = (catalog, data, result)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


_VERDICTS: Final = _Verdicts(size=32)


def validate_plan(
    tasks: Sequence[PlanTask], catalog: ServiceCatalog, data: Sequence[DataField]
) -> ValidationResult:
    """Validate a candidate plan; collect every issue.

    Args:
        tasks: The candidate's tasks, in the order the planner gave them.
        catalog: The services of the action's project (and only those).
        data: The action's data fields.

    Returns:
        The issues and, when there is none, the plan with computed parallel groups.
    """
    key = _VERDICTS.key(tasks, catalog, data)
    if key is not None and (known := _VERDICTS.get(key, catalog, data)) is not None:
        return known
    result = _validate(tasks, catalog, data)
    if key is not None:
        _VERDICTS.put(key, catalog, data, result)
    return result


def _validate(
    tasks: Sequence[PlanTask], catalog: ServiceCatalog, data: Sequence[DataField]
) -> ValidationResult:
    issues: list[ValidationIssue] = []
    if not tasks:
        issues.append(ValidationIssue(IssueCode.EMPTY_PLAN, "the plan has no tasks"))
    # Ids, references and cycles: the shared grammar's checks (orra_events.plan).
    issues.extend(
        ValidationIssue(IssueCode(i.kind.value), i.message, task=i.task, field=i.field)
        for i in check_tasks(tasks)
    )
    services_by_task: dict[str, str] = {}
    for task in tasks:
        services_by_task.setdefault(task.id, task.service)
    for task in tasks:
        spec = catalog.get(task.service)
        if spec is None:
            known = ", ".join(catalog) or "none"
            issues.append(
                ValidationIssue(
                    IssueCode.UNKNOWN_SERVICE,
                    f"task {task.id!r}: service {task.service!r} is not registered in "
                    f"project {catalog.project!r} (registered: {known})",
                    task=task.id,
                )
            )
        else:
            issues.extend(_check_inputs(task, spec))
        issues.extend(
            ValidationIssue(IssueCode(p.code), p.message, task=task.id, field=p.field)
            for p in check_outputs(task, spec, services_by_task, catalog)
        )
    issues.extend(_check_data_used(tasks, catalog, data))
    if issues:
        return ValidationResult(tuple(issues))
    return ValidationResult((), Plan(tasks=list(tasks), parallel_groups=parallel_groups(tasks)))


def _accepts_extra(object_schema: Mapping[str, Any]) -> bool:
    node = schema.resolve(object_schema, object_schema)
    if "properties" not in node:
        return node.get("additionalProperties", True) is not False
    extra = node.get("additionalProperties", False)
    return extra is True or isinstance(extra, Mapping)


def _check_inputs(task: PlanTask, spec: ServiceSpec) -> Iterator[ValidationIssue]:
    declared = spec.inputs
    prefix = f"task {task.id!r} ({spec.name})"
    for name in sorted(spec.required_inputs - task.input.keys()):
        yield ValidationIssue(
            IssueCode.MISSING_INPUT,
            f"{prefix}: required input {name!r} is missing",
            task=task.id,
            field=name,
        )
    extra_ok = _accepts_extra(spec.input_schema)
    for name, value in task.input.items():
        if name not in declared:
            if not extra_ok:
                accepted = ", ".join(sorted(declared)) or "none"
                yield ValidationIssue(
                    IssueCode.UNEXPECTED_INPUT,
                    f"{prefix}: input {name!r} is not in the service's input schema "
                    f"(accepted: {accepted})",
                    task=task.id,
                    field=name,
                )
            continue
        problem = _type_problem(value, name, spec)
        if problem:
            yield ValidationIssue(
                IssueCode.INPUT_TYPE_MISMATCH,
                f"{prefix}: input {name!r}: {problem}",
                task=task.id,
                field=name,
            )


def _type_problem(value: Any, name: str, spec: ServiceSpec) -> str | None:
    if value is None or isinstance(value, str | int | float):  # bool is an int
        if isinstance(value, str) and parse_reference(value) is not None:
            return None  # checked against the referenced output by check_outputs
        return spec.scalar_input_problem(name, value)
    root = spec.input_schema
    field_schema = spec.inputs[name]
    if next(find_references(value), None) is not None:
        expected = schema.types_of(field_schema, root)
        actual = schema.type_name(value)
        if expected is not None and not schema.types_compatible(frozenset({actual}), expected):
            return f"expected {' or '.join(sorted(expected))}, got {actual}"
        return None
    return schema.check_value(value, field_schema, root)


def _values(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _values(item)


def _same(data_value: Any, candidate: Any) -> bool:
    if type(data_value) is type(candidate) and data_value == candidate:
        return True
    if isinstance(data_value, str) and not isinstance(candidate, str | list | dict):
        target = {"type": schema.type_name(candidate)}
        if target["type"] == "integer" and isinstance(candidate, float):
            target = {"type": "number"}
        converted = schema.coerce(data_value, target, target)
        return type(converted) is type(candidate) and bool(converted == candidate)
    return bool(
        isinstance(data_value, int | float)
        and not isinstance(data_value, bool)
        and isinstance(candidate, int | float)
        and not isinstance(candidate, bool)
        and data_value == candidate
    )


def _check_data_used(
    tasks: Sequence[PlanTask], catalog: ServiceCatalog, data: Sequence[DataField]
) -> Iterator[ValidationIssue]:
    values = [
        unescape(v)
        for task in tasks
        for item in task.input.values()
        for v in _values(item)
        if parse_reference(v) is None
    ]
    for data_field in data:
        if any(_same(data_field.value, v) for v in values):
            continue
        takers = sorted(
            spec.name
            for spec in catalog.values()
            if _normalise(data_field.field) in {_normalise(n) for n in spec.inputs}
        )
        hint = (
            f"services that accept {data_field.field!r}: {', '.join(takers)}"
            if takers
            else f"no registered service accepts an input named {data_field.field!r}"
        )
        yield ValidationIssue(
            IssueCode.UNUSED_DATA,
            f"data field {data_field.field!r} is used by no task ({hint})",
            field=data_field.field,
        )


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())

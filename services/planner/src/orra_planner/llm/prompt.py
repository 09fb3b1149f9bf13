"""What the planner tells the model, the JSON schema it asks for, and reading the answer.

The answer is either a plan::

    {"tasks": [{"id": "payment", "service": "PaymentService", "input": {...}}],
     "parallel_groups": [["payment", "inventory"], ["delivery"]]}

or the refusal ``{"not_actionable": true, "reason": "..."}``. Input values are concrete
JSON values or references to an earlier task's output (``"$<task id>.<field>"``, or a
nested value such as ``"$payment.items.0.id"``; the grammar is :mod:`orra_events.plan`'s).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from orra_events import Plan, PlanTask, UncoveredPart
from orra_events.plan import (
    REFERENCE_JSON_PATTERN,
    dependencies,
    dependency_levels,
    find_references,
)
from orra_planner.errors import PlannerError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orra_events import DataField, ServiceRegistered
    from orra_planner.llm.grounding import GroundingMatch

__all__ = [
    "Answer",
    "AnswerError",
    "NotActionable",
    "build_messages",
    "parallel_groups",
    "parse_answer",
    "repair_message",
    "response_format",
]

SYSTEM: Final = """\
You are the planner of Orra, an orchestration engine. You turn a user's action into an \
execution plan: tasks, each performed by one of the registered services, run with as much \
parallelism as their dependencies allow.

Rules:
1. Use only the registered services, by their exact names. Never invent a service.
2. Each task's input follows its service's input schema: every required field, the right \
types, no fields the schema does not define.
3. An input value is either a concrete JSON value (usually one of the action's data values, \
copied exactly) or a reference "$<task id>.<field>" to a field of an earlier task's output \
schema (a value nested in it: "$<task id>.<field>.<field or list index>...", such as \
"$payment.items.0.id"). Reference another task only when this task needs that task's output. \
A text value that starts with "$" and could be read as a reference (a data value such as \
"$BRK.B") is written with one more "$": "$$BRK.B".
4. Use every data field of the action at least once.
5. Maximise parallelism: tasks that do not need each other's output must not depend on \
each other. No cycles.
6. "parallel_groups" lists the task ids by dependency level: the first group holds the tasks \
without references; each later group holds the tasks whose references all point to earlier \
groups.
7. Task ids are short, unique, lowercase words (letters, digits, "_"), such as "payment".
8. When the registered services cannot perform the action, do not make up a plan: answer \
{"not_actionable": true, "reason": "<why, in one sentence>"}.
9. Account for the action. "parts" lists what the action asks for, step by step, each part \
copied word for word from the action (never reworded). Every task says which part it \
serves in "serves" (exactly one of the parts), or null when it only provides data that \
another task references. Add no task that serves no part and provides nothing. A part no \
registered service can do goes to "uncovered" with a reason that quotes it (for example \
"nothing registered can translate: 'translate the contract'"); never serve it with a \
service that merely shares a word with it. Every part is either served or uncovered.

Answer with one JSON object and nothing else: no prose, no comments.

Plan format:
{"parts": ["<words of the action>", ...], "tasks": [{"id": "<task id>", "service": \
"<service name>", "serves": "<one of the parts>" or null, "input": {"<field>": <value or \
"$<task id>.<field>">}}], "uncovered": [{"part": "<one of the parts>", "reason": "<why, \
quoting it>"}], "parallel_groups": [["<task id>", ...], ...]}

Example (services and fields are illustrative only), for the action "Process order payment \
and update inventory, then arrange delivery and notify the customer":
{"parts": ["Process order payment", "update inventory", "arrange delivery", \
"notify the customer"],
 "tasks": [
  {"id": "payment", "service": "PaymentService", "serves": "Process order payment", \
"input": {"orderId": "ORD123", "amount": "299.99"}},
  {"id": "inventory", "service": "InventoryService", "serves": "update inventory", \
"input": {"productId": "PROD456"}},
  {"id": "delivery", "service": "DeliveryAgent", "serves": "arrange delivery", \
"input": {"orderId": "ORD123", "inStock": "$inventory.inStock"}},
  {"id": "notify", "service": "NotificationService", "serves": "notify the customer", \
"input": {"customerId": "CUST1", "paymentStatus": "$payment.status"}}],
 "uncovered": [],
 "parallel_groups": [["payment", "inventory"], ["delivery", "notify"]]}
"""

STRUCTURED_NOTE: Final = """
The answer's JSON schema always has the keys "not_actionable", "reason", "parts", "tasks", \
"uncovered" and "parallel_groups": for a plan, set "not_actionable" to false, "reason" to "" \
and fill the parts, the tasks and the uncovered parts; to refuse, set "not_actionable" to \
true, give the reason, and leave the lists empty. Set optional input fields you do not need \
to null."""


class AnswerError(PlannerError, ValueError):
    """The model's answer is neither a plan nor a refusal."""


@dataclass(frozen=True)
class NotActionable:
    """The model says the services cannot perform the action.

    Attributes:
        reason: The model's reason.
    """

    reason: str


Answer = Plan | NotActionable
"""What a model's answer means."""


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _service_examples(s: ServiceRegistered) -> str:
    if not s.examples:
        return ""
    return "How users ask for it: " + "; ".join(_dump(e) for e in s.examples) + "\n"


def _services_text(services: Sequence[ServiceRegistered]) -> str:
    blocks = [
        f"### {s.service} ({s.kind})\n"
        f"Description: {s.description.strip() or '(none)'}\n"
        f"{_service_examples(s)}"
        f"Input schema: {_dump(s.input_schema)}\n"
        f"Output schema: {_dump(s.output_schema)}"
        for s in sorted(services, key=lambda s: s.service)
    ]
    return "\n\n".join(blocks) if blocks else "(no service is registered)"


def _examples_text(matches: Sequence[GroundingMatch]) -> str:
    if not matches:
        return ""
    lines = ["Worked examples of this domain (how similar actions are planned):"]
    for i, m in enumerate(matches, 1):
        case = m.use_case
        lines.append(f"Example {i} ({m.grounding.name}): action {case.action!r}")
        if case.intent:
            lines.append(f"  intent: {case.intent}")
        if case.capabilities:
            lines.append(f"  capabilities needed: {', '.join(case.capabilities)}")
        if case.services:
            lines.append(f"  services expected: {', '.join(case.services)}")
        if case.params:
            lines.append(f"  example data: {_dump(case.params)}")
        if m.params:
            lines.append(f"  read from this action: {_dump(m.params)}")
        if case.plan:
            lines.append(f"  plan: {_dump(case.plan)}")
    constraints: list[str] = []
    for m in matches:
        for c in m.grounding.constraints:
            if c not in constraints:
                constraints.append(c)
    if constraints:
        lines.append("Constraints every plan of this domain must respect:")
        lines.extend(f"- {c}" for c in constraints)
    return "\n".join(lines)


def build_messages(
    *,
    action: str,
    data: Sequence[DataField],
    services: Sequence[ServiceRegistered],
    examples: Sequence[GroundingMatch] = (),
    structured: bool = False,
) -> list[dict[str, str]]:
    """Build the system and user messages that ask for a plan.

    Args:
        action: The action text.
        data: The action's data fields.
        services: The registered services the plan may use.
        examples: Grounding use cases to show as worked examples.
        structured: Whether the answer is constrained by :func:`response_format`'s schema.

    Returns:
        Chat messages (``role`` and ``content``).
    """
    system = SYSTEM + (STRUCTURED_NOTE if structured else "")
    fields = "\n".join(f"- {d.field}: {_dump(d.value)}" for d in data) or "(none)"
    parts = [f"Registered services:\n\n{_services_text(services)}"]
    grounding = _examples_text(examples)
    if grounding:
        parts.append(grounding)
    parts.append(f"Action: {action}\n\nData fields:\n{fields}")
    parts.append("Answer with the plan as one JSON object.")
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def repair_message(errors: Sequence[str]) -> dict[str, str]:
    """The user message that sends an invalid plan back with its validation errors."""
    listed = "\n".join(f"- {e}" for e in errors)
    return {
        "role": "user",
        "content": (
            "Your answer was rejected. Validation errors:\n"
            f"{listed}\n\n"
            "Fix every error and answer with the corrected plan as one JSON object in the same "
            "format (or with the not-actionable answer if the registered services cannot "
            "perform the action)."
        ),
    }


# --- structured outputs ------------------------------------------------------------------


class _NotStrict(Exception):
    """A service schema uses what strict structured outputs cannot express."""


_SCALARS: Final = {"string", "number", "integer", "boolean", "null"}
_SERVES: Final = {"anyOf": [{"type": "string"}, {"type": "null"}]}
_UNCOVERED: Final = {
    "type": "object",
    "properties": {"part": {"type": "string"}, "reason": {"type": "string"}},
    "required": ["part", "reason"],
    "additionalProperties": False,
}


def _strict_value(schema: Any, depth: int = 0) -> dict[str, Any]:
    if not isinstance(schema, dict) or depth > 5:
        raise _NotStrict
    if "enum" in schema and isinstance(schema["enum"], list):
        return {"enum": list(schema["enum"])}
    if "const" in schema:
        return {"enum": [schema["const"]]}
    if "anyOf" in schema and isinstance(schema["anyOf"], list):
        return {"anyOf": [_strict_value(s, depth + 1) for s in schema["anyOf"]]}
    kind = schema.get("type")
    if isinstance(kind, list):
        return {"anyOf": [_strict_value({**schema, "type": k}, depth + 1) for k in kind]}
    if kind in _SCALARS:
        return {"type": kind}
    if kind == "array":
        return {"type": "array", "items": _strict_value(schema.get("items"), depth + 1)}
    if kind == "object" or "properties" in schema:
        return _strict_object(schema, depth + 1)
    raise _NotStrict


def _strict_object(schema: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    props = schema.get("properties")
    if not isinstance(props, dict) or schema.get("additionalProperties") not in (None, False):
        raise _NotStrict
    required = set(schema.get("required") or [])
    out: dict[str, Any] = {}
    for name, sub in props.items():
        value = _strict_value(sub, depth)
        options = value.get("anyOf", [value])
        if depth == 1 and not any(o.get("type") == "string" and "enum" not in o for o in options):
            options = [*options, {"type": "string", "pattern": REFERENCE_JSON_PATTERN}]
        if name not in required and not any(o.get("type") == "null" for o in options):
            options = [*options, {"type": "null"}]
        out[name] = options[0] if len(options) == 1 else {"anyOf": options}
    return {
        "type": "object",
        "properties": out,
        "required": list(props),
        "additionalProperties": False,
    }


def response_format(services: Sequence[ServiceRegistered]) -> dict[str, Any]:
    """The ``response_format`` that asks for a plan or a refusal as structured output.

    The schema is strict (each task's input is its service's input schema, references
    allowed in every top-level field) when every service's input schema can be expressed
    in the strict subset; otherwise it is a loose, non-strict schema.
    """
    names = sorted({s.service for s in services})
    try:
        variants = [
            {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "service": {"type": "string", "enum": [s.service]},
                    "serves": _SERVES,
                    "input": _strict_object(s.input_schema, 1),
                },
                "required": ["id", "service", "serves", "input"],
                "additionalProperties": False,
            }
            for s in sorted(services, key=lambda s: s.service)
        ]
        if not variants:
            raise _NotStrict  # noqa: TRY301
        task: dict[str, Any] = variants[0] if len(variants) == 1 else {"anyOf": variants}
        strict = True
    except _NotStrict:
        task = {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "service": {"type": "string", "enum": names} if names else {"type": "string"},
                "serves": _SERVES,
                "input": {"type": "object"},
            },
            "required": ["id", "service", "serves", "input"],
        }
        strict = False
    schema = {
        "type": "object",
        "properties": {
            "not_actionable": {"type": "boolean"},
            "reason": {"type": "string"},
            "parts": {"type": "array", "items": {"type": "string"}},
            "tasks": {"type": "array", "items": task},
            "uncovered": {"type": "array", "items": _UNCOVERED},
            "parallel_groups": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "string"}},
            },
        },
        "required": [
            "not_actionable",
            "reason",
            "parts",
            "tasks",
            "uncovered",
            "parallel_groups",
        ],
        "additionalProperties": False,
    }
    return {
        "type": "json_schema",
        "json_schema": {"name": "orra_plan", "strict": strict, "schema": schema},
    }


# --- reading the answer ------------------------------------------------------------------


def parallel_groups(tasks: Sequence[PlanTask]) -> list[list[str]] | None:
    """The dependency levels of the tasks, from their ``$task.field`` references.

    Returns:
        The groups (task order kept within a group), or ``None`` when the graph has a
        duplicate id, a reference to an unknown task or a cycle (validation reports it).
    """
    ids = [t.id for t in tasks]
    known = set(ids)
    if len(known) != len(ids) or any(
        ref.task not in known for t in tasks for _, ref in find_references(t.input)
    ):
        return None
    levels, blocked = dependency_levels(dependencies(tasks), ids)
    return None if blocked else levels


def parse_answer(answer: dict[str, Any], services: Sequence[ServiceRegistered] = ()) -> Answer:
    """Interpret the model's JSON answer.

    ``parallel_groups`` is recomputed from the references whenever the task graph allows
    it, so the plan always has maximum parallelism; otherwise the model's groups are kept
    for validation to judge. Null values of optional input fields (as strict structured
    outputs produce them) are dropped.

    Args:
        answer: The JSON object the model answered with.
        services: The registered services, to know which input fields are optional.

    Returns:
        The plan, or the refusal.

    Raises:
        AnswerError: The answer has neither shape; the message says what is wrong.
    """
    if answer.get("not_actionable") is True:
        reason = answer.get("reason")
        return NotActionable(str(reason).strip() if reason else "the model gave no reason")
    raw_tasks = answer.get("tasks")
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise AnswerError(
            'the answer has no "tasks" list: answer with a plan '
            '{"tasks": [...], "parallel_groups": [...]} or {"not_actionable": true, ...}'
        )
    required = {s.service: set(s.input_schema.get("required") or []) for s in services}
    tasks: list[PlanTask] = []
    for i, raw in enumerate(raw_tasks):
        if not isinstance(raw, dict):
            raise AnswerError(f"task {i} is not an object")
        task_id, service, inputs = raw.get("id"), raw.get("service"), raw.get("input", {})
        if not isinstance(task_id, str) or not task_id:
            raise AnswerError(f'task {i} has no string "id"')
        if not isinstance(service, str) or not service:
            raise AnswerError(f'task {task_id!r} has no string "service"')
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, dict):
            raise AnswerError(f'task {task_id!r}: "input" must be an object')
        keep = required.get(service, set())
        inputs = {k: v for k, v in inputs.items() if v is not None or k in keep}
        serves = raw.get("serves")
        if serves is not None and not isinstance(serves, str):
            raise AnswerError(f'task {task_id!r}: "serves" must be one of the parts or null')
        tasks.append(PlanTask(id=task_id, service=service, input=inputs, serves=serves or None))
    groups = parallel_groups(tasks)
    if groups is None:
        raw_groups = answer.get("parallel_groups")
        if isinstance(raw_groups, list) and all(
            isinstance(g, list) and all(isinstance(t, str) for t in g) for g in raw_groups
        ):
            groups = [list(g) for g in raw_groups]
        else:
            groups = [[t.id for t in tasks]]
    parts, uncovered = _coverage(answer)
    return Plan(tasks=tasks, parallel_groups=groups, parts=parts, uncovered=uncovered)


def _coverage(answer: dict[str, Any]) -> tuple[list[str], list[UncoveredPart]]:
    """The answer's ``parts`` and ``uncovered`` (their consistency is validation's to judge).

    Raises:
        AnswerError: they do not have the asked shape.
    """
    raw_parts = answer.get("parts") or []
    if not isinstance(raw_parts, list) or not all(isinstance(p, str) for p in raw_parts):
        raise AnswerError('"parts" must be a list of the action\'s parts, each its own words')
    raw_uncovered = answer.get("uncovered") or []
    if not isinstance(raw_uncovered, list):
        raise AnswerError('"uncovered" must be a list of {"part", "reason"} objects')
    uncovered: list[UncoveredPart] = []
    for item in raw_uncovered:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("part"), str)
            and isinstance(item.get("reason"), str)
        ):
            raise AnswerError('each "uncovered" entry must be {"part": str, "reason": str}')
        uncovered.append(UncoveredPart(part=item["part"], reason=item["reason"]))
    return list(raw_parts), uncovered

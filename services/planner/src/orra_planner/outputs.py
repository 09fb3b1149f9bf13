"""What a reference may read: its path followed through the referenced service's output schema.

The grammar of references is :mod:`orra_events.plan`'s. Here the planner checks a reference
such as ``"$payment.items.0.id"`` against the output schema of the service that runs task
``payment``: a name segment must be a property of an object schema, an index segment
needs an array schema; the value found there must suit the input that receives it.

How far the check goes:

* ``properties`` (with ``additionalProperties`` a schema or ``true``), ``items`` and
  ``prefixItems`` are followed, through local ``$ref``, ``anyOf``, ``oneOf`` and ``allOf``
  (a segment exists when some branch has it: ``Model | None`` has the model's fields).
* An object schema that declares ``properties`` is closed unless ``additionalProperties``
  says otherwise (what pydantic emits for a model), so a name it does not declare is an
  ``unknown_output_field``; so is a name under a value the schema types as something else
  (``"$payment.status.code"`` when ``status`` is a string), or an index under a non-array.
* Where the schema is *open* (no ``properties``, ``additionalProperties: true``, an array
  without ``items``, or an empty schema) the planner cannot know what the output holds:
  the rest of the path is accepted unchecked and its type is unknown. If the output then
  lacks it, the dispatcher fails the orchestration with an error that names the reference
  and where its path stops (:func:`orra_events.plan.resolve`).
* A list index is not checked against a length (a list's length is not in its schema).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from orra_events.plan import Reference, find_references
from orra_planner import schema

if TYPE_CHECKING:
    from orra_events import PlanTask
    from orra_planner.registry import ServiceCatalog, ServiceSpec

__all__ = ["Followed", "OutputProblem", "check_outputs", "follow"]

_MAX_BRANCHES: Final = 64


@dataclass(frozen=True)
class Followed:
    """Where a reference path leads in an output schema.

    Attributes:
        status: ``found`` (the schema describes the whole path), ``open`` (the schema is
            open somewhere along it: the rest is unchecked) or ``missing``.
        types: The JSON types of the value found (``None``: unknown or any).
        problem: For ``missing``, what is wrong, naming where the path stops.
    """

    status: Literal["found", "open", "missing"]
    types: frozenset[str] | None = None
    problem: str = ""


def _alternatives(nodes: Sequence[Any], root: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The concrete schemas ``nodes`` may be.

    ``$ref`` is followed and ``anyOf``/``oneOf``/``allOf`` branches are flattened (a node
    with branches stays itself only when it has keywords of its own).
    """
    out: list[Mapping[str, Any]] = []
    stack = list(reversed(nodes))
    while stack and len(out) < _MAX_BRANCHES:
        node = schema.resolve(stack.pop(), root)
        branches = [
            branch
            for key in ("anyOf", "oneOf", "allOf")
            if isinstance(node.get(key), list)
            for branch in node[key]
        ]
        if branches:
            stack.extend(reversed(branches))
            if not any(k in node for k in ("type", "properties", "items", "prefixItems")):
                continue
        out.append(node)
    return out


def _declared_types(node: Mapping[str, Any]) -> set[str] | None:
    declared = node.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {t for t in declared if isinstance(t, str)}
    return None


_KINDS: Final = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "null": "null",
}


@dataclass
class _Step:
    """What one segment leads to, over every alternative of the current schema."""

    found: list[Any] = field(default_factory=list)
    open: bool = False
    declared: set[str] = field(default_factory=set)
    kinds: set[str] = field(default_factory=set)

    def take(self, node: Mapping[str, Any], segment: str | int) -> None:
        """Follow ``segment`` from one alternative ``node``."""
        types = _declared_types(node)
        wanted = "object" if isinstance(segment, str) else "array"
        if types is not None and wanted not in types:
            self.kinds.update(_KINDS.get(t, t) for t in types)
            return
        if isinstance(segment, str):
            props = node.get("properties")
            extra = node.get("additionalProperties")
            if isinstance(props, Mapping) and segment in props:
                self.found.append(props[segment])
            elif isinstance(extra, Mapping):
                self.found.append(extra)
            elif extra is True or (not isinstance(props, Mapping) and extra is not False):
                self.open = True
            else:
                self.declared.update(map(str, props or ()))
            return
        prefix = node.get("prefixItems")
        items = node.get("items")
        if isinstance(prefix, list) and segment < len(prefix):
            self.found.append(prefix[segment])
        elif isinstance(items, Mapping):
            self.found.append(items)
        elif items is False:
            self.kinds.add(f"a list of {len(prefix) if isinstance(prefix, list) else 0}")
        else:
            self.open = True

    def problem(self, path: Sequence[str | int], depth: int) -> str:
        """Why the path stops at ``depth``, for ``unknown_output_field``."""
        segment = path[depth]
        within = ".".join(map(str, path[:depth]))
        kinds = " or ".join(sorted(self.kinds))
        if isinstance(segment, int):
            return f"has no list at {within!r} to index with {segment} (it is {kinds})"
        if self.declared or not kinds:
            at = f" at {within!r}" if within else ""
            declared = ", ".join(sorted(self.declared)) or "none"
            return f"has no field {segment!r}{at} (declared: {declared})"
        return f"has no field {segment!r} at {within!r} (it is {kinds})"


def follow(output_schema: Mapping[str, Any], path: Sequence[str | int]) -> Followed:
    """Follow a reference path (:attr:`~orra_events.plan.Reference.path`) through a schema.

    Args:
        output_schema: The referenced service's output schema (the root of ``$ref``).
        path: The segments: names and list indexes.
    """
    nodes: list[Any] = [output_schema]
    for depth, segment in enumerate(path):
        step = _Step()
        for node in _alternatives(nodes, output_schema):
            step.take(node, segment)
        if step.open:
            if not step.found:
                return Followed("open")
            step.found.append({})
        if not step.found:
            return Followed("missing", problem=step.problem(path, depth))
        nodes = step.found
    types: set[str] = set()
    for node in nodes:
        node_types = schema.types_of(node, output_schema)
        if node_types is None:
            return Followed("found", None)
        types |= node_types
    return Followed("found", frozenset(types))


@dataclass(frozen=True)
class OutputProblem:
    """A reference that the referenced service's output schema does not support.

    Attributes:
        code: ``unknown_output_field`` or ``input_type_mismatch`` (the planner's codes).
        message: A sentence naming the task, the input and the reference.
        field: Where the reference sits in the task's input.
    """

    code: Literal["unknown_output_field", "input_type_mismatch"]
    message: str
    field: str


def check_outputs(
    task: PlanTask,
    spec: ServiceSpec | None,
    services_by_task: Mapping[str, str],
    catalog: ServiceCatalog,
) -> Iterator[OutputProblem]:
    """Check each reference of ``task``'s input against the referenced output schema.

    References to unknown tasks or services are skipped (reported elsewhere). The type of
    the referenced value is compared with the input it fills when it fills a whole
    top-level input field.

    Args:
        task: The task whose input is checked.
        spec: Its service, when registered.
        services_by_task: The service of each task of the plan.
        catalog: The project's services.
    """
    for where, ref in find_references(task.input):
        source_name = services_by_task.get(ref.task)
        source = catalog.get(source_name) if source_name is not None else None
        if source is None:
            continue
        yield from _check_one(task, spec, where, ref, source)


def _check_one(
    task: PlanTask, spec: ServiceSpec | None, where: str, ref: Reference, source: ServiceSpec
) -> Iterator[OutputProblem]:
    prefix = f"task {task.id!r}: input {where!r} refers to {ref}"
    if len(ref.path) == 1:  # the common case, from the spec's cached view of its schema
        if ref.field in source.outputs:
            followed = Followed("found", source.output_types(ref.field))
        else:
            followed = follow(source.output_schema, ref.path)
    else:
        followed = follow(source.output_schema, ref.path)
    if followed.status == "missing":
        yield OutputProblem(
            "unknown_output_field",
            f"{prefix}, but {source.name}'s output schema {followed.problem}",
            where,
        )
        return
    if spec is None or where not in spec.inputs:
        return
    wanted = spec.input_types(where)
    if not schema.types_compatible(followed.types, wanted):
        produced = " or ".join(sorted(followed.types or ()))
        yield OutputProblem(
            "input_type_mismatch",
            f"{prefix}: {source.name} produces {produced} there but {spec.name} expects "
            f"{' or '.join(sorted(wanted or ()))}",
            where,
        )

"""The subset of JSON Schema the planner needs: properties, required fields and types.

Schemas come from services (pydantic models rendered as JSON Schema by the SDK), so this
module understands what pydantic emits: ``type`` (a string or a list), ``anyOf`` / ``oneOf``
/ ``allOf``, ``nullable``, ``enum`` / ``const``, ``items``, nested ``properties`` and local
``$ref`` into ``$defs`` / ``definitions``. Anything it does not understand is accepted, so
an unusual schema never rejects a good plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "JSON_TYPES",
    "check_value",
    "coerce",
    "coerce_to",
    "properties",
    "required",
    "resolve",
    "type_name",
    "types_compatible",
    "types_of",
    "verdict_by_type",
]

JSON_TYPES: Final = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
"""The JSON Schema type names."""

_MAX_DEPTH: Final = 32


def resolve(schema: Any, root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow local ``$ref`` pointers (``#/$defs/X``) until a concrete schema.

    Args:
        schema: A schema node (anything not a mapping counts as the empty schema).
        root: The document that ``$ref`` pointers are relative to.

    Returns:
        The referenced schema, or ``{}`` (accept anything) when it cannot be resolved.
    """
    node: Any = schema
    for _ in range(_MAX_DEPTH):
        if not isinstance(node, Mapping):
            return {}
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return node
        if not ref.startswith("#/"):
            return {}
        target: Any = root
        for part in ref[2:].split("/"):
            part_name = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or part_name not in target:
                return {}
            target = target[part_name]
        node = target
    return {}


def properties(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The declared properties of an object schema (empty when it declares none)."""
    props = resolve(schema, schema).get("properties")
    return dict(props) if isinstance(props, Mapping) else {}


def required(schema: Mapping[str, Any]) -> frozenset[str]:
    """The names of the required properties of an object schema."""
    req = resolve(schema, schema).get("required")
    if not isinstance(req, list):
        return frozenset()
    return frozenset(name for name in req if isinstance(name, str))


def type_name(value: Any) -> str:
    """The JSON type of a Python value (``integer`` for whole numbers, never ``bool``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if math.isfinite(value) and value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def types_of(schema: Any, root: Mapping[str, Any]) -> frozenset[str] | None:
    """The JSON types a schema admits, or ``None`` when it admits any type."""
    return _types_of(schema, root, 0)


def _types_of(schema: Any, root: Mapping[str, Any], depth: int) -> frozenset[str] | None:
    if depth > _MAX_DEPTH:
        return None
    node = resolve(schema, root)
    found: set[str] | None = None
    declared = node.get("type")
    if isinstance(declared, str):
        found = {declared}
    elif isinstance(declared, list):
        found = {t for t in declared if isinstance(t, str)}
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if isinstance(branches, list) and branches:
            union: set[str] = set()
            for branch in branches:
                branch_types = _types_of(branch, root, depth + 1)
                if branch_types is None:
                    return None if found is None else frozenset(found)
                union |= branch_types
            found = union if found is None else found & union
    if "const" in node:
        found = {type_name(node["const"])} if found is None else found
    if found is not None and node.get("nullable") is True:
        found.add("null")
    return None if found is None else frozenset(found)


def _admits(types: frozenset[str], actual: str) -> bool:
    return actual in types or (actual == "integer" and "number" in types)


def types_compatible(source: frozenset[str] | None, target: frozenset[str] | None) -> bool:
    """Whether a value of schema types ``source`` can be a value of types ``target``.

    Compatible when the two share a type (``integer`` counts as a ``number``); unknown
    types (``None``) are compatible with everything.
    """
    if source is None or target is None:
        return True
    return any(_admits(target, t) or (t == "number" and "integer" in target) for t in source)


def check_value(value: Any, schema: Any, root: Mapping[str, Any], path: str = "") -> str | None:
    """Check a concrete value against a schema's types.

    Args:
        value: The JSON value.
        schema: The schema node it must match.
        root: The document for ``$ref`` resolution.
        path: Where the value is, for the message (``items[0].id``).

    Returns:
        ``None`` when it matches, else a sentence saying what is wrong where.
    """
    return _check(value, schema, root, path, 0)


def _check(value: Any, schema: Any, root: Mapping[str, Any], path: str, depth: int) -> str | None:
    if depth > _MAX_DEPTH:
        return None
    node = resolve(schema, root)
    where = f" at {path}" if path else ""
    return (
        _check_type_and_enum(value, node, root, where)
        or _check_branches(value, node, root, path, depth)
        or _check_items(value, node, root, path, depth)
        or _check_object(value, node, root, path, depth)
    )


def _check_type_and_enum(
    value: Any, node: Mapping[str, Any], root: Mapping[str, Any], where: str
) -> str | None:
    actual = type_name(value)
    allowed = _types_of(node, root, 0)
    if allowed is not None and not _admits(allowed, actual):
        return f"expected {' or '.join(sorted(allowed))}{where}, got {actual}"
    enum = node.get("enum")
    if isinstance(enum, list) and value not in enum:
        return f"expected one of {enum!r}{where}, got {value!r}"
    return None


def _check_branches(
    value: Any, node: Mapping[str, Any], root: Mapping[str, Any], path: str, depth: int
) -> str | None:
    """``anyOf`` and ``oneOf`` (some branch must match), then ``allOf`` (every one)."""
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if isinstance(branches, list) and branches:
            problems = [_check(value, b, root, path, depth + 1) for b in branches]
            if all(problems):
                return problems[0]
    all_of = node.get("allOf")
    if isinstance(all_of, list):
        for branch in all_of:
            problem = _check(value, branch, root, path, depth + 1)
            if problem:
                return problem
    return None


def _check_items(
    value: Any, node: Mapping[str, Any], root: Mapping[str, Any], path: str, depth: int
) -> str | None:
    if isinstance(value, list | tuple) and "items" in node:
        for index, item in enumerate(value):
            problem = _check(item, node["items"], root, f"{path}[{index}]", depth + 1)
            if problem:
                return problem
    return None


def _check_object(
    value: Any, node: Mapping[str, Any], root: Mapping[str, Any], path: str, depth: int
) -> str | None:
    if not isinstance(value, Mapping):
        return None
    where = f" at {path}" if path else ""
    props = node.get("properties")
    if isinstance(props, Mapping):
        for name, sub in props.items():
            if name in value:
                sub_path = f"{path}.{name}" if path else str(name)
                problem = _check(value[name], sub, root, sub_path, depth + 1)
                if problem:
                    return problem
    req = node.get("required")
    if isinstance(req, list):
        for name in req:
            if name not in value:
                return f"missing required field {name!r}{where}"
    return None


def verdict_by_type(schema: Any, root: Mapping[str, Any]) -> bool:
    """Whether :func:`check_value` judges a scalar (string, number, bool, null) by type alone.

    True when no ``enum`` or ``const`` can be reached from the schema (through ``$ref``,
    ``anyOf``, ``oneOf`` and ``allOf``): ``items``, ``properties`` and ``required`` only
    apply to arrays and objects, so the verdict on a scalar is a function of its JSON type,
    and can be computed once per type.
    """
    stack: list[tuple[Any, int]] = [(schema, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            return False
        resolved = resolve(node, root)
        if "enum" in resolved or "const" in resolved:
            return False
        for key in ("anyOf", "oneOf", "allOf"):
            branches = resolved.get(key)
            if isinstance(branches, list):
                stack.extend((branch, depth + 1) for branch in branches)
    return True


_TRUE: Final = frozenset({"true", "yes", "1", "on"})
_FALSE: Final = frozenset({"false", "no", "0", "off"})


def coerce(value: Any, schema: Any, root: Mapping[str, Any]) -> Any:
    """Losslessly convert a string to the scalar type a schema wants; else return it as is.

    Action data usually arrives as strings (``-d amount:299.99``); a service that declares
    ``amount`` a number gets ``299.99``. Only unambiguous conversions are made, and never
    when the schema also admits a string.
    """
    return coerce_to(value, types_of(schema, root))


def coerce_to(value: Any, allowed: frozenset[str] | None) -> Any:
    """:func:`coerce` for a schema that admits the JSON types ``allowed`` (``None``: any)."""
    if not isinstance(value, str) or allowed is None or "string" in allowed:
        return value
    text = value.strip()
    if "integer" in allowed:
        try:
            return int(text)
        except ValueError:
            pass
    if "number" in allowed:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
    if "boolean" in allowed:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
    return value

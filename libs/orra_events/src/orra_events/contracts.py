"""Contract snapshots of the event schemas, and the compatibility rule that guards them.

The JSON Schema of every event is committed under ``libs/orra_events/schemas/``. The
contract tests compare the code against that snapshot: removing a field, changing a
field's type or adding a required field is incompatible unless the event's major version
``v`` was bumped; adding an optional field is compatible.

Regenerate the snapshot on purpose with ``make schemas``
(``python -m orra_events.contracts --write``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import msgspec

from orra_events.events import ALL_EVENTS, Event

__all__ = ["SCHEMA_DIR", "compatibility_errors", "current_schemas", "load_snapshot", "main"]

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
"""Where the committed snapshot lives (``libs/orra_events/schemas``)."""


def _schema_of(cls: type[Event]) -> dict[str, Any]:
    schema = msgspec.json.schema(cls)
    return {"x-orra-event": cls.TYPE, "x-orra-version": cls.VERSION, **schema}


def current_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every event, by event type, as the code defines them now."""
    return {cls.TYPE: _schema_of(cls) for cls in ALL_EVENTS}


def load_snapshot(directory: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    """The committed schemas, by event type."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        schema = json.loads(path.read_text())
        out[schema["x-orra-event"]] = schema
    return out


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        resolved: dict[str, Any] = schema["$defs"][name]
        return resolved
    return node


def _root(schema: dict[str, Any]) -> dict[str, Any]:
    return _resolve(schema, schema)


def _type_signature(schema: dict[str, Any], node: dict[str, Any]) -> Any:
    """A comparable summary of a property's type (refs resolved one level, by name)."""
    node = dict(node)
    node.pop("default", None)
    node.pop("title", None)
    node.pop("description", None)
    if "$ref" in node:
        return {"$ref": node["$ref"]}
    if "anyOf" in node:
        return {
            "anyOf": sorted(
                json.dumps(_type_signature(schema, n), sort_keys=True) for n in node["anyOf"]
            )
        }
    return node


def compatibility_errors(
    old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
) -> list[str]:
    """Every incompatible change from ``old`` to ``new``; empty when compatible.

    An event whose major version was bumped is exempt: its consumers refuse it explicitly.
    """
    errors: list[str] = []
    for event_type, old_schema in old.items():
        new_schema = new.get(event_type)
        if new_schema is None:
            errors.append(f"{event_type}: event removed")
            continue
        if new_schema.get("x-orra-version") != old_schema.get("x-orra-version"):
            continue
        old_root, new_root = _root(old_schema), _root(new_schema)
        old_props: dict[str, Any] = old_root.get("properties", {})
        new_props: dict[str, Any] = new_root.get("properties", {})
        for name, old_prop in old_props.items():
            if name not in new_props:
                errors.append(f"{event_type}: field {name!r} removed")
                continue
            before = _type_signature(old_schema, old_prop)
            after = _type_signature(new_schema, new_props[name])
            if before != after:
                errors.append(f"{event_type}: field {name!r} changed type from {before} to {after}")
        added_required = set(new_root.get("required", [])) - set(old_root.get("required", []))
        errors.extend(f"{event_type}: new required field {n!r}" for n in sorted(added_required))
        for def_name, old_def in old_schema.get("$defs", {}).items():
            if def_name == old_root.get("title"):
                continue
            new_def = new_schema.get("$defs", {}).get(def_name)
            if new_def is None:
                errors.append(f"{event_type}: type {def_name!r} removed")
                continue
            for name, prop in old_def.get("properties", {}).items():
                if name not in new_def.get("properties", {}):
                    errors.append(f"{event_type}: field {def_name}.{name} removed")
                elif _type_signature(old_schema, prop) != _type_signature(
                    new_schema, new_def["properties"][name]
                ):
                    errors.append(f"{event_type}: field {def_name}.{name} changed type")
            new_required = set(new_def.get("required", [])) - set(old_def.get("required", []))
            errors.extend(
                f"{event_type}: new required field {def_name}.{n}" for n in sorted(new_required)
            )
    return errors


def write_snapshot(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write the current schemas as the committed snapshot; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, schema in current_schemas().items():
        path = directory / f"{event_type}.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m orra_events.contracts [--write]``: check, or regenerate, the snapshot."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="regenerate the snapshot")
    args = parser.parse_args(argv)
    if args.write:
        for path in write_snapshot():
            print(f"wrote {path}")  # noqa: T201
        return 0
    errors = compatibility_errors(load_snapshot(), current_schemas())
    for error in errors:
        print(error)  # noqa: T201
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())

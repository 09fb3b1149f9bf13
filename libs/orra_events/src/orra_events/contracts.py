"""Contract snapshots of the event schemas, and the compatibility rule that guards them.

The JSON Schema of every event is committed under ``libs/orra_events/schemas/`` (one file
per event type). The contract tests compare the code against that snapshot. Within one
major version ``v`` of an event:

* a field may not be removed, at the top level or inside a nested struct (``Plan``,
  ``PlanTask``, ``DataField``, ...);
* a field may not change type; widening counts as a change (an old consumer would refuse
  the new values), with one deliberate exception: adding values to an enum (``Literal``)
  is compatible, so deploy the consumers before the producers that use a new value;
  removing enum values (narrowing) is incompatible;
* no new required field, nor an optional field becoming required;
* a new optional field is compatible; so is a required field becoming optional, and any
  change of title, description or default.

``$ref``'d definitions are compared by structure wherever they are used (renaming a nested
struct is not a change, changing it is), and ``anyOf`` members and enum values are compared
as sets. An event whose major version was bumped is exempt: its consumers refuse it
explicitly (:class:`~orra_events.errors.UnsupportedVersion`).

Regenerate the snapshot on purpose with ``make schemas``
(``python -m orra_events.contracts --write``); without ``--write`` the module checks the
code against the snapshot and exits non-zero on an incompatible change.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import msgspec

from orra_events.events import ALL_EVENTS, Event

__all__ = [
    "SCHEMA_DIR",
    "compatibility_errors",
    "current_schemas",
    "event_schema",
    "load_snapshot",
    "main",
    "normalize",
    "stale_snapshot",
    "write_snapshot",
]

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
"""Where the committed snapshot lives (``libs/orra_events/schemas``)."""

_IGNORED_KEYS = frozenset({"title", "description", "default", "examples", "$comment"})
"""Schema keywords that document a value without constraining it."""

Schema = dict[str, Any]


def event_schema(cls: type[Event]) -> Schema:
    """JSON Schema of one event class, tagged with its type and major version.

    Args:
        cls: An event class (any msgspec Struct with ``TYPE`` and ``VERSION``).

    Returns:
        msgspec's JSON Schema of ``cls`` plus ``x-orra-event`` and ``x-orra-version``.
    """
    schema = msgspec.json.schema(cls)
    return {"x-orra-event": cls.TYPE, "x-orra-version": cls.VERSION, **schema}


_schema_of = event_schema  # the lead's original private name


def current_schemas() -> dict[str, Schema]:
    """JSON Schema of every event, by event type, as the code defines them now."""
    return {cls.TYPE: event_schema(cls) for cls in ALL_EVENTS}


def load_snapshot(directory: Path = SCHEMA_DIR) -> dict[str, Schema]:
    """The committed schemas, by event type.

    Args:
        directory: Where the snapshot files are.
    """
    out: dict[str, Schema] = {}
    for path in sorted(directory.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        out[schema["x-orra-event"]] = schema
    return out


# --- normal form ---------------------------------------------------------------------------


def _sort_key(node: Any) -> str:
    return json.dumps(node, sort_keys=True)


def _norm(defs: dict[str, Schema], node: Any, seen: frozenset[str]) -> Any:
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return {"$recursive": name}
        return _norm(defs, defs[name], seen | {name})
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _IGNORED_KEYS or key == "$defs" or key.startswith("x-"):
            continue
        if key == "properties":
            out[key] = {name: _norm(defs, sub, seen) for name, sub in value.items()}
        elif key in {"anyOf", "oneOf"}:
            out[key] = sorted((_norm(defs, sub, seen) for sub in value), key=_sort_key)
        elif key in {"allOf", "prefixItems"}:
            out[key] = [_norm(defs, sub, seen) for sub in value]
        elif key == "enum":
            out[key] = sorted(value, key=_sort_key)
        elif key == "required":
            out[key] = sorted(value)
        elif isinstance(value, dict):
            out[key] = _norm(defs, value, seen)
        else:
            out[key] = value
    return out


def normalize(schema: Schema) -> Any:
    """The comparable form of a schema: refs inlined, documentation dropped, sets sorted.

    Args:
        schema: A JSON Schema with its ``$defs`` (as msgspec produces it).

    Returns:
        The schema with every ``$ref`` replaced by its definition (recursion marked
        ``{"$recursive": name}``), without titles, descriptions, defaults and ``x-``
        keys, with ``anyOf`` members, enum values and required names sorted.
    """
    return _norm(schema.get("$defs", {}), schema, frozenset())


# --- comparison ----------------------------------------------------------------------------


def _show(node: Any) -> str:
    return json.dumps(node, sort_keys=True)


def _is_enum(node: Any) -> bool:
    return isinstance(node, dict) and set(node) == {"enum"}


def _compare(path: str, old: Any, new: Any) -> list[str]:
    """Incompatibilities between two normalized schemas at ``path`` (empty: compatible)."""
    if old == new:
        return []
    where = path or "the event"
    if isinstance(old, dict) and isinstance(new, dict):
        if "properties" in old and "properties" in new:
            return _compare_objects(path, old, new)
        if _is_enum(old) and _is_enum(new):
            removed = [v for v in old["enum"] if v not in new["enum"]]
            if removed:
                return [f"field {where!r} no longer accepts {removed} (enum narrowed)"]
            return []
        if "anyOf" in old and "anyOf" in new and _rest(old, "anyOf") == _rest(new, "anyOf"):
            return _compare_any_of(path, old["anyOf"], new["anyOf"])
        for key in ("items", "additionalProperties"):
            if key in old and key in new and _rest(old, key) == _rest(new, key):
                suffix = "[]" if key == "items" else "{}"
                return _compare(f"{path}{suffix}", old[key], new[key])
    return [f"field {where!r} changed type from {_show(old)} to {_show(new)}"]


def _rest(node: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k != key}


def _compare_objects(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    prefix = f"{path}." if path else ""
    old_props: dict[str, Any] = old["properties"]
    new_props: dict[str, Any] = new["properties"]
    for name, old_prop in old_props.items():
        if name not in new_props:
            errors.append(f"field {prefix + name!r} removed")
        else:
            errors.extend(_compare(prefix + name, old_prop, new_props[name]))
    added = sorted(set(new.get("required", [])) - set(old.get("required", [])))
    errors.extend(f"new required field {prefix + name!r}" for name in added)
    ignored = {"properties", "required"}
    old_rest = {k: v for k, v in old.items() if k not in ignored}
    new_rest = {k: v for k, v in new.items() if k not in ignored}
    if old_rest != new_rest:
        where = path or "the event"
        errors.append(f"object {where!r} changed from {_show(old_rest)} to {_show(new_rest)}")
    return errors


def _kind(node: Any) -> str:
    if isinstance(node, dict):
        if "enum" in node:
            return "enum"
        return json.dumps(node.get("type"))
    return "?"


def _compare_any_of(path: str, old: list[Any], new: list[Any]) -> list[str]:
    """Every old member must live on in a compatible new member; nothing new may appear.

    Members are paired exactly first, then by compatibility (an enum that only gained
    values), then by kind (the one object of ``Plan | None`` against the new one), so a
    change inside a nested, optional struct is reported at its own path.
    """
    where = path or "the event"
    unmatched = list(new)
    pending = []
    for member in old:
        if member in unmatched:
            unmatched.remove(member)
        else:
            pending.append(member)
    errors: list[str] = []
    for member in pending:
        match = next((m for m in unmatched if not _compare(path, member, m)), None)
        if match is None:
            same_kind = [m for m in unmatched if _kind(m) == _kind(member)]
            if len(same_kind) != 1:
                before, after = _show({"anyOf": old}), _show({"anyOf": new})
                return [f"field {where!r} changed type from {before} to {after}"]
            match = same_kind[0]
            errors.extend(_compare(path, member, match))
        unmatched.remove(match)
    if unmatched:
        errors.append(f"field {where!r} widened with {_show(unmatched)}")
    return errors


def compatibility_errors(old: dict[str, Schema], new: dict[str, Schema]) -> list[str]:
    """Every incompatible change from ``old`` to ``new``; empty when compatible.

    An event whose major version was bumped is exempt: its consumers refuse it explicitly.
    A new event type is compatible.

    Args:
        old: Schemas by event type, usually the committed snapshot.
        new: Schemas by event type, usually :func:`current_schemas`.

    Returns:
        One line per incompatibility, ``"<event type>: <what changed>"``.
    """
    errors: list[str] = []
    for event_type, old_schema in sorted(old.items()):
        new_schema = new.get(event_type)
        if new_schema is None:
            errors.append(f"{event_type}: event removed")
            continue
        if new_schema.get("x-orra-version") != old_schema.get("x-orra-version"):
            continue
        found = _compare("", normalize(old_schema), normalize(new_schema))
        errors.extend(f"{event_type}: {error}" for error in found)
    return errors


def stale_snapshot(
    old: dict[str, Schema] | None = None, new: dict[str, Schema] | None = None
) -> list[str]:
    """Event types whose committed schema differs from the code at all (even compatibly).

    Args:
        old: The snapshot; the committed one when ``None``.
        new: The schemas of the code; :func:`current_schemas` when ``None``.
    """
    old = load_snapshot() if old is None else old
    new = current_schemas() if new is None else new
    return sorted(t for t in old.keys() | new.keys() if old.get(t) != new.get(t))


def _render(schema: Schema) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_snapshot(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write the current schemas as the committed snapshot; returns the files written.

    Files of event types that no longer exist are removed.

    Args:
        directory: Where to write the snapshot.
    """
    directory.mkdir(parents=True, exist_ok=True)
    schemas = current_schemas()
    written = []
    for event_type, schema in schemas.items():
        path = directory / f"{event_type}.json"
        path.write_text(_render(schema), encoding="utf-8")
        written.append(path)
    for path in directory.glob("*.json"):
        if path.stem not in schemas:
            path.unlink()
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m orra_events.contracts [--write] [--strict]``: check or regenerate.

    Args:
        argv: Command-line arguments (``sys.argv[1:]`` when ``None``).

    Returns:
        0 when compatible (or written); 1 on an incompatible change, or with ``--strict``
        when the snapshot is merely out of date.
    """
    parser = argparse.ArgumentParser(
        prog="python -m orra_events.contracts",
        description="Check the event schemas against the committed snapshot, or rewrite it.",
    )
    parser.add_argument("--write", action="store_true", help="regenerate the snapshot")
    parser.add_argument(
        "--strict", action="store_true", help="also fail when the snapshot is out of date"
    )
    args = parser.parse_args(argv)
    if args.write:
        for path in write_snapshot():
            print(f"wrote {path}")  # noqa: T201
        return 0
    snapshot, current = load_snapshot(), current_schemas()
    errors = compatibility_errors(snapshot, current)
    for error in errors:
        print(error)  # noqa: T201
    if errors:
        print(  # noqa: T201
            f"{len(errors)} incompatible change(s): revert them, or bump the event's VERSION "
            "and run `make schemas`"
        )
        return 1
    stale = stale_snapshot(snapshot, current)
    if stale:
        print(  # noqa: T201
            f"compatible, but the snapshot of {', '.join(stale)} is out of date: run `make schemas`"
        )
        return 1 if args.strict else 0
    print("event schemas match the snapshot")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Contract tests: the code against the committed schema snapshot, and the rule itself.

No ``from __future__ import annotations`` here: the Struct copies below are defined inside
functions, and msgspec must see their annotations evaluated.
"""

import copy
import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import msgspec
import pytest

from orra_events import ALL_EVENTS, DataField, Plan, PlanTask, UncoveredPart
from orra_events.contracts import (
    SCHEMA_DIR,
    compatibility_errors,
    current_schemas,
    event_schema,
    load_snapshot,
    main,
    normalize,
    stale_snapshot,
    write_snapshot,
)
from orra_events.events import OrchestrationEvent

# --- the committed snapshot -----------------------------------------------------------------


def test_the_code_is_compatible_with_the_committed_snapshot() -> None:
    errors = compatibility_errors(load_snapshot(), current_schemas())
    assert not errors, (
        "incompatible event change; revert it, or bump the event's VERSION and run "
        "`make schemas`:\n" + "\n".join(errors)
    )


def test_the_snapshot_has_one_file_per_event() -> None:
    files = sorted(p.name for p in SCHEMA_DIR.glob("*.json"))
    assert files == sorted(f"{cls.TYPE}.json" for cls in ALL_EVENTS)
    for path in SCHEMA_DIR.glob("*.json"):
        schema = json.loads(path.read_text())
        assert schema["x-orra-event"] == path.stem
        assert isinstance(schema["x-orra-version"], int)


def test_write_snapshot_round_trips_and_removes_stale_files(tmp_path: Path) -> None:
    (tmp_path / "gone.event.json").write_text("{}")
    written = write_snapshot(tmp_path)
    assert len(written) == len(ALL_EVENTS)
    assert not (tmp_path / "gone.event.json").exists()
    assert load_snapshot(tmp_path) == current_schemas()
    assert stale_snapshot(load_snapshot(tmp_path), current_schemas()) == []


def test_main_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "incompatible" not in capsys.readouterr().out


# --- the rule: build "before" and "after" versions of events as Struct copies -----------------


def _schemas(*classes: type[Any]) -> dict[str, dict[str, Any]]:
    return {cls.TYPE: event_schema(cls) for cls in classes}


class Done(OrchestrationEvent, frozen=True, kw_only=True, tag="x.done"):
    TYPE: ClassVar[str] = "x.done"
    attempt: int
    note: str | None = None
    mode: Literal["groups", "eager"] | None = None
    plan: Plan | None = None
    data: list[DataField] = msgspec.field(default_factory=list)


BASE = _schemas(Done)


def _check(new_cls: type[Any]) -> list[str]:
    return compatibility_errors(BASE, _schemas(new_cls))


def test_identical_is_compatible() -> None:
    assert compatibility_errors(BASE, copy.deepcopy(BASE)) == []
    assert compatibility_errors(load_snapshot(), load_snapshot()) == []


def test_a_new_optional_field_is_compatible() -> None:
    class Done(OrchestrationEvent, frozen=True, kw_only=True, tag="x.done"):
        TYPE: ClassVar[str] = "x.done"
        attempt: int
        note: str | None = None
        mode: Literal["groups", "eager"] | None = None
        plan: Plan | None = None
        data: list[DataField] = msgspec.field(default_factory=list)
        retried: bool = False

    assert _check(Done) == []


def test_a_removed_field_is_incompatible() -> None:
    class Done(OrchestrationEvent, frozen=True, kw_only=True, tag="x.done"):
        TYPE: ClassVar[str] = "x.done"
        attempt: int
        mode: Literal["groups", "eager"] | None = None
        plan: Plan | None = None
        data: list[DataField] = msgspec.field(default_factory=list)

    assert _check(Done) == ["x.done: field 'note' removed"]


def test_a_changed_type_is_incompatible() -> None:
    class Done(OrchestrationEvent, frozen=True, kw_only=True, tag="x.done"):
        TYPE: ClassVar[str] = "x.done"
        attempt: str
        note: str | None = None
        mode: Literal["groups", "eager"] | None = None
        plan: Plan | None = None
        data: list[DataField] = msgspec.field(default_factory=list)

    assert _check(Done) == [
        """x.done: field 'attempt' changed type from {"type": "integer"} to {"type": "string"}"""
    ]


def test_a_widened_type_is_incompatible() -> None:
    class Done(OrchestrationEvent, frozen=True, kw_only=True, tag="x.done"):
        TYPE: ClassVar[str] = "x.done"
        attempt: int
        note: str | int | None = None
        mode: Literal["groups", "eager"] | None = None
        plan: Plan | None = None
        data: list[DataField] = msgspec.field(default_factory=list)

    assert _check(Done) == ["""x.done: field 'note' widened with [{"type": "integer"}]"""]


def test_a_new_required_field_is_incompatible() -> None:
    class Done(OrchestrationEvent, frozen=True, kw_only=True, tag="x.done"):
        TYPE: ClassVar[str] = "x.done"
        attempt: int
        note: str | None = None
        mode: Literal["groups", "eager"] | None = None
        plan: Plan | None = None
        data: list[DataField] = msgspec.field(default_factory=list)
        reason: str

    assert _check(Done) == ["x.done: new required field 'reason'"]


def test_an_optional_field_becoming_required_is_incompatible() -> None:
    class Done(OrchestrationEvent, frozen=True, kw_only=True, tag="x.done"):
        TYPE: ClassVar[str] = "x.done"
        attempt: int
        note: str | None
        mode: Literal["groups", "eager"] | None = None
        plan: Plan | None = None
        data: list[DataField] = msgspec.field(default_factory=list)

    assert _check(Done) == ["x.done: new required field 'note'"]


def test_a_required_field_becoming_optional_is_compatible() -> None:
    class Done(OrchestrationEvent, frozen=True, kw_only=True, tag="x.done"):
        TYPE: ClassVar[str] = "x.done"
        attempt: int = 1
        note: str | None = None
        mode: Literal["groups", "eager"] | None = None
        plan: Plan | None = None
        data: list[DataField] = msgspec.field(default_factory=list)

    assert _check(Done) == []


def test_enum_narrowing_is_incompatible_widening_is_not() -> None:
    class Narrow(OrchestrationEvent, frozen=True, kw_only=True, tag="x.done"):
        TYPE: ClassVar[str] = "x.done"
        attempt: int
        note: str | None = None
        mode: Literal["groups"] | None = None
        plan: Plan | None = None
        data: list[DataField] = msgspec.field(default_factory=list)

    class Wide(OrchestrationEvent, frozen=True, kw_only=True, tag="x.done"):
        TYPE: ClassVar[str] = "x.done"
        attempt: int
        note: str | None = None
        mode: Literal["eager", "groups", "stepwise"] | None = None
        plan: Plan | None = None
        data: list[DataField] = msgspec.field(default_factory=list)

    assert _check(Narrow) == ["x.done: field 'mode' no longer accepts ['eager'] (enum narrowed)"]
    assert _check(Wide) == []
    assert normalize(_schemas(Wide)["x.done"]) != normalize(BASE["x.done"])


# --- nested structs (Plan, PlanTask, DataField) through $ref --------------------------------


def _with_nested(plan_task: type[Any], data_field: type[Any] = DataField) -> type[Any]:
    class Plan(msgspec.Struct, frozen=True, kw_only=True):
        tasks: list[plan_task]  # type: ignore[valid-type]
        parallel_groups: list[list[str]]
        parts: list[str] = msgspec.field(default_factory=list)
        uncovered: list[UncoveredPart] = msgspec.field(default_factory=list)

    class Done(OrchestrationEvent, frozen=True, kw_only=True, tag="x.done"):
        TYPE: ClassVar[str] = "x.done"
        attempt: int
        note: str | None = None
        mode: Literal["groups", "eager"] | None = None
        plan: Plan | None = None
        data: list[data_field] = msgspec.field(default_factory=list)  # type: ignore[valid-type]

    return Done


def test_unchanged_nested_structs_are_compatible() -> None:
    assert _check(_with_nested(PlanTask)) == []


def test_a_nested_new_required_field_is_incompatible() -> None:
    class PlanTask(msgspec.Struct, frozen=True, kw_only=True):
        id: str
        service: str
        input: dict[str, Any] = msgspec.field(default_factory=dict)
        version: str | None = None
        serves: str | None = None
        gate: str | None = None
        timeout_s: float

    assert _check(_with_nested(PlanTask)) == ["x.done: new required field 'plan.tasks[].timeout_s'"]


def test_a_nested_new_optional_field_is_compatible() -> None:
    class PlanTask(msgspec.Struct, frozen=True, kw_only=True):
        id: str
        service: str
        input: dict[str, Any] = msgspec.field(default_factory=dict)
        version: str | None = None
        serves: str | None = None
        gate: str | None = None
        timeout_s: float | None = None

    assert _check(_with_nested(PlanTask)) == []


def test_a_nested_removed_field_and_changed_type_are_incompatible() -> None:
    class PlanTask(msgspec.Struct, frozen=True, kw_only=True):
        id: int
        input: dict[str, Any] = msgspec.field(default_factory=dict)
        version: str | None = None
        serves: str | None = None
        gate: str | None = None

    class DataField(msgspec.Struct, frozen=True):
        field: str
        value: str

    errors = _check(_with_nested(PlanTask, DataField))
    assert errors == [
        """x.done: field 'plan.tasks[].id' changed type from {"type": "string"} to {"type": "integer"}""",  # noqa: E501
        "x.done: field 'plan.tasks[].service' removed",
        """x.done: field 'data[].value' changed type from {} to {"type": "string"}""",
    ]


# --- major versions, removed and added events ------------------------------------------------


def test_a_bumped_major_version_is_exempt() -> None:
    class Done(OrchestrationEvent, frozen=True, kw_only=True, tag="x.done"):
        TYPE: ClassVar[str] = "x.done"
        VERSION: ClassVar[int] = 2
        attempt: str
        reason: str

    assert _check(Done) == []


def test_event_removed_and_added() -> None:
    assert compatibility_errors(BASE, {}) == ["x.done: event removed"]
    assert compatibility_errors({}, BASE) == []


def test_a_deliberately_incompatible_edit_of_the_snapshot_fails(tmp_path: Path) -> None:
    """The committed snapshot guards real events: edit TaskCompleted.attempt to a string."""
    snapshot = load_snapshot()
    edited = copy.deepcopy(snapshot)
    props = edited["task.completed"]["$defs"]["TaskCompleted"]["properties"]
    props["attempt"] = {"type": "string"}
    assert compatibility_errors(snapshot, edited) == [
        """task.completed: field 'attempt' changed type from {"type": "integer"} to {"type": "string"}"""  # noqa: E501
    ]
    nested = copy.deepcopy(snapshot)
    del nested["plan.created"]["$defs"]["PlanTask"]["properties"]["service"]
    assert compatibility_errors(snapshot, nested) == [
        "plan.created: field 'plan.tasks[].service' removed"
    ]

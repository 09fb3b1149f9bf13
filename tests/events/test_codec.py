"""Encode/decode: every event round-trips; every kind of bad input has its own error."""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orra_events import (
    ALL_EVENTS,
    EVENT_TYPES,
    DecodeError,
    Event,
    MalformedEvent,
    OrraEventsError,
    SchemaMismatch,
    TaskCompleted,
    TaskRetrying,
    UnknownEventType,
    UnsupportedVersion,
    decode,
    decode_as,
    encode,
)
from tests.events.strategies import struct_of
from tests.factories import task_completed

EVENTS = pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda c: c.TYPE)


def _task_completed_dict(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(task_completed())
    data.update(changes)
    return data


def _bytes(data: Any) -> bytes:
    return json.dumps(data).encode()


@EVENTS
@settings(
    max_examples=25, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=st.data())
def test_every_event_round_trips(cls: type[Event], data: st.DataObject) -> None:
    event = data.draw(struct_of(cls))
    raw = encode(event)
    decoded = decode(raw)
    assert type(decoded) is cls
    assert decoded == event
    assert decode_as(raw, cls) == event
    assert json.loads(raw)["type"] == cls.TYPE
    assert decode(memoryview(raw)) == event
    assert decode(raw.decode()) == event


def test_catalogue_is_complete_and_consistent() -> None:
    assert len(EVENT_TYPES) == len(ALL_EVENTS) == 31
    for event_type, cls in EVENT_TYPES.items():
        assert event_type == cls.TYPE
        assert msgspec.inspect.type_info(cls).tag == event_type  # type: ignore[attr-defined]
        assert cls.VERSION >= 1


def test_events_are_frozen() -> None:
    event = task_completed()
    with pytest.raises(AttributeError):
        event.attempt = 2  # type: ignore[misc]
    assert event.type == "task.completed"


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    event = task_completed()
    data: dict[str, Any] = msgspec.to_builtins(event)
    data["added_in_a_later_minor"] = {"x": 1}
    assert decode(_bytes(data)) == event


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        pytest.param(b"{not json", MalformedEvent, "not valid JSON", id="malformed-bytes"),
        pytest.param(b"", MalformedEvent, "not valid JSON", id="empty"),
        pytest.param(b"\xff\xfe", MalformedEvent, "not valid JSON", id="not-utf8"),
        pytest.param(b"[1, 2]", MalformedEvent, "must be a JSON object, got an array", id="array"),
        pytest.param(b'"text"', MalformedEvent, "must be a JSON object, got a string", id="str"),
        pytest.param(b"42", MalformedEvent, "must be a JSON object, got a number", id="number"),
        pytest.param(b"null", MalformedEvent, "must be a JSON object, got null", id="null"),
        pytest.param(b'{"event_id": "e"}', UnknownEventType, "no 'type' field", id="no-type"),
        pytest.param(b'{"type": 7}', UnknownEventType, "'type' must be a string", id="int-type"),
        pytest.param(
            b'{"type": "task.exploded"}',
            UnknownEventType,
            "unknown event type 'task.exploded'",
            id="unknown-type",
        ),
    ],
)
def test_decode_errors_name_their_kind(raw: bytes, error: type[DecodeError], message: str) -> None:
    with pytest.raises(error, match=message) as info:
        decode(raw)
    assert isinstance(info.value, DecodeError)
    assert isinstance(info.value, OrraEventsError)


def test_newer_major_version_is_refused() -> None:
    raw = _bytes(_task_completed_dict(v=TaskCompleted.VERSION + 1))
    with pytest.raises(UnsupportedVersion, match=r"task.completed schema version 2 is newer"):
        decode(raw)


def test_newer_major_version_with_an_incompatible_shape_is_still_a_version_error() -> None:
    raw = _bytes(_task_completed_dict(v=3, attempt="first"))
    with pytest.raises(UnsupportedVersion, match="version 3"):
        decode(raw)


def test_missing_field() -> None:
    data = _task_completed_dict()
    del data["idempotency_key"]
    with pytest.raises(SchemaMismatch, match="missing required field `idempotency_key`"):
        decode(_bytes(data))


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("attempt", "1", "$.attempt"),
        ("output", [], "$.output"),
        ("duration_ms", None, "$.duration_ms"),
        ("v", "1", "$.v"),
    ],
)
def test_wrong_type(field: str, value: Any, where: str) -> None:
    with pytest.raises(SchemaMismatch, match=rf"task.completed does not match.*{re.escape(where)}"):
        decode(_bytes(_task_completed_dict(**{field: value})))


def test_nested_wrong_type_names_the_path() -> None:
    data = {
        "type": "plan.created",
        "event_id": "p:o_1",
        "orchestration_id": "o_1",
        "planner": "offline",
        "plan": {"tasks": [{"id": "a", "service": 5}], "parallel_groups": [["a"]]},
    }
    with pytest.raises(SchemaMismatch, match=r"\$\.plan\.tasks\[0\]\.service"):
        decode(_bytes(data))


def test_literal_value_outside_the_enum() -> None:
    data = {
        "type": "plan.failed",
        "event_id": "p:o_1",
        "orchestration_id": "o_1",
        "status": "exploded",
        "reasons": [],
        "planner": "offline",
    }
    with pytest.raises(SchemaMismatch, match=r"plan\.failed"):
        decode(_bytes(data))


def test_decode_as_checks_the_type() -> None:
    raw = encode(task_completed())
    assert isinstance(decode_as(raw, TaskCompleted), TaskCompleted)
    with pytest.raises(
        UnknownEventType, match=r"expected a task\.retrying event, got task\.completed"
    ):
        decode_as(raw, TaskRetrying)

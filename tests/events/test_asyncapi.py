"""The AsyncAPI document: valid AsyncAPI 3.0.0, referentially whole, current, and true."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import msgspec
import pytest
from faststream.specification.asyncapi.v3_0_0.schema import ApplicationSchema
from hypothesis import given, settings
from hypothesis import strategies as st
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from orra_events import ALL_EVENTS, Event, Topology, encode
from orra_events.asyncapi import ASYNCAPI_PATH, SERVICES, build, channel_id, main, render
from tests.events.strategies import struct_of

DOC = build()


def _resolve(pointer: str) -> Any:
    assert pointer.startswith("#/"), pointer
    node: Any = DOC
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_faststream_accepts_the_document() -> None:
    schema = ApplicationSchema.model_validate(DOC)
    assert schema.asyncapi == "3.0.0"
    assert set(schema.channels) == set(DOC["channels"])
    assert set(schema.operations) == set(DOC["operations"])
    assert schema.components is not None
    assert schema.components.messages is not None
    assert len(schema.components.messages) == len(ALL_EVENTS) + 1


def test_every_ref_resolves() -> None:
    refs = _refs(DOC)
    assert len(refs) > 100
    for ref in refs:
        assert _resolve(ref) is not None


def test_operations_point_at_existing_channels_and_their_messages() -> None:
    for op_id, op in DOC["operations"].items():
        assert op["action"] in {"send", "receive"}, op_id
        channel_ref = op["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/")
        channel = _resolve(channel_ref)
        assert op["messages"], op_id
        for message in op["messages"]:
            prefix = f"{channel_ref}/messages/"
            assert message["$ref"].startswith(prefix), (op_id, message)
            assert message["$ref"].removeprefix(prefix) in channel["messages"]
        assert op["x-orra-service"] in SERVICES


def test_channel_parameters_match_the_address() -> None:
    for cid, channel in DOC["channels"].items():
        params = set(re.findall(r"{(\w+)}", channel["address"]))
        assert params == set(channel.get("parameters", {})), cid


def test_every_subject_is_a_channel() -> None:
    addresses = {c["address"] for c in DOC["channels"].values()}
    assert "task.completed.{orchestrationId}" in addresses
    assert "work.{service}" in addresses
    assert "service.registered.{service}.{version}" in addresses
    assert "service.heartbeat.{service}.{version}" in addresses
    assert "dlq.>" in addresses
    assert {
        f"{cls.TYPE}.{{service}}.{{version}}"
        if cls.TYPE.startswith("service.")
        else f"{cls.TYPE}.{{orchestrationId}}"
        for cls in ALL_EVENTS
    } <= addresses
    # every address is a subject of one of the topology's streams
    topology = Topology()
    filters = [s.removesuffix(">") for c in topology.stream_configs() for s in c.subjects or []]
    for address in addresses:
        assert any(address.startswith(f) for f in filters), address


def _ops(service: str, action: str) -> set[str]:
    return {
        op["channel"]["$ref"].rsplit("/", 1)[-1]
        for op in DOC["operations"].values()
        if op["x-orra-service"] == service and op["action"] == action
    }


def test_who_sends_and_receives() -> None:
    assert _ops("gateway", "send") == {
        "actionSubmitted",
        "orchestrationAborted",
        "orchestrationApproved",
        "orchestrationRejected",
        "taskCompensationResolved",
        "deadLetters",
    }
    assert _ops("planner", "receive") == {
        "actionSubmitted",
        "serviceRegistered",
        "serviceHeartbeat",
    }
    assert {"planCreated", "planFailed"} <= _ops("planner", "send")
    assert {"taskDispatched", "work", "orchestrationDone", "orchestrationFailed"} <= _ops(
        "dispatcher", "send"
    )
    assert _ops("dispatcher", "receive") == {
        "planCreated",
        "planFailed",
        "taskCompleted",
        "taskFailed",
        "taskAborted",
        "taskCompensated",
        "taskCompensationFailed",
        "orchestrationAborted",
        "orchestrationApproved",
        "orchestrationRejected",
        "serviceRegistered",
        "serviceHeartbeat",
    }
    assert _ops("notifier", "receive") == {
        "orchestrationDone",
        "orchestrationFailed",
        "orchestrationAborted",
        "taskApprovalRequested",
    }
    assert {"webhookDelivered", "webhookFailed"} <= _ops("notifier", "send")
    assert _ops("sdk", "receive") == {
        "work",
        "orchestrationAborted",
        "orchestrationFailed",
        "orchestrationCompensating",
    }
    assert {"taskCompleted", "taskFailed", "serviceRegistered", "serviceHeartbeat"} <= _ops(
        "sdk", "send"
    )
    for cls in ALL_EVENTS:  # every event has a producer
        assert any(
            op["action"] == "send" and op["channel"]["$ref"] == f"#/channels/{channel_id(cls.TYPE)}"
            for op in DOC["operations"].values()
        ), cls.TYPE


def test_payloads_are_valid_json_schemas() -> None:
    for name, message in DOC["components"]["messages"].items():
        jsonschema.Draft202012Validator.check_schema(message["payload"])
        jsonschema.Draft202012Validator.check_schema(message["headers"])
        assert name
    for schema in DOC["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


_registry: Registry = Registry().with_resource(
    "urn:orra:asyncapi", Resource.from_contents(DOC, default_specification=DRAFT202012)
)


def _validator_for(cls: type[Event]) -> jsonschema.Draft202012Validator:
    payload = DOC["components"]["messages"][cls.__name__]["payload"]
    ref = "urn:orra:asyncapi" + payload["$ref"]
    return jsonschema.Draft202012Validator({"$ref": ref}, registry=_registry)


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda c: c.TYPE)
@settings(max_examples=15, database=None, deadline=None)
@given(data=st.data())
def test_real_events_match_their_payload_schema(cls: type[Event], data: st.DataObject) -> None:
    event = data.draw(struct_of(cls))
    _validator_for(cls).validate(json.loads(encode(event)))


def test_a_wrong_payload_is_refused_by_the_schema() -> None:
    validator = _validator_for(ALL_EVENTS[4])  # TaskCompleted
    assert ALL_EVENTS[4].TYPE == "task.completed"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"type": "task.completed", "event_id": "x", "attempt": "1"})
    assert msgspec.json.decode(render()) == DOC


def test_the_committed_document_is_current() -> None:
    assert ASYNCAPI_PATH.exists(), "run `python -m orra_events.asyncapi --write`"
    assert json.loads(ASYNCAPI_PATH.read_text()) == DOC, (
        "docs/asyncapi.json is stale: run `python -m orra_events.asyncapi --write`"
    )
    assert ASYNCAPI_PATH.read_text() == render()
    assert main([]) == 0


def test_main_reports_a_stale_document(tmp_path: Any) -> None:
    path = tmp_path / "asyncapi.json"
    assert main(["--path", str(path)]) == 1
    assert main(["--path", str(path), "--write"]) == 0
    assert main(["--path", str(path)]) == 0
    path.write_text("{}")
    assert main(["--path", str(path)]) == 1

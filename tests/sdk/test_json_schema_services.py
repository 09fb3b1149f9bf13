"""Services declared with JSON Schema documents (``Service.from_json_schema``)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from orra_events import ServiceRegistered
from orra_events.registrations import definition_differences, registration_hash
from orra_sdk import InvalidData, Service, ServiceDefinitionError

IN = {
    "type": "object",
    "properties": {"customerId": {"type": "string"}, "count": {"type": "integer"}},
    "required": ["customerId"],
}
OUT = {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]}


def declare(**kw: Any) -> Service[Any, Any]:
    return Service.from_json_schema(
        name=kw.pop("name", "Lookup"),
        description="Look a customer up",
        input_schema=kw.pop("input_schema", IN),
        output_schema=kw.pop("output_schema", OUT),
        **kw,
    )


def test_inputs_and_outputs_are_checked_against_the_schemas() -> None:
    svc = declare()
    assert svc.parse_input({"customerId": "C1"}) == {"customerId": "C1"}
    with pytest.raises(InvalidData, match=r"<root>: 'customerId' is a required property"):
        svc.parse_input({})
    with pytest.raises(InvalidData, match=r"count: 'x' is not of type 'integer'"):
        svc.parse_input({"customerId": "C1", "count": "x"})
    assert svc.dump_output({"email": "a@b"}) == {"email": "a@b"}
    with pytest.raises(InvalidData, match=r"email: 7 is not of type 'string'"):
        svc.dump_output({"email": 7})
    with pytest.raises(InvalidData, match="list is not a JSON object"):
        svc.dump_output(["a@b"])


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "object", "properties": {"x": {"type": "nope"}}}, "not valid JSON Schema"),
        ({"type": "array"}, "must describe a JSON object"),
        ({"type": "object", "required": "x"}, "not valid JSON Schema: at required"),
    ],
)
def test_a_schema_that_is_not_json_schema_of_an_object_is_refused(
    schema: dict[str, Any], message: str
) -> None:
    with pytest.raises(ServiceDefinitionError, match=message):
        declare(input_schema=schema)


def test_a_draft_7_schema_is_checked_as_draft_7() -> None:
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", **IN}
    assert declare(input_schema=draft7).parse_input({"customerId": "C1"}) == {"customerId": "C1"}


def test_service_keeps_wanting_pydantic_models() -> None:
    with pytest.raises(ServiceDefinitionError, match=r"use Service\.from_json_schema"):
        Service(name="X", description="x", input=IN, output=OUT)  # type: ignore[arg-type]


class _In(BaseModel):
    a: str


def test_retry_on_timeout_is_part_of_the_definition_only_when_false() -> None:
    plain = Service(name="X", description="x", input=_In, output=_In)
    once = Service(name="X", description="x", input=_In, output=_In, retry_on_timeout=False)
    assert plain.schema_hash != once.schema_hash
    registered = ServiceRegistered(
        event_id="r",
        service="X",
        description="x",
        input_schema=plain.input_schema,
        output_schema=plain.output_schema,
    )
    # A registration of before the field hashes as it did: the default changes nothing.
    assert registration_hash(registered) == plain.schema_hash
    refused = ServiceRegistered(
        event_id="r",
        service="X",
        description="x",
        input_schema=plain.input_schema,
        output_schema=plain.output_schema,
        retry_on_timeout=False,
    )
    assert registration_hash(refused) == once.schema_hash
    assert definition_differences(registered, refused) == ["retry on timeout"]

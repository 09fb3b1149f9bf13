"""The webhook payload types, the flat-results rule and the schema published from them."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from orra_events import CompensationSummary
from orra_events.webhooks import (
    APPROVAL_TYPE,
    COMPENSATION_TYPE,
    PAYLOAD_TYPES,
    RESULT_TYPE,
    UncoveredPart,
    WebhookCompensationReport,
    WebhookResult,
    add_webhooks,
    decode_payload,
    encode_payload,
    flat_results,
    openapi_webhooks,
    schema_components,
)

# --- the flat view ------------------------------------------------------------------------------

FIELDS = st.sampled_from(["status", "id", "payment", "orderStatus", "x"])
VALUES = st.one_of(st.integers(-3, 3), st.text(max_size=3), st.booleans(), st.none())
TASK_IDS = st.sampled_from(["payment", "inventory", "delivery", "notify", "x"])
OUTPUTS = st.dictionaries(TASK_IDS, st.dictionaries(FIELDS, VALUES, max_size=4), max_size=4)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OUTPUTS)
def test_every_field_is_at_the_top_with_the_last_tasks_value(
    outputs: dict[str, dict[str, Any]],
) -> None:
    flat = flat_results(outputs)
    expected_order: list[str] = []
    for output in outputs.values():
        expected_order += [name for name in output if name not in expected_order]
    assert list(flat) == expected_order
    for name, value in flat.items():
        last = [output[name] for output in outputs.values() if name in output][-1]
        assert value == last


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OUTPUTS, st.randoms(use_true_random=False))
def test_a_field_never_moves_between_runs_of_the_same_plan(
    outputs: dict[str, dict[str, Any]], rng: Any
) -> None:
    # another run of the same plan: the same tasks return the same fields, other values
    other = {
        task: {name: rng.choice([0, 1, "a", None, [1], {"k": 2}]) for name in output}
        for task, output in outputs.items()
    }
    assert list(flat_results(other)) == list(flat_results(outputs))


def test_the_seeds_fields_come_out_as_written() -> None:
    outputs = {
        "payment": {"paymentStatus": "confirmed"},
        "inventory": {"orderStatus": "reserved"},
        "delivery": {"deliveryTracking": "DLV987", "estimatedDelivery": "2024-11-10"},
        "notify": {"orderStatus": "processed"},
    }
    assert flat_results(outputs) == {
        "orderStatus": "processed",
        "paymentStatus": "confirmed",
        "deliveryTracking": "DLV987",
        "estimatedDelivery": "2024-11-10",
    }


# --- the payload types ------------------------------------------------------------------------


def result(**fields: Any) -> WebhookResult:
    values: dict[str, Any] = {
        "orchestration_id": "o_1",
        "status": "completed",
        "results": {"a": 1},
        "results_by_task": {"t": {"a": 1}},
        "error": None,
    }
    values.update(fields)
    return WebhookResult(**values)


def test_every_field_is_encoded_even_when_empty() -> None:
    body = msgspec.json.decode(encode_payload(result()))
    assert body == {
        "type": "orchestration.result",
        "orchestrationId": "o_1",
        "status": "completed",
        "results": {"a": 1},
        "resultsByTask": {"t": {"a": 1}},
        "error": None,
        "compensation": None,
        "uncovered": [],
    }
    report = WebhookCompensationReport(
        orchestration_id="o_2",
        status="aborted",
        results=None,
        results_by_task=None,
        error="by user",
        compensation=CompensationSummary(failed=["payment"]),
        uncovered=[UncoveredPart(part="and email the CFO", reason="no email service")],
    )
    assert decode_payload(encode_payload(report)) == report
    assert decode_payload(encode_payload(result())) == result()
    with pytest.raises(msgspec.ValidationError):
        decode_payload(b'{"type": "approval.requested", "orchestrationId": "o_1"}')


# --- the published schema ----------------------------------------------------------------------


def _validator(kind: str, components: dict[str, Any]) -> Draft202012Validator:
    document = {"components": {"schemas": components}, "webhooks": openapi_webhooks()}
    registry: Registry[Any] = Registry().with_resource(
        "urn:doc", DRAFT202012.create_resource(document)
    )
    pointer = f"urn:doc#/webhooks/{kind}/post/requestBody/content/application~1json/schema"
    return Draft202012Validator({"$ref": pointer}, registry=registry)


def test_components_are_prefixed_and_list_every_field_as_required() -> None:
    components = schema_components()
    assert set(components) == {
        "WebhookPayload",
        "WebhookResult",
        "WebhookCompensationReport",
        "WebhookApprovalRequested",
        "WebhookCompensationSummary",
        "WebhookUncoveredPart",
    }
    for name, schema in components.items():
        assert schema["title"] == name
        assert "Attributes:" not in schema.get("description", "")
        if "properties" in schema:
            assert schema["required"] == list(schema["properties"])
            for prop, sub in schema["properties"].items():
                assert sub.get("description"), f"{name}.{prop} has no description"
    union = components["WebhookPayload"]
    assert union["discriminator"]["mapping"] == {
        RESULT_TYPE: "#/components/schemas/WebhookResult",
        COMPENSATION_TYPE: "#/components/schemas/WebhookCompensationReport",
        APPROVAL_TYPE: "#/components/schemas/WebhookApprovalRequested",
    }


def test_the_examples_and_encoded_payloads_match_the_schema() -> None:
    components = schema_components()
    webhooks = openapi_webhooks()
    assert set(webhooks) == set(PAYLOAD_TYPES)
    for kind in PAYLOAD_TYPES:
        validator = _validator(kind, components)
        examples = webhooks[kind]["post"]["requestBody"]["content"]["application/json"]
        assert examples["examples"]
        for example in examples["examples"].values():
            validator.validate(example["value"])
    _validator(RESULT_TYPE, components).validate(msgspec.json.decode(encode_payload(result())))
    bad = msgspec.json.decode(encode_payload(result()))
    del bad["resultsByTask"]
    assert not _validator(RESULT_TYPE, components).is_valid(bad)
    assert not _validator(RESULT_TYPE, components).is_valid({**bad, "status": "done"})


def test_add_webhooks_merges_into_a_document_and_refuses_a_clash() -> None:
    document = {
        "openapi": "3.1.0",
        "components": {"schemas": {"Other": {"type": "string"}}},
        "paths": {},
    }
    merged = add_webhooks(document)
    assert "Other" in merged["components"]["schemas"]
    assert "WebhookResult" in merged["components"]["schemas"]
    assert set(merged["webhooks"]) == {RESULT_TYPE, COMPENSATION_TYPE, APPROVAL_TYPE}
    assert document["components"]["schemas"] == {"Other": {"type": "string"}}  # a copy
    assert add_webhooks(merged) == merged
    clash = {"components": {"schemas": {"WebhookResult": {"type": "string"}}}}
    with pytest.raises(ValueError, match="WebhookResult"):
        add_webhooks(clash)

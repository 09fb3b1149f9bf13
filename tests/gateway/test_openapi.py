"""The OpenAPI 3.1 document the gateway serves: its routes plus the webhooks Orra sends."""

from __future__ import annotations

import copy

import httpx
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from orra_events.webhooks import (
    APPROVAL_TYPE,
    COMPENSATION_TYPE,
    RESULT_TYPE,
    openapi_webhooks,
    schema_components,
)
from orra_gateway.app import create_app
from orra_gateway.openapi import openapi_document
from orra_gateway.settings import GatewaySettings
from tests import webhook_contract

from .conftest import ServerThread


async def test_the_served_document_has_the_webhooks_and_is_valid_openapi_3_1(
    server: ServerThread,
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as anonymous:
        served = (await anonymous.get("/schema/openapi.json")).json()
        page = await anonymous.get("/schema")
    assert served["openapi"].startswith("3.1")
    validate(served)  # raises on anything that is not OpenAPI 3.1
    assert served["webhooks"] == openapi_webhooks()
    schemas = served["components"]["schemas"]
    for name, schema in schema_components().items():
        assert schemas[name] == schema
    assert "/orchestrations" in served["paths"]  # the routes are still there
    # the document the contract check validates deliveries against says the same
    # (the API's own parts differ only by Litestar's random examples of problem details)
    published = webhook_contract.published_document()
    assert published["webhooks"] == served["webhooks"]
    assert {
        k: v for k, v in published["components"]["schemas"].items() if k.startswith("Webhook")
    } == {k: v for k, v in schemas.items() if k.startswith("Webhook")}
    assert published["paths"].keys() == served["paths"].keys()
    # the reference page loads that document
    assert page.status_code == 200
    assert 'data-url="/schema/openapi.json"' in page.text


def test_the_document_of_an_app_is_the_served_one_and_the_check_can_fail() -> None:
    document = openapi_document(create_app(GatewaySettings()))
    validate(document)
    assert set(document["webhooks"]) == {RESULT_TYPE, COMPENSATION_TYPE, APPROVAL_TYPE}
    operation = document["webhooks"][RESULT_TYPE]["post"]
    assert [p["name"] for p in operation["parameters"]] == [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ]
    broken = copy.deepcopy(document)
    broken["webhooks"][RESULT_TYPE]["post"]["parameters"][0]["in"] = "body"
    with pytest.raises(OpenAPIValidationError):
        validate(broken)

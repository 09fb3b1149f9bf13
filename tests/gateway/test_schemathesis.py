"""Property-based run of schemathesis against the OpenAPI document of a live gateway.

Every operation gets a bounded number of generated requests (authenticated with the
bootstrap key); no answer may be a 5xx or violate the documented schema, status codes or
content types. Schemathesis runs in a worker thread so that the stand-in planner keeps
answering on the test's event loop.
"""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.gateway.conftest import BOOTSTRAP_KEY, ServerThread

pytestmark = pytest.mark.timeout(120)

AUTH = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 15


def run_schemathesis(url: str) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{url}/schema/openapi.json")
    checked: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith("/events"):
            continue  # an endless stream; covered by the SSE tests

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=10)

        check()
        checked.append(f"{operation.method.upper()} {operation.path}")
    return checked


@pytest.mark.usefixtures("planner")
async def test_schemathesis_finds_no_5xx_and_no_schema_violation(server: ServerThread) -> None:
    checked = await asyncio.to_thread(run_schemathesis, server.url)
    assert "POST /orchestrations" in checked
    assert len(checked) >= 14

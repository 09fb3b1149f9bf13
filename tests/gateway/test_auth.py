"""Authentication once, before anything else (services/gateway/src/orra_gateway/auth.py).

The key is checked before the request's body is read and before its parameters are
validated: an unauthenticated or unauthorised caller learns nothing about what the route
would accept. Every route the app serves is covered, so a new route cannot forget it.
"""

from __future__ import annotations

import re

import httpx
import pytest

from orra_gateway import GatewaySettings, create_app
from tests.gateway.conftest import ServerThread
from tests.gateway.test_api import assert_problem
from tests.gateway.test_roles import as_key, new_key

pytestmark = pytest.mark.timeout(90)

PUBLIC = re.compile(r"^/(healthz|readyz|schema|mcp|ui)(/|$)")
"""Routes anyone may call (the MCP server checks the key itself; the console holds no data)."""


def _routes() -> list[tuple[str, str]]:
    app = create_app(GatewaySettings())
    found: list[tuple[str, str]] = []
    for route in app.routes:
        if PUBLIC.match(route.path):
            continue
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        methods = sorted(getattr(route, "methods", ()))
        found.extend((m, path) for m in methods if m not in {"HEAD", "OPTIONS"})
    return found


def test_every_route_but_the_public_ones_is_listed() -> None:
    routes = _routes()
    assert ("POST", "/orchestrations") in routes
    assert ("GET", "/orchestrations/x/history") in routes
    assert ("DELETE", "/webhooks/x") in routes
    assert len(routes) >= 19


async def test_every_route_refuses_a_missing_key_before_reading_the_request(
    server: ServerThread,
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        for method, path in _routes():
            # a body that is not JSON, and a query no route accepts
            response = await anonymous.request(
                method,
                path,
                params={"limit": "-1", "status": "nonsense"},
                content=b"{not json",
                headers={"Content-Type": "application/json"},
            )
            problem = assert_problem(response, 401)
            assert "Authorization" in problem["detail"], (method, path, problem)


async def test_a_member_key_is_refused_before_its_body_is_read(
    client: httpx.AsyncClient, server: ServerThread
) -> None:
    member = await new_key(client, name="ci")
    async with as_key(server, member["apiKey"]) as ci:
        for method, path in (("POST", "/webhooks"), ("POST", "/api-keys")):
            response = await ci.request(
                method, path, content=b"{not json", headers={"Content-Type": "application/json"}
            )
            problem = assert_problem(response, 403)
            assert member["id"] in problem["detail"]
        # with a valid key the same body is what is wrong
        response = await client.post(
            "/webhooks", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert_problem(response, 400)

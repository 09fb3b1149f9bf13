"""The bridge follows a server's tool list in the registry (real broker, no MCP server:
the lists are handed to it as its link would)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp.types import Tool, ToolAnnotations

from orra_mcp.bridge import Bridge
from orra_mcp.config import parse_config
from orra_sdk import OrraClient

pytestmark = pytest.mark.e2e

SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
CONFIG = parse_config({"mcpServers": {"tools": {"command": "unused"}}}, environ={})


def tool(name: str, description: str = "Search things.", **kw: Any) -> Tool:
    return Tool(name=name, description=description, input_schema=SCHEMA, **kw)


@pytest.fixture
async def client(nats_url: str, namespace: str, bus: object) -> AsyncIterator[OrraClient]:
    c = OrraClient(nats_url, namespace=namespace, drain_timeout_s=0.5)
    await c.connect()
    yield c
    await c.close()


async def test_tools_register_change_versions_and_leave(
    client: OrraClient, nats_url: str, namespace: str
) -> None:
    bridge = Bridge(CONFIG, client)
    sync = bridge._tools_of(CONFIG.servers[0])
    read_only = ToolAnnotations(read_only_hint=True)
    await sync([tool("search", annotations=read_only), tool("delete")])
    assert {n: s.version for n, s in client.services.items()} == {
        "tools-search": "1",
        "tools-delete": "1",
    }
    assert client.services["tools-search"].retry_on_timeout is True
    assert client.services["tools-delete"].retry_on_timeout is False
    registered = await client.registrations("tools-search")
    assert registered["1"].input_schema == SCHEMA

    # The same list again changes nothing; a changed description is a new version.
    await sync([tool("search", annotations=read_only), tool("delete")])
    assert client.services["tools-search"].version == "1"
    await sync([tool("search", "Search every thing.", annotations=read_only), tool("delete")])
    assert client.services["tools-search"].version == "2"
    assert set(await client.registrations("tools-search")) == {"1", "2"}

    # A replica with the same definition serves the same version.
    other = OrraClient(nats_url, namespace=namespace, drain_timeout_s=0.5)
    await other.connect()
    try:
        replica = Bridge(CONFIG, other)
        await replica._tools_of(CONFIG.servers[0])(
            [tool("search", "Search every thing.", annotations=read_only)]
        )
        assert other.services["tools-search"].version == "2"
    finally:
        await other.close()

    # A removed tool is withdrawn; an unreachable server withdraws them all.
    await sync([tool("search", "Search every thing.", annotations=read_only)])
    assert set(client.services) == {"tools-search"}
    await bridge._down_of(CONFIG.servers[0])("connection refused")
    assert client.services == {}


async def test_bad_tools_are_reported_and_the_others_served(client: OrraClient) -> None:
    bridge = Bridge(CONFIG, client)
    await bridge._tools_of(CONFIG.servers[0])(
        [
            tool("good"),
            tool("bad name!"),
            Tool(name="bad_schema", input_schema={"type": "object", "required": 3}),
            Tool(
                name="bad_output",
                input_schema=SCHEMA,
                output_schema={"type": "object", "properties": 1},
            ),
        ]
    )
    assert set(client.services) == {"tools-good"}
    reasons = bridge.skipped["tools"]
    assert set(reasons) == {"tool 'bad name!'", "tool 'bad_schema'", "tool 'bad_output'"}
    assert "the input schema is not valid JSON Schema" in reasons["tool 'bad_schema'"]
    assert "the output schema is not valid JSON Schema" in reasons["tool 'bad_output'"]

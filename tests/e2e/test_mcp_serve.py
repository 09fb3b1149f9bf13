"""Orra as an MCP server, driven by the MCP SDK's own client: over stdio (``orra mcp serve``
as a subprocess, as a desktop agent runs it) and over streamable HTTP (the gateway's
``/mcp``), against the whole stack of ``orra up --mcp-config`` (which also bridges the test
MCP server, so an agent sees MCP tools among Orra's services).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ResourceUpdated
from mcp.types import TextResourceContents

from mcp import Client, StdioServerParameters
from tests.e2e.stack_fixtures import StackHandle

pytestmark = pytest.mark.e2e

TOOLSERVER = Path(__file__).resolve().parents[1] / "mcp" / "toolserver.py"
ORDER = "Process order payment and update inventory"
ORDER_DATA = {"orderId": "ORD123", "amount": "299.99", "productId": "PROD456"}
TOOLS = {
    "submit_action",
    "get_orchestration",
    "wait_for_orchestration",
    "list_orchestrations",
    "list_services",
    "abort_orchestration",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    base = tmp_path_factory.mktemp("orra-up-mcp")
    config = base / "mcp.json"
    config.write_text(
        json.dumps(
            {"mcpServers": {"tools": {"command": sys.executable, "args": [str(TOOLSERVER)]}}}
        )
    )
    handle = StackHandle(
        data_dir=base / "data",
        cli_config=base / "cli-config.json",
        extra_env={"ORRA_EXAMPLES_LATENCY_SCALE": "0.3"},
        mcp_config=config,
    )
    try:
        handle.start(demo=True)
        yield handle
    finally:
        handle.stop()


def stdio(stack: StackHandle, api_key: str) -> StdioServerParameters:
    env = stack.env(ORRA_API_KEY=api_key)
    return StdioServerParameters(
        command=sys.executable, args=["-m", "orra_cli", "mcp", "serve"], env=env
    )


def http(stack: StackHandle, api_key: str) -> Any:
    client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    return client, streamable_http_client(stack.gateway_url + "/mcp", http_client=client)


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


async def run_order(client: Client) -> None:
    """The seed's order action: its plan from submit_action, its result from wait."""
    tools = {t.name for t in (await client.list_tools()).tools}
    assert tools >= TOOLS
    submitted = data(await client.call_tool("submit_action", {"action": ORDER, "data": ORDER_DATA}))
    assert submitted["status"] in {"running", "completed"}, submitted
    services = {t["service"] for t in submitted["tasks"]}
    assert services == {"PaymentService", "InventoryService"}, submitted
    assert sorted(map(sorted, submitted["parallel_groups"])) == [
        sorted(t["id"] for t in submitted["tasks"])
    ]
    orch = submitted["id"]
    done = data(
        await client.call_tool(
            "wait_for_orchestration", {"orchestration_id": orch, "timeout_s": 30}
        )
    )
    assert done["status"] == "completed", done
    assert done["waitTimedOut"] is False
    assert done["results"]["paymentStatus"] == "confirmed", done["results"]
    (contents,) = (await client.read_resource(f"orra://orchestrations/{orch}/events")).contents
    assert isinstance(contents, TextResourceContents)
    events = json.loads(contents.text)["events"]
    types = [e["type"] for e in events]
    assert types[0] == "action.submitted"
    assert "plan.created" in types
    assert types.count("task.completed") == 2
    assert "orchestration.done" in types
    listed = data(await client.call_tool("list_orchestrations", {"limit": 5}))
    assert orch in [item["id"] for item in listed["items"]]


async def test_orra_mcp_serve_over_stdio_runs_the_seed_order(stack: StackHandle) -> None:
    async with Client(stdio(stack, stack.api_key)) as client:
        await run_order(client)
        services = data(await client.call_tool("list_services", {}))
        names = {s["name"] for s in services["items"]}
        # the demo services, and the tools that orra up's MCP bridge serves
        assert {"PaymentService", "tools-lookup_customer", "tools-send_voucher"} <= names
        refused = await client.call_tool("get_orchestration", {"orchestration_id": "o_nope"})
        assert refused.is_error
        assert "404" in refused.content[0].text  # type: ignore[union-attr]


async def test_orra_mcp_over_http_runs_the_seed_order_and_streams_events(
    stack: StackHandle,
) -> None:
    http_client, transport = http(stack, stack.api_key)
    async with http_client, Client(transport) as client:
        await run_order(client)
        slow = data(
            await client.call_tool(
                "submit_action",
                {
                    "action": "Archive the ledger snapshot",
                    "data": {"ledgerId": "L7", "holdSeconds": 2},
                },
            )
        )
        uri = f"orra://orchestrations/{slow['id']}/events"
        updates: list[str] = []
        async with client.listen(resource_subscriptions=[uri]) as sub:

            async def collect() -> None:
                async for event in sub:  # each update as it comes (the task is cancelled)
                    if isinstance(event, ResourceUpdated):
                        updates.append(event.uri)  # noqa: PERF401

            follower = asyncio.create_task(collect())
            done = data(
                await client.call_tool(
                    "wait_for_orchestration", {"orchestration_id": slow["id"], "timeout_s": 30}
                )
            )
            assert done["status"] == "completed"
            for _ in range(50):
                if updates:
                    break
                await asyncio.sleep(0.1)
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        assert updates, "no notifications/resources/updated for the orchestration's events"
        assert set(updates) == {uri}


async def test_a_wrong_key_is_refused_over_http_and_stdio(stack: StackHandle) -> None:
    wrong = "orra_" + "x" * 40
    response = httpx.post(
        stack.gateway_url + "/mcp",
        headers={"Authorization": f"Bearer {wrong}", "Accept": "application/json"},
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["detail"] == "unknown or revoked API key"
    http_client, transport = http(stack, wrong)
    async with http_client:
        with pytest.raises(BaseException):  # noqa: B017 - the SDK raises a group
            async with Client(transport) as client:
                await client.list_tools()

    served = subprocess.run(
        [sys.executable, "-m", "orra_cli", "mcp", "serve"],
        env=stack.env(ORRA_API_KEY=wrong),
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert served.returncode == 1
    assert "refused the API key (unknown or revoked API key)" in served.stderr
    assert served.stdout == ""  # nothing on the protocol's channel

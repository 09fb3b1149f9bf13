"""An MCP server for the tests, written with the MCP SDK's low-level server API.

Run as ``python tests/mcp/toolserver.py`` (stdio) or ``... --http PORT`` (streamable HTTP
at ``/mcp``). Its tools:

* ``lookup_customer`` (read-only): ``{"customerId"}`` → structured
  ``{"customerId", "email", "tier"}`` (declared ``outputSchema``), with one progress
  notification;
* ``send_voucher`` (destructive, not idempotent): ``{"email", "tier"}`` → text content
  (no ``outputSchema``); it waits ``TOOLSERVER_VOUCHER_DELAY_S`` first;
* after SIGUSR1, also ``lookup_order`` (read-only), announced with ``tools/list_changed``.

Environment: ``TOOLSERVER_EFFECTS`` (a file: one JSON line per tool call, to count runs),
``TOOLSERVER_VOUCHER_DELAY_S`` (default 0), ``TOOLSERVER_BAD_TOOLS=1`` (also list a tool
whose input schema is not JSON Schema and a tool whose name is not a service name),
``TOOLSERVER_BAD_OUTPUT=1`` (``lookup_customer`` returns a ``tier`` that breaks its schema),
``TOOLSERVER_PID_FILE`` (written at start).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
    ToolAnnotations,
)

from mcp import MCPError

LOOKUP = Tool(
    name="lookup_customer",
    title="Look up a customer",
    description="Find a customer's email address and loyalty tier by customer id.",
    input_schema={
        "type": "object",
        "properties": {"customerId": {"type": "string"}},
        "required": ["customerId"],
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "properties": {
            "customerId": {"type": "string"},
            "email": {"type": "string"},
            "tier": {"type": "string"},
        },
        "required": ["customerId", "email", "tier"],
    },
    annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
)

VOUCHER = Tool(
    name="send_voucher",
    title="Send a voucher",
    description="Email a discount voucher to a customer for their loyalty tier.",
    input_schema={
        "type": "object",
        "properties": {"email": {"type": "string"}, "tier": {"type": "string"}},
        "required": ["email", "tier"],
    },
    annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False),
)

ORDER = Tool(
    name="lookup_order",
    title="Look up an order",
    description="Find the status of a shipment order by order number.",
    input_schema={
        "type": "object",
        "properties": {"orderNumber": {"type": "string"}},
        "required": ["orderNumber"],
    },
    annotations=ToolAnnotations(read_only_hint=True),
)

BAD_SCHEMA = Tool(
    name="broken_schema",
    description="A tool whose input schema is not JSON Schema.",
    input_schema={"type": "object", "properties": {"x": {"type": "no-such-type"}}},
    annotations=ToolAnnotations(read_only_hint=True),
)

BAD_NAME = Tool(
    name="send email!",
    description="A tool whose name cannot be a service name.",
    input_schema={"type": "object", "properties": {}},
    annotations=ToolAnnotations(read_only_hint=True),
)

bus = InMemorySubscriptionBus()
tools: list[Tool] = [LOOKUP, VOUCHER]
if os.environ.get("TOOLSERVER_BAD_TOOLS") == "1":
    tools += [BAD_SCHEMA, BAD_NAME]


def _effect(tool: str, arguments: dict[str, Any]) -> None:
    path = os.environ.get("TOOLSERVER_EFFECTS")
    if path:
        with Path(path).open("a", encoding="utf-8") as f:
            f.write(json.dumps({"tool": tool, "arguments": arguments, "at": time.time()}) + "\n")


async def list_tools(
    ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
) -> ListToolsResult:
    return ListToolsResult(tools=list(tools))


async def call_tool(
    ctx: ServerRequestContext[Any], params: CallToolRequestParams
) -> CallToolResult:
    args = params.arguments or {}
    _effect(params.name, args)
    if params.name == "lookup_customer":
        await ctx.session.report_progress(1, 2, "looking the customer up")
        customer = str(args.get("customerId", ""))
        if customer == "UNKNOWN":
            return CallToolResult(
                content=[TextContent(type="text", text=f"no customer {customer}")], is_error=True
            )
        tier: Any = 7 if os.environ.get("TOOLSERVER_BAD_OUTPUT") == "1" else "gold"
        data = {"customerId": customer, "email": f"{customer.lower()}@example.com", "tier": tier}
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(data))], structured_content=data
        )
    if params.name == "send_voucher":
        await anyio.sleep(float(os.environ.get("TOOLSERVER_VOUCHER_DELAY_S", "0")))
        text = f"voucher {args.get('tier')}-10 sent to {args.get('email')}"
        return CallToolResult(content=[TextContent(type="text", text=text)])
    if params.name == "lookup_order" and ORDER in tools:
        data = {"orderNumber": args.get("orderNumber"), "status": "shipped"}
        return CallToolResult(content=[TextContent(type="text", text=json.dumps(data))])
    raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name}")


server = Server(
    "orra-test-tools",
    on_list_tools=list_tools,
    on_call_tool=call_tool,
    on_subscriptions_listen=ListenHandler(bus),
)


async def _on_signals() -> None:
    with anyio.open_signal_receiver(signal.SIGUSR1) as signals:
        async for _ in signals:
            if ORDER not in tools:
                tools.append(ORDER)
            await bus.publish(ToolsListChanged())


async def main() -> None:
    pid_file = os.environ.get("TOOLSERVER_PID_FILE")
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()), encoding="utf-8")
    async with anyio.create_task_group() as tg:
        tg.start_soon(_on_signals)
        if len(sys.argv) > 2 and sys.argv[1] == "--http":
            import uvicorn

            app = server.streamable_http_app(
                transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False)
            )
            config = uvicorn.Config(
                app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning"
            )
            await uvicorn.Server(config).serve()
        else:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main)

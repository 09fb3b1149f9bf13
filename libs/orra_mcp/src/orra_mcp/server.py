"""Orra as an MCP server: an agent submits actions, reads plans and results, and follows events.

Built with the official MCP SDK's :class:`~mcp.server.mcpserver.MCPServer`; served over
stdio (``orra mcp serve``, for desktop agents) or streamable HTTP under the gateway at
``/mcp`` (:mod:`orra_mcp.asgi`, for remote agents). Every tool is a call of the gateway's
HTTP API (:class:`~orra_mcp.api.GatewayApi`) with the caller's API key, so an agent may do
exactly what its key may do over HTTP, with the same validation and messages; a refusal is
a tool error (``isError``) whose text is the gateway's explanation.

Tools:

* ``submit_action(action, data, webhook, allow_partial)``: plan and start an action; the
  answer is ``POST /orchestrations``'s: the orchestration's id, status, ``tasks`` and
  ``parallel_groups`` (the plan), ``uncovered`` parts;
* ``get_orchestration(orchestration_id)``: status, tasks, results (``GET
  /orchestrations/{id}``);
* ``wait_for_orchestration(orchestration_id, timeout_s)``: follows its events until it
  ends (or the timeout), then answers as ``get_orchestration``, with ``"waitTimedOut"``
  when it has not ended;
* ``list_orchestrations(status, limit, cursor)``, ``list_services()``;
* ``abort_orchestration(orchestration_id, reason)``.

Resource: ``orra://orchestrations/{orchestration_id}/events``, the orchestration's events so
far (JSON: ``{"orchestrationId", "events": [{"seq", "type", "event"}]}``). An agent that
subscribes to it (``subscriptions/listen`` with that URI) gets
``notifications/resources/updated`` for every new event, as long as its stream is open:
the server follows the orchestration's event stream with the subscriber's key, after
checking that the key may read it (else the subscription is refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

import structlog
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated
from mcp.types import INVALID_PARAMS, SubscriptionsListenRequestParams, ToolAnnotations

from mcp import MCPError
from orra_mcp.api import TERMINAL_EVENTS, TERMINAL_STATUSES, GatewayApi
from orra_mcp.errors import ApiError

__all__ = ["EVENTS_URI", "ApiFor", "build_server"]

log = structlog.get_logger("orra.mcp.server")

EVENTS_URI = "orra://orchestrations/{orchestration_id}/events"
"""The URI template of an orchestration's events."""

_EVENTS = re.compile(r"orra://orchestrations/([A-Za-z0-9_-]{1,128})/events")

ApiFor = Callable[[ServerRequestContext[Any, Any] | None], GatewayApi]
"""Gives the gateway API client of a request: with the caller's key (HTTP) or the
server's own (stdio). Raises :class:`~orra_mcp.errors.ApiError` (401) without a key."""

INSTRUCTIONS = (
    "Orra plans a plain-language action with data into tasks across registered services and "
    "runs them. Use submit_action to start one (the answer holds the plan), "
    "wait_for_orchestration to get its outcome, list_services to see what can be done."
)


def build_server(api_for: ApiFor) -> MCPServer:
    """The Orra MCP server, whose tools call the gateway through ``api_for``."""
    bus = InMemorySubscriptionBus()
    watchers = _Watchers(api_for, bus)
    mcp: MCPServer = MCPServer(
        "orra",
        instructions=INSTRUCTIONS,
        subscriptions=bus,
        middleware=[watchers.middleware],
        log_level="WARNING",
    )

    def api(ctx: Context) -> GatewayApi:
        return api_for(ctx.request_context)

    _add_orchestration_tools(mcp, api)
    _add_resources(mcp, api)
    return mcp


ApiOf = Callable[[Context], GatewayApi]
"""Gives the gateway API client of a tool call (see :data:`ApiFor`)."""


def _add_orchestration_tools(mcp: MCPServer, api: ApiOf) -> None:
    """Register the tools, in the order clients list them."""

    @mcp.tool(
        title="Submit an action",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False),
    )
    async def submit_action(
        action: str,
        ctx: Context,
        data: dict[str, Any] | None = None,
        webhook: str | None = None,
        allow_partial: bool = False,
    ) -> dict[str, Any]:
        """Plan an action with its data and start running it.

        `data` maps field names to values (`{"orderId": "ORD123"}`). The answer has the
        orchestration's `id`, `status`, the plan (`tasks`, each with its `service` and
        `input`, and `parallel_groups`) and the parts of the action nothing can do
        (`uncovered`; the action is refused unless `allow_partial`).
        """
        body: dict[str, Any] = {
            "action": {"content": action},
            "data": [{"field": k, "value": v} for k, v in (data or {}).items()],
        }
        if webhook:
            body["webhook"] = webhook
        if allow_partial:
            body["allowPartial"] = True
        return await _call(api(ctx).request("POST", "/orchestrations", body))

    @mcp.tool(title="Get an orchestration", annotations=ToolAnnotations(read_only_hint=True))
    async def get_orchestration(orchestration_id: str, ctx: Context) -> dict[str, Any]:
        """An orchestration's status, tasks (with inputs, outputs, errors) and results."""
        return await _call(api(ctx).request("GET", _path(orchestration_id)))

    @mcp.tool(title="Wait for an orchestration", annotations=ToolAnnotations(read_only_hint=True))
    async def wait_for_orchestration(
        orchestration_id: str, ctx: Context, timeout_s: float = 60.0
    ) -> dict[str, Any]:
        """Wait until the orchestration ends (at most `timeout_s` seconds), then get it.

        The answer is `get_orchestration`'s; `waitTimedOut` is true when it had not ended.
        """
        return await _wait(api(ctx), orchestration_id, timeout_s)

    @mcp.tool(title="List orchestrations", annotations=ToolAnnotations(read_only_hint=True))
    async def list_orchestrations(
        ctx: Context, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> dict[str, Any]:
        """The project's orchestrations, newest first; pass `nextCursor` as `cursor` for more."""
        params: dict[str, str | int] = {"limit": max(1, min(limit, 100))}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        return await _call(api(ctx).request("GET", f"/orchestrations?{urlencode(params)}"))

    @mcp.tool(title="List services", annotations=ToolAnnotations(read_only_hint=True))
    async def list_services(ctx: Context) -> dict[str, Any]:
        """The registered services and agents: what each does, its schemas and its health."""
        return await _call(api(ctx).request("GET", "/services"))

    @mcp.tool(
        title="Abort an orchestration",
        annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=True),
    )
    async def abort_orchestration(
        orchestration_id: str, ctx: Context, reason: str | None = None
    ) -> dict[str, Any]:
        """Stop an orchestration that has not ended; what completed is compensated."""
        body = {"reason": reason} if reason else None
        return await _call(api(ctx).request("POST", _path(orchestration_id, "/abort"), body))


def _add_resources(mcp: MCPServer, api: ApiOf) -> None:
    """Register the orchestration events resource."""

    @mcp.resource(EVENTS_URI, mime_type="application/json", title="Orchestration events")
    async def orchestration_events(orchestration_id: str, ctx: Context) -> str:
        """Every event of the orchestration so far, in log order."""
        try:
            history = await api(ctx).request("GET", _path(orchestration_id, "/history"))
        except ApiError as exc:
            raise ResourceError(_refusal(exc)) from None
        return json.dumps({"orchestrationId": orchestration_id, "events": history["items"]})


async def _wait(client: GatewayApi, orchestration_id: str, timeout_s: float) -> dict[str, Any]:
    path = _path(orchestration_id)
    view = await _call(client.request("GET", path))
    if view.get("status") in TERMINAL_STATUSES:
        view["waitTimedOut"] = False
        return view
    timed_out = False
    try:
        async with asyncio.timeout(max(0.0, min(timeout_s, 3600.0))):
            async for event in client.events(orchestration_id):
                if event.type in TERMINAL_EVENTS:
                    break
    except TimeoutError:
        timed_out = True
    except ApiError as exc:
        raise ToolError(_refusal(exc)) from None
    view = await _call(client.request("GET", path))
    view["waitTimedOut"] = timed_out and view.get("status") not in TERMINAL_STATUSES
    return view


def _path(orchestration_id: str, suffix: str = "") -> str:
    return f"/orchestrations/{quote(orchestration_id, safe='')}{suffix}"


async def _call(request: Awaitable[Any]) -> dict[str, Any]:
    try:
        result = await request
    except ApiError as exc:
        raise ToolError(_refusal(exc)) from None
    return result if isinstance(result, dict) else {"result": result}


def _refusal(exc: ApiError) -> str:
    if exc.status == 0:
        return exc.detail
    return f"Orra refused it ({exc.status}): {exc.detail}"


class _Watchers:
    """Follows the orchestrations named by open ``subscriptions/listen`` streams.

    A middleware on ``subscriptions/listen``: before the SDK acknowledges a stream, every
    requested ``orra://orchestrations/<id>/events`` URI is checked with the caller's key
    (refused with the gateway's reason otherwise) and followed (the gateway's SSE stream,
    from the last event stored) for as long as the stream is open; each new event
    publishes ``ResourceUpdated`` for its URI.
    """

    def __init__(self, api_for: ApiFor, bus: InMemorySubscriptionBus) -> None:
        self.api_for = api_for
        self.bus = bus

    async def middleware(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method != "subscriptions/listen":
            return await call_next(ctx)
        params = SubscriptionsListenRequestParams.model_validate(ctx.params or {}, by_name=False)
        uris = [
            u for u in params.notifications.resource_subscriptions or () if _EVENTS.fullmatch(u)
        ]
        if not uris:
            return await call_next(ctx)
        try:
            api = self.api_for(ctx)
            starts = {}
            for uri in uris:
                match = _EVENTS.fullmatch(uri)
                assert match is not None
                history = await api.request("GET", _path(match.group(1), "/history"))
                items = history.get("items") or []
                starts[uri] = (match.group(1), int(items[-1]["seq"]) if items else 0)
        except ApiError as exc:
            raise MCPError(INVALID_PARAMS, _refusal(exc)) from None
        tasks = [
            asyncio.create_task(self._follow(api, uri, orch, after), name=f"orra-mcp-watch-{orch}")
            for uri, (orch, after) in starts.items()
        ]
        try:
            return await call_next(ctx)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _follow(self, api: GatewayApi, uri: str, orchestration_id: str, after: int) -> None:
        while True:
            try:
                async for event in api.events(orchestration_id, after):
                    after = max(after, event.seq)
                    await self.bus.publish(ResourceUpdated(uri=uri))
            except ApiError as exc:
                log.info("event stream ended", orchestration_id=orchestration_id, error=str(exc))
            await asyncio.sleep(1.0)  # the stream broke: resume after the last event seen

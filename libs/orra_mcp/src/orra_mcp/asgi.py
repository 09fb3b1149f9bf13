"""Orra's MCP server over streamable HTTP, mounted in the gateway at ``/mcp``.

The gateway mounts :func:`mcp_app` (see ``orra_gateway.app``). A request must carry the
API key as ``Authorization: Bearer <key>``; the gateway's key store checks it before the
MCP transport sees the request (401 problem details with ``WWW-Authenticate: Bearer``
otherwise; 503 when the broker is away). The tools then call the gateway's HTTP API with
that key, on the gateway's own listener (``self_url``): one implementation of every rule
(roles, projects, validation, problem details) for HTTP clients and agents alike, and one
for ``orra mcp serve`` over stdio, which is a remote client of the same API.

The transport is stateless (each request stands alone; no session to pin to a gateway
replica), and the SDK's DNS-rebinding protection is off: it guards browser-reachable
servers that trust ambient credentials, while every request here must carry its key.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mcp.server.transport_security import TransportSecuritySettings

from orra_mcp.api import GatewayApi
from orra_mcp.errors import ApiError
from orra_mcp.server import build_server

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from mcp.server.context import ServerRequestContext

__all__ = ["Authenticate", "McpApp", "mcp_app"]

Authenticate = Callable[[str], Awaitable[None]]
"""Checks an API key; raises :class:`~orra_mcp.errors.ApiError` (401, 403, 503) if refused."""

Asgi = Callable[[dict[str, Any], Callable[..., Any], Callable[..., Any]], Awaitable[None]]


class McpApp:
    """The mounted MCP endpoint: an ASGI app and the lifespan it needs.

    Attributes:
        app: The ASGI app (the bearer check in front of the MCP transport).
        lifespan: Enter it for as long as the host app runs (the MCP session manager).
    """

    def __init__(
        self, app: Asgi, lifespan: Callable[[], AbstractAsyncContextManager[None]]
    ) -> None:
        self.app = app
        self.lifespan = lifespan


def mcp_app(authenticate: Authenticate, self_url: str) -> McpApp:
    """The MCP endpoint of a gateway that listens on ``self_url``.

    Args:
        authenticate: The gateway's key check.
        self_url: Where the gateway's own HTTP API answers (loopback).
    """

    def api_for(ctx: ServerRequestContext[Any, Any] | None) -> GatewayApi:
        # The HTTP request the transport attached (a Starlette request); none on stdio.
        headers = getattr(ctx.request, "headers", None) if ctx is not None else None
        token = _bearer((headers or {}).get("authorization"))
        if token is None:
            raise ApiError(401, "missing 'Authorization: Bearer <api key>' header")
        return GatewayApi(self_url, token)

    server = build_server(api_for)
    transport = server.streamable_http_app(
        streamable_http_path="/",
        stateless_http=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )

    async def check(scope: dict[str, Any]) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        token = _bearer(headers.get("authorization"))
        if token is None:
            raise ApiError(401, "missing 'Authorization: Bearer <api key>' header")
        await authenticate(token)

    async def app(
        scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] == "http":
            try:
                await check(scope)
            except ApiError as exc:
                await _problem(send, exc)
                return
        await transport(scope, receive, send)

    return McpApp(app, server.session_manager.run)


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def _problem(send: Callable[..., Any], exc: ApiError) -> None:
    status = exc.status or 503
    body = json.dumps(
        {
            "type": "about:blank",
            "title": {401: "Unauthorized", 403: "Forbidden"}.get(status, "Service Unavailable"),
            "status": status,
            "detail": exc.detail,
        }
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="orra"'))
    if status == 503:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

"""``orra mcp serve``: Orra's MCP server over stdio, for desktop agents.

The process is a client of the gateway's HTTP API (``ORRA_GATEWAY_URL``) with one API key
(``ORRA_API_KEY``, or the CLI's configuration). It checks the key first (``GET /me``) and
refuses to start when the gateway refuses it, so a wrong key is a clear message on stderr
(which agents show in their logs), not tools that all fail later. stdout carries the MCP
messages only; logs go to stderr.
"""

from __future__ import annotations

import sys

from orra_mcp.api import GatewayApi
from orra_mcp.errors import ApiError
from orra_mcp.server import build_server

__all__ = ["serve_stdio"]


async def serve_stdio(gateway_url: str, api_key: str) -> int:
    """Serve MCP on stdin/stdout until the client closes them; return the exit code.

    Returns:
        0 when the client closed the connection; 1 when the gateway refused the key or
        could not be reached at start.
    """
    api = GatewayApi(gateway_url, api_key)
    try:
        me = await api.me()
    except ApiError as exc:
        reason = (
            f"the gateway at {gateway_url} refused the API key ({exc.detail}): set ORRA_API_KEY "
            "to a key of your project (`orra api-keys gen`)"
            if exc.status in (401, 403)
            else str(exc)
        )
        print(f"orra mcp serve: {reason}", file=sys.stderr, flush=True)  # noqa: T201
        return 1
    print(  # noqa: T201 - stdout is the protocol's
        f"orra mcp serve: serving project {me.get('project')!r} of {gateway_url} over stdio",
        file=sys.stderr,
        flush=True,
    )
    server = build_server(lambda _ctx: api)
    await server.run_stdio_async()
    return 0

"""The ``/mcp`` mount, loaded on its first request.

The MCP SDK takes a second or more of CPU to import, and most gateways never serve MCP, so
the gateway starts without it. The first request to ``/mcp`` starts one task that imports
:mod:`orra_mcp.asgi`, enters the MCP session manager's lifespan and holds it until the
gateway stops; that request and any arriving meanwhile wait for it. One task owns the
lifespan from entry to exit, as the session manager's task group requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar.types import Receive, Scope, Send

    from orra_mcp.asgi import McpApp

__all__ = ["LazyMcp"]


class LazyMcp:
    """An MCP endpoint built on first use and stopped with the gateway.

    Args:
        authenticate: The gateway's key check (raises :class:`orra_mcp.errors.ApiError`).
        self_url: Where the gateway's own HTTP API answers (loopback).
    """

    def __init__(self, authenticate: Callable[[str], Awaitable[None]], self_url: str) -> None:
        self._authenticate = authenticate
        self._self_url = self_url
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._mcp: McpApp | None = None
        self._error: BaseException | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI request of ``/mcp``, starting the MCP server first if needed."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="orra-gateway-mcp")
        await self._ready.wait()
        if self._mcp is None:
            raise RuntimeError(f"the MCP server could not start: {self._error!r}")
        await self._mcp.app(dict(scope), receive, send)

    async def _run(self) -> None:
        try:
            asgi = await asyncio.to_thread(importlib.import_module, "orra_mcp.asgi")
            mcp: McpApp = asgi.mcp_app(self._authenticate, self._self_url)
            async with mcp.lifespan():
                self._mcp = mcp
                self._ready.set()
                await self._stop.wait()
        except Exception as exc:  # noqa: BLE001 - reported to every waiting request
            self._error = exc
        finally:
            self._mcp = None
            self._ready.set()

    async def aclose(self) -> None:
        """Stop the MCP server if it was started (at the gateway's shutdown)."""
        if self._task is None:
            return
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

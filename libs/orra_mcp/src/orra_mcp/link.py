"""The bridge's connection to one MCP server: connect, list tools, follow changes, call tools.

A :class:`ServerLink` keeps one MCP client connection (the official SDK's
:class:`mcp.Client`, over stdio or streamable HTTP) open for as long as the bridge runs.
It reconnects with backoff (0.5 s doubling to 10 s) whenever the connection cannot be
made or is lost: a stdio server's process that exits, an HTTP server that stops
answering. It reports to the bridge:

* ``on_tools(tools)`` with the server's whole tool list, once connected and again whenever
  it changes: the server's ``notifications/tools/list_changed`` (over a
  ``subscriptions/listen`` stream on 2026-07-28 connections, as a plain notification on
  older ones), and a periodic re-list every ``probe_s`` seconds, which also notices a
  connection that died quietly;
* ``on_down(reason)`` when the connection is lost or cannot be made.

:meth:`ServerLink.call` calls a tool. A call never outlives the connection: when the
connection is lost while a call waits for its result, the call ends at once with
:class:`ConnectionLost` (whatever the transport does with the request in flight), so a
server killed mid-task is a clear failure, not a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import httpx2
import structlog
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost
from mcp.types import (
    CONNECTION_CLOSED,
    REQUEST_TIMEOUT,
    CallToolResult,
    ToolListChangedNotification,
)

from mcp import Client, MCPError, StdioServerParameters, stdio_client
from orra_mcp.errors import OrraMcpError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mcp.shared.dispatcher import ProgressFnT
    from mcp.types import Tool

    from orra_mcp.config import ServerSpec

__all__ = ["ConnectionLost", "NotConnected", "ServerLink"]

log = structlog.get_logger("orra.mcp.bridge")


_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 10.0
_CONNECT_TIMEOUT_S = 30.0
_LIST_PAGES = 100


class NotConnected(OrraMcpError):
    """The server is not connected now: nothing was sent."""


class ConnectionLost(OrraMcpError):
    """The connection was lost while a call waited for its result: it may have run."""


class ServerLink:
    """One MCP server, kept connected.

    Args:
        spec: The server's configuration.
        on_tools: Called with the whole tool list after each (re)listing.
        on_down: Called with the reason when the connection is lost or cannot be made.
        probe_s: Seconds between two re-listings of the tools.
    """

    def __init__(
        self,
        spec: ServerSpec,
        *,
        on_tools: Callable[[list[Tool]], Awaitable[None]],
        on_down: Callable[[str], Awaitable[None]],
        probe_s: float = 15.0,
    ) -> None:
        self.spec = spec
        self.on_tools = on_tools
        self.on_down = on_down
        self.probe_s = probe_s
        self.connected = False
        self.last_error: str | None = None
        self._client: Client | None = None
        self._lost = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting (in the background)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"orra-mcp-{self.spec.name}")

    async def stop(self) -> None:
        """Close the connection and stop reconnecting."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.connected = False

    async def _run(self) -> None:
        backoff = _BACKOFF_FIRST_S
        while True:
            reason = "the connection ended"
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - transports raise groups and more
                reason = _describe(exc)
            else:
                backoff = _BACKOFF_FIRST_S
            was_connected = self.connected
            self.connected = False
            self._client = None
            self._lost.set()
            self.last_error = reason
            log.warning(
                "MCP server unreachable" if not was_connected else "MCP server connection lost",
                server=self.spec.name,
                at=self.spec.describe(),
                reason=reason,
                retry_in_s=backoff,
            )
            try:
                await self.on_down(reason)
            except Exception:
                log.exception("withdrawing the services of an unreachable server failed")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _session(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            transport: Any
            if self.spec.command is not None:
                params = StdioServerParameters(
                    command=self.spec.command,
                    args=list(self.spec.args),
                    env=dict(self.spec.env) or None,
                    cwd=self.spec.cwd,
                )
                transport = stdio_client(params)
            else:
                http = await stack.enter_async_context(
                    httpx2.AsyncClient(
                        headers=self.spec.headers,
                        follow_redirects=True,
                        timeout=httpx2.Timeout(30.0, read=300.0),
                    )
                )
                transport = streamable_http_client(str(self.spec.url), http_client=http)
            # Listing tools and other requests time out like the connection (a hung server is
            # a lost one); tool calls pass their own timeout.
            client = Client(
                transport,
                message_handler=self._on_message,
                cache=None,
                read_timeout_seconds=_CONNECT_TIMEOUT_S,
            )
            async with asyncio.timeout(_CONNECT_TIMEOUT_S):
                await stack.enter_async_context(client)
            self._client = client
            self._lost = asyncio.Event()
            self.connected = True
            self.last_error = None
            log.info(
                "MCP server connected",
                server=self.spec.name,
                at=self.spec.describe(),
                protocol=client.protocol_version,
            )
            await self._relist(client)
            watcher = asyncio.create_task(self._listen(client), name="orra-mcp-listen")
            try:
                while True:
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.probe_s):
                            await self._wait_change_or_loss()
                    if self._lost.is_set():
                        return
                    await self._relist(client)
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher

    async def _wait_change_or_loss(self) -> None:
        changed = asyncio.ensure_future(self._changed.wait())
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({changed, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            lost.cancel()

    async def _listen(self, client: Client) -> None:
        """Follow ``tools/list_changed`` on a 2026-07-28 connection (older ones notify)."""
        while True:
            try:
                async with client.listen(tools_list_changed=True) as sub:
                    async for _ in sub:
                        self._changed.set()
            except ListenNotSupportedError:
                return  # a handshake-era connection: its notifications reach _on_message
            except (SubscriptionLost, MCPError, TimeoutError) as exc:
                log.debug("tool list subscription ended", server=self.spec.name, error=str(exc))
            # The stream ended (the server closed it, or the connection is going): re-list
            # at once, then listen again; a dead connection is noticed by the re-list.
            self._changed.set()
            await asyncio.sleep(_BACKOFF_FIRST_S)

    async def _on_message(self, message: object) -> None:
        if isinstance(message, ToolListChangedNotification):
            self._changed.set()
        elif isinstance(message, Exception):
            log.debug("MCP transport error", server=self.spec.name, error=_describe(message))

    async def _relist(self, client: Client) -> None:
        tools: list[Tool] = []
        cursor: str | None = None
        for _ in range(_LIST_PAGES):
            page = await client.list_tools(cursor=cursor, cache_mode="refresh")
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        await self.on_tools(tools)

    # --- calls -----------------------------------------------------------------------------

    async def call(
        self,
        tool: str,
        arguments: dict[str, Any],
        *,
        timeout_s: float,
        progress: ProgressFnT | None = None,
    ) -> CallToolResult:
        """Call ``tool``; its result (``is_error`` included), as the server sent it.

        Raises:
            NotConnected: the server is not connected (nothing was sent).
            ConnectionLost: the connection was lost during the call (it may have run).
            TimeoutError: no result within ``timeout_s`` (it may have run).
            MCPError: the server answered with a protocol error.
            RuntimeError: the structured result does not match the tool's output schema
                (the MCP SDK's check; the message names the error).
        """
        client = self._client
        lost = self._lost
        if client is None or not self.connected or lost.is_set():
            raise NotConnected(
                f"MCP server {self.spec.name!r} is not connected"
                + (f": {self.last_error}" if self.last_error else "")
            )
        call = asyncio.ensure_future(
            client.call_tool(
                tool, arguments, read_timeout_seconds=timeout_s, progress_callback=progress
            )
        )
        watch = asyncio.ensure_future(lost.wait())
        try:
            async with asyncio.timeout(timeout_s + 1.0):
                await asyncio.wait({call, watch}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            call.cancel()
            raise TimeoutError(f"no result from {tool} within {timeout_s:g}s") from None
        finally:
            watch.cancel()
            if not call.done():
                call.cancel()
        if not call.done() or call.cancelled():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await call
            raise ConnectionLost(
                f"the connection to MCP server {self.spec.name!r} was lost during the call"
                + (f" ({self.last_error})" if self.last_error else "")
            )
        try:
            return call.result()
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                raise TimeoutError(f"no result from {tool} within {timeout_s:g}s") from None
            if exc.code == CONNECTION_CLOSED:
                self._lost.set()
                raise ConnectionLost(
                    f"MCP server {self.spec.name!r} closed the connection during the call"
                ) from None
            raise


def _describe(exc: BaseException) -> str:
    """One line for an error, looking inside exception groups (transports raise them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text

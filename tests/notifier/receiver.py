"""A real HTTP/1.1 webhook receiver for the tests: asyncio sockets and a minimal parser.

It records every request and answers with whatever its ``respond`` function says, so a
test can script "500, 500, 200", a slow answer, or a handler written like the seed's
Express example. One request per connection (``Connection: close``). Every request is also
reported to :mod:`tests.webhook_contract`, which fails the test if it does not match the
published webhook schema (``contract=False`` for a receiver that gets other requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tests import webhook_contract


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Respond = Callable[[Request], Awaitable[Reply] | Reply]

_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """An HTTP server on 127.0.0.1 that records requests; ``respond`` picks each reply."""

    def __init__(
        self, respond: Respond | None = None, *, port: int | None = None, contract: bool = True
    ) -> None:
        self.port = port or free_port()
        self.contract = contract
        self.requests: list[Request] = []
        self._respond = respond or (lambda _req: Reply(200))
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Condition()
        self._conns: set[asyncio.Task[None]] = set()

    def url(self, path: str = "/webhooks/orra") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(
            self._on_conn, "127.0.0.1", self.port, reuse_address=True
        )
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._conns):
                task.cancel()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Receiver:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Request]:
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.requests) >= count), timeout
            )
        return list(self.requests)

    async def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            await self._serve_one(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        request = Request(method, path, headers, body, time.time())
        if self.contract:
            webhook_contract.observe(f"receiver {self.url(path)}", headers, body)
        async with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()
        reply = self._respond(request)
        if not isinstance(reply, Reply):
            reply = await reply
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
        reason = _REASONS.get(reply.status, "Status")
        writer.write(
            f"HTTP/1.1 {reply.status} {reason}\r\ncontent-length: 0\r\n"
            f"connection: close\r\n{extra}\r\n".encode("latin-1")
        )
        await writer.drain()


def script(*statuses: int | Reply) -> Respond:
    """Reply with these statuses in order, then repeat the last one."""
    replies = [s if isinstance(s, Reply) else Reply(s) for s in statuses]
    calls = {"n": 0}

    def respond(_request: Request) -> Reply:
        reply = replies[min(calls["n"], len(replies) - 1)]
        calls["n"] += 1
        return reply

    return respond

"""The notifier keeps a receiver's keep-alive connection for the next delivery (issue 23).

A minimal HTTP/1.1 server that keeps connections open counts how many the deliverer
opens. Before the answer's body was read, httpcore closed every connection and each
delivery paid a TCP connect.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from orra_notifier.delivery import Deliverer

from .helpers import fast_settings


class KeepAliveServer:
    """Answers every request on a connection with ``status`` and ``body``; counts connections."""

    def __init__(self, body: bytes = b"", *, stall_after_head: bool = False) -> None:
        self.body = body
        self.stall_after_head = stall_after_head
        self.connections = 0
        self.requests = 0
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.requests += 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(self.body))
                if self.stall_after_head:
                    writer.write(self.body[:10])
                    await writer.drain()
                    await asyncio.sleep(30)
                writer.write(self.body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[KeepAliveServer]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


async def test_deliveries_to_a_keep_alive_receiver_share_one_connection() -> None:
    deliverer = Deliverer(fast_settings())
    try:
        async with KeepAliveServer(body=b'{"ok":true}').running() as server:
            results = [await deliverer.post(server.url(), b"{}", {}) for _ in range(5)]
    finally:
        await deliverer.aclose()
    assert [(r.kind, r.status_code) for r in results] == [("response", 200)] * 5
    assert server.requests == 5
    assert server.connections == 1


async def test_a_huge_answer_costs_the_connection_not_the_result() -> None:
    deliverer = Deliverer(fast_settings())
    try:
        async with KeepAliveServer(body=b"x" * 1_000_000).running() as server:
            results = [await deliverer.post(server.url(), b"{}", {}) for _ in range(2)]
    finally:
        await deliverer.aclose()
    assert [(r.kind, r.status_code) for r in results] == [("response", 200)] * 2
    assert server.connections == 2


async def test_an_answer_whose_body_stalls_is_still_the_answer() -> None:
    deliverer = Deliverer(fast_settings(timeout_s=1.0))
    try:
        async with KeepAliveServer(body=b"y" * 100, stall_after_head=True).running() as server:
            result = await deliverer.post(server.url(), b"{}", {})
    finally:
        await deliverer.aclose()
    assert (result.kind, result.status_code) == ("response", 200)

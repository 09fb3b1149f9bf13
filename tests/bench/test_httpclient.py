"""The front door's load-driver client against a real HTTP server (uvicorn is too heavy to
start here; an asyncio server that answers as servers do is enough to pin the parsing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from bench.httpclient import HttpConnection, HttpError, parse_head

ANSWERS = {
    b"/length": b"HTTP/1.1 201 Created\r\nLocation: /orchestrations/o_1\r\n"
    b"Content-Length: 5\r\n\r\nhello",
    b"/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nhel\r\n2;ext=1\r\nlo\r\n0\r\n\r\n",
    b"/close": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    b"/garbage": b"SPDY/3 200 OK\r\n\r\n",
    b"/idle-close": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
}


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                _, headers = parse_head(head[:-4])
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                path = head.split(b" ", 2)[1]
                self.requests.append((head, body))
                writer.write(ANSWERS[path])
                await writer.drain()
                if path in (b"/close", b"/idle-close"):
                    break  # /idle-close: as a server closes a keep-alive connection left idle
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    listener = await asyncio.start_server(srv.serve, "127.0.0.1", 0)
    srv.port = listener.sockets[0].getsockname()[1]
    yield srv
    listener.close()


async def test_requests_share_one_connection_and_bodies_are_read_by_length(
    server: Server,
) -> None:
    conn = HttpConnection("127.0.0.1", server.port)
    try:
        for _ in range(3):
            answer = await conn.request("POST", "/length", {"X-Key": "v"}, b'{"a": 1}')
            assert answer.status == 201
            assert answer.headers["location"] == "/orchestrations/o_1"
            assert answer.body == b"hello"
    finally:
        await conn.close()
    assert server.connections == 1
    assert conn.connects == 1
    head, body = server.requests[0]
    assert head.startswith(b"POST /length HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 8\r\n" in head
    assert b"\r\nX-Key: v\r\n" in head
    assert body == b'{"a": 1}'


async def test_a_chunked_body_is_reassembled(server: Server) -> None:
    conn = HttpConnection("127.0.0.1", server.port)
    try:
        answer = await conn.request("GET", "/chunked", {})
    finally:
        await conn.close()
    assert answer.body == b"hello"


async def test_a_closed_connection_is_reopened_for_the_next_request(server: Server) -> None:
    conn = HttpConnection("127.0.0.1", server.port)
    try:
        assert (await conn.request("GET", "/close", {})).body == b"ok"
        assert (await conn.request("GET", "/length", {})).body == b"hello"
    finally:
        await conn.close()
    assert server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_not_reused(server: Server) -> None:
    conn = HttpConnection("127.0.0.1", server.port)
    try:
        assert (await conn.request("GET", "/idle-close", {})).body == b"ok"
        await asyncio.sleep(0.05)  # the server's close arrives while the connection is idle
        assert (await conn.request("GET", "/length", {})).body == b"hello"
    finally:
        await conn.close()
    assert server.connections == 2


async def test_an_answer_that_is_not_http_is_an_error(server: Server) -> None:
    conn = HttpConnection("127.0.0.1", server.port)
    try:
        with pytest.raises(HttpError, match=r"not an HTTP/1\.x status line"):
            await conn.request("GET", "/garbage", {})
    finally:
        await conn.close()

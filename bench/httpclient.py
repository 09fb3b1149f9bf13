"""A minimal HTTP/1.1 keep-alive client on asyncio streams: the front door's load driver.

The driver must not eat the cores it measures: a general client (httpx, aiohttp) spends
tens to hundreds of microseconds of Python per request on features a benchmark does not use.
This one writes a request in one ``write`` and reads the answer with two or three stream
reads: the status line and headers up to the blank line, then ``Content-Length`` bytes (or
the chunks of a chunked body). One :class:`HttpConnection` carries one request at a time and
reconnects when the server closed it (before a request, when the server's close of an idle
connection has already arrived; after an answer with ``Connection: close``).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

__all__ = ["HttpConnection", "HttpError", "HttpResponse", "parse_head"]


class HttpError(RuntimeError):
    """The server's answer is not HTTP/1.x, or the connection broke mid-answer."""


@dataclass(frozen=True)
class HttpResponse:
    """A complete answer.

    Attributes:
        status: The status code.
        headers: Header names lower-cased; the last value of a repeated header.
        body: The body (de-chunked).
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """Split a message head into its first line and its headers (names lower-cased).

    Raises:
        HttpError: the head has no first line.
    """
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0]:
        raise HttpError("empty message head")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    """The body that follows a head with ``headers``: by length, chunked, or none."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers are sent to us
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0") or 0)
    return await reader.readexactly(length) if length else b""


class HttpConnection:
    """One keep-alive connection to ``host:port`` (reconnects when the server closed it).

    Args:
        host: The server's address.
        port: The server's port.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.connects = 0

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is not None and self._reader.at_eof():
            # The server closed the idle connection (uvicorn after its keep-alive timeout):
            # reconnect rather than race a request against the close, as HTTP clients do.
            await self.close()
        if self._reader is None or self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            self.connects += 1
        return self._reader, self._writer

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> HttpResponse:
        """Send one request and read its whole answer.

        Raises:
            HttpError: the answer is malformed or the connection broke.
            OSError: the connection could not be opened.
        """
        reader, writer = await self._open()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        head += f"Content-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(head.encode("latin-1") + b"\r\n" + body)
        try:
            first, answer = parse_head((await reader.readuntil(b"\r\n\r\n"))[:-4])
            parts = first.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
                raise HttpError(f"not an HTTP/1.x status line: {first[:80]!r}")
            data = await read_body(reader, answer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
            await self.close()
            raise HttpError(f"{method} {path}: connection broke: {exc!r}") from None
        if answer.get("connection", "").lower() == "close":
            await self.close()
        return HttpResponse(int(parts[1]), answer, data)

    async def close(self) -> None:
        """Close the connection (a later request opens a new one)."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

"""A local webhook receiver that verifies Standard Webhooks signatures, as a user's would.

It listens on 127.0.0.1 and answers every verified delivery with ``204``; a delivery whose
signature or timestamp does not verify gets ``401`` (the notifier would then retry it, and
the benchmark counts it as a failure). Two modes, switchable between runs:

* ``keep-alive``: HTTP/1.1 persistent connections, so the notifier's connection pool
  reuses one connection per concurrent delivery;
* ``closing``: every answer carries ``Connection: close`` and the connection is closed after
  it, as Python's ``http.server`` does by default (HTTP/1.0): the notifier connects anew for
  every delivery.

For each delivery it notes, on the machine's wall clock (``time.time()``, the clock every
Orra process stamps its events with), when the request head had arrived and when the body
had been read and its signature verified, and hands ``(orchestration id, Arrival)`` to a
callback.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import msgspec

from bench.httpclient import parse_head, read_body

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Arrival", "Mode", "Receiver", "verify_signature"]

Mode = Literal["keep-alive", "closing"]

TOLERANCE_S = 300
"""Standard Webhooks: a timestamp further than this from now is refused (replays)."""


def verify_signature(
    secret: str, headers: dict[str, str], body: bytes, *, now: float | None = None
) -> bool:
    """Whether ``body`` carries a valid Standard Webhooks signature made with ``secret``.

    The signed content is ``<webhook-id>.<webhook-timestamp>.<body>``; the key is the
    base64 part of the secret after ``whsec_``; ``webhook-signature`` holds space-separated
    ``v1,<base64 HMAC-SHA256>`` entries (several while a rotated secret still signs), any of
    which may match. The timestamp must be within five minutes of ``now``.
    """
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        return False
    try:
        sent = int(stamp)
        key = base64.b64decode(secret.removeprefix("whsec_"))
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > TOLERANCE_S:
        return False
    content = f"{msg_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest())
    for entry in signatures.split():
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return True
    return False


@dataclass(frozen=True)
class Arrival:
    """One verified delivery.

    Attributes:
        head_at: When the request's head had arrived (epoch seconds).
        verified_at: When its body had been read and its signature verified.
        new_connection: Whether it came on a connection the receiver had not seen before.
        status: The payload's ``status``.
        webhook_id: The ``webhook-id`` header.
    """

    head_at: float
    verified_at: float
    new_connection: bool
    status: str
    webhook_id: str


class _Payload(msgspec.Struct):
    orchestrationId: str  # noqa: N815 - the payload's field name
    status: str


_OK_KEEP = b"HTTP/1.1 204 No Content\r\n\r\n"
_OK_CLOSE = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
_REFUSED = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
_BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Receiver:
    """The webhook receiver; use :meth:`start`, then :attr:`url` as the webhook.

    Args:
        on_arrival: Called with the orchestration id and its :class:`Arrival`.
        mode: ``keep-alive`` or ``closing`` (may be changed between runs).
    """

    def __init__(self, on_arrival: Callable[[str, Arrival], None], mode: Mode = "keep-alive"):
        self.on_arrival = on_arrival
        self.mode: Mode = mode
        self.secret = ""
        self.refused = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._open: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._decoder = msgspec.json.Decoder(_Payload)
        self.port = 0

    @property
    def url(self) -> str:
        """The webhook URL to submit."""
        return f"http://127.0.0.1:{self.port}/webhooks/orra"

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, close every open connection and wait for their handlers."""
        if self._server is not None:
            self._server.close()
        for writer in self._open.values():
            writer.close()
        if self._open:
            await asyncio.wait(set(self._open), timeout=2.0)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        fresh = True
        task = asyncio.current_task()
        if task is not None:
            self._open[task] = writer
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                head_at = time.time()
                first, headers = parse_head(raw[:-4])
                body = await read_body(reader, headers)
                if not first.startswith("POST "):
                    writer.write(_BAD)
                    return
                if not verify_signature(self.secret, headers, body):
                    self.refused += 1
                    writer.write(_REFUSED)
                    continue
                try:
                    payload = self._decoder.decode(body)
                except msgspec.DecodeError:
                    writer.write(_BAD)
                    return
                verified_at = time.time()
                closing = self.mode == "closing"
                writer.write(_OK_CLOSE if closing else _OK_KEEP)
                self.on_arrival(
                    payload.orchestrationId,
                    Arrival(
                        head_at=head_at,
                        verified_at=verified_at,
                        new_connection=fresh,
                        status=payload.status,
                        webhook_id=headers.get("webhook-id", ""),
                    ),
                )
                fresh = False
                if closing:
                    return
        finally:
            if task is not None:
                self._open.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

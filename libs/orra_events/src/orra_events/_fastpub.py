"""A lean JetStream publisher for hot paths: pipelined publishes, cheap acks, batched waits.

Private to ``orra_events``: it writes into nats-py's connection internals (see below), so
nothing outside Orra's own packages should use it; they reach it as ``Bus.publisher`` and
read its answers through :mod:`orra_events.publishing`. ``tests/events/test_fastpub_canary.py``
fails loudly when a nats-py upgrade changes the internals it relies on.

nats-py's ``publish_async`` costs, per message, a random token (an ``os.urandom`` call),
a semaphore wait, a future with a done callback, a ``json.loads`` and a ``PubAck``
dataclass of its reply, and header validation with a regular expression per key; a
caller adds a ``wait_for`` or ``asyncio.timeout`` timer per wait; and it never resolves
the future of a publish whose reply is an API error (its reply handler raises instead:
nats.py issue 985), so it cannot be used for compare-and-set writes. :class:`FastPublisher`
does the same job with less:

* one reply subscription per connection (``_INBOX.<nuid>.<n>``, ``n`` a counter);
* a **batch** of publishes shares one future, resolved when the last ack arrives, with
  every ack (or the broker's error for that message) in order: a dispatcher step or an
  SDK result is one future, however many messages it writes;
* acks are decoded with msgspec into :class:`~orra_events.publishing.PubAck`; an API error
  becomes a :class:`~orra_events.publishing.PublishError` carrying the broker's
  ``err_code`` (:func:`~orra_events.publishing.is_cas_conflict`: a compare-and-set conflict);
* deadlines without timers: every batch and request gets one (``timeout_s``) and a
  sweeper fails the overdue ones with :class:`TimeoutError` (checked every
  :data:`TICK_S`), so callers await the futures directly;
* a lost connection fails at once (:class:`TimeoutError`, at the next tick after the
  client reconnected) what was written on it and is still unanswered: those replies can
  never come, so a caller that retries need not wait for the whole timeout;
* the protocol commands are built in one piece (the usual ``Nats-Msg-Id`` header without
  a dictionary) and appended to the connection's pending buffer; nats-py's flusher task
  writes everything pending in one socket write, so publishes made in the same
  event-loop turn leave together;
* message acknowledgements (``+ACK``, ``-NAK``, ``+WPI``, ``+TERM``) and core publishes
  without an ack (:meth:`FastPublisher.send`: pull requests) are written the same way,
  without a coroutine.

The nats-py internals it uses: commands are appended to the pending buffer
(``Client._pending``, a list of bytes, with ``Client._pending_data_size`` and
``Client._max_pending_size``) and the flusher task (``Client._flusher_task``) is woken
through ``Client._flush_queue``, as ``Client.publish`` does (or ``Client._flush_pending``
is called when there is no flusher); an acknowledged message is marked ``Msg._ackd`` so
that nats-py's own ``Msg.ack()`` refuses a second acknowledgement. The constructor checks
that these exist and refuses to run otherwise. While the client reconnects, commands are
buffered as nats-py buffers them (up to its pending size) and sent once it is connected
again (and answered then); what was written on a connection that was lost ends in a
:class:`TimeoutError` once the client has reconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import msgspec
from nats.errors import ConnectionClosedError, ConnectionDrainingError, OutboundBufferLimitError

from orra_events.errors import OrraEventsError
from orra_events.publishing import PubAck, PublishError, Result

if TYPE_CHECKING:
    from collections.abc import Mapping

    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

__all__ = ["INTERNALS", "TICK_S", "Batch", "FastPublisher"]

TICK_S: Final = 0.5
"""How often overdue batches and requests are failed."""

_CRLF: Final = b"\r\n"
_HDR_LINE: Final = "NATS/1.0\r\n"
_BAD_SUBJECT: Final = re.compile(r"[\s]|^$")
_BAD_HEADER_KEY: Final = re.compile(r"[^!-9;-~]")
_BAD_HEADER_VALUE: Final = re.compile(r"[\r\n]")
INTERNALS: Final = (
    "_pending",
    "_pending_data_size",
    "_flush_queue",
    "_flusher_task",
    "_max_pending_size",
    "_flush_pending",
)
"""The attributes of nats-py's ``Client`` this module uses (besides ``Msg._ackd``)."""
_NAK: Final = b"-NAK"
_WPI: Final = b"+WPI"
_TERM: Final = b"+TERM"


class _ApiError(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _Reply(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: _ApiError | None = None


_reply_decoder = msgspec.json.Decoder(_Reply)


class Batch:
    """Messages published together; :attr:`future` resolves when every ack is in.

    The future's result lists, in publish order, a :class:`PubAck` or a
    :class:`PublishError` per message (errors are not raised: a compare-and-set conflict
    is an answer); it fails with :class:`TimeoutError` when the acks do not all come
    within the publisher's timeout. Build one with :meth:`FastPublisher.batch`,
    :meth:`add` messages (each is written at once, to leave with the next socket write),
    then :meth:`send` it.
    """

    __slots__ = ("_publisher", "_remaining", "future", "results")

    def __init__(self, publisher: FastPublisher) -> None:
        self._publisher = publisher
        self._remaining = 0
        self.results: list[Result | None] = []
        self.future: asyncio.Future[list[Result]] = publisher.loop.create_future()

    def __len__(self) -> int:
        return len(self.results)

    def add(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        msg_id: str | None = None,
    ) -> None:
        """Queue a message of the batch.

        Args:
            subject: Where to publish.
            payload: The message.
            headers: Headers to send.
            msg_id: A ``Nats-Msg-Id`` header (deduplication), sent before ``headers``.

        Raises:
            ValueError: the subject or a header is not valid in the NATS protocol.
        """
        self._publisher._queue(self, subject, payload, headers, msg_id)

    def send(self) -> asyncio.Future[list[Result]]:
        """Have the queued messages written; return the future of their acks."""
        publisher = self._publisher
        publisher._flush()
        if not self.results:
            if not self.future.done():
                self.future.set_result([])
        else:
            publisher._track(self.future)
        return self.future

    def _resolve(self, index: int, result: Result) -> None:
        self.results[index] = result
        self._remaining -= 1
        if self._remaining == 0 and not self.future.done():
            self.future.set_result(self.results)  # type: ignore[arg-type]


class FastPublisher:
    """Pipelined JetStream publishes and API requests on one nats-py connection.

    Args:
        nc: A connected nats-py client.
        timeout_s: How long a batch or request may wait for its replies.

    Raises:
        OrraEventsError: the client lacks the nats-py internals this relies on.
    """

    def __init__(self, nc: NatsClient, *, timeout_s: float = 10.0) -> None:
        missing = [name for name in INTERNALS if not hasattr(nc, name)]
        if missing:
            raise OrraEventsError(
                f"this nats-py client lacks {', '.join(missing)}: FastPublisher needs nats-py 2.x"
            )
        self.nc = nc
        self.timeout_s = timeout_s
        self.loop = asyncio.get_running_loop()
        self._prefix = ""
        self._prefix_len = 0
        self._counter = 0
        self._waiting: dict[str, tuple[Batch, int] | asyncio.Future[Msg]] = {}
        # (deadline, connection epoch the future was written on or -1, future)
        self._deadlines: deque[tuple[float, int, asyncio.Future[Any]]] = deque()
        self._epoch = self._reconnects()
        self._sub: Subscription | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # What the flusher is woken with: it only resolves it if not done, so one done
        # future serves every wake-up.
        self._kick: asyncio.Future[None] = self.loop.create_future()
        self._kick.set_result(None)

    async def start(self) -> None:
        """Subscribe the reply inbox (idempotent)."""
        if self._sub is not None:
            return
        inbox = self.nc.new_inbox()
        self._prefix = f"{inbox}."
        self._prefix_len = len(self._prefix)
        self._sub = await self.nc.subscribe(f"{inbox}.*", cb=self._on_reply)
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="orra-fastpub-sweep")

    async def stop(self) -> None:
        """Stop receiving replies; pending futures are cancelled (idempotent)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        for entry in self._waiting.values():
            future = entry[0].future if isinstance(entry, tuple) else entry
            if not future.done():
                future.cancel()
        self._waiting.clear()
        self._deadlines.clear()

    @property
    def pending(self) -> int:
        """Replies still awaited."""
        return len(self._waiting)

    # --- publishing ----------------------------------------------------------------------

    def batch(self) -> Batch:
        """A new, empty batch."""
        return Batch(self)

    def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        msg_id: str | None = None,
    ) -> asyncio.Future[list[Result]]:
        """Publish one message now; the future holds its one-element result list."""
        batch = Batch(self)
        self._queue(batch, subject, payload, headers, msg_id)
        return batch.send()

    def request(self, subject: str, payload: bytes) -> asyncio.Future[Msg]:
        """Send a request (a JetStream API call) now; the future holds the reply message.

        Raises:
            ValueError: the subject is not valid.
        """
        self._check_started()
        token = self._token()
        future: asyncio.Future[Msg] = self.loop.create_future()
        self._waiting[token] = future
        try:
            self._write(_pub(subject, self._prefix + token, payload))
        except BaseException:
            self._waiting.pop(token, None)
            raise
        self._flush()
        self._track(future)
        return future

    def send(self, subject: str, payload: bytes, reply: str = "") -> None:
        """Publish a core NATS message now (no JetStream ack), e.g. a pull request.

        Raises:
            ValueError: the subject is not valid.
            OutboundBufferLimitError: reconnecting, and nats-py's buffer is full.
        """
        self._write(_pub(subject, reply, payload))
        self._flush()

    def _token(self) -> str:
        self._counter += 1
        return str(self._counter)

    def _check_started(self) -> None:
        if self._sub is None:
            raise OrraEventsError("FastPublisher.start() was not awaited")

    def _queue(
        self,
        batch: Batch,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None,
        msg_id: str | None,
    ) -> None:
        self._check_started()
        token = self._token()
        reply = self._prefix + token
        if headers or msg_id is not None:
            cmd = _hpub(subject, reply, _header_block(headers, msg_id), payload)
        else:
            cmd = _pub(subject, reply, payload)
        self._waiting[token] = (batch, len(batch.results))
        try:
            self._write(cmd)
        except BaseException:
            self._waiting.pop(token, None)
            raise
        batch.results.append(None)
        batch._remaining += 1

    def _track(self, future: asyncio.Future[Any]) -> None:
        # Written while connected: on that connection; otherwise buffered by nats-py and
        # sent (then answered) after the reconnection, so not failed by it.
        epoch = self._reconnects() if self.nc.is_connected else -1
        self._deadlines.append((self.loop.time() + self.timeout_s, epoch, future))

    def _reconnects(self) -> int:
        return int(self.nc.stats.get("reconnects", 0))

    # --- acknowledgements of consumed messages ------------------------------------------

    def ack(self, msg: Msg) -> None:
        """Acknowledge a JetStream message (no-op if it was already acknowledged)."""
        self._reply_to(msg, b"", final=True)

    def nak(self, msg: Msg, delay_s: float | None = None) -> None:
        """Negatively acknowledge a message: redeliver it (after ``delay_s``)."""
        payload = _NAK
        if delay_s:
            payload += b" " + json.dumps({"delay": int(delay_s * 1e9)}).encode()
        self._reply_to(msg, payload, final=True)

    def in_progress(self, msg: Msg) -> None:
        """Tell the broker that a message is still being worked on (resets its ack wait)."""
        self._reply_to(msg, _WPI, final=False)

    def term(self, msg: Msg) -> None:
        """Stop redeliveries of a message."""
        self._reply_to(msg, _TERM, final=True)

    def _reply_to(self, msg: Msg, payload: bytes, *, final: bool) -> None:
        reply = msg.reply
        if not reply:
            raise ValueError("not a JetStream message: it has no reply subject")
        if final:
            if msg._ackd:
                return
            msg._ackd = True
        self._write(_pub(reply, "", payload))
        self._flush()

    # --- connection internals ------------------------------------------------------------

    def _write(self, cmd: bytes) -> None:
        nc = self.nc
        if nc.is_closed:
            raise ConnectionClosedError
        if nc.is_draining_pubs:
            raise ConnectionDrainingError
        size = nc._pending_data_size + len(cmd)
        if not nc.is_connected and (nc._max_pending_size <= 0 or size > nc._max_pending_size):
            # Reconnecting without room to buffer: as Client.publish does.
            raise OutboundBufferLimitError
        nc._pending.append(cmd)
        nc._pending_data_size = size
        nc.stats["out_msgs"] += 1

    def _flush(self) -> None:
        """Wake nats-py's flusher (it writes everything pending in one go)."""
        nc = self.nc
        queue = nc._flush_queue
        if queue is None or not nc.is_connected or not queue.empty():
            return
        flusher = nc._flusher_task
        if flusher is None or flusher.done():
            # As nats-py: without a flusher, write inline.
            task = self.loop.create_task(nc._flush_pending())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        queue.put_nowait(self._kick)

    # --- replies -------------------------------------------------------------------------

    async def _on_reply(self, msg: Msg) -> None:
        entry = self._waiting.pop(msg.subject[self._prefix_len :], None)
        if entry is None:
            return
        if not isinstance(entry, tuple):
            if not entry.done():
                entry.set_result(msg)
            return
        batch, index = entry
        batch._resolve(index, _parse_ack(msg))

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.sweep()

    def sweep(self) -> int:
        """Fail the batches and requests past their deadline; return how many.

        Also fails, once the client has reconnected, what was written on the connection
        that was lost (its replies cannot come), and forgets the replies of futures nobody
        waits for any more (done: resolved, failed or cancelled).
        """
        now = self.loop.time()
        deadlines = self._deadlines
        expired = 0
        epoch = self._reconnects()
        if epoch != self._epoch:
            self._epoch = epoch
            for _, written_on, future in deadlines:
                if 0 <= written_on < epoch and not future.done():
                    future.set_exception(
                        TimeoutError("no reply from the broker: the connection was lost")
                    )
                    expired += 1
        while deadlines and (deadlines[0][2].done() or deadlines[0][0] <= now):
            _, _, future = deadlines.popleft()
            if not future.done():
                future.set_exception(TimeoutError("no reply from the broker in time"))
                expired += 1
        if expired:
            stale = [
                token
                for token, entry in self._waiting.items()
                if (entry[0].future if isinstance(entry, tuple) else entry).done()
            ]
            for token in stale:
                del self._waiting[token]
        return expired


def _parse_ack(msg: Msg) -> Result:
    headers = msg.headers
    if headers and not msg.data:
        status = headers.get("Status", "")
        code = int(status) if status.isdigit() else 503
        description = "no responders" if code == 503 else headers.get("Description", "")
        return PublishError(code, 0, description)
    try:
        reply = _reply_decoder.decode(msg.data)
    except msgspec.DecodeError as exc:
        return PublishError(500, 0, f"unreadable acknowledgement: {exc}")
    if reply.error is not None:
        err = reply.error
        return PublishError(err.code, err.err_code, err.description)
    return PubAck(reply.stream, reply.seq, reply.duplicate)


def _header_block(headers: Mapping[str, str] | None, msg_id: str | None) -> bytes:
    if msg_id is not None:
        if _BAD_HEADER_VALUE.search(msg_id):
            raise ValueError("invalid value of header 'Nats-Msg-Id'")
        if not headers:
            return f"NATS/1.0\r\nNats-Msg-Id: {msg_id}\r\n\r\n".encode()
        lines = [_HDR_LINE, f"Nats-Msg-Id: {msg_id}\r\n"]
    else:
        lines = [_HDR_LINE]
    for key, value in (headers or {}).items():
        if not key or _BAD_HEADER_KEY.search(key):
            raise ValueError(f"invalid header name {key!r}")
        if _BAD_HEADER_VALUE.search(value):
            raise ValueError(f"invalid value of header {key!r}")
        lines.append(f"{key}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode()


def _pub(subject: str, reply: str, payload: bytes) -> bytes:
    if _BAD_SUBJECT.search(subject):
        raise ValueError(f"invalid subject {subject!r}")
    head = (
        f"PUB {subject} {reply} {len(payload)}\r\n"
        if reply
        else f"PUB {subject} {len(payload)}\r\n"
    )
    return head.encode() + payload + _CRLF


def _hpub(subject: str, reply: str, header: bytes, payload: bytes) -> bytes:
    if _BAD_SUBJECT.search(subject):
        raise ValueError(f"invalid subject {subject!r}")
    size = len(header)
    head = f"HPUB {subject} {reply} {size} {size + len(payload)}\r\n".encode()
    return b"".join((head, header, payload, _CRLF))

"""An in-memory copy of a key-value bucket, kept current by watching it.

The notifier reads two small buckets on every delivery: ``webhooks`` (a project's URLs,
once per terminal event) and ``webhook_secrets`` (once per attempt). Both change rarely
(the gateway writes them when a user adds a webhook or rotates a secret). A
:class:`BucketFollower` follows the bucket's stream with an ordered push consumer (the
last value of every key, then every change as it is stored) so that a look-up is a dict
read instead of a round trip to the broker.

When the copy may be behind, it is not used: :meth:`BucketFollower.get` answers
``None`` (the caller reads the bucket itself) until the copy has loaded every key, and
again from the moment the client reconnects until a fresh copy, taken after the
reconnection, has loaded. A change made while the copy is current reaches it when the
broker pushes it, which it does as it stores it: an event appended after the change
(by the same or another process) is normally picked up later than the change. That is
not a strict order; docs/guarantees.md says what it means for a rotation and for a
webhook added or removed at the moment an orchestration ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Final

import structlog
from nats.js.api import DeliverPolicy

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from orra_events import Bus

__all__ = ["BucketFollower"]

_HEARTBEAT_S: Final = 5.0
_KV_OP: Final = "KV-Operation"
_MARKER_REASON: Final = "Nats-Marker-Reason"

log = structlog.get_logger("orra.notifier")


class BucketFollower:
    """Keeps the current value of every key of one bucket in memory.

    Args:
        bus: The connection.
        bucket: The bucket's full name (``Topology.bucket(name)``).
    """

    def __init__(self, bus: Bus, bucket: str) -> None:
        self._bus = bus
        self._stream = f"KV_{bucket}"
        self._prefix = f"$KV.{bucket}."
        self._values: dict[str, bytes] = {}
        self._loaded = asyncio.Event()
        self._epoch = -1
        self._sub: Subscription | None = None
        self._resync: asyncio.Task[None] | None = None
        self._stopped = False

    def _reconnects(self) -> int:
        return int(self._bus.nc.stats.get("reconnects", 0))

    @property
    def current(self) -> bool:
        """Whether the copy is loaded and no reconnection happened since it was taken."""
        return self._loaded.is_set() and self._epoch == self._reconnects()

    def lookup(self, key: str) -> tuple[bool, bytes | None]:
        """``(True, value)`` from the copy (``None`` for a missing key), or ``(False, None)``.

        ``(False, None)`` means that the copy is not known to be current: read the bucket.
        A reload is then started, if none is under way.
        """
        if self.current:
            return True, self._values.get(key)
        if not self._stopped:
            self._reloading()
        return False, None

    def _reloading(self) -> asyncio.Task[None]:
        """The reload under way, or a new one: one at a time."""
        if self._resync is None or self._resync.done():
            self._resync = asyncio.create_task(self._reload())
        return self._resync

    async def start(self, timeout_s: float = 5.0) -> None:
        """Load the copy; give up quietly after ``timeout_s`` (look-ups then read the bucket)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._reloading()), timeout_s)

    async def stop(self) -> None:
        """Stop following the bucket."""
        self._stopped = True
        if self._resync is not None:
            self._resync.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._resync
        await self._unsubscribe()

    async def _unsubscribe(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _reload(self) -> None:
        """Take a fresh copy: every key's last value, then every change."""
        await self._unsubscribe()
        self._loaded = asyncio.Event()
        loaded = self._loaded
        values: dict[str, bytes] = {}
        self._values = values
        try:
            epoch = self._reconnects()
            info = await self._bus.js.stream_info(self._stream)
            if info.state.messages == 0:
                loaded.set()

            async def on_message(msg: Msg) -> None:
                key = msg.subject[len(self._prefix) :]
                headers = msg.headers or {}
                if headers.get(_KV_OP) or headers.get(_MARKER_REASON):
                    values.pop(key, None)  # DEL, PURGE, or a server's expiry marker
                else:
                    values[key] = msg.data
                if msg.metadata.num_pending == 0:
                    loaded.set()

            self._sub = await self._bus.js.subscribe(
                f"{self._prefix}>",
                stream=self._stream,
                cb=on_message,
                ordered_consumer=True,
                idle_heartbeat=_HEARTBEAT_S,
                deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
                pending_msgs_limit=-1,
                pending_bytes_limit=-1,
            )
            await loaded.wait()
        except Exception as exc:  # noqa: BLE001 - look-ups read the bucket meanwhile
            log.warning(
                "cannot follow a bucket; reading it instead", bucket=self._stream, error=str(exc)
            )
            await self._unsubscribe()
            return
        self._epoch = epoch

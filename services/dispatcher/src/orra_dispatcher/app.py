"""App factory of the dispatcher: wires its handlers to the bus."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orra_dispatcher.handlers import Dispatcher
from orra_dispatcher.settings import DispatcherSettings
from orra_dispatcher.store import BUCKET, SnapshotStore

if TYPE_CHECKING:
    from orra_events import Bus
    from orra_events.runtime import Stop

__all__ = ["setup"]


async def setup(bus: Bus, settings: DispatcherSettings | None = None) -> Stop:
    """Start the dispatcher on ``bus``; return how to stop it.

    Opens (or creates) the ``dispatcher`` KV bucket (allowing its markers a TTL), loads
    every in-flight orchestration and re-arms its timers, then binds the shared durable
    consumer ``dispatcher``.

    Args:
        bus: A connected bus whose streams exist.
        settings: Defaults to :meth:`DispatcherSettings.from_env`.
    """
    settings = settings or DispatcherSettings.from_env()
    kv = await bus.kv(BUCKET)
    publisher = bus.publisher
    await publisher.start()
    store = SnapshotStore(kv, publisher, tombstone_ttl_s=settings.tombstone_ttl_s)
    dispatcher = Dispatcher(bus, store, settings, publisher=publisher)
    await dispatcher.start()
    return dispatcher.stop

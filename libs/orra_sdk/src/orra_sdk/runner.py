"""Run services as a process: connect, serve until SIGTERM / SIGINT, stop cleanly."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from typing import TYPE_CHECKING, Any

import structlog

from orra_events.runtime import configure_logging
from orra_sdk.client import OrraClient
from orra_sdk.errors import OrraSdkError

if TYPE_CHECKING:
    from orra_sdk.service import Service

__all__ = ["GC_THRESHOLDS", "run", "serve_until_signal", "tune_gc"]

GC_THRESHOLDS = (10_000, 20, 20)
"""Collector thresholds of a service process run by :func:`run` (CPython's: 700, 10, 10)."""


def tune_gc() -> None:
    """Keep the garbage collector off the hot path of a long-running service process.

    Everything alive once the services have started (modules, models, connections) moves to
    the permanent generation, so full collections no longer walk it (with the defaults they
    took tens of milliseconds, a few times a second at load), and young collections run
    every 10,000 allocations instead of 700. Messages are freed by reference counting; only
    reference cycles wait longer for the collector. :func:`run` does this; a process that
    embeds an :class:`OrraClient` decides for itself.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def serve_until_signal(
    *services: Service[Any, Any], client: OrraClient, tune: bool = False
) -> int:
    """Serve ``services`` on ``client`` until SIGTERM or SIGINT; return an exit code.

    Args:
        services: The services to serve.
        client: The client to serve them with (connected here).
        tune: Tune the garbage collector once started (see :func:`tune_gc`); :func:`run`,
            which owns its process, does.
    """
    log = structlog.get_logger("orra.sdk")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await client.connect()
    except OrraSdkError as exc:
        log.error("cannot start", error=str(exc), hint="is nats-server running? see ORRA_NATS_URL")
        return 1
    try:
        await client.start(*services)
        if tune:
            tune_gc()
        log.info(
            "ready",
            services=[s.name for s in services],
            nats_url=client.nats_url,
            namespace=client.topology.namespace,
            instance_id=client.instance_id,
        )
        await stopping.wait()
        log.info("stopping")
    finally:
        await client.close()
    log.info("stopped")
    return 0


def run(*services: Service[Any, Any], **client_options: Any) -> None:
    """Serve ``services`` in this process until SIGTERM / SIGINT, then exit.

    Connection settings come from ``ORRA_NATS_URL`` and ``ORRA_NAMESPACE`` unless given
    in ``client_options`` (the keyword arguments of :class:`OrraClient`).

    Example::

        if __name__ == "__main__":
            orra_sdk.run(payment, inventory)
    """
    if not services:
        raise OrraSdkError("run() needs at least one service")
    configure_logging(services[0].name if len(services) == 1 else "orra-sdk")
    client_options.setdefault("name", f"orra-sdk-{'-'.join(s.name for s in services)}"[:100])
    client = OrraClient(**client_options)
    sys.exit(asyncio.run(serve_until_signal(*services, client=client, tune=True)))

"""What every Orra service process shares.

Settings from the environment, structured logging, connecting to the broker, and a clean
stop on SIGTERM / SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from orra_events import telemetry
from orra_events.bus import DEFAULT_NATS_URL, BrokerUnavailable, Bus
from orra_events.errors import InvalidSetting
from orra_events.health import HealthServer
from orra_events.metrics import ConsumerLag
from orra_events.topology import Topology

__all__ = [
    "BrokerSettings",
    "Stop",
    "configure_logging",
    "env_bool",
    "env_float",
    "env_int",
    "run_service",
]

Stop = Callable[[], Awaitable[None]]
"""What a service's setup returns: a coroutine function that stops it."""


def env_float(name: str, default: float) -> float:
    """A float from the environment, or ``default``.

    Raises:
        InvalidSetting: the value is not a number (the message names the variable).
    """
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise InvalidSetting(f"{name}={raw!r} is not a number") from None


def env_int(name: str, default: int) -> int:
    """An int from the environment, or ``default``.

    Raises:
        InvalidSetting: the value is not a whole number (the message names the variable).
    """
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidSetting(f"{name}={raw!r} is not a whole number") from None


def env_bool(name: str, *, default: bool) -> bool:
    """A boolean from the environment (1/true/yes/on), or ``default``."""
    raw = os.environ.get(name)
    if not raw:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class BrokerSettings:
    """Broker settings every process reads.

    Attributes:
        nats_url: ``ORRA_NATS_URL``; credentials and TLS go in the URL.
        namespace: ``ORRA_NAMESPACE``; prefixes subjects and streams (empty in production).
        replicas: ``ORRA_STREAM_REPLICAS``; 3 on a JetStream cluster.
        manage_streams: ``ORRA_MANAGE_STREAMS``; create/update streams at start (off when a
            deployment job owns them, then services only bind).
    """

    nats_url: str = DEFAULT_NATS_URL
    namespace: str = ""
    replicas: int = 1
    manage_streams: bool = True

    @classmethod
    def from_env(cls) -> BrokerSettings:
        """Read the settings from ``ORRA_*`` variables."""
        return cls(
            nats_url=os.environ.get("ORRA_NATS_URL", DEFAULT_NATS_URL),
            namespace=os.environ.get("ORRA_NAMESPACE", ""),
            replicas=env_int("ORRA_STREAM_REPLICAS", 1),
            manage_streams=env_bool("ORRA_MANAGE_STREAMS", default=True),
        )

    @property
    def topology(self) -> Topology:
        """The topology these settings describe."""
        return Topology(namespace=self.namespace, replicas=self.replicas)

    async def connect(self, name: str) -> Bus:
        """Connect, then create or bind the streams."""
        bus = await Bus.connect(self.nats_url, self.topology, name=name)
        if self.manage_streams:
            await bus.ensure_streams()
        else:
            await bus.bind_streams()
        return bus


def configure_logging(service: str) -> None:
    """Log as JSON lines (``ORRA_LOG_FORMAT=console`` for humans), bound to ``service``."""
    level = getattr(logging, os.environ.get("ORRA_LOG_LEVEL", "INFO").upper(), logging.INFO)
    renderer: structlog.types.Processor
    if os.environ.get("ORRA_LOG_FORMAT", "json") == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


async def _serve(service: str, setup: Callable[[Bus], Awaitable[Stop]]) -> int:
    log = structlog.get_logger(f"orra.{service}")
    settings = BrokerSettings.from_env()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        bus = await settings.connect(f"orra-{service}")
    except BrokerUnavailable as exc:
        log.error("cannot start", error=str(exc), hint="is nats-server running? see ORRA_NATS_URL")
        return 1
    stop = await setup(bus)
    health: HealthServer | None = None
    lag: ConsumerLag | None = None
    health_port = env_int("ORRA_HEALTH_PORT", 0)
    if health_port:
        health = HealthServer(health_port, ready=lambda: bus.connected)
        await health.start()
        lag = ConsumerLag(bus)
        lag.start()
    log.info(
        "ready", nats_url=settings.nats_url, namespace=settings.namespace, health_port=health_port
    )
    await stopping.wait()
    log.info("stopping")
    await stop()
    if health is not None:
        await health.stop()
    if lag is not None:
        await lag.stop()
    await bus.close()
    log.info("stopped")
    return 0


def run_service(service: str, setup: Callable[[Bus], Awaitable[Stop]]) -> None:
    """Run a service process until SIGTERM / SIGINT, then stop it cleanly and exit.

    Args:
        service: Short name used in logs and the connection name.
        setup: Starts the service's consumers on the bus and returns how to stop them.
    """
    configure_logging(service)
    shutdown = telemetry.install(service)  # tracing, when OTEL_* asks for it
    try:
        code = asyncio.run(_serve(service, setup))
    finally:
        if shutdown is not None:
            shutdown()  # exports the spans still buffered
    sys.exit(code)

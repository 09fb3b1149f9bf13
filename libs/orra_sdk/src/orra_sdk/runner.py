"""Run services as a process: connect, serve until SIGTERM / SIGINT, stop cleanly.

With ``ORRA_HEALTH_PORT`` set (the container images, compose file and Kubernetes manifests
set 8080; unset or 0 serves nothing, as for every Orra service), the process also serves
the probe and metrics endpoints of :class:`orra_events.health.HealthServer` on that port:

* ``/healthz``: 200 while the process runs (liveness);
* ``/readyz``: 200 once connected to the broker with every service registered and taking
  tasks, 503 before that, while the connection is down and from SIGTERM on (the process
  drains; readiness: :attr:`OrraClient.ready`);
* ``/metrics``: Prometheus text, with ``orra_sdk_tasks_total{service,outcome}``,
  ``orra_sdk_handler_duration_seconds{service,outcome}``, ``orra_sdk_tasks_in_flight{service}``
  and ``orra_task_duration_seconds{service,outcome}``.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from typing import TYPE_CHECKING, Any

import structlog

from orra_events import telemetry
from orra_events.health import HealthServer
from orra_events.runtime import configure_logging, env_int
from orra_sdk.client import OrraClient
from orra_sdk.errors import OrraSdkError, ServiceDefinitionError

if TYPE_CHECKING:
    from orra_sdk.service import Service

__all__ = [
    "EXIT_DEFINITION",
    "GC_THRESHOLDS",
    "HEALTH_PORT_ENV",
    "health_port_from_env",
    "health_server",
    "run",
    "serve_until_signal",
    "tune_gc",
]

HEALTH_PORT_ENV = "ORRA_HEALTH_PORT"
"""Port of ``/healthz``, ``/readyz`` and ``/metrics``; unset or 0 serves nothing."""

EXIT_DEFINITION = 2
"""Exit status of a process whose service cannot be served as declared: its registration
was refused (another definition holds its name and version) or its definition is wrong."""

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


def health_port_from_env() -> int:
    """``ORRA_HEALTH_PORT``, or 0 (no health server) when unset or empty."""
    return env_int(HEALTH_PORT_ENV, 0)


def health_server(
    client: OrraClient,
    port: int,
    host: str = "0.0.0.0",  # noqa: S104 - probes come from outside the container
) -> HealthServer:
    """The probe and metrics server of a process that serves services with ``client``.

    ``/readyz`` answers :attr:`OrraClient.ready`; ``/metrics`` renders the process's
    metrics, the SDK's included. Start it with ``await server.start()`` (before connecting,
    so that probes get answers while the process starts) and stop it last.

    Args:
        client: The client whose readiness ``/readyz`` reports.
        port: Port to listen on.
        host: Address to listen on.
    """
    return HealthServer(port, ready=lambda: client.ready, host=host)


async def serve_until_signal(
    *services: Service[Any, Any],
    client: OrraClient,
    tune: bool = False,
    health_port: int | None = None,
) -> int:
    """Serve ``services`` on ``client`` until SIGTERM or SIGINT; return an exit code.

    The code is 0 after a signal, 1 when the broker (or the health port) cannot be used,
    :data:`EXIT_DEFINITION` (2) when a registration is refused (its name and version hold
    another definition) or a service is declared wrongly; then the reason is logged and
    printed to stderr, and no task was taken.

    Args:
        services: The services to serve.
        client: The client to serve them with (connected here).
        tune: Tune the garbage collector once started (see :func:`tune_gc`); :func:`run`,
            which owns its process, does.
        health_port: Port of ``/healthz``, ``/readyz`` and ``/metrics`` (see
            :func:`health_server`); ``ORRA_HEALTH_PORT`` when ``None``; 0 serves none.
    """
    log = structlog.get_logger("orra.sdk")
    port = health_port_from_env() if health_port is None else health_port
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stopping.set)
    health: HealthServer | None = None
    try:
        if port:
            # First: liveness answers while the broker is slow to come; readiness says 503.
            health = health_server(client, port)
            try:
                await health.start()
            except OSError as exc:
                health = None
                log.error(
                    "cannot start",
                    error=str(exc),
                    hint=f"is port {port} free? see {HEALTH_PORT_ENV}",
                )
                return 1
        try:
            await client.connect()
        except OrraSdkError as exc:
            log.error(
                "cannot start", error=str(exc), hint="is nats-server running? see ORRA_NATS_URL"
            )
            return 1
        try:
            try:
                await client.start(*services)
            except ServiceDefinitionError as exc:
                # A refused registration (RegistrationConflict) or a service declared
                # wrongly: nothing was taken from the work queue; say why and stop.
                log.error("cannot start", error=str(exc))
                print(f"orra: cannot start: {exc}", file=sys.stderr, flush=True)  # noqa: T201
                return EXIT_DEFINITION
            if tune:
                tune_gc()
            log.info(
                "ready",
                services=[s.name for s in services],
                nats_url=client.nats_url,
                namespace=client.topology.namespace,
                instance_id=client.instance_id,
                health_port=port,
            )
            await stopping.wait()
            log.info("stopping")
        finally:
            # Readiness turns 503 as the client starts stopping; liveness lasts the drain.
            await client.close()
        log.info("stopped")
        return 0
    finally:
        if health is not None:
            await health.stop()
        for sig in signals:
            loop.remove_signal_handler(sig)


def run(*services: Service[Any, Any], **client_options: Any) -> None:
    """Serve ``services`` in this process until SIGTERM / SIGINT, then exit.

    Connection settings come from ``ORRA_NATS_URL`` and ``ORRA_NAMESPACE`` unless given
    in ``client_options`` (the keyword arguments of :class:`OrraClient`). With
    ``ORRA_HEALTH_PORT`` set, ``/healthz``, ``/readyz`` and ``/metrics`` are served on it
    (see the module's documentation).

    Example::

        if __name__ == "__main__":
            orra_sdk.run(payment, inventory)
    """
    if not services:
        raise OrraSdkError("run() needs at least one service")
    configure_logging(services[0].name if len(services) == 1 else "orra-sdk")
    client_options.setdefault("name", f"orra-sdk-{'-'.join(s.name for s in services)}"[:100])
    client = OrraClient(**client_options)
    # Tracing when OTEL_* asks for it and opentelemetry-sdk is installed (docs/tracing.md).
    shutdown = telemetry.install(services[0].name if len(services) == 1 else "sdk")
    try:
        code = asyncio.run(serve_until_signal(*services, client=client, tune=True))
    finally:
        if shutdown is not None:
            shutdown()
    sys.exit(code)

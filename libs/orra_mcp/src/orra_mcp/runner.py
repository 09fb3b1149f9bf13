"""Run the MCP bridge as a process: ``orra mcp bridge --config FILE``.

Also ``python -m orra_mcp --config FILE`` (what ``orra up --mcp-config`` runs) and
``orra-mcp`` (the image's entry point, ``ORRA_MCP_CONFIG``).

The process connects to the broker (``ORRA_NATS_URL``, ``ORRA_NAMESPACE``), starts the
:class:`~orra_mcp.bridge.Bridge` and serves until SIGTERM or SIGINT, then withdraws its
services (running tasks finish within the SDK's drain timeout) and closes its MCP
connections. With ``ORRA_HEALTH_PORT`` set it serves ``/healthz``, ``/readyz`` (200 while
connected to the broker; an MCP server being away is not a reason to restart the bridge)
and ``/metrics`` (the SDK's task metrics) on that port, like every Orra process.

Settings: ``ORRA_MCP_CONFIG`` (the configuration file when ``--config`` is not given),
``ORRA_MCP_PROBE_S`` (15: seconds between two re-listings of a server's tools, which also
notice a server that went away quietly), and the SDK's (``ORRA_HEARTBEAT_INTERVAL_S``...).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

import structlog

from orra_events.health import HealthServer
from orra_events.runtime import configure_logging, env_float, env_int
from orra_mcp.bridge import Bridge
from orra_mcp.config import BridgeConfig, load_config
from orra_mcp.errors import ConfigError
from orra_sdk import OrraClient, OrraSdkError

__all__ = ["CONFIG_ENV", "main", "run_bridge", "serve_bridge"]

CONFIG_ENV = "ORRA_MCP_CONFIG"
"""Environment variable naming the bridge's configuration file."""

log = structlog.get_logger("orra.mcp.bridge")


async def serve_bridge(config: BridgeConfig, *, health_port: int | None = None) -> int:
    """Serve the bridge until SIGTERM or SIGINT; return the exit code (0, or 1 without a broker).

    Args:
        config: The MCP servers to bridge.
        health_port: Port of ``/healthz``, ``/readyz`` and ``/metrics``;
            ``ORRA_HEALTH_PORT`` when ``None``; 0 serves none.
    """
    port = env_int("ORRA_HEALTH_PORT", 0) if health_port is None else health_port
    client = OrraClient(project=config.project, name="orra-mcp-bridge")
    bridge = Bridge(config, client, probe_s=env_float("ORRA_MCP_PROBE_S", 15.0))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    async with contextlib.AsyncExitStack() as stack:
        if port:
            health = HealthServer(port, ready=lambda: bridge.ready)
            try:
                await health.start()
            except OSError as exc:
                log.error("cannot start", error=str(exc), hint=f"is port {port} free?")
                return 1
            stack.push_async_callback(health.stop)
        try:
            await client.connect()
        except OrraSdkError as exc:
            log.error(
                "cannot start", error=str(exc), hint="is nats-server running? see ORRA_NATS_URL"
            )
            return 1
        stack.push_async_callback(client.close)
        await bridge.start()
        log.info(
            "ready",
            servers=[s.name for s in config.servers],
            project=config.project,
            nats_url=client.nats_url,
            namespace=client.topology.namespace,
            health_port=port,
        )
        await stopping.wait()
        log.info("stopping")
        await bridge.stop()
    log.info("stopped")
    return 0


def run_bridge(config_path: str | None) -> int:
    """Read the configuration and serve the bridge (the body of both entry points).

    Returns:
        The exit code: 0 after a signal, 1 without a broker, 2 for a configuration error.
    """
    configure_logging("mcp-bridge")
    path = config_path or os.environ.get(CONFIG_ENV)
    if not path:
        print(  # noqa: T201 - a usage error for a human
            f"orra: the MCP bridge needs its configuration: --config FILE or {CONFIG_ENV}",
            file=sys.stderr,
        )
        return 2
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"orra: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    return asyncio.run(serve_bridge(config))


def main() -> None:
    """``orra-mcp [--config FILE]``: the image's entry point."""
    args = sys.argv[1:]
    path: str | None = None
    if args[:1] == ["--config"] and len(args) == 2:
        path = args[1]
    elif args:
        print("usage: orra-mcp [--config FILE]", file=sys.stderr)  # noqa: T201
        sys.exit(2)
    sys.exit(run_bridge(path))

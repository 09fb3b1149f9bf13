"""Create or update every stream of an installation, then exit.

In production one job owns the streams (``python -m orra_events.provision`` as a Kubernetes
Job or a compose init service); the services start with ``ORRA_MANAGE_STREAMS=false`` and
only bind to them, so no service can change a stream that another one relies on.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace

import structlog

from orra_events.bus import BrokerUnavailable
from orra_events.runtime import BrokerSettings, configure_logging

__all__ = ["main", "provision"]


async def provision(settings: BrokerSettings) -> list[str]:
    """Create or update the streams of ``settings``' topology; returns their names."""
    bus = await replace(settings, manage_streams=True).connect("orra-provision")
    try:
        return [str(config.name) for config in bus.topology.stream_configs()]
    finally:
        await bus.close()


def main() -> None:
    """Entry point: provision the streams named by the ``ORRA_*`` environment."""
    configure_logging("provision")
    log = structlog.get_logger("orra.provision")
    settings = BrokerSettings.from_env()
    try:
        names = asyncio.run(provision(settings))
    except BrokerUnavailable as exc:
        log.error("cannot provision", error=str(exc))
        sys.exit(1)
    log.info("streams ready", streams=names, replicas=settings.replicas)


if __name__ == "__main__":
    main()

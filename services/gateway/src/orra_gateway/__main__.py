"""Entry point: ``python -m orra_gateway`` or ``orra-gateway``.

Serves the gateway with uvicorn on ``ORRA_GATEWAY_HOST``:``ORRA_GATEWAY_PORT`` until SIGTERM
or SIGINT, then shuts down gracefully (open requests finish, the bus is closed).
"""

from __future__ import annotations

import sys

import structlog
import uvicorn

from orra_events import telemetry
from orra_events.errors import InvalidSetting
from orra_events.runtime import configure_logging
from orra_gateway.app import create_app
from orra_gateway.errors import SettingsError
from orra_gateway.settings import GatewaySettings


def main() -> None:
    """Run the gateway until SIGTERM; exit 1 if it could not start."""
    configure_logging("gateway")
    try:
        settings = GatewaySettings.from_env()
    except (SettingsError, InvalidSetting) as exc:
        structlog.get_logger("orra.gateway").error("cannot start", reason=str(exc))
        sys.exit(2)
    shutdown = telemetry.install("gateway")  # tracing, when OTEL_* asks for it
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            lifespan="on",
            log_config=None,
            access_log=False,
            proxy_headers=True,
            timeout_graceful_shutdown=10,
        )
    )
    try:
        server.run()
    finally:
        if shutdown is not None:
            shutdown()
    if not server.started:
        structlog.get_logger("orra.gateway").error(
            "cannot start", hint="is nats-server running? see ORRA_NATS_URL"
        )
        sys.exit(1)


if __name__ == "__main__":
    main()

"""App factory of the gateway: a Litestar app whose lifespan connects the bus.

``create_app(settings)`` builds the ASGI app; ``python -m orra_gateway`` serves it with
uvicorn. At start the lifespan serves ``/metrics`` on its own port (``ORRA_HEALTH_PORT``,
as every Orra process does: an internal scrape port, never the public API's), connects to
the broker, opens the key-value buckets, registers the bootstrap key and starts the read
model (its saved list index, then the log after it); at shutdown it stops following the
log, saves the index and closes the connection.

``/mcp`` is Orra's MCP server over streamable HTTP (:mod:`orra_mcp.asgi`), mounted as an
ASGI app: the API key as bearer, its tools calling this gateway's own HTTP API. It is
loaded on its first request (:mod:`orra_gateway.mcp_mount`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import structlog
from litestar import Litestar
from litestar.handlers import asgi

from orra_events import tracing
from orra_events.health import HealthServer
from orra_gateway.auth import PUBLIC, ApiKeyAuthentication
from orra_gateway.bodies import json_request_class
from orra_gateway.errors import Unauthorized
from orra_gateway.logctx import log_context_middleware
from orra_gateway.mcp_mount import LazyMcp
from orra_gateway.metrics import http_metrics_middleware, register_gateway_gauges
from orra_gateway.openapi import openapi_config
from orra_gateway.problems import EXCEPTION_HANDLERS
from orra_gateway.routes import DEPENDENCIES, ROUTES
from orra_gateway.service import Gateway
from orra_gateway.settings import GatewaySettings
from orra_gateway.ui import UI_ROUTES

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar.handlers import ASGIRouteHandler
    from litestar.types import Receive, Scope, Send

    from orra_events import Bus

__all__ = ["create_app"]

log = structlog.get_logger("orra.gateway")


def create_app(settings: GatewaySettings | None = None, *, bus: Bus | None = None) -> Litestar:
    """Build the gateway's ASGI app.

    Args:
        settings: Configuration; read from the environment when ``None``.
        bus: An already connected bus to use (and not close); the app connects its own
            from ``settings.broker`` when ``None``.
    """
    config = settings or GatewaySettings.from_env()
    state: dict[str, Gateway] = {}
    mcp, mcp_endpoint = _mcp_mount(config, state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        def ready() -> bool:
            gateway: Gateway | None = app.state.get("gateway")
            return gateway is not None and gateway.ready

        async with contextlib.AsyncExitStack() as stack:
            if config.health_port:
                health = HealthServer(config.health_port, ready=ready)
                await health.start()
                stack.push_async_callback(health.stop)
            stack.push_async_callback(mcp.aclose)
            async with _serving(app):
                yield

    @contextlib.asynccontextmanager
    async def _serving(app: Litestar) -> AsyncIterator[None]:
        own_bus = bus is None
        if bus is None:
            connected = await config.broker.connect("orra-gateway")
        else:
            connected = bus
        try:
            gateway = await Gateway.start(connected, config)
        except BaseException:
            if own_bus:
                await connected.close()
            raise
        app.state.gateway = gateway
        state["gateway"] = gateway
        register_gateway_gauges(gateway)
        log.info(
            "ready",
            host=config.host,
            port=config.port,
            metrics_port=config.health_port or None,
            nats_url=config.broker.nats_url,
            namespace=config.broker.namespace,
            rebuild_s=round(gateway.rebuild_s, 3),
            orchestrations=gateway.read_model.index.count(),
            index_caught_up=gateway.read_model.index.caught_up.is_set(),
        )
        try:
            yield
        finally:
            log.info("stopping")
            await gateway.stop()
            if own_bus:
                await connected.close()
            log.info("stopped")

    return Litestar(
        route_handlers=[*ROUTES, *UI_ROUTES, mcp_endpoint],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        middleware=[
            *_tracing_middleware(),
            http_metrics_middleware,
            log_context_middleware,
            ApiKeyAuthentication(),
        ],
        openapi_config=openapi_config(),
        request_max_body_size=config.max_body_bytes,
        request_class=json_request_class(config.max_data_depth),
        debug=False,
    )


def _mcp_mount(
    config: GatewaySettings, state: dict[str, Gateway]
) -> tuple[LazyMcp, ASGIRouteHandler]:
    """The MCP server and its ``/mcp`` mount; it reads the gateway from ``state["gateway"]``."""

    async def authenticate(token: str) -> None:
        from orra_mcp.errors import ApiError

        gateway = state.get("gateway")
        if gateway is None:
            raise ApiError(503, "the gateway is starting")
        try:
            await gateway.keys.authenticate(token)
        except Unauthorized as exc:
            raise ApiError(401, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - the key store is unreachable
            raise ApiError(503, f"the API key could not be checked: {exc}") from None

    mcp = LazyMcp(authenticate, _self_url(config))

    # The MCP server checks the bearer key itself (``authenticate``) and answers a refusal
    # in MCP's terms, so the gateway's authentication middleware leaves it alone.
    @asgi("/mcp", is_mount=True, copy_scope=True, opt={PUBLIC: True})
    async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await mcp(scope, receive, send)

    return mcp, mcp_endpoint


def _tracing_middleware() -> list[Any]:
    """The official ASGI instrumentation, when tracing is on and it is installed.

    Its server span reads the caller's ``traceparent`` and is the parent of the submit span
    (without it the submit handler reads the header itself: ``orra_events.tracing.attached``).
    """
    if not tracing.on():
        return []
    try:
        from litestar.plugins.opentelemetry import OpenTelemetryConfig
    except ImportError:  # litestar's MissingDependencyException is one
        return []
    probes = ["^/healthz$", "^/readyz$", "^/metrics$"]
    return [OpenTelemetryConfig(exclude=probes, exclude_spans=["receive", "send"]).middleware]


def _self_url(config: GatewaySettings) -> str:
    """Where this gateway's HTTP API answers from inside its own process."""
    host = config.host
    if host in ("", "0.0.0.0"):  # noqa: S104 - a wildcard address, not a bind
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.port}"

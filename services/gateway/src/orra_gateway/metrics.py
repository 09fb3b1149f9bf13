"""The gateway's Prometheus metrics, on the shared :data:`orra_events.health.METRICS`.

An ASGI middleware counts requests by route template and status class and times them; the
read model's sizes are gauges read at scrape time. ``GET /metrics`` renders them. It also
binds ``orchestration_id`` in structlog's context for requests about one orchestration.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import structlog
from orra_events.health import METRICS

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from orra_gateway.service import Gateway

__all__ = ["metrics_middleware", "register_gauges"]


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Count and time HTTP requests; bind ``orchestration_id`` while one is handled."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        start = time.perf_counter()
        try:
            await app(scope, receive, send_wrapper)
        finally:
            params: dict[str, Any] = scope.get("path_params") or {}
            route = str(scope.get("path_template") or "unmatched")
            labels = {"method": scope.get("method", "GET"), "route": route}
            METRICS.inc(
                "orra_gateway_http_requests_total",
                help_="HTTP requests by method, route template and status class",
                status=f"{status[0] // 100}xx",
                **labels,
            )
            METRICS.observe(
                "orra_gateway_http_request_duration_seconds",
                time.perf_counter() - start,
                help_="HTTP request duration by method and route template",
                **labels,
            )
            if "orchestration_id" in params:
                structlog.contextvars.unbind_contextvars("orchestration_id")

    return middleware


def bind_orchestration(orchestration_id: str) -> None:
    """Bind ``orchestration_id`` in the logging context of the current request."""
    structlog.contextvars.bind_contextvars(orchestration_id=orchestration_id)


def register_gauges(gateway: Gateway) -> None:
    """Gauges read from the gateway's read model at scrape time."""
    model = gateway.read_model
    METRICS.gauge(
        "orra_gateway_index_orchestrations",
        lambda: float(model.index.count()),
        help_="Orchestrations in the gateway's list index",
    )
    METRICS.gauge(
        "orra_gateway_view_cache_size",
        lambda: float(len(model.views)),
        help_="Orchestration views cached by the gateway",
    )
    METRICS.gauge(
        "orra_gateway_index_lag_events",
        lambda: float(max(0, model.views.applied_seq - model.index.applied_seq)),
        help_="Events the list index is behind the view follower",
    )

"""The gateway's Prometheus metrics: HTTP requests by route and status, and its read side.

``/metrics`` on the metrics port (``ORRA_HEALTH_PORT``; never the public API port) renders
:data:`orra_events.health.METRICS`, the registry every Orra process shares (so the
event-derived metrics of :mod:`orra_events.metrics` appear here too), plus:

* ``orra_gateway_http_requests_total{route,method,status}``: answered requests, by route
  template (``/orchestrations/{orchestration_id:str}``, never the raw path, so ids do not
  multiply series) and status class (``2xx``, ``4xx``, ...);
* ``orra_gateway_http_request_duration_seconds{route,method}``: time to the response's end
  (for the SSE stream, the time it was open);
* ``orra_gateway_index_orchestrations``, ``orra_gateway_index_caught_up``,
  ``orra_gateway_index_seq``: the list index (the stream sequence it has folded);
* ``orra_gateway_read_model_seq``: the stream sequence the live views have seen;
* ``orra_gateway_view_cache_size``: full views held in memory;
* ``orra_gateway_retention_expired``, ``orra_gateway_retention_held``: orchestrations whose
  events this process removed, and 1 while the last retention pass stopped short of the
  limits (its log line ``retention held back`` says why).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from litestar.enums import ScopeType

from orra_events.health import METRICS

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from orra_gateway.service import Gateway

__all__ = ["http_metrics_middleware", "register_gateway_gauges"]


def _route(scope: Scope, labels: dict[str, str]) -> str:
    # A controller's handler knows only its path inside the controller: the route's full
    # template comes from the app's routes, by the template Litestar put in the scope.
    template = scope.get("path_template")
    if not template or scope.get("route_handler") is None:
        return "unmatched"
    label = labels.get(template)
    if label is None:
        routes = {route.path_format: route.path for route in scope["litestar_app"].routes}
        label = labels[template] = routes.get(template, template)
    return label


def http_metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Litestar middleware counting and timing each HTTP request by route template."""
    labels: dict[str, str] = {}

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            route, method = _route(scope, labels), str(scope.get("method", ""))
            METRICS.inc(
                "orra_gateway_http_requests_total",
                help_="HTTP requests answered, by route template, method and status class",
                route=route,
                method=method,
                status=f"{status // 100}xx",
            )
            METRICS.observe(
                "orra_gateway_http_request_duration_seconds",
                time.perf_counter() - started,
                help_="HTTP request duration by route template and method",
                route=route,
                method=method,
            )

    return middleware


def register_gateway_gauges(gateway: Gateway) -> None:
    """Gauges read from ``gateway`` at scrape time (a later gateway replaces them)."""
    index = gateway.read_model.index
    METRICS.gauge(
        "orra_gateway_index_orchestrations",
        lambda: float(index.count()),
        help_="Orchestrations in the gateway's list index",
    )
    METRICS.gauge(
        "orra_gateway_index_caught_up",
        lambda: 1.0 if index.caught_up.is_set() else 0.0,
        help_="1 once the list index has folded the log it found at start",
    )
    METRICS.gauge(
        "orra_gateway_index_seq",
        lambda: float(index.applied_seq),
        help_="Stream sequence of the event log the list index has folded",
    )
    read_model = gateway.read_model
    METRICS.gauge(
        "orra_gateway_read_model_seq",
        lambda: float(read_model.applied_seq),
        help_="Stream sequence of the last event the gateway's live views have seen",
    )
    views = gateway.read_model.views
    METRICS.gauge(
        "orra_gateway_view_cache_size",
        lambda: float(len(views)),
        help_="Full orchestration views held in memory",
    )
    model = gateway.read_model

    def expired() -> float:
        return float(model.retention.expired_total) if model.retention is not None else 0.0

    def held() -> float:
        last = model.retention.last if model.retention is not None else None
        return 1.0 if last is not None and last.held_by is not None else 0.0

    METRICS.gauge(
        "orra_gateway_retention_expired",
        expired,
        help_="Orchestrations whose events this gateway removed (retention) since it started",
    )
    METRICS.gauge(
        "orra_gateway_retention_held",
        held,
        help_="1 while the last retention pass stopped short of the limits",
    )

"""Install OpenTelemetry tracing in a process from the standard ``OTEL_*`` variables.

Off unless configured: a process traces only when ``OTEL_TRACES_EXPORTER`` names an
exporter (``otlp``, ``console``; ``none`` is off) or an OTLP endpoint is set
(``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), and
``OTEL_SDK_DISABLED`` is not true. It then needs ``opentelemetry-sdk`` and, for ``otlp``,
``opentelemetry-exporter-otlp-proto-http`` (the ``otel`` extra of every service:
``pip install 'orra-dispatcher[otel]'``); without them it logs why and runs untraced.

The rest is the SDK's own reading of the environment: ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` (the service name defaults to ``orra-<service>``),
``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``, ``OTEL_EXPORTER_OTLP_*`` (endpoint,
headers, timeout, ``OTEL_EXPORTER_OTLP_PROTOCOL``: ``http/protobuf``, or ``grpc`` when
``opentelemetry-exporter-otlp-proto-grpc`` is installed), ``OTEL_BSP_*`` (batching). The
tracer provider uses the id generator that honours :func:`orra_events.tracing.derived_span_id`.
This module imports the SDK only when tracing is configured.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import structlog

from orra_events import tracing

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["configured", "install"]

log = structlog.get_logger("orra.telemetry")


def configured() -> bool:
    """Whether the environment asks for tracing (see the module)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def install(service: str) -> Callable[[], None] | None:
    """Install a tracer provider when the environment asks for one; return its shutdown.

    Args:
        service: Orra's name of the process (``dispatcher``...); the default service name
            is ``orra-<service>``.

    Returns:
        A function that flushes and stops the exporters (call it before the process exits),
        or ``None`` when tracing stays off.
    """
    if not configured() or tracing.on():  # off, or the process installed its own provider
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    except ImportError:
        log.warning(
            "tracing is configured but opentelemetry-sdk is not installed; running untraced",
            hint=f"install the otel extra: pip install 'orra-{service}[otel]'",
        )
        return None

    class _Ids(RandomIdGenerator):
        """Random ids, but the derived span id of a span that asks for one."""

        def generate_span_id(self) -> int:
            fixed = tracing.fixed_span_id()
            return fixed if fixed is not None else super().generate_span_id()

    attributes: dict[str, Any] = {}
    if "service.name" not in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "") and not (
        os.environ.get("OTEL_SERVICE_NAME")
    ):
        attributes["service.name"] = f"orra-{service}"
    provider = TracerProvider(resource=Resource.create(attributes), id_generator=_Ids())
    names = [n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(",")]
    for name in names:
        exporter = _exporter(name, service)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing on", exporters=names)
    return provider.shutdown


def _exporter(name: str, service: str) -> Any:
    if name in ("", "none"):
        return None
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(service_name=f"orra-{service}")
    if name != "otlp":
        log.warning("unknown trace exporter; ignored", exporter=name)
        return None
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    try:
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found, unused-ignore]
                OTLPSpanExporter as GrpcExporter,
            )

            return GrpcExporter()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    except ImportError:
        log.warning(
            "the OTLP exporter is not installed; spans are not exported",
            protocol=protocol,
            hint=f"install the otel extra: pip install 'orra-{service}[otel]'",
        )
        return None

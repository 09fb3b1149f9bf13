"""A tiny HTTP server for probes and metrics: ``/healthz``, ``/readyz``, ``/metrics``.

Every service process serves it when ``ORRA_HEALTH_PORT`` is set (the Kubernetes manifests
set it). It needs no web framework: the three routes are fixed and the answers small.
``/metrics`` is the Prometheus text format of :data:`METRICS`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["METRICS", "HealthServer", "Metrics"]


class Metrics:
    """Counters, gauges and histograms, rendered in the Prometheus text format."""

    BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

    def __init__(self) -> None:
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self.gauges: dict[tuple[str, tuple[tuple[str, str], ...]], Callable[[], float]] = {}
        self.histograms: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}
        self.help: dict[str, tuple[str, str]] = {}

    def inc(self, name: str, value: float = 1.0, help_: str = "", **labels: str) -> None:
        """Add ``value`` to a counter."""
        self.help.setdefault(name, ("counter", help_))
        self.counters[(name, tuple(sorted(labels.items())))] += value

    def gauge(self, name: str, read: Callable[[], float], help_: str = "", **labels: str) -> None:
        """Register a gauge read at scrape time."""
        self.help.setdefault(name, ("gauge", help_))
        self.gauges[(name, tuple(sorted(labels.items())))] = read

    def observe(self, name: str, value: float, help_: str = "", **labels: str) -> None:
        """Record a value (seconds) in a histogram."""
        self.help.setdefault(name, ("histogram", help_))
        key = (name, tuple(sorted(labels.items())))
        counts = self.histograms.get(key)
        if counts is None:
            counts = self.histograms[key] = [0.0] * (len(self.BUCKETS) + 2)
        for i, bound in enumerate(self.BUCKETS):
            if value <= bound:
                counts[i] += 1
        counts[-2] += 1
        counts[-1] += value

    @staticmethod
    def _labels(labels: tuple[tuple[str, str], ...], extra: str = "") -> str:
        parts = [f'{k}="{v}"' for k, v in labels]
        if extra:
            parts.append(extra)
        return "{" + ",".join(parts) + "}" if parts else ""

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        lines: list[str] = []
        for name, (kind, help_) in sorted(self.help.items()):
            lines.append(f"# HELP {name} {help_ or name}")
            lines.append(f"# TYPE {name} {kind}")
            for (n, labels), value in self.counters.items():
                if n == name:
                    lines.append(f"{name}{self._labels(labels)} {value}")
            for (n, labels), read in self.gauges.items():
                if n == name:
                    lines.append(f"{name}{self._labels(labels)} {read()}")
            for (n, labels), counts in self.histograms.items():
                if n != name:
                    continue
                for i, bound in enumerate(self.BUCKETS):
                    le = self._labels(labels, f'le="{bound}"')
                    lines.append(f"{name}_bucket{le} {counts[i]}")
                inf = self._labels(labels, 'le="+Inf"')
                lines.append(f"{name}_bucket{inf} {counts[-2]}")
                lines.append(f"{name}_count{self._labels(labels)} {counts[-2]}")
                lines.append(f"{name}_sum{self._labels(labels)} {counts[-1]}")
        return "\n".join(lines) + "\n"


METRICS = Metrics()
"""The process's metrics."""


class HealthServer:
    """Serves ``/healthz`` (alive), ``/readyz`` (``ready()`` is true) and ``/metrics``."""

    def __init__(self, port: int, ready: Callable[[], bool], host: str = "0.0.0.0") -> None:  # noqa: S104
        self.port = port
        self.host = host
        self.ready = ready
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen on the port."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            path = request.split(b" ", 2)[1].decode() if request.count(b" ") >= 2 else "/"
            if path == "/healthz":
                status, body, ctype = 200, '{"status":"ok"}', "application/json"
            elif path == "/readyz":
                ok = self.ready()
                status = 200 if ok else 503
                body = '{"status":"ready"}' if ok else '{"status":"broker unreachable"}'
                ctype = "application/json"
            elif path == "/metrics":
                status, body, ctype = 200, METRICS.render(), "text/plain; version=0.0.4"
            else:
                status, body, ctype = 404, '{"status":"not found"}', "application/json"
            payload = body.encode()
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

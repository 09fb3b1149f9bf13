"""A tiny OTLP/HTTP trace receiver for tests: what the services' exporters really send.

It answers ``POST /v1/traces`` (protobuf, optionally gzip) like a collector, decodes each
``ExportTraceServiceRequest`` with ``opentelemetry-proto`` and keeps every span with the
service that sent it.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class Link:
    trace_id: str
    span_id: str


@dataclass(frozen=True)
class Span:
    """One exported span, ids as lowercase hex (a root's parent is ``""``)."""

    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attributes: dict[str, Any]
    links: tuple[Link, ...] = ()
    status_code: int = 0
    events: tuple[str, ...] = field(default=())


def _value(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


class OtlpReceiver:
    """Collects the spans every process of a test exports to ``endpoint``."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests = 0
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver._add(request)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` of the processes."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _add(self, request: ExportTraceServiceRequest) -> None:
        got: list[Span] = []
        for resource_spans in request.resource_spans:
            attrs = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            service = str(attrs.get("service.name", ""))
            got.extend(
                Span(
                    service=service,
                    name=s.name,
                    trace_id=s.trace_id.hex(),
                    span_id=s.span_id.hex(),
                    parent_id=s.parent_span_id.hex(),
                    kind=s.kind,
                    attributes={a.key: _value(a.value) for a in s.attributes},
                    links=tuple(Link(k.trace_id.hex(), k.span_id.hex()) for k in s.links),
                    status_code=s.status.code,
                    events=tuple(e.name for e in s.events),
                )
                for scope_spans in resource_spans.scope_spans
                for s in scope_spans.spans
            )
        with self._changed:
            self.requests += 1
            self.spans.extend(got)
            self._changed.notify_all()

    def of_trace(self, trace_id: str) -> list[Span]:
        with self._changed:
            return [s for s in self.spans if s.trace_id == trace_id]

    def wait(self, until: Callable[[list[Span]], bool], timeout_s: float = 30.0) -> list[Span]:
        """Wait until ``until(spans so far)`` holds; return the spans (or fail, listing them)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not until(list(self.spans)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = sorted(f"{s.service}: {s.name}" for s in self.spans)
                    raise AssertionError(f"the spans never came; got {names}")
                self._changed.wait(remaining)
            return list(self.spans)

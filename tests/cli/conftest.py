"""Fixtures of the CLI tests: an isolated configuration and a fake HTTP gateway."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from orra_cli.app import app

API_KEY = "orra_test_key"

Route = Callable[["Request"], tuple[int, Any]] | tuple[int, Any]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGateway:
    """A real HTTP server on a free port answering from a route table."""

    url: str = ""
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def route(self, method: str, path: str, answer: Route) -> None:
        self.routes[(method, path)] = answer

    def last(self, method: str, path: str) -> Request:
        return [r for r in self.requests if r.method == method and r.path == path][-1]


def _handler(gateway: FakeGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Request(
                method,
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                json.loads(raw) if raw else None,
            )
            gateway.requests.append(request)
            answer = gateway.routes.get((method, parts.path))
            if answer is None:
                status, body = 404, {"title": "Not Found", "status": 404}
            elif request.headers.get("authorization") != f"Bearer {API_KEY}":
                status, body = 401, {"title": "invalid API key", "status": 401}
            else:
                status, body = answer(request) if callable(answer) else answer
            if isinstance(body, str) and body.startswith("id:"):
                payload = body.encode()
                content_type = "text/event-stream"
            else:
                payload = json.dumps(body).encode()
                content_type = "application/json"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    fake = FakeGateway()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads the user's config or environment."""
    path = tmp_path / "cli-config.json"
    monkeypatch.setenv("ORRA_CONFIG", str(path))
    for name in ("ORRA_GATEWAY_URL", "ORRA_API_KEY", "ORRA_NATS_URL", "ORRA_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return path


@pytest.fixture
def orra(gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run ``orra ARGS`` in-process against the fake gateway."""
    monkeypatch.setenv("ORRA_GATEWAY_URL", gateway.url)
    monkeypatch.setenv("ORRA_API_KEY", API_KEY)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return run

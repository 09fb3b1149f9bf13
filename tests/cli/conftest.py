"""Fixtures of the CLI tests: an isolated configuration, a fake HTTP gateway, a real one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from orra_cli.app import app
from orra_events import (
    ActionSubmitted,
    Bus,
    Event,
    Plan,
    PlanCreated,
    PlanTask,
    Topology,
)
from orra_events.embedded import EmbeddedNats, free_port

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
            if status == 204:
                payload, content_type = b"", "application/json"
            elif isinstance(body, str) and body.startswith("id:"):
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

        def do_DELETE(self) -> None:
            self._serve("DELETE")

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


# --- a real gateway -------------------------------------------------------------------------

REAL_KEY = "orra_cli-test-bootstrap-key-0123456789abcdefghijkl"

PLAN = Plan(
    tasks=[
        PlanTask(id="payment", service="PaymentService", input={"orderId": "ORD1"}),
        PlanTask(id="notify", service="NotifyService", input={"paid": "$payment.status"}),
    ],
    parallel_groups=[["payment"], ["notify"]],
)


@dataclass
class RealGateway:
    """The real gateway (``orra_gateway``) over HTTP, on the test's nats-server and namespace.

    A stand-in planner answers every action with :data:`PLAN` and keeps the
    ``action.submitted`` events it saw in ``submitted`` (no dispatcher runs: the
    orchestrations stay ``running``).
    """

    url: str
    submitted: list[ActionSubmitted]


@pytest.fixture
def real_gateway(
    nats_server: EmbeddedNats, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RealGateway]:
    """The real gateway, served by uvicorn on an event loop in a thread of its own; ``orra``
    (run in-process with CliRunner) is configured for it with its bootstrap key."""
    import uvicorn

    from orra_cli.common import quiet_library_logs
    from orra_events.runtime import BrokerSettings
    from orra_gateway import GatewaySettings, create_app

    # The gateway runs in this process: its logs go to stderr (warnings and up), as a gateway
    # process's never reach the CLI's stdout. `orra` configures no logging for a command that
    # runs no library code that logs, so CliRunner would otherwise capture them as its output.
    quiet_library_logs()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="cli-test-gateway", daemon=True)
    thread.start()

    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    topology = Topology(namespace=namespace)
    submitted: list[ActionSubmitted] = []

    async def start_planner() -> Bus:
        bus = await Bus.connect(nats_server.url, topology, name="test-cli-planner")
        await bus.ensure_streams()

        async def handle(event: Event, _msg: Any) -> None:
            if isinstance(event, ActionSubmitted):
                submitted.append(event)
                await bus.publish(
                    PlanCreated(
                        event_id=f"p:{event.orchestration_id}",
                        orchestration_id=event.orchestration_id,
                        plan=PLAN,
                        planner="offline",
                        project=event.project,
                        webhook=event.webhook,
                        mode=event.mode,
                    )
                )

        await bus.consume(
            stream=topology.events_stream,
            durable="planner",
            filter_subjects=[topology.all_of("action.submitted")],
            handler=handle,
        )
        return bus

    async def stop_planner(bus: Bus) -> None:
        for config in topology.stream_configs():
            with contextlib.suppress(Exception):
                await bus.js.delete_stream(config.name)  # type: ignore[arg-type]
        await bus.close()

    bus = run(start_planner())
    settings = GatewaySettings(
        broker=BrokerSettings(nats_url=nats_server.url, namespace=namespace),
        bootstrap_key=REAL_KEY,
        plan_wait_s=5.0,
        key_cache_s=0.0,
        sse_keepalive_s=1.0,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=2,
        )
    )
    serving = asyncio.run_coroutine_threadsafe(server.serve(), loop)
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if serving.done() or time.monotonic() > deadline:
                serving.result(0)
                raise RuntimeError("the gateway did not start in time")
            time.sleep(0.02)
        monkeypatch.setenv("ORRA_GATEWAY_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("ORRA_API_KEY", REAL_KEY)
        monkeypatch.setenv("ORRA_NATS_URL", nats_server.url)
        monkeypatch.setenv("ORRA_NAMESPACE", namespace)
        yield RealGateway(url=f"http://127.0.0.1:{port}", submitted=submitted)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            serving.result(15)
        run(stop_planner(bus))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

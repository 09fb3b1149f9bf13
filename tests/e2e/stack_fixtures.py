"""Helpers of the whole-stack end-to-end tests (tests/e2e/test_stack.py).

* :class:`StackHandle`: one :class:`~orra_cli.supervisor.Stack` (what ``orra up`` runs),
  the real ``orra`` CLI as a subprocess against it, and an HTTP client with its API key;
* :class:`WebhookReceiver`: a real HTTP server that records deliveries and handles them
  like the seed's Express handler;
* :func:`verify_standard_webhook`: the Standard Webhooks signature check, written from the
  specification (no code shared with the notifier);
* ``ArchiveVault``: a slow test service (``python stack_fixtures.py``, run by the stack as
  an extra child) whose tasks last as long as their ``holdSeconds`` input, so a test can
  follow or abort an orchestration while it runs.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ORRA = [sys.executable, "-m", "orra_cli"]
SLOW_SERVICE = "ArchiveVault"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the stack and the CLI -------------------------------------------------------------------


@dataclass
class StackHandle:
    """A running stack, and the ``orra`` command configured for it."""

    data_dir: Path
    cli_config: Path
    extra_env: dict[str, str]
    mcp_config: Path | None = None
    stack: Any = None
    children: list[tuple[str, list[str]]] | None = None
    """More processes the stack supervises; by default (demo) the slow ArchiveVault."""
    lines: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=400))

    def start(self, *, demo: bool = True) -> StackHandle:
        from orra_cli.supervisor import Stack

        log = (self.data_dir.parent / "stack.log").open("a", encoding="utf-8")

        def sink(name: str, line: str) -> None:
            self.lines.append(f"{name} | {line}")
            log.write(f"{name} | {line}\n")
            log.flush()

        children = [("archive", [sys.executable, str(Path(__file__).resolve())])] if demo else []
        if self.children is not None:
            children = list(self.children)
        self.stack = Stack(
            self.data_dir,
            port=free_port(),
            nats_port=free_port(),
            demo=demo,
            namespace="",
            log_sink=sink,
            notice_sink=lambda message: sink("orra", message),
            grace_s=8.0,
            ready_timeout_s=60.0,
            cli_config=self.cli_config,
            write_cli_config=True,
            extra_env=self.extra_env,
            extra_children=children,
            mcp_config=self.mcp_config,
        )
        self._log = log
        started = time.monotonic()
        self.stack.start()
        self.start_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()
            self.stack = None
        with contextlib.suppress(AttributeError):
            self._log.close()

    def restart(self, *, demo: bool = False) -> StackHandle:
        """Stop the stack, then start another on the same data directory (``orra up`` again)."""
        self.stop()
        return self.start(demo=demo)

    @property
    def gateway_url(self) -> str:
        return str(self.stack.gateway_url)

    @property
    def api_key(self) -> str:
        return str(self.stack.api_key)

    def env(self, **overrides: str | None) -> dict[str, str]:
        """Environment of a CLI process: only this stack's settings among ``ORRA_*``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORRA_")}
        env.update(
            ORRA_GATEWAY_URL=self.gateway_url,
            ORRA_API_KEY=self.api_key,
            ORRA_NATS_URL=str(self.stack.nats_url),
            ORRA_NAMESPACE="",
            ORRA_CONFIG=str(self.data_dir.parent / "unused-cli-config.json"),
            PYTHONUNBUFFERED="1",
            COLUMNS="200",
        )
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def orra(
        self, *args: str, timeout: float = 60.0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``orra`` command; its stdout, stderr and exit code."""
        t0 = time.monotonic()
        try:
            return subprocess.run(
                [*ORRA, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env or self.env(),
                cwd=self.data_dir.parent,
                check=False,
            )
        finally:
            if os.environ.get("ORRA_E2E_TIMING"):
                print(f"TIMING {time.monotonic() - t0:.2f}s orra {' '.join(args)[:80]}")

    def orra_json(self, *args: str, timeout: float = 60.0) -> Any:
        """Run ``orra ... --json``; it must exit 0 and print one JSON document."""
        result = self.orra(*args, "--json", timeout=timeout)
        assert result.returncode == 0, self.explain(result)
        return json.loads(result.stdout)

    def explain(self, result: subprocess.CompletedProcess[str]) -> str:
        tail = "\n".join(list(self.lines)[-40:])
        return (
            f"{result.args!r} exited {result.returncode}\n--- stdout\n{result.stdout}\n"
            f"--- stderr\n{result.stderr}\n--- stack output (tail)\n{tail}"
        )

    def get(self, path: str, **kwargs: Any) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"}
        resp = httpx.get(self.gateway_url + path, headers=headers, timeout=10, **kwargs)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def wait_status(
        self, orch_id: str, statuses: set[str], timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """Poll ``GET /orchestrations/{id}`` until its status is one of ``statuses``."""
        deadline = time.monotonic() + timeout_s
        view: dict[str, Any] = {}
        while time.monotonic() < deadline:
            view = self.get(f"/orchestrations/{orch_id}")
            if view.get("status") in statuses:
                return view
            time.sleep(0.1)
        raise AssertionError(f"{orch_id} is {view.get('status')}, not one of {statuses}: {view}")


# --- webhooks ------------------------------------------------------------------------------


@dataclass
class Delivery:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that records every POST and answers 200.

    Each delivery also goes through :meth:`express_handler`, the seed's example handler
    (extended to every type and status), and is checked against the published schema
    (:mod:`tests.webhook_contract`).
    """

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.handled: set[str] = set()
        self.completed: dict[str, Any] = {}
        self.by_task: dict[str, Any] = {}
        self.failed: dict[str, Any] = {}
        self.aborted: dict[str, Any] = {}
        self.compensation_reports: dict[str, Any] = {}
        self.approval_requests: dict[str, list[Any]] = collections.defaultdict(list)
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                delivery = Delivery(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                # imported here: this file also runs as a script (the slow test service)
                from tests import webhook_contract

                webhook_contract.observe(f"e2e receiver {self.path}", delivery.headers, body)
                code = receiver.express_handler(delivery)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver._changed:
                    receiver.deliveries.append(delivery)
                    receiver._changed.notify_all()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def express_handler(self, delivery: Delivery) -> int:
        """The seed's handler, extended as docs/webhooks.md shows: branch on type and status.

        A retry of a delivery already handled (same ``webhook-id``) is acknowledged only.
        """
        body = delivery.json
        delivery_id = delivery.headers["webhook-id"]
        if delivery_id in self.handled:
            return 200
        self.handled.add(delivery_id)
        kind = body["type"]
        orchestration_id = body["orchestrationId"]
        if kind == "orchestration.approval_requested":
            self.approval_requests[orchestration_id].append(body)
            return 200
        status = body["status"]
        results = body["results"]
        error = body["error"]
        if kind == "orchestration.result":
            if status == "completed":
                self.completed[orchestration_id] = results
                self.by_task[orchestration_id] = body["resultsByTask"]
            elif status == "failed":
                self.failed[orchestration_id] = error
            elif status == "aborted":
                self.aborted[orchestration_id] = (error, results, body["compensation"])
        elif kind == "orchestration.compensation":
            self.compensation_reports[orchestration_id] = body["compensation"]
        return 200

    def wait_for(
        self,
        orch_id: str,
        path: str,
        timeout_s: float = 30.0,
        kind: str = "orchestration.result",
    ) -> Delivery:
        """The first delivery of ``orch_id``'s result (or of another ``kind``) to ``path``."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for delivery in self.deliveries:
                    body = delivery.json
                    if (
                        delivery.path == path
                        and body.get("orchestrationId") == orch_id
                        and body.get("type") == kind
                    ):
                        return delivery
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(d.path, d.json.get("orchestrationId")) for d in self.deliveries]
                    raise AssertionError(f"no delivery of {orch_id} to {path}; got {seen}")
                self._changed.wait(remaining)


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Whether a request carries a valid Standard Webhooks signature made with ``secret``.

    The signed content is ``<webhook-id>.<webhook-timestamp>.<body>``; the key is the
    base64-decoded part of the secret after ``whsec_``; ``webhook-signature`` is a
    space-separated list of ``v1,<base64 HMAC-SHA256>``, any of which may match. The
    timestamp must be within five minutes of now.
    """
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    for candidate in headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


# --- SSE -------------------------------------------------------------------------------------


def read_sse(url: str, api_key: str, until: str, timeout_s: float = 15.0) -> list[dict[str, str]]:
    """Read Server-Sent Events from ``url`` until one of type ``until``; every field dict."""
    import httpx

    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "text/event-stream"}
    with httpx.stream("GET", url, headers=headers, timeout=timeout_s) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if not line:
                if "data" in current:
                    events.append(current)
                    if current.get("event") == until:
                        break
                current = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            current[name] = value.removeprefix(" ")
    return events


# --- the slow test service -------------------------------------------------------------------


def serve_slow_service() -> None:
    """Serve ``ArchiveVault``: each task sleeps ``holdSeconds`` (a stand-in for slow work)."""
    import asyncio

    from pydantic import BaseModel, Field

    from orra_sdk import Service, Task, run

    class ArchiveInput(BaseModel):
        ledgerId: str  # noqa: N815 - wire name
        holdSeconds: float = Field(default=1.0, ge=0, le=60)  # noqa: N815

    class ArchiveOutput(BaseModel):
        archiveStatus: str  # noqa: N815
        heldSeconds: float  # noqa: N815

    service = Service(
        name=SLOW_SERVICE,
        description="Archive ledger snapshots into cold vault storage, slowly.",
        input=ArchiveInput,
        output=ArchiveOutput,
    )

    @service.handler
    async def archive(task: Task[ArchiveInput]) -> ArchiveOutput:
        await asyncio.sleep(task.input.holdSeconds)
        return ArchiveOutput(archiveStatus="archived", heldSeconds=task.input.holdSeconds)

    run(service)


if __name__ == "__main__":
    serve_slow_service()

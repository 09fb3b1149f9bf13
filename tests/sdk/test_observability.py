"""What an SDK process shows operators: probes, Prometheus metrics, task-bound log context."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import structlog
from pydantic import BaseModel

from orra_events import TaskAborted, TaskCompleted, TaskFailed
from orra_events.embedded import free_port
from orra_events.health import HealthServer
from orra_sdk import AbortOrchestration, NonRetryableError, OrraClient, Service, Task
from orra_sdk.runner import health_port_from_env, health_server, serve_until_signal
from tests.sdk.conftest import EventLog, sample


class In(BaseModel):
    key: str
    mode: str = "ok"


class Out(BaseModel):
    echoed: str


def unique_name() -> str:
    return f"Obs{uuid.uuid4().hex[:8]}"


def echo_service(name: str, gate: asyncio.Event | None = None) -> Service[In, Out]:
    svc = Service(name=name, description="Echo a key", input=In, output=Out)

    @svc.handler
    async def echo(task: Task[In]) -> Out:
        structlog.get_logger("user.handler").info("handling", marker=task.task_id)
        if gate is not None:
            await gate.wait()
        await asyncio.sleep(0)
        structlog.get_logger("user.handler").info("handled", marker=task.task_id)
        if task.input.mode == "fail":
            raise NonRetryableError("told to fail")
        if task.input.mode == "abort":
            raise AbortOrchestration("told to abort", {})
        return Out(echoed=task.input.key)

    return svc


@pytest.fixture
async def probes() -> AsyncIterator[Callable[[OrraClient], Any]]:
    """Start a health server for a client on a free local port; stopped after the test."""
    servers: list[HealthServer] = []

    async def start(client: OrraClient) -> httpx.AsyncClient:
        port = free_port()
        server = health_server(client, port, host="127.0.0.1")
        await server.start()
        servers.append(server)
        return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5.0)

    yield start
    for server in servers:
        await server.stop()


async def test_probes_follow_the_client_and_metrics_count_outcomes_by_service(
    make_client: Callable[..., OrraClient],
    probes: Callable[[OrraClient], Any],
    dispatch: Any,
    events: EventLog,
) -> None:
    name = unique_name()
    gate = asyncio.Event()
    client = make_client()
    http: httpx.AsyncClient = await probes(client)
    async with http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 503  # not connected yet
        await client.connect()
        assert (await http.get("/readyz")).status_code == 503  # connected, nothing served
        await client.start(echo_service(name, gate))
        assert client.ready
        assert (await http.get("/readyz")).status_code == 200

        text = (await http.get("/metrics")).text
        for outcome in ("completed", "failed", "replayed", "aborted"):
            assert sample(text, "orra_sdk_tasks_total", outcome=outcome, service=name) == 0.0
        assert sample(text, "orra_sdk_tasks_in_flight", service=name) == 0.0

        await dispatch(name, "t1", {"key": "a"})
        await dispatch(name, "t2", {"key": "b", "mode": "fail"})
        async with asyncio.timeout(10):
            while (
                sample((await http.get("/metrics")).text, "orra_sdk_tasks_in_flight", service=name)
                != 2.0
            ):
                await asyncio.sleep(0.02)
        gate.set()
        await events.wait(TaskCompleted, task_id="t1")
        await events.wait(TaskFailed, task_id="t2")
        await dispatch(name, "t1", {"key": "a"}, attempt=2)  # same idempotency key: replayed
        (replay,) = await events.wait(TaskCompleted, task_id="t1", attempt=2)
        assert replay.replayed
        await dispatch(name, "t3", {"key": "c", "mode": "abort"}, orchestration_id="o_abort")
        await events.wait(TaskAborted, task_id="t3")

        metrics = await http.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        text = metrics.text
        # The result is counted once stored: poll past the ack of the last one.
        async with asyncio.timeout(5):
            while sample(text, "orra_sdk_tasks_total", outcome="aborted", service=name) != 1.0:
                await asyncio.sleep(0.02)
                text = (await http.get("/metrics")).text
        counts = {
            outcome: sample(text, "orra_sdk_tasks_total", outcome=outcome, service=name)
            for outcome in ("completed", "failed", "replayed", "aborted")
        }
        assert counts == {"completed": 1.0, "failed": 1.0, "replayed": 1.0, "aborted": 1.0}
        assert "# TYPE orra_sdk_tasks_total counter" in text
        assert "# TYPE orra_sdk_handler_duration_seconds histogram" in text
        for outcome in ("completed", "failed", "aborted"):
            count = sample(
                text, "orra_sdk_handler_duration_seconds_count", outcome=outcome, service=name
            )
            assert count == 1.0, outcome
        # a replay runs no handler
        assert (
            sample(
                text, "orra_sdk_handler_duration_seconds_count", outcome="replayed", service=name
            )
            is None
        )
        assert (
            sample(
                text,
                "orra_sdk_handler_duration_seconds_bucket",
                outcome="completed",
                service=name,
                le="+Inf",
            )
            == 1.0
        )
        assert sample(text, "orra_sdk_tasks_in_flight", service=name) == 0.0

        await client.close()
        assert not client.ready
        assert (await http.get("/readyz")).status_code == 503  # stopped
        assert (await http.get("/healthz")).status_code == 200


async def test_readiness_drops_as_soon_as_the_client_starts_stopping(
    make_client: Callable[..., OrraClient], probes: Callable[[OrraClient], Any], dispatch: Any
) -> None:
    name = unique_name()
    gate = asyncio.Event()
    client = make_client(drain_timeout_s=10.0)
    http: httpx.AsyncClient = await probes(client)
    async with http:
        await client.connect()
        await client.start(echo_service(name, gate))
        await dispatch(name, "slow", {"key": "a"})
        async with asyncio.timeout(10):
            while (
                sample((await http.get("/metrics")).text, "orra_sdk_tasks_in_flight", service=name)
                != 1.0
            ):
                await asyncio.sleep(0.02)
        stopping = asyncio.create_task(client.stop())
        await asyncio.sleep(0.05)
        assert not stopping.done()  # draining the running task
        assert (await http.get("/readyz")).status_code == 503
        assert (await http.get("/healthz")).status_code == 200
        gate.set()
        await stopping


async def test_handler_logs_carry_the_task_context_without_leaking_across_tasks(
    make_client: Callable[..., OrraClient], dispatch: Any, events: EventLog
) -> None:
    name = unique_name()
    gate = asyncio.Event()
    client = make_client()
    await client.connect()
    await client.start(echo_service(name, gate))
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        await dispatch(name, "a", {"key": "a"}, orchestration_id="o_log1")
        await dispatch(
            name, "b", {"key": "b", "mode": "fail"}, orchestration_id="o_log2", attempt=3
        )
        async with asyncio.timeout(10):
            while len([e for e in logs if e["event"] == "handling"]) < 2:
                await asyncio.sleep(0.01)
        gate.set()  # both handlers are suspended: they interleave from here
        await events.wait(TaskCompleted, task_id="a")
        await events.wait(TaskFailed, task_id="b")
    expected = {
        "a": {"orchestration_id": "o_log1", "task_id": "a", "attempt": 1, "service": name},
        "b": {"orchestration_id": "o_log2", "task_id": "b", "attempt": 3, "service": name},
    }
    handler_lines = [e for e in logs if e["event"] in {"handling", "handled"}]
    assert len(handler_lines) == 4
    for entry in handler_lines:
        bound = {k: entry.get(k) for k in ("orchestration_id", "task_id", "attempt", "service")}
        assert bound == expected[entry["marker"]], entry
    # The test's own context (which started the worker) never saw a task's bindings.
    assert "task_id" not in structlog.contextvars.get_contextvars()
    assert "orchestration_id" not in structlog.contextvars.get_contextvars()


async def test_sdk_lines_about_a_task_carry_its_context(
    make_client: Callable[..., OrraClient], dispatch: Any, events: EventLog
) -> None:
    name = unique_name()
    svc = Service(name=name, description="Always breaks", input=In, output=Out)

    @svc.handler
    async def broken(task: Task[In]) -> Out:
        raise RuntimeError("boom")

    client = make_client()
    await client.connect()
    await client.start(svc)
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        await dispatch(name, "x", {"key": "x"}, orchestration_id="o_sdklog")
        await events.wait(TaskFailed, task_id="x")
    (raised,) = [e for e in logs if e["event"] == "handler raised"]
    assert raised["orchestration_id"] == "o_sdklog"
    assert raised["task_id"] == "x"
    assert raised["attempt"] == 1
    assert raised["service"] == name


def test_health_port_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORRA_HEALTH_PORT", raising=False)
    assert health_port_from_env() == 0
    monkeypatch.setenv("ORRA_HEALTH_PORT", "")
    assert health_port_from_env() == 0
    monkeypatch.setenv("ORRA_HEALTH_PORT", "8080")
    assert health_port_from_env() == 8080


async def test_runner_refuses_to_start_when_the_health_port_is_taken(
    make_client: Callable[..., OrraClient],
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # the runner listens on every address
        taken.listen()
        port = taken.getsockname()[1]
        client = make_client()
        code = await serve_until_signal(
            echo_service(unique_name()), client=client, health_port=port
        )
    assert code == 1
    assert not client.ready

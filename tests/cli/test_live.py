"""``orra logs`` and ``orra inspect -f`` read a real event stream on a real nats-server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from typer.testing import CliRunner

from orra_cli.app import app
from orra_events import (
    ActionSubmitted,
    Bus,
    CompensationSummary,
    DataField,
    Event,
    OrchestrationAborted,
    OrchestrationCompensated,
    OrchestrationCompensating,
    OrchestrationDone,
    OrchestrationFailed,
    Plan,
    PlanCreated,
    PlanTask,
    TaskCompleted,
    TaskDispatched,
    Topology,
)
from orra_events.embedded import EmbeddedNats

from .conftest import API_KEY

ORCH = "o_live1"


def _history() -> list[Event]:
    plan = Plan(
        tasks=[
            PlanTask(id="payment", service="PaymentService", input={"orderId": "ORD1"}),
            PlanTask(id="notify", service="NotifyService", input={"p": "$payment.status"}),
        ],
        parallel_groups=[["payment"], ["notify"]],
    )
    return [
        ActionSubmitted(
            event_id=f"a:{ORCH}",
            orchestration_id=ORCH,
            action="Pay and notify",
            data=[DataField("orderId", "ORD1")],
        ),
        PlanCreated(event_id=f"p:{ORCH}", orchestration_id=ORCH, plan=plan, planner="offline"),
        TaskDispatched(
            event_id=f"d:{ORCH}:payment:1",
            orchestration_id=ORCH,
            task_id="payment",
            service="PaymentService",
            input={"orderId": "ORD1"},
            attempt=1,
            idempotency_key=f"{ORCH}:payment",
            timeout_s=30,
        ),
    ]


def _rest() -> list[Event]:
    now = time.time()
    return [
        TaskCompleted(
            event_id=f"r:{ORCH}:payment:1",
            orchestration_id=ORCH,
            task_id="payment",
            service="PaymentService",
            output={"status": "paid"},
            attempt=1,
            idempotency_key=f"{ORCH}:payment",
            started_at=now - 1.2,
            duration_ms=1200,
        ),
        OrchestrationDone(
            event_id=f"end:{ORCH}",
            orchestration_id=ORCH,
            results={"status": "paid"},
            outputs={"payment": {"status": "paid"}},
        ),
    ]


def _publish(url: str, namespace: str, events: list[Event]) -> None:
    async def go() -> None:
        bus = await Bus.connect(url, Topology(namespace=namespace), name="test-cli")
        await bus.ensure_streams()
        for event in events:
            await bus.publish(event)
        await bus.close()

    asyncio.run(go())


@pytest.fixture
def nats_env(nats_server: EmbeddedNats, namespace: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ORRA_NATS_URL", nats_server.url)
    monkeypatch.setenv("ORRA_NAMESPACE", namespace)
    monkeypatch.setenv("ORRA_API_KEY", API_KEY)
    return namespace


def test_logs_prints_the_raw_events_in_order(nats_server: EmbeddedNats, nats_env: str) -> None:
    _publish(nats_server.url, nats_env, _history())
    result = CliRunner().invoke(app, ["logs", ORCH, "--json"])
    assert result.exit_code == 0, result.output
    types = [json.loads(line)["type"] for line in result.stdout.splitlines()]
    assert types == ["action.submitted", "plan.created", "task.dispatched"]
    human = CliRunner().invoke(app, ["logs", ORCH])
    assert "plan.created" in human.stdout
    missing = CliRunner().invoke(app, ["logs", "o_missing"])
    assert missing.exit_code == 1
    assert "orra ps" in missing.stderr


def test_inspect_follow_shows_history_then_live_events_to_the_end(
    nats_server: EmbeddedNats, nats_env: str
) -> None:
    _publish(nats_server.url, nats_env, _history())
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-m", "orra_cli", "inspect", "-f", ORCH],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        time.sleep(1.0)
        assert proc.poll() is None, "follow mode ended before the orchestration did"
        _publish(nats_server.url, nats_env, _rest())
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "│ Status: completed" in out
    assert "│ Action: Pay and notify" in out
    assert "# Waits for payment" in out
    as_json: Any = CliRunner().invoke(app, ["inspect", "-f", ORCH, "--json"])
    view = json.loads(as_json.stdout)
    assert view["status"] == "completed"
    assert [t["status"] for t in view["tasks"]] == ["completed", "pending"]


def _collect(url: str, namespace: str, orch: str, late: list[Event]) -> list[str]:
    """Follow ``orch`` while ``late`` events are published half a second in."""
    from orra_cli.stream import StreamedEvent, orchestration_events

    async def go() -> list[str]:
        seen: list[str] = []

        async def follow() -> None:
            seen.extend(
                [
                    str(item.raw.get("type"))
                    async for item in orchestration_events(url, namespace, orch, follow=True)
                    if isinstance(item, StreamedEvent)
                ]
            )

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.5)
        bus = await Bus.connect(url, Topology(namespace=namespace), name="test-cli-late")
        for event in late:
            await bus.publish(event)
        await bus.close()
        await asyncio.wait_for(task, 10)
        return seen

    return asyncio.run(go())


def test_follow_goes_on_through_the_compensation_after_a_users_abort(
    nats_server: EmbeddedNats, nats_env: str
) -> None:
    aborted = OrchestrationAborted(
        event_id=f"end:{ORCH}", orchestration_id=ORCH, reason="aborted by user"
    )
    _publish(nats_server.url, nats_env, [*_history(), _rest()[0], aborted])
    late: list[Event] = [
        OrchestrationCompensating(
            event_id=f"comp:{ORCH}",
            orchestration_id=ORCH,
            cause="aborted",
            reason="aborted by user",
            tasks=["payment"],
        ),
        OrchestrationCompensated(
            event_id=f"compd:{ORCH}",
            orchestration_id=ORCH,
            compensation=CompensationSummary(compensated=["payment"]),
        ),
    ]
    seen = _collect(nats_server.url, nats_env, ORCH, late)
    assert seen[-3:] == [
        "orchestration.aborted",
        "orchestration.compensating",
        "orchestration.compensated",
    ]


def test_follow_ends_soon_after_an_abort_with_nothing_to_compensate(
    nats_server: EmbeddedNats, nats_env: str
) -> None:
    aborted = OrchestrationAborted(
        event_id=f"end:{ORCH}", orchestration_id=ORCH, reason="aborted by user"
    )
    _publish(nats_server.url, nats_env, [*_history(), aborted])
    started = time.monotonic()
    seen = _collect(nats_server.url, nats_env, ORCH, [])
    assert seen[-1] == "orchestration.aborted"
    assert time.monotonic() - started < 5


def test_follow_ends_at_a_dispatcher_ended_orchestration_with_its_compensation(
    nats_server: EmbeddedNats, nats_env: str
) -> None:
    failed = OrchestrationFailed(
        event_id=f"end:{ORCH}",
        orchestration_id=ORCH,
        error="notify failed",
        compensation=CompensationSummary(compensated=["payment"]),
    )
    _publish(nats_server.url, nats_env, [*_history(), failed])
    started = time.monotonic()
    seen = _collect(nats_server.url, nats_env, ORCH, [])
    assert seen[-1] == "orchestration.failed"
    assert time.monotonic() - started < 5

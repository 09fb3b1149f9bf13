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
    DataField,
    Event,
    OrchestrationDone,
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

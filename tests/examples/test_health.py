"""``orra-examples`` as deployed: probes and metrics on ORRA_HEALTH_PORT, JSON logs with context."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from orra_events import Bus, TaskCompleted, TaskFailed
from orra_events.embedded import free_port
from tests.sdk.conftest import EventLog, sample


async def test_examples_process_serves_probes_metrics_and_task_bound_json_logs(
    nats_url: str, bus: Bus, events: EventLog, dispatch: Any, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "ORRA_NATS_URL": nats_url,
        "ORRA_NAMESPACE": bus.topology.namespace,
        "ORRA_HEALTH_PORT": str(port),
        "ORRA_LOG_FORMAT": "json",
        "ORRA_EXAMPLES_LATENCY_SCALE": "0",
        "ORRA_EXAMPLES_FAIL": "PaymentService:1",
    }
    env.pop("ORRA_EXAMPLES_EFFECTS_FILE", None)
    log_path = tmp_path / "examples.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orra_examples", "--only", "PaymentService", "--only", "FraudCheck"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2.0) as http:
            async with asyncio.timeout(30):
                while True:
                    try:
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert proc.poll() is None, log_path.read_text()
                    await asyncio.sleep(0.1)
            assert (await http.get("/healthz")).status_code == 200

            await dispatch("FraudCheck", "fraud", {"orderId": "ORD789"}, orchestration_id="o_h")
            await dispatch(
                "PaymentService",
                "pay",
                {"orderId": "ORD1", "amount": 10.0},
                orchestration_id="o_h",
            )
            await events.wait(TaskCompleted, task_id="fraud", timeout=20)
            await events.wait(TaskFailed, task_id="pay", timeout=20)

            async with asyncio.timeout(10):
                while True:
                    text = (await http.get("/metrics")).text
                    done = sample(
                        text, "orra_sdk_tasks_total", outcome="completed", service="FraudCheck"
                    )
                    failed = sample(
                        text, "orra_sdk_tasks_total", outcome="failed", service="PaymentService"
                    )
                    if done == 1.0 and failed == 1.0:
                        break
                    await asyncio.sleep(0.05)
            for service in ("FraudCheck", "PaymentService"):
                assert sample(text, "orra_sdk_tasks_in_flight", service=service) == 0.0
            assert (
                sample(
                    text,
                    "orra_sdk_handler_duration_seconds_count",
                    outcome="completed",
                    service="FraudCheck",
                )
                == 1.0
            )
            assert (
                sample(text, "orra_sdk_tasks_total", outcome="completed", service="PaymentService")
                == 0.0
            )

        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 15)
        assert code == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    (ready,) = [e for e in lines if e["event"] == "ready"]
    assert ready["health_port"] == port
    (raised,) = [e for e in lines if e["event"] == "handler raised"]
    assert raised["orchestration_id"] == "o_h"
    assert raised["task_id"] == "pay"
    assert raised["attempt"] == 1
    assert raised["service"] == "PaymentService"
    # lines about no task carry none
    assert "task_id" not in ready

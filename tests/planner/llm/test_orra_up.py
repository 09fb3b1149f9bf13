"""With ``ORRA_LLM_*`` set, ``orra up`` plans through the model (issue 4's "done when")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from orra_cli.supervisor import Stack

from .conftest import ScriptedLlm

pytestmark = pytest.mark.e2e

ACTION = "Charge the order, check stock, then arrange delivery"
PLAN = {
    "parts": ["Charge the order", "check stock", "arrange delivery"],
    "tasks": [
        {
            "id": "payment",
            "service": "PaymentService",
            "serves": "Charge the order",
            "input": {"orderId": "ORD123", "amount": 299.99},
        },
        {
            "id": "inventory",
            "service": "InventoryService",
            "serves": "check stock",
            "input": {"productId": "PROD456"},
        },
        {
            "id": "delivery",
            "service": "DeliveryAgent",
            "serves": "arrange delivery",
            "input": {"orderId": "ORD123", "inStock": "$inventory.inStock"},
        },
    ],
    "uncovered": [],
    "parallel_groups": [["payment", "inventory"], ["delivery"]],
}


def test_orra_up_with_an_llm_configured_plans_through_the_model(
    tmp_path: Path, llm_server: ScriptedLlm
) -> None:
    llm_server.then(json.dumps(PLAN))
    lines: list[str] = []
    stack = Stack(
        tmp_path / "data",
        port=None,
        nats_port=None,
        namespace="",
        demo=True,
        log_sink=lambda name, line: lines.append(f"{name} | {line}"),
        notice_sink=lines.append,
        write_cli_config=False,
        grace_s=8.0,
        extra_env={
            "ORRA_LLM_BASE_URL": llm_server.url,
            "ORRA_LLM_API_KEY": "test-key",
            "ORRA_LLM_MODEL": "test-model",
            "ORRA_EXAMPLES_LATENCY_SCALE": "0",
        },
    )
    try:
        stack.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ORRA_", "OPENAI_"))}
        env |= {
            "ORRA_GATEWAY_URL": stack.gateway_url,
            "ORRA_API_KEY": stack.api_key,
            "ORRA_CONFIG": str(tmp_path / "cli.json"),
        }
        run = subprocess.run(  # noqa: PLW1510 - the exit code is asserted
            [
                sys.executable,
                "-m",
                "orra_cli",
                "verify",
                "run",
                ACTION,
                "-d",
                "orderId:ORD123",
                "-d",
                "amount:299.99",
                "-d",
                "productId:PROD456",
                "--wait",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert run.returncode == 0, (run.stdout, run.stderr, lines[-30:])
        result = json.loads(run.stdout)
        assert result["status"] == "completed"
        assert result["parallel_groups"] == [["payment", "inventory"], ["delivery"]]
        view = httpx.get(
            f"{stack.gateway_url}/orchestrations/{result['orchestrationId']}",
            headers={"Authorization": f"Bearer {stack.api_key}"},
            timeout=10,
        ).json()
    finally:
        stack.stop()
    assert view["plan"]["planner"] == "llm"
    assert view["plan"]["model"] == "test-model"
    assert view["plan"]["usage"]["total_tokens"] == 120
    assert {t["id"]: t["status"] for t in view["tasks"]} == dict.fromkeys(
        ("payment", "inventory", "delivery"), "completed"
    )
    (request,) = llm_server.requests  # one model call; the example services were in it
    prompt = "\n".join(m["content"] for m in request["messages"] if m["role"] == "user")
    for name in ("PaymentService", "InventoryService", "DeliveryAgent", ACTION):
        assert name in prompt

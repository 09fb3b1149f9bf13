"""The example e-commerce services over a real nats-server, in process and as a process."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from nats.js.errors import NotFoundError

from orra_events import Bus, ServiceRegistered, TaskCompleted, TaskFailed, decode
from orra_examples import SERVICES
from orra_sdk import InvalidData, NonRetryableError
from orra_sdk.testing import Orra, call, call_revert
from tests.sdk.conftest import EventLog


@pytest.fixture
def instant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_EXAMPLES_LATENCY_SCALE", "0")
    monkeypatch.delenv("ORRA_EXAMPLES_FAIL", raising=False)
    monkeypatch.delenv("ORRA_EXAMPLES_EFFECTS_FILE", raising=False)


@pytest.mark.usefixtures("instant")
async def test_the_seed_order_flow_gives_seed_like_outputs(orra: Orra) -> None:
    await orra.serve(*SERVICES.values())
    outcome = await orra.run(
        {
            "payment": ("PaymentService", {"orderId": "ORD123", "amount": "299.99"}),
            "inventory": ("InventoryService", {"productId": "PROD456"}),
            "delivery": ("DeliveryAgent", {"orderId": "ORD123", "inStock": "$inventory.inStock"}),
            "notify": (
                "NotificationService",
                {"customerId": "CUST1", "paymentStatus": "$payment.paymentStatus"},
            ),
        }
    )
    assert outcome.status == "done", outcome.error
    payment, inventory, delivery, notify = (
        outcome.outputs[t] for t in ("payment", "inventory", "delivery", "notify")
    )

    assert payment["paymentStatus"] == "confirmed"
    assert payment["amountCharged"] == 299.99
    assert re.fullmatch(r"TXN\d{6}", payment["transactionId"])
    assert inventory == {"inStock": True, "inventoryStatus": "reserved", "reservedItems": 1}
    assert re.fullmatch(r"DLV\d{3}", delivery["deliveryTracking"])
    eta = dt.date.fromisoformat(delivery["estimatedDelivery"])
    assert eta > dt.datetime.now(dt.UTC).date()
    assert delivery["deliveryStatus"] == "scheduled"
    assert notify["orderStatus"] == "processed"
    assert notify["notificationStatus"] == "sent"
    assert outcome.progress("delivery") == [{"step": "choosing carrier"}]


@pytest.mark.usefixtures("instant")
async def test_a_seed_action_is_planned_offline_and_compensated_when_delivery_aborts(
    orra: Orra, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORRA_EXAMPLES_ABORT", "DeliveryAgent")
    await orra.serve(*SERVICES.values())
    outcome = await orra.submit(
        "Process the payment for the order, update the inventory and estimate the delivery",
        {"orderId": "ORD123", "amount": 299.99, "productId": "PROD456"},
    )
    assert outcome.status == "aborted", outcome.error
    assert outcome.results == {"orderId": "ORD123", "by": "DeliveryAgent"}
    assert outcome.compensation is not None
    assert sorted(outcome.compensation.compensated) == ["inventory", "payment"]


async def _output(service: str, data: dict[str, Any]) -> dict[str, Any]:
    return (await call(SERVICES[service], data)).output


@pytest.mark.usefixtures("instant")
async def test_orders_by_items_refunds_and_fraud() -> None:
    items = [{"id": "PROD789", "quantity": 2}]
    payment = await _output("PaymentService", {"orderId": "ORD1", "items": items})
    stock = await _output("InventoryService", {"items": items})
    missing = await _output("InventoryService", {"productId": "OOS-1"})
    fraud = await _output("FraudCheck", {"orderId": "ORD789"})
    refund = await _output(
        "RefundService", {"orderId": "ORD789", "fraudCleared": fraud["fraudCleared"]}
    )
    suspicious = await _output("FraudCheck", {"orderId": "FRAUD1"})
    rejected = await _output("RefundService", {"orderId": "FRAUD1", "fraudCleared": False})

    assert payment["amountCharged"] > 0
    assert stock["reservedItems"] == 2
    assert missing["inStock"] is False
    assert (fraud["fraudRisk"], fraud["fraudCleared"]) == ("low", True)
    assert refund["refundStatus"] == "refunded"
    assert (suspicious["fraudRisk"], suspicious["fraudCleared"]) == ("high", False)
    assert rejected == {"refundStatus": "rejected", "refundId": None, "refundAmount": 0.0}


@pytest.mark.usefixtures("instant")
async def test_an_unusable_input_or_an_excessive_charge_is_refused_for_good() -> None:
    with pytest.raises(InvalidData, match="give the amount, or the items to charge for"):
        await call(SERVICES["PaymentService"], {"orderId": "ORD1"})
    with pytest.raises(NonRetryableError, match="exceeds the card limit"):
        await call(SERVICES["PaymentService"], {"orderId": "ORD1", "amount": 200_000})


@pytest.mark.usefixtures("instant")
async def test_a_payment_is_refunded_with_its_transaction(tmp_path: Path, monkeypatch: Any) -> None:
    effects = tmp_path / "effects.jsonl"
    monkeypatch.setenv("ORRA_EXAMPLES_EFFECTS_FILE", str(effects))
    payment = SERVICES["PaymentService"]
    done = await call(payment, {"orderId": "ORD1", "amount": 5})
    await call_revert(payment, {"orderId": "ORD1", "amount": 5}, done.output, reason="no stock")
    lines = [json.loads(line) for line in effects.read_text().splitlines()]
    assert [(e["outcome"], e.get("reason")) for e in lines] == [
        ("completed", None),
        ("reverted", "no stock"),
    ]


async def test_injected_failures_and_recorded_side_effects(
    instant: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    events: EventLog,
    make_client: Any,
    dispatch: Any,
) -> None:
    effects = tmp_path / "effects.jsonl"
    monkeypatch.setenv("ORRA_EXAMPLES_FAIL", "InventoryService:1, DeliveryAgent:2")
    monkeypatch.setenv("ORRA_EXAMPLES_EFFECTS_FILE", str(effects))
    client = make_client()
    await client.connect()
    await client.start(SERVICES["InventoryService"])

    await dispatch("InventoryService", "inv", {"productId": "P1"})
    (failed,) = await events.wait(TaskFailed, task_id="inv")
    assert failed.retryable is True
    assert "injected failure" in failed.error
    await dispatch("InventoryService", "inv", {"productId": "P1"}, attempt=2)
    await events.wait(TaskCompleted, task_id="inv")
    await dispatch("InventoryService", "inv", {"productId": "P1"}, attempt=3)  # replayed
    (replay,) = await events.wait(TaskCompleted, attempt=3)
    assert replay.replayed is True

    lines = [json.loads(line) for line in effects.read_text().splitlines()]
    assert [(e["attempt"], e["outcome"]) for e in lines] == [(1, "failed"), (2, "completed")]
    assert {e["idempotency_key"] for e in lines} == {"o_test:inv"}
    assert {e["service"] for e in lines} == {"InventoryService"}
    assert {e["pid"] for e in lines} == {os.getpid()}


def test_descriptions_name_the_words_of_the_seed_actions() -> None:
    words = {
        "PaymentService": ["payment", "order"],
        "InventoryService": ["inventory", "order"],
        "DeliveryAgent": ["delivery", "estimate", "optimal"],
        "NotificationService": ["notify", "customer"],
        "FraudCheck": ["fraudulent", "fraud"],
        "RefundService": ["refund", "request"],
    }
    for name, expected in words.items():
        description = SERVICES[name].description.lower()
        assert all(w in description for w in expected), (name, description)
    assert "refund" not in SERVICES["PaymentService"].description.lower()


async def wait_registered(bus: Bus, names: list[str], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        for name in names:
            subject = bus.topology.service_subject(
                "service.registered", name, SERVICES[name].version
            )
            while True:
                try:
                    raw = await bus.js.get_last_msg(bus.topology.services_stream, subject)
                except NotFoundError:
                    await asyncio.sleep(0.05)
                    continue
                assert isinstance(decode(raw.data or b""), ServiceRegistered)
                break


async def test_orra_examples_runs_as_a_process_and_stops_on_sigterm(
    nats_url: str, bus: Bus, events: EventLog, dispatch: Any, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "ORRA_NATS_URL": nats_url,
        "ORRA_NAMESPACE": bus.topology.namespace,
        "ORRA_EXAMPLES_LATENCY_SCALE": "0",
        "ORRA_EXAMPLES_EFFECTS_FILE": str(tmp_path / "effects.jsonl"),
    }
    env.pop("ORRA_EXAMPLES_FAIL", None)
    log = (tmp_path / "examples.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orra_examples", "--only", "PaymentService", "--only", "FraudCheck"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        await wait_registered(bus, ["PaymentService", "FraudCheck"])
        await dispatch("FraudCheck", "fraud", {"orderId": "ORD789"})
        (done,) = await events.wait(TaskCompleted, task_id="fraud", timeout=20)
        assert done.output["fraudRisk"] == "low"
        assert not any(e.service == "DeliveryAgent" for e in events.of(ServiceRegistered))
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 15)
        assert code == 0, (tmp_path / "examples.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    (effect,) = [json.loads(x) for x in (tmp_path / "effects.jsonl").read_text().splitlines()]
    assert effect["pid"] == proc.pid

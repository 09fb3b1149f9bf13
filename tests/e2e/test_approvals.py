"""Plan preview and approval gates, end to end: the whole stack as ``orra up --demo`` runs it.

One stack for the module (nats-server, planner, dispatcher, notifier, gateway, the example
services and ``LargeRefund``, a service registered with the gate ``amount > 1000``), with
approvals expiring after :data:`APPROVAL_TIMEOUT_S` (``ORRA_APPROVAL_TIMEOUT_S``) unless the
action says (``approvalTimeoutS``). Previews go through the real CLI and
HTTP; the gated plans are appended as ``plan.created`` (with the gate the planner copies
from the registration) so the order of completion is exact.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orra_events import (
    ActionSubmitted,
    Bus,
    Plan,
    PlanCreated,
    PlanTask,
    ServiceRegistered,
    Topology,
    ids,
)
from orra_events.ids import new_orchestration_id
from tests.e2e.approval_services import GATE, GATED_SERVICE
from tests.e2e.stack_fixtures import StackHandle, WebhookReceiver, verify_standard_webhook

pytestmark = pytest.mark.e2e

APPROVAL_TIMEOUT_S = 300.0
SHORT_TIMEOUT_S = 2.0
ECOMMERCE = "Process new order and arrange optimal delivery"
ITEMS = '[{"id":"PROD789","quantity":2}]'
APPROVAL = "orchestration.approval_requested"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    base = tmp_path_factory.mktemp("orra-approvals")
    handle = StackHandle(
        data_dir=base / "data",
        cli_config=base / "cli-config.json",
        extra_env={
            "ORRA_EXAMPLES_LATENCY_SCALE": "0.1",
            "ORRA_EXAMPLES_EFFECTS_FILE": str(base / "effects.jsonl"),
            "ORRA_APPROVAL_TIMEOUT_S": str(APPROVAL_TIMEOUT_S),
        },
        children=[
            ("gated", [sys.executable, str(Path(__file__).with_name("approval_services.py"))])
        ],
    )
    try:
        handle.start(demo=True)
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def keys(stack: StackHandle) -> dict[str, dict[str, Any]]:
    """An approver and a member key of ``default``, and an admin key of another project."""
    made = {}
    for name, body in (
        ("approver", {"name": "approver", "role": "approver"}),
        ("member", {"name": "member", "role": "member"}),
        ("other", {"name": "other", "role": "admin", "project": "elsewhere"}),
    ):
        made[name] = post(stack, "/api-keys", body, expect=201)
    return made


def post(
    stack: StackHandle, path: str, body: Any, *, key: str | None = None, expect: int = 200
) -> Any:
    resp = httpx.post(
        stack.gateway_url + path,
        json=body,
        headers={"Authorization": f"Bearer {key or stack.api_key}"},
        timeout=30,
    )
    assert resp.status_code == expect, resp.text
    return resp.json()


def effects(stack: StackHandle, orch: str) -> list[dict[str, Any]]:
    path = Path(stack.extra_env["ORRA_EXAMPLES_EFFECTS_FILE"])
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in lines if e.get("orchestration_id") == orch]


def publish(stack: StackHandle, *events: Any) -> None:
    async def go() -> None:
        bus = await Bus.connect(str(stack.stack.nats_url), Topology(), name="test-approvals")
        try:
            for event in events:
                await bus.publish(event)
        finally:
            await bus.close()

    asyncio.run(go())


def gated_plan(stack: StackHandle, hook: str, amount: float) -> str:
    """Charge an order, then refund ``amount`` with LargeRefund (its gate copied in)."""
    orch = new_orchestration_id()
    plan = Plan(
        tasks=[
            PlanTask(id="payment", service="PaymentService", input={"orderId": "O1", "amount": 5}),
            PlanTask(
                id="refund",
                service=GATED_SERVICE,
                input={"orderId": "O1", "amount": amount},
                gate=GATE,
            ),
        ],
        parallel_groups=[["payment"], ["refund"]],
    )
    # The plan first, then its action (which the gateway's read model needs): the planner's
    # own plan for it has the same event id, so the log keeps this one.
    publish(
        stack,
        PlanCreated(
            event_id=ids.plan_id(orch),
            orchestration_id=orch,
            plan=plan,
            planner="test",
            webhook=hook or None,
        ),
        ActionSubmitted(
            event_id=ids.action_id(orch),
            orchestration_id=orch,
            action="Charge order O1 and refund it",
            webhook=hook or None,
        ),
    )
    return orch


def wait_for(stack: StackHandle, orch: str, check: Any, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = httpx.get(
            f"{stack.gateway_url}/orchestrations/{orch}",
            headers={"Authorization": f"Bearer {stack.api_key}"},
            timeout=10,
        )
        if resp.status_code == 200:
            view = resp.json()
            if check(view):
                return view
        time.sleep(0.1)
    raise AssertionError(f"{orch} never got there: {view}")


def task_of(view: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(t for t in view["tasks"] if t["id"] == task_id)


# --- preview ---------------------------------------------------------------------------------


def test_a_preview_returns_the_plan_runs_nothing_and_runs_when_approved(
    stack: StackHandle,
) -> None:
    out = stack.orra_json(
        "verify", "run", ECOMMERCE,
        "-d", "orderId:ORD123", "-d", "customerId:CUST456", "-d", f"items:{ITEMS}",
        "--plan-only",
    )  # fmt: skip
    orch = out["orchestrationId"]
    assert out["status"] == "awaiting_approval", out
    assert {t["service"] for t in out["tasks"]} >= {"PaymentService", "InventoryService"}
    assert out["parallel_groups"]
    assert out["approval"]["status"] == "awaiting"
    view = wait_for(stack, orch, lambda v: (v.get("approval") or {}).get("expiresAt"))
    assert view["status"] == "awaiting_approval"
    assert view["approval"]["expiresAt"] > time.time()
    # the list (orra ps) and inspect show the waiting state
    listed = stack.get("/orchestrations")["items"]
    assert next(i for i in listed if i["id"] == orch)["status"] == "awaiting_approval"
    shown = stack.orra("inspect", orch)
    assert "waiting for approval" in shown.stdout, stack.explain(shown)
    time.sleep(1.0)
    assert effects(stack, orch) == []  # nothing ran: no side effect
    assert all(t["status"] == "pending" for t in stack.get(f"/orchestrations/{orch}")["tasks"])

    approved = stack.orra("approve", orch, "--reason", "looks right")
    assert approved.returncode == 0, stack.explain(approved)
    view = stack.wait_status(orch, {"completed"})
    assert view["approval"]["status"] == "approved"
    assert view["approval"]["decidedBy"] == stack.get("/me")["id"]
    assert view["approval"]["reason"] == "looks right"
    ran = {e["service"] for e in effects(stack, orch) if e["outcome"] == "completed"}
    assert {"PaymentService", "InventoryService"} <= ran
    shown = stack.orra("inspect", orch)
    assert "approved by" in shown.stdout, stack.explain(shown)
    # an approval that arrives twice is applied once: the second is refused
    again = stack.orra("approve", orch)
    assert again.returncode == 1, stack.explain(again)
    assert "already approved" in again.stderr, again.stderr


def test_reject_and_expiry_run_nothing_and_only_approvers_decide(
    stack: StackHandle, keys: dict[str, dict[str, Any]]
) -> None:
    body = {
        "action": {"content": ECOMMERCE},
        "data": [
            {"field": "orderId", "value": "ORD9"},
            {"field": "customerId", "value": "CUST9"},
            {"field": "items", "value": [{"id": "PROD789", "quantity": 1}]},
        ],
        "execute": False,
    }
    # submitted first: no one decides, it expires while the rest of the test runs
    short = {**body, "approvalTimeoutS": SHORT_TIMEOUT_S}
    second = post(stack, "/orchestrations", short, expect=201)["orchestrationId"]
    created = post(stack, "/orchestrations", body, expect=201)
    orch = created["orchestrationId"]
    assert created["status"] == "awaiting_approval"
    assert created["tasks"]
    assert created["parts"]
    # permissions: a member key may not decide; another project's key does not see it
    member = post(
        stack, f"/orchestrations/{orch}/approve", {}, key=keys["member"]["apiKey"], expect=403
    )
    assert "approver" in member["detail"]
    post(stack, f"/orchestrations/{orch}/approve", {}, key=keys["other"]["apiKey"], expect=404)
    post(stack, "/orchestrations/o_nosuchorchestration/approve", {}, expect=404)
    post(stack, f"/orchestrations/{orch}/approve", {"task": "nosuch"}, expect=404)

    decided = post(
        stack,
        f"/orchestrations/{orch}/reject",
        {"reason": "wrong customer"},
        key=keys["approver"]["apiKey"],
    )
    assert decided["decision"] == "rejected"
    assert decided["by"] == keys["approver"]["id"]
    view = stack.wait_status(orch, {"aborted"})
    assert "wrong customer" in view["error"]
    assert view["approval"]["status"] == "rejected"
    assert view["approval"]["decidedBy"] == keys["approver"]["id"]
    late = post(stack, f"/orchestrations/{orch}/approve", {}, expect=409)
    assert "already rejected" in late["detail"]

    # no decision in time: dropped, recorded as expired
    view = stack.wait_status(second, {"aborted"}, timeout_s=SHORT_TIMEOUT_S + 30)
    assert "approval expired" in view["error"]
    assert view["approval"]["status"] == "expired"
    assert view["approval"]["decidedBy"] == "expiry"
    expired = post(stack, f"/orchestrations/{second}/approve", {}, expect=409)
    assert "expired" in expired["detail"]
    time.sleep(0.5)
    assert effects(stack, orch) == []
    assert effects(stack, second) == []


# --- gates on services -------------------------------------------------------------------------


def test_a_gated_refund_waits_its_webhook_arrives_and_approval_completes_it(
    stack: StackHandle, receiver: WebhookReceiver, keys: dict[str, dict[str, Any]]
) -> None:
    hook = receiver.url("/webhooks/approvals")
    orch = gated_plan(stack, hook, amount=1500)
    delivery = receiver.wait_for(orch, "/webhooks/approvals", kind=APPROVAL)
    body = delivery.json
    assert body["taskId"] == "refund"
    assert body["service"] == GATED_SERVICE
    assert body["input"] == {"orderId": "O1", "amount": 1500}
    assert body["condition"] == GATE
    secret = stack.get("/webhooks/secret")["secret"]
    assert verify_standard_webhook(secret, delivery.headers, delivery.body)
    view = wait_for(stack, orch, lambda v: task_of(v, "refund")["status"] == "awaiting_approval")
    assert task_of(view, "payment")["status"] == "completed"
    assert task_of(view, "refund")["approval"]["condition"] == GATE
    assert not [e for e in effects(stack, orch) if e["service"] == GATED_SERVICE]

    env = stack.env(ORRA_API_KEY=keys["approver"]["apiKey"])
    approved = stack.orra("approve", orch, "--task", "refund", env=env)
    assert approved.returncode == 0, stack.explain(approved)
    result = receiver.wait_for(orch, "/webhooks/approvals")
    assert result.json["status"] == "completed", result.json["error"]
    assert result.headers["webhook-id"] != delivery.headers["webhook-id"]
    view = stack.wait_status(orch, {"completed"})
    assert task_of(view, "refund")["approval"]["status"] == "approved"
    assert [e["service"] for e in effects(stack, orch) if e["service"] == GATED_SERVICE] == [
        GATED_SERVICE
    ]


def test_rejecting_a_gated_task_compensates_the_payment_already_made(
    stack: StackHandle, receiver: WebhookReceiver
) -> None:
    hook = receiver.url("/webhooks/rejected")
    orch = gated_plan(stack, hook, amount=5000)
    receiver.wait_for(orch, "/webhooks/rejected", kind=APPROVAL)
    wait_for(stack, orch, lambda v: task_of(v, "refund")["status"] == "awaiting_approval")
    post(stack, f"/orchestrations/{orch}/reject", {"task": "refund", "reason": "fraud"})
    view = stack.wait_status(orch, {"failed"})
    assert "not approved" in view["error"]
    assert "fraud" in view["error"]
    assert task_of(view, "refund")["status"] == "failed"
    assert view["compensation"]["compensated"] == ["payment"]
    outcomes = [(e["service"], e["outcome"]) for e in effects(stack, orch)]
    assert ("PaymentService", "reverted") in outcomes
    assert GATED_SERVICE not in {s for s, _ in outcomes}


def test_a_refund_under_the_threshold_runs_without_approval(stack: StackHandle) -> None:
    orch = gated_plan(stack, "", amount=20)
    view = stack.wait_status(orch, {"completed"})
    assert task_of(view, "refund")["approval"] is None


def test_a_malformed_gate_is_refused_and_the_registered_version_stays(
    stack: StackHandle,
) -> None:
    before = next(s for s in stack.get("/services")["items"] if s["name"] == GATED_SERVICE)
    bad = ServiceRegistered(
        event_id=ids.registration_id(GATED_SERVICE, "badgate"),
        service=GATED_SERVICE,
        description="Refund a large amount to a customer's card.",
        input_schema={"type": "object"},
        output_schema={"type": "object"},
        version="9",
        approval_when="amount >",
    )
    publish(stack, bad)
    time.sleep(1.0)
    after = next(s for s in stack.get("/services")["items"] if s["name"] == GATED_SERVICE)
    assert after["version"] == before["version"] == "1"
    assert [v["version"] for v in after["versions"]] == ["1"]

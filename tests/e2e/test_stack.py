"""The whole stack as ``orra up --demo`` runs it, driven by the real ``orra`` CLI and HTTP.

One stack for the module (nats-server, planner, dispatcher, notifier, gateway, the example
services and one slow test service), on free ports in a temporary data directory. The
seed's (../shared/SEED-orchestrating-actions.md) commands, curl body, ``inspect`` layout and
webhook payload are checked as written; the last test stops the stack and starts another on
the same data directory, which must answer for what the first one did.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import standardwebhooks

from tests.e2e.stack_fixtures import (
    ORRA,
    SLOW_SERVICE,
    StackHandle,
    WebhookReceiver,
    read_sse,
    verify_standard_webhook,
)

pytestmark = pytest.mark.e2e

EXAMPLE_SERVICES = {
    "PaymentService",
    "InventoryService",
    "DeliveryAgent",
    "NotificationService",
    "FraudCheck",
    "RefundService",
}
ECOMMERCE = "Process new order and arrange optimal delivery"
ITEMS = '[{"id":"PROD789","quantity":2}]'
ID = re.compile(r"Orchestration (o_[a-z0-9]+)")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    base = tmp_path_factory.mktemp("orra-up")
    handle = StackHandle(
        data_dir=base / "data",
        cli_config=base / "cli-config.json",
        # hundreds of ms per example task scaled down, yet long enough to overlap in parallel
        extra_env={"ORRA_EXAMPLES_LATENCY_SCALE": "0.3"},
    )
    try:
        handle.start(demo=True)
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def shared() -> dict[str, Any]:
    """What earlier tests created, for the restart test at the end."""
    return {}


@pytest.fixture(scope="module")
def order(stack: StackHandle, receiver: WebhookReceiver, shared: dict[str, Any]) -> dict[str, Any]:
    """The seed's e-commerce action, submitted with ``--wait``: its id and CLI output."""
    hook = receiver.url("/webhooks/order-processing")
    result = stack.orra(
        "verify", "run", ECOMMERCE,
        "-d", "orderId:ORD123",
        "-d", "customerId:CUST456",
        "-d", f"items:{ITEMS}",
        "-w", hook,
        "--wait",
    )  # fmt: skip
    assert result.returncode == 0, stack.explain(result)
    match = ID.search(result.stdout)
    assert match, result.stdout
    shared["order"] = match.group(1)
    return {"id": match.group(1), "stdout": result.stdout, "hook": hook}


def _orch_id(stdout: str) -> str:
    match = ID.search(stdout)
    assert match, stdout
    return match.group(1)


# --- orra up ---------------------------------------------------------------------------------


def test_up_is_ready_quickly_and_configures_the_cli(stack: StackHandle) -> None:
    # the example services log "serving", not "ready": start must not wait out its timeout
    assert stack.start_seconds < 30, f"the stack took {stack.start_seconds:.0f}s to start"
    config = json.loads(stack.cli_config.read_text())
    assert config["gatewayUrl"] == stack.gateway_url
    assert config["apiKey"] == stack.api_key
    assert stack.cli_config.stat().st_mode & 0o077 == 0
    # with nothing but the config file `orra up` wrote, the CLI finds the stack
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORRA_")}
    env["ORRA_CONFIG"] = str(stack.cli_config)
    listed = stack.orra("services", "ls", env=env)
    assert listed.returncode == 0, stack.explain(listed)
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "KIND", "STATUS"]
    for name in EXAMPLE_SERVICES:
        row = next((line for line in lines if line.startswith(name + " ")), None)
        assert row is not None, listed.stdout
        assert "healthy" in row.split()
        assert "ago" in row or "just now" in row, row  # LAST SEEN from the heartbeat
    services = stack.orra_json("services", "ls")["items"]
    by_name = {s["name"]: s for s in services}
    assert set(by_name) >= EXAMPLE_SERVICES | {SLOW_SERVICE}
    assert all(by_name[n]["health"] == "healthy" for n in EXAMPLE_SERVICES)
    assert by_name["DeliveryAgent"]["kind"] == "agent"


# --- the seed's CLI commands -------------------------------------------------------------------


def test_seed_basic_action_that_no_service_can_do_exits_1_with_the_reasons(
    stack: StackHandle,
) -> None:
    result = stack.orra("verify", "run", "reconcile last nights invoices")
    assert result.returncode == 1, stack.explain(result)
    assert result.stdout == ""
    assert "could not be planned" in result.stderr
    reason = "nothing registered in project 'default' can reconcile: "
    assert result.stderr.count(reason) == 1, result.stderr  # printed once, not twice
    assert "reconcil" in result.stderr
    # with --json a script still gets one object on stdout, and the same exit code
    as_json = stack.orra("verify", "run", "reconcile last nights invoices", "--json")
    assert as_json.returncode == 1, stack.explain(as_json)
    out = json.loads(as_json.stdout)
    assert out["status"] == "not_actionable"
    assert out["orchestrationId"].startswith("o_")
    assert any(reason in r for r in out["reasons"]), out
    assert out["tasks"] == []
    assert out["parallel_groups"] == []


def test_seed_action_with_parameters_prints_id_and_parallel_groups(stack: StackHandle) -> None:
    result = stack.orra(
        "verify", "run", "Estimate order delivery and notify customer",
        "-d", "orderId:ORD456",
        "-d", "customerId:ABC123",
    )  # fmt: skip
    assert result.returncode == 0, stack.explain(result)
    orch = _orch_id(result.stdout)
    assert "┌─ Parallel groups" in result.stdout
    assert re.search(r"│ 1\. (delivery, notification|notification, delivery)\n", result.stdout)
    assert '"orderId": "ORD456"' in result.stdout
    assert '"customerId": "ABC123"' in result.stdout
    assert f"orra inspect -f {orch}" in result.stderr
    view = stack.wait_status(orch, {"completed"})
    assert {t["service"] for t in view["tasks"]} == {"DeliveryAgent", "NotificationService"}
    # the same with --json --wait: one object for scripts
    out = stack.orra_json(
        "verify", "run", "Estimate order delivery and notify customer",
        "-d", "orderId:ORD456", "-d", "customerId:ABC123", "--wait",
    )  # fmt: skip
    assert out["status"] == "completed"
    assert out["orchestrationId"].startswith("o_")
    assert out["orchestrationId"] != orch
    assert sorted(map(sorted, out["parallel_groups"])) == [["delivery", "notification"]]
    assert {t["id"] for t in out["tasks"]} == {"delivery", "notification"}
    assert out["results"]["deliveryTracking"].startswith("DLV")
    assert out["error"] is None


def test_seed_refund_with_webhook_delivers_a_signed_result(
    stack: StackHandle, receiver: WebhookReceiver
) -> None:
    hook = receiver.url("/webhooks/results")
    result = stack.orra(
        "verify", "run", "Process refund request ensuring it is not fraudulent",
        "-w", hook,
        "-d", "orderId:ORD789",
    )  # fmt: skip
    assert result.returncode == 0, stack.explain(result)
    orch = _orch_id(result.stdout)
    assert re.search(r"│ 1\. fraudCheck\n│ 2\. refund\n", result.stdout), result.stdout
    delivery = receiver.wait_for(orch, "/webhooks/results")
    body = delivery.json
    assert {"orchestrationId", "status", "results", "error"} <= set(body), body
    assert body["orchestrationId"] == orch
    assert body["status"] == "completed"
    assert body["error"] is None
    assert body["results"]["refundStatus"] in {"refunded", "rejected"}
    assert "fraudCleared" in body["results"]
    # the seed's Express handler took the `status === 'completed'` branch
    assert receiver.completed[orch] == body["results"]
    assert orch not in receiver.failed
    # Standard Webhooks: verifies with the project's secret, as the user fetches it
    secret = stack.get("/webhooks/secret")["secret"]
    assert secret.startswith("whsec_")
    assert delivery.headers["webhook-id"].startswith("msg_")
    assert verify_standard_webhook(secret, delivery.headers, delivery.body)
    assert standardwebhooks.Webhook(secret).verify(delivery.body, dict(delivery.headers))
    assert not verify_standard_webhook(secret, delivery.headers, delivery.body + b" ")
    # and the orchestration records the delivery
    view = stack.wait_status(orch, {"completed"})
    deadline = time.monotonic() + 10
    while not any(w.get("status") == "delivered" for w in view.get("webhooks") or []):
        assert time.monotonic() < deadline, view.get("webhooks")
        time.sleep(0.2)
        view = stack.get(f"/orchestrations/{orch}")
    assert {"url": hook, "status": "delivered"}.items() <= view["webhooks"][0].items()


def test_a_part_nothing_can_do_is_refused_unless_partial_plans_are_allowed(
    stack: StackHandle, receiver: WebhookReceiver
) -> None:
    action = "Estimate order delivery and translate the invoice into French"
    refused = stack.orra("verify", "run", action, "-d", "orderId:ORD321")
    assert refused.returncode == 1, stack.explain(refused)
    assert "can translate: 'translate the invoice into French'" in refused.stderr
    assert "--allow-partial" in refused.stderr
    as_json = stack.orra("verify", "run", action, "-d", "orderId:ORD321", "--json")
    out = json.loads(as_json.stdout)
    assert out["status"] == "not_actionable"
    assert out["tasks"] == []

    hook = receiver.url("/webhooks/partial")
    partial = stack.orra_json(
        "verify", "run", action, "-d", "orderId:ORD321", "--allow-partial", "-w", hook,
        "--wait",
    )  # fmt: skip
    assert partial["status"] == "completed", partial
    [gap] = partial["uncovered"]
    assert gap["part"] == "translate the invoice into French"
    assert "can translate" in gap["reason"]
    assert [(t["service"], t["serves"]) for t in partial["tasks"]] == [
        ("DeliveryAgent", "Estimate order delivery")
    ]
    orch = partial["orchestrationId"]
    view = stack.get(f"/orchestrations/{orch}")
    assert view["allowPartial"] is True
    assert view["uncovered"] == [gap]
    assert view["parts"] == ["Estimate order delivery", "translate the invoice into French"]
    shown = stack.orra("inspect", "-d", orch)
    assert "┌─ Left out" in shown.stdout
    assert "'translate the invoice into French'" in shown.stdout
    assert "│ Serves: 'Estimate order delivery'" in shown.stdout
    body = receiver.wait_for(orch, "/webhooks/partial").json
    assert body["status"] == "completed"
    assert body["uncovered"] == [gap]


def test_seed_ecommerce_order_with_wait_completes_with_the_seeds_results(
    stack: StackHandle, receiver: WebhookReceiver, order: dict[str, Any]
) -> None:
    out = order["stdout"]
    assert re.search(r"│ 1\. (inventory, payment|payment, inventory)\n", out), out
    assert re.search(r"│ 2\. (delivery, notification|notification, delivery)\n", out), out
    assert "│ Status: completed" in out
    assert "\nResults\n" in out
    # the item list was sent as JSON, not as a string
    assert '"items": [{"id": "PROD789", "quantity": 2}]' in out
    delivery = receiver.wait_for(order["id"], "/webhooks/order-processing")
    body = delivery.json
    assert body["orchestrationId"] == order["id"]
    assert body["status"] == "completed"
    results = body["results"]
    assert results["orderStatus"] == "processed"
    assert results["paymentStatus"] == "confirmed"
    assert re.fullmatch(r"DLV\d{3}", results["deliveryTracking"])
    assert dt.date.fromisoformat(results["estimatedDelivery"]) > dt.datetime.now(dt.UTC).date()
    assert receiver.completed[order["id"]] == results
    # the stable view: each task's output under its task id, for every task of the plan
    view = stack.get(f"/orchestrations/{order['id']}")
    by_task = body["resultsByTask"]
    assert list(by_task) == [t["id"] for t in view["tasks"]]
    assert by_task == {t["id"]: t["output"] for t in view["tasks"]}
    assert receiver.by_task[order["id"]] == by_task
    # the flat view is the outputs merged in plan order (the view's results too)
    flat: dict[str, Any] = {}
    for output in by_task.values():
        flat.update(output)
    assert results == flat == view["results"]
    assert body["compensation"] is None
    assert body["uncovered"] == []


def test_seed_ecommerce_block_typed_in_bash_verbatim(
    stack: StackHandle, receiver: WebhookReceiver
) -> None:
    # the seed's lines as a user types them (unquoted JSON: bash brace-expands it)
    script = (
        'orra verify run "Process new order and arrange optimal delivery" \\\n'
        "  -d orderId:ORD123 \\\n"
        "  -d customerId:CUST456 \\\n"
        '  -d items:[{"id":"PROD789","quantity":2}] \\\n'
        f"  -w {receiver.url('/webhooks/order-processing')}\n"
    )
    env = stack.env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, stack.explain(result)
    orch = _orch_id(result.stdout)
    body = receiver.wait_for(orch, "/webhooks/order-processing").json
    assert body["status"] == "completed"
    assert body["results"]["orderStatus"] == "processed"
    view = stack.get(f"/orchestrations/{orch}")
    items = next(d["value"] for d in view["data"] if d["field"] == "items")
    assert items == [{"id": "PROD789", "quantity": 2}]


# --- the seed's HTTP request -------------------------------------------------------------------


def test_seed_curl_request_answers_201_with_tasks_and_parallel_groups(stack: StackHandle) -> None:
    body = """{
    "action": {
      "content": "Process order payment and update inventory"
    },
    "data": [
      {"field": "orderId", "value": "ORD123"},
      {"field": "amount", "value": "299.99"},
      {"field": "productId", "value": "PROD456"}
    ],
    "webhook": "https://your-app.com/webhooks/orra"
  }"""
    resp = httpx.post(
        f"{stack.gateway_url}/orchestrations",
        headers={"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"},
        content=body,
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["orchestrationId"].startswith("o_")
    tasks = {t["id"]: t for t in created["tasks"]}
    for task in created["tasks"]:
        assert set(task) == {"id", "service", "input", "serves"}  # the seed's, + coverage
        assert isinstance(task["input"], dict)
    assert tasks["payment"]["service"] == "PaymentService"
    assert tasks["inventory"]["service"] == "InventoryService"
    assert tasks["payment"]["serves"] == "Process order payment"
    assert tasks["inventory"]["serves"] == "update inventory"
    assert created["uncovered"] == []
    assert tasks["payment"]["input"]["amount"] == 299.99
    assert tasks["inventory"]["input"]["productId"] == "PROD456"
    groups = created["parallel_groups"]
    assert sorted(t for g in groups for t in g) == sorted(tasks)
    # payment and inventory are independent: they run in parallel, in the first group
    assert sorted(groups[0]) == ["inventory", "payment"]
    assert "parallelGroups" not in created


# --- monitoring --------------------------------------------------------------------------------


def test_ps_lists_orchestrations_newest_first(stack: StackHandle, order: dict[str, Any]) -> None:
    result = stack.orra("ps")
    assert result.returncode == 0, stack.explain(result)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "ACTION", "STATUS", "TASKS", "CREATED"]
    row = next(line for line in lines if line.startswith(order["id"]))
    assert ECOMMERCE in row
    assert re.search(r" completed +4 +(\d+[smhd] ago|just now)$", row), row
    listed = stack.orra_json("ps")
    ids = [item["id"] for item in listed["items"]]
    assert order["id"] in ids
    created = [item["createdAt"] for item in listed["items"]]
    assert created == sorted(created, reverse=True)
    not_actionable = stack.orra_json("ps", "--status", "not_actionable")["items"]
    assert not_actionable
    assert all(item["status"] == "not_actionable" for item in not_actionable)


def test_inspect_draws_the_seeds_layout(stack: StackHandle, order: dict[str, Any]) -> None:
    for args in (("inspect", order["id"]), ("inspect", "-d", order["id"])):
        result = stack.orra(*args)
        assert result.returncode == 0, stack.explain(result)
        lines = result.stdout.splitlines()
        assert lines[:3] == [
            "┌─ Orchestration Details",
            f"│ ID: {order['id']}",
            "│ Status: completed",
        ]
        assert lines[3] == f"│ Action: {ECOMMERCE}"
        assert lines[4].startswith("│ Created: ")
        assert lines[5:7] == ["", "┌─ Tasks"]
        assert re.fullmatch(r"│ ID +SERVICE +STATUS +DURATION", lines[7]), lines[7]
        rows = {line.split()[1]: line for line in lines[8:12]}
        assert set(rows) == {"payment", "inventory", "delivery", "notification"}, lines
        first, second = (line.split()[1] for line in lines[8:10])
        assert {first, second} == {"payment", "inventory"}
        assert rows[second].endswith(f"# Ran parallel with {first}"), rows[second]
        assert "#" not in rows[first]
        # the second group, in plan order: the first started after the first group, the
        # other ran beside it (both serve the order: which is listed first is the plan's)
        third, fourth = (line.split()[1] for line in lines[10:12])
        assert {third, fourth} == {"delivery", "notification"}
        assert re.search(r"# Started after (payment & inventory|inventory & payment)$",
                         rows[third]), rows[third]  # fmt: skip
        assert rows[fourth].endswith(f"# Ran parallel with {third}")
        for row in rows.values():
            assert re.search(r" completed +\d+(ms|\.\ds) ", row + " "), row
    detailed = stack.orra("inspect", "-d", order["id"]).stdout
    for section in ("┌─ Task payment (PaymentService)", "┌─ Plan", "┌─ Results", "┌─ Webhooks"):
        assert section in detailed
    assert '"orderStatus": "processed"' in detailed
    assert order["hook"] in detailed  # the webhook delivery, recorded
    view = stack.orra_json("inspect", order["id"])
    assert view["status"] == "completed"
    assert view["results"]["paymentStatus"] == "confirmed"
    assert all(t["status"] == "completed" and t["durationMs"] > 0 for t in view["tasks"])


def test_logs_print_the_raw_events_in_order(stack: StackHandle, order: dict[str, Any]) -> None:
    result = stack.orra("logs", order["id"])
    assert result.returncode == 0, stack.explain(result)
    kinds = [line.split()[2] for line in result.stdout.splitlines() if line.strip()]
    assert kinds[:2] == ["action.submitted", "plan.created"]
    assert kinds.count("task.dispatched") == 4
    assert kinds.count("task.completed") == 4
    assert "orchestration.done" in kinds
    assert kinds.index("orchestration.done") > max(
        i for i, k in enumerate(kinds) if k == "task.completed"
    )
    events = [
        json.loads(line) for line in stack.orra("logs", order["id"], "--json").stdout.splitlines()
    ]
    assert [e["type"] for e in events] == kinds
    assert all(e["orchestration_id"] == order["id"] for e in events)


def test_gateway_sse_replays_a_finished_orchestrations_history(
    stack: StackHandle, order: dict[str, Any]
) -> None:
    events = read_sse(
        f"{stack.gateway_url}/orchestrations/{order['id']}/events",
        stack.api_key,
        until="orchestration.done",
    )
    types = [e["event"] for e in events]
    assert types[0] == "action.submitted"
    assert types[-1] == "orchestration.done"
    assert types.count("task.completed") == 4
    seqs = [int(e["id"]) for e in events]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    payloads = [json.loads(e["data"]) for e in events]
    assert [p["type"] for p in payloads] == types
    assert payloads[-1]["results"]["orderStatus"] == "processed"
    # resume after the plan (Last-Event-ID): what followed it comes first
    with httpx.stream(
        "GET",
        f"{stack.gateway_url}/orchestrations/{order['id']}/events",
        headers={"Authorization": f"Bearer {stack.api_key}", "Last-Event-ID": str(seqs[1])},
        timeout=15,
    ) as resp:
        first_id = next(line for line in resp.iter_lines() if line.startswith("id:"))
    assert int(first_id.removeprefix("id:").strip()) == seqs[2]


def test_inspect_follow_shows_a_live_orchestration_to_its_end(stack: StackHandle) -> None:
    out = stack.orra_json(
        "verify", "run", "Archive the ledger snapshot",
        "-d", "ledgerId:L1", "-d", "holdSeconds:3",
    )  # fmt: skip
    orch = out["orchestrationId"]
    assert out["status"] == "running", out
    proc = subprocess.Popen(
        [*ORRA, "inspect", "-f", orch],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=stack.env(),
    )
    try:
        time.sleep(1.0)
        # it is following a live orchestration: neither has ended yet
        assert proc.poll() is None, proc.communicate()
        assert stack.get(f"/orchestrations/{orch}")["status"] == "running"
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "│ Status: completed" in stdout
    assert re.search(r"│ archiveVault +ArchiveVault +completed +\d\.\ds", stdout), stdout
    followed = stack.orra_json("inspect", "-f", orch)
    assert followed["status"] == "completed"
    assert followed["results"] == {"archiveStatus": "archived", "heldSeconds": 3.0}


def test_abort_stops_a_running_orchestration(stack: StackHandle, receiver: WebhookReceiver) -> None:
    out = stack.orra_json(
        "verify", "run", "Archive the ledger snapshot",
        "-d", "ledgerId:L2", "-d", "holdSeconds:30",
        "-w", receiver.url("/webhooks/aborted"),
    )  # fmt: skip
    orch = out["orchestrationId"]
    stack.wait_status(orch, {"running"})
    aborted = stack.orra_json("abort", orch, "--reason", "changed my mind")
    assert aborted["status"] == "aborted"
    assert aborted.get("orchestrationId", aborted.get("id")) == orch
    view = stack.get(f"/orchestrations/{orch}")
    assert view["status"] == "aborted"
    assert view["finishedAt"] is not None
    shown = stack.orra("inspect", orch)
    assert "│ Status: aborted" in shown.stdout
    again = stack.orra("abort", orch)
    assert again.returncode == 1, stack.explain(again)
    assert again.stderr.strip()
    # an orchestration that does not exist: a clear error that says what to do, exit 1
    missing = stack.orra("abort", "o_doesnotexist00")
    assert missing.returncode == 1
    assert "orra ps" in missing.stderr
    # the webhook says so; the extended seed handler took its `aborted` branch
    body = receiver.wait_for(orch, "/webhooks/aborted").json
    assert body["type"] == "orchestration.result"
    assert (body["status"], body["error"], body["results"]) == ("aborted", "changed my mind", None)
    assert body["resultsByTask"] is None
    assert receiver.aborted[orch] == ("changed my mind", None, None)


def test_the_published_document_describes_every_delivery(
    stack: StackHandle, receiver: WebhookReceiver
) -> None:
    # what the running gateway serves is what every delivery above was checked against
    from tests import webhook_contract

    served = httpx.get(f"{stack.gateway_url}/schema/openapi.json", timeout=10).json()
    published = webhook_contract.published_document()
    assert served["webhooks"] == published["webhooks"]
    assert set(served["webhooks"]) == {
        "orchestration.result",
        "orchestration.compensation",
        "orchestration.approval_requested",
    }
    for name, schema in published["components"]["schemas"].items():
        if name.startswith("Webhook"):
            assert served["components"]["schemas"][name] == schema
    for delivery in receiver.deliveries:
        assert webhook_contract.problems(delivery.headers, delivery.body) == []


def test_api_keys_and_webhooks(
    stack: StackHandle, receiver: WebhookReceiver, shared: dict[str, Any]
) -> None:
    generated = stack.orra_json("api-keys", "gen", "--name", "e2e")
    key = generated["apiKey"]
    assert key
    assert key != stack.api_key
    shared["key"] = key
    with_new_key = stack.orra("ps", "--json", env=stack.env(ORRA_API_KEY=key))
    assert with_new_key.returncode == 0, stack.explain(with_new_key)
    assert "items" in json.loads(with_new_key.stdout)
    keys = stack.orra_json("api-keys", "ls")["items"]
    assert generated["id"] in {k["id"] for k in keys}
    assert key not in json.dumps(keys)  # shown once, never listed
    plain = stack.orra("api-keys", "gen")
    assert plain.returncode == 0
    assert plain.stdout.strip().startswith("orra_")
    bad = stack.orra("ps", env=stack.env(ORRA_API_KEY="orra_not_a_key"))
    assert bad.returncode == 1
    assert bad.stdout == ""

    url = receiver.url("/webhooks/project")
    added = stack.orra_json("webhooks", "add", url)
    assert added["url"] == url
    assert url in stack.orra("webhooks", "ls").stdout
    assert url in {w["url"] for w in stack.orra_json("webhooks", "ls")["items"]}
    # a project webhook receives every later result
    out = stack.orra_json(
        "verify", "run", "Estimate order delivery and notify customer",
        "-d", "orderId:ORD457", "-d", "customerId:ABC124",
    )  # fmt: skip
    body = receiver.wait_for(out["orchestrationId"], "/webhooks/project").json
    assert body["status"] == "completed"
    assert body["results"]["notificationStatus"] == "sent"


def test_up_again_on_the_same_data_dir_resumes_the_state(
    stack: StackHandle, order: dict[str, Any], shared: dict[str, Any]
) -> None:
    before = stack.orra_json("inspect", order["id"])
    key = stack.api_key
    stack.restart(demo=False)
    assert stack.api_key == key  # the local key is kept in the data directory
    after = stack.orra_json("inspect", order["id"])
    assert after["status"] == "completed"
    kept = ("id", "service", "group", "status", "attempts", "input", "output", "startedAt")
    assert [{k: t[k] for k in kept} for t in after["tasks"]] == [
        {k: t[k] for k in kept} for t in before["tasks"]
    ]
    assert after["results"] == before["results"]
    assert after["parallel_groups"] == before["parallel_groups"]
    shown = stack.orra("inspect", "-d", order["id"])
    assert "│ Status: completed" in shown.stdout
    ids = {item["id"] for item in stack.orra_json("ps", "--limit", "100")["items"]}
    assert order["id"] in ids
    if "key" in shared:  # keys generated before the restart still work
        result = stack.orra("ps", "--json", env=stack.env(ORRA_API_KEY=shared["key"]))
        assert result.returncode == 0, stack.explain(result)

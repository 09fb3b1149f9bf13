"""Python and Node services in the same orchestrations, on the whole stack.

``orra up --demo`` (nats-server, planner, dispatcher, notifier, gateway and the Python
example services) plus the TypeScript example service ``QuoteService``
(examples/typescript, built on @orra/sdk by ``make install``) as a Node process. The
offline planner plans "Reserve inventory, quote the order and process payment" as
InventoryService (Python) → QuoteService (Node) → PaymentService (Python): data crosses
the language boundary both ways, and so does compensation when the payment fails (the
Node quote and the Python reservation are reverted) or when the Node service aborts (the
Python reservation is reverted).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.stack_fixtures import REPO, StackHandle, WebhookReceiver

pytestmark = pytest.mark.e2e

QUOTE_SERVICE = REPO / "examples" / "typescript" / "dist" / "quote.js"
ACTION = "Reserve inventory, quote the order and process payment"
UNIT_PRICE, SHIPPING = 149.5, 5.0


@pytest.fixture(scope="module")
def effects_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("effects") / "effects.jsonl"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, effects_file: Path) -> Iterator[StackHandle]:
    node = shutil.which("node")
    if node is None or not QUOTE_SERVICE.exists():
        pytest.fail(f"needs node and {QUOTE_SERVICE.relative_to(REPO)}: run `make install`")
    base = tmp_path_factory.mktemp("orra-up-ts")
    handle = StackHandle(
        data_dir=base / "data",
        cli_config=base / "cli-config.json",
        extra_env={
            "ORRA_EXAMPLES_LATENCY_SCALE": "0.1",
            "ORRA_EXAMPLES_EFFECTS_FILE": str(effects_file),
        },
        children=[("quote", [node, str(QUOTE_SERVICE)])],
    )
    try:
        handle.start(demo=True)
        yield handle
    finally:
        handle.stop()


def submit(stack: StackHandle, hook: str, **data: Any) -> dict[str, Any]:
    body = {
        "action": {"content": ACTION},
        "data": [{"field": k, "value": v} for k, v in data.items()],
        "webhook": hook,
    }
    resp = httpx.post(
        f"{stack.gateway_url}/orchestrations",
        headers={"Authorization": f"Bearer {stack.api_key}"},
        json=body,
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


def effects(path: Path, orch: str) -> list[tuple[str, str]]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(e["service"], e["outcome"]) for e in lines if e["orchestration_id"] == orch]


def test_the_node_service_registers_beside_the_python_ones(stack: StackHandle) -> None:
    services = {s["name"]: s for s in stack.get("/services")["items"]}
    quote = services["QuoteService"]
    assert quote["revertible"] is True
    assert quote["health"] == "healthy"
    assert quote["inputSchema"]["properties"]["reservedItems"]["type"] == "integer"
    assert {"InventoryService", "PaymentService"} <= set(services)


def test_data_flows_python_to_node_to_python(stack: StackHandle, receiver: WebhookReceiver) -> None:
    hook = receiver.url("/hooks/ok")
    created = submit(stack, hook, orderId="ORD-TS1", productId="PROD456", quantity=2)
    tasks = {t["id"]: t for t in created["tasks"]}
    assert {t["service"] for t in created["tasks"]} == {
        "InventoryService",
        "QuoteService",
        "PaymentService",
    }
    assert created["parallel_groups"] == [["inventory"], ["quote"], ["payment"]]
    assert tasks["quote"]["input"]["reservedItems"] == "$inventory.reservedItems"
    assert tasks["payment"]["input"]["amount"] == "$quote.amount"

    delivery = receiver.wait_for(created["orchestrationId"], "/hooks/ok")
    payload = delivery.json
    assert payload["status"] == "completed", payload
    view = stack.get(f"/orchestrations/{created['orchestrationId']}")
    by_id = {t["id"]: t for t in view["tasks"]}
    # Python → Node: the reservation's count is the quote's input ...
    assert by_id["inventory"]["output"]["reservedItems"] == 2
    assert by_id["quote"]["input"]["reservedItems"] == 2
    # ... and Node → Python: the quote's amount is what the payment charged.
    amount = 2 * UNIT_PRICE + SHIPPING
    assert by_id["quote"]["output"]["amount"] == amount
    assert by_id["payment"]["input"]["amount"] == amount
    assert by_id["payment"]["output"]["amountCharged"] == amount
    assert payload["results"]["amount"] == amount
    assert payload["results"]["paymentStatus"] == "confirmed"
    assert payload["results"]["quoteId"].startswith("QTE")
    # the Node service's progress update reached the read model
    assert by_id["quote"]["status"] == "completed"


def test_a_python_failure_compensates_the_node_task(
    stack: StackHandle, receiver: WebhookReceiver, effects_file: Path
) -> None:
    hook = receiver.url("/hooks/limit")
    # 1000 items: the quote (Node) exceeds the card limit, the payment (Python) fails for good
    created = submit(stack, hook, orderId="ORD-TS2", productId="PROD456", quantity=1000)
    orch = created["orchestrationId"]
    payload = receiver.wait_for(orch, "/hooks/limit").json
    assert payload["status"] == "failed", payload
    assert "exceeds the card limit" in payload["error"]
    # reverse order of completion: the Node quote first, then the Python reservation
    assert payload["compensation"] == {
        "compensated": ["quote", "inventory"],
        "failed": [],
        "skipped": [],
    }
    done = effects(effects_file, orch)
    assert done.index(("QuoteService", "reverted")) < done.index(("InventoryService", "reverted"))
    assert done.count(("QuoteService", "completed")) == 1


def test_a_node_abort_compensates_the_python_task(
    stack: StackHandle, receiver: WebhookReceiver, effects_file: Path
) -> None:
    hook = receiver.url("/hooks/abort")
    # out of stock: nothing reserved, the Node quote aborts the orchestration
    created = submit(stack, hook, orderId="ORD-TS3", productId="OOS-9", quantity=1)
    orch = created["orchestrationId"]
    payload = receiver.wait_for(orch, "/hooks/abort").json
    assert payload["status"] == "aborted", payload
    assert payload["results"] == {"orderId": "ORD-TS3", "by": "QuoteService"}
    assert "nothing reserved for order ORD-TS3" in payload["error"]
    assert payload["compensation"]["compensated"] == ["inventory"]
    view = stack.get(f"/orchestrations/{orch}")
    statuses = {t["id"]: t["status"] for t in view["tasks"]}
    assert statuses["quote"] == "aborted"
    assert statuses["payment"] == "pending"  # never dispatched
    assert ("InventoryService", "reverted") in effects(effects_file, orch)
    assert ("PaymentService", "completed") not in effects(effects_file, orch)

"""Retention shorter than a running orchestration, on the whole stack as ``orra up`` runs it.

The stack keeps ended orchestrations' events for 10 seconds (``ORRA_RETENTION_MAX_AGE_S``),
far less than the slow test service's task. The orchestration that runs across several
retention passes must keep every event (it completes, its webhook is delivered, ``inspect``
and ``logs`` show all of it), while an orchestration that ended before it expires to its
summary: ``GET /orchestrations/{id}`` says ``expired``, ``orra ps`` marks it, ``orra
inspect`` shows the summary and ``orra logs`` says why it has nothing to print.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.stack_fixtures import StackHandle, WebhookReceiver

pytestmark = pytest.mark.e2e

MAX_AGE_S = 10.0
HOLD_S = 24


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    base = tmp_path_factory.mktemp("orra-up-retention")
    handle = StackHandle(
        data_dir=base / "data",
        cli_config=base / "cli-config.json",
        extra_env={
            "ORRA_EXAMPLES_LATENCY_SCALE": "0.2",
            "ORRA_RETENTION_MAX_AGE_S": str(MAX_AGE_S),
            "ORRA_RETENTION_INTERVAL_S": "0.5",
            "ORRA_GATEWAY_SNAPSHOT_INTERVAL_S": "0.5",
        },
    )
    try:
        handle.start(demo=True)
        yield handle
    finally:
        handle.stop()


def _wait_view(
    stack: StackHandle, orch: str, predicate: Any, timeout_s: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = stack.get(f"/orchestrations/{orch}")
        if predicate(view):
            return view
        time.sleep(0.2)
    raise AssertionError(f"{orch} never got there: {view}")


def _logged_types(stack: StackHandle, orch: str) -> list[str]:
    result = stack.orra("logs", orch)
    assert result.returncode == 0, stack.explain(result)
    return re.findall(r"^\s*\d+\s+\S+\s+([a-z_.]+)", result.stdout, flags=re.MULTILINE)


def test_a_retention_shorter_than_a_running_orchestration_does_not_break_it(
    stack: StackHandle, receiver: WebhookReceiver
) -> None:
    before = stack.orra_json(
        "verify", "run", "Estimate order delivery and notify customer",
        "-d", "orderId:ORD456", "-d", "customerId:ABC123",
        "--wait",
    )  # fmt: skip
    early = before["orchestrationId"]
    assert before["status"] == "completed", before

    hook = receiver.url("/webhooks/archive")
    slow = stack.orra_json(
        "verify", "run", "Archive the ledger snapshot",
        "-d", "ledgerId:L9", "-d", f"holdSeconds:{HOLD_S}",
        "-w", hook,
    )  # fmt: skip
    orch = slow["orchestrationId"]
    started = time.monotonic()
    assert slow["status"] == "running", slow

    # While it runs, the orchestration that ended before it expires...
    expired = _wait_view(stack, early, lambda v: v.get("expired"), timeout_s=HOLD_S - 1)
    assert expired["status"] == "completed"
    assert expired["expiredAt"] is not None
    assert expired["tasks"] == []
    assert expired["taskCount"] >= 1
    assert time.monotonic() - started < HOLD_S, "the early one expired only after the slow one"
    # ...and the running one keeps every event, well past the maximum age.
    time.sleep(max(0.0, MAX_AGE_S + 1.0 - (time.monotonic() - started)))
    running = stack.get(f"/orchestrations/{orch}")
    assert running["status"] == "running"
    assert not running.get("expired")
    assert running["action"] == "Archive the ledger snapshot"
    assert [t["service"] for t in running["tasks"]] == ["ArchiveVault"]
    assert _logged_types(stack, orch)[:3] == [
        "action.submitted",
        "plan.created",
        "task.dispatched",
    ]

    # It completes, its webhook is delivered once, and inspect shows all of it.
    delivery = receiver.wait_for(orch, "/webhooks/archive", timeout_s=HOLD_S + 30)
    assert delivery.json["status"] == "completed"
    assert delivery.json["results"] == {"archiveStatus": "archived", "heldSeconds": float(HOLD_S)}
    view = _wait_view(
        stack,
        orch,
        lambda v: any(w.get("status") == "delivered" for w in v.get("webhooks") or []),
    )
    assert view["status"] == "completed"
    assert not view.get("expired")
    assert view["data"] == [
        {"field": "ledgerId", "value": "L9"},
        {"field": "holdSeconds", "value": str(HOLD_S)},
    ] or {d["field"] for d in view["data"]} == {"ledgerId", "holdSeconds"}
    # The CLI takes a while to start on a busy machine: both commands at once, well within
    # the maximum age after the end.
    with ThreadPoolExecutor(2) as pool:
        inspecting = pool.submit(stack.orra, "inspect", "-d", orch)
        logging = pool.submit(_logged_types, stack, orch)
        shown, types = inspecting.result(), logging.result()
    assert shown.returncode == 0, stack.explain(shown)
    assert "│ Status: completed" in shown.stdout
    assert re.search(r"│ archiveVault +ArchiveVault +completed", shown.stdout), shown.stdout
    assert "Expired" not in shown.stdout
    assert types[0] == "action.submitted"
    assert "orchestration.done" in types
    assert "webhook.delivered" in types
    assert [d.json["orchestrationId"] for d in receiver.deliveries].count(orch) == 1

    # The summary of the expired one, through the CLI.
    inspected = stack.orra("inspect", early)
    assert inspected.returncode == 0, stack.explain(inspected)
    assert "│ Status: completed" in inspected.stdout
    assert "│ Expired: events removed" in inspected.stdout
    assert "their details expired" in inspected.stdout
    listed = stack.orra("ps")
    assert listed.returncode == 0, stack.explain(listed)
    line = next(row for row in listed.stdout.splitlines() if row.startswith(early))
    assert "completed (expired)" in line
    logs = stack.orra("logs", early)
    assert logs.returncode == 1, stack.explain(logs)
    assert "have expired" in logs.stderr
    assert f"orra inspect {early}" in logs.stderr
    followed = stack.orra("inspect", "-f", early)
    assert followed.returncode == 0, stack.explain(followed)
    assert "│ Expired: events removed" in followed.stdout

    # Once it has ended for longer than the maximum age, it expires too.
    gone = _wait_view(stack, orch, lambda v: v.get("expired"), timeout_s=30)
    assert gone["status"] == "completed"
    assert gone["action"] == "Archive the ledger snapshot"

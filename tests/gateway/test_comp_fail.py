"""Compensation failures over HTTP, against the real gateway and nats-server.

The log is seeded with what the dispatcher appends when a compensation is given up
(``task.compensation_abandoned``); an operator then lists, resolves and ignores them.
"""

from __future__ import annotations

import asyncio

import httpx

from orra_events import (
    ActionSubmitted,
    Bus,
    OrchestrationFailed,
    PlanCreated,
    TaskCompensationAbandoned,
    TaskCompensationResolved,
    decode,
)
from tests.gateway.conftest import SEED_PLAN, ServerThread


async def seed(bus: Bus, oid: str, *tasks: str, project: str = "default") -> None:
    await bus.publish(
        ActionSubmitted(event_id=f"a:{oid}", orchestration_id=oid, action="pay", project=project)
    )
    await bus.publish(
        PlanCreated(
            event_id=f"p:{oid}",
            orchestration_id=oid,
            plan=SEED_PLAN,
            planner="offline",
            project=project,
        )
    )
    for task in tasks:
        await bus.publish(
            TaskCompensationAbandoned(
                event_id=f"cf:{oid}:{task}",
                orchestration_id=oid,
                task_id=task,
                service="PaymentService",
                input={"orderId": "ORD1"},
                output={"transactionId": "TXN1"},
                reason="inventory failed",
                error="refund API down",
                attempts=5,
            )
        )
    await bus.publish(
        OrchestrationFailed(event_id=f"end:{oid}", orchestration_id=oid, error="inventory failed")
    )


async def listed(client: httpx.AsyncClient, status: str = "failed") -> list[dict[str, object]]:
    for _ in range(100):  # the read model follows the log
        response = await client.get("/compensation-failures", params={"status": status})
        assert response.status_code == 200, response.text
        items: list[dict[str, object]] = response.json()["items"]
        if items:
            return items
        await asyncio.sleep(0.05)
    return []


async def test_list_resolve_ignore_and_conflicts(
    client: httpx.AsyncClient, bus: Bus, server: ServerThread
) -> None:
    await seed(bus, "o_cf1", "payment", "inventory")
    items = await listed(client)
    assert {i["id"] for i in items} == {"o_cf1:payment", "o_cf1:inventory"}
    payment = next(i for i in items if i["taskId"] == "payment")
    assert payment["status"] == "failed"
    assert payment["error"] == "refund API down"
    assert payment["attempts"] == 5
    planned = next(t for t in SEED_PLAN.tasks if t.id == "payment")
    assert payment["input"] == planned.input  # the task's input, as the view holds it

    resolved = await client.post(
        "/compensation-failures/o_cf1/payment/resolve", json={"note": "refunded by hand"}
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["resolutionNote"] == "refunded by hand"
    again = await client.post("/compensation-failures/o_cf1/payment/ignore")
    assert again.status_code == 409, again.text
    assert again.headers["content-type"].startswith("application/problem+json")

    ignored = await client.post("/compensation-failures/o_cf1/inventory/ignore")
    assert ignored.status_code == 200, ignored.text
    assert ignored.json()["status"] == "ignored"

    # The operator's decisions are events in the log, by the caller's key.
    last = await bus.js.get_last_msg(
        bus.topology.events_stream,
        bus.topology.subject("task.compensation_resolved", "o_cf1"),
    )
    event = decode(last.data)
    assert isinstance(event, TaskCompensationResolved)
    assert (event.task_id, event.resolution) == ("inventory", "ignored")
    assert event.by

    for _ in range(100):
        if not (await client.get("/compensation-failures")).json()["items"]:
            break
        await asyncio.sleep(0.05)
    assert (await client.get("/compensation-failures")).json()["items"] == []
    by_status = {
        s: {
            i["id"]
            for i in (await client.get(f"/compensation-failures?status={s}")).json()["items"]
        }
        for s in ("resolved", "ignored", "all")
    }
    assert by_status == {
        "resolved": {"o_cf1:payment"},
        "ignored": {"o_cf1:inventory"},
        "all": {"o_cf1:payment", "o_cf1:inventory"},
    }
    bad = await client.get("/compensation-failures", params={"status": "bogus"})
    assert bad.status_code == 400


async def test_unknown_and_other_projects_failures_are_404(
    client: httpx.AsyncClient, bus: Bus, server: ServerThread
) -> None:
    await seed(bus, "o_cf2", "payment")
    assert await listed(client)
    missing = await client.post("/compensation-failures/o_nope/payment/resolve")
    assert missing.status_code == 404
    no_task = await client.post("/compensation-failures/o_cf2/nothing/resolve")
    assert no_task.status_code == 404
    created = await client.post(
        "/api-keys", json={"project": "acme", "name": "acme", "role": "admin"}
    )
    assert created.status_code == 201, created.text
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {created.json()['apiKey']}"}
    ) as acme:
        assert (await acme.get("/compensation-failures?status=all")).json()["items"] == []
        theirs = await acme.post("/compensation-failures/o_cf2/payment/resolve")
        assert theirs.status_code == 404
    assert (await client.get("/compensation-failures")).json()["items"][0]["status"] == "failed"

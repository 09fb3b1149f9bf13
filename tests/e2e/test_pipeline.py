"""The pipeline end to end: planner, dispatcher and example services as separate OS
processes against the real nats-server; actions appended as the gateway would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orra_events import (
    Bus,
    OrchestrationDone,
    OrchestrationFailed,
    PlanCreated,
    TaskCompleted,
    TaskDispatched,
    TaskRetrying,
)
from tests.e2e.conftest import Watcher, submit
from tests.e2e.processes import Processes

pytestmark = pytest.mark.e2e

NEW_ORDER = "Process new order and arrange optimal delivery"
NEW_ORDER_DATA = {
    "orderId": "ORD123",
    "customerId": "CUST456",
    "items": [{"id": "PROD789", "quantity": 2}],
}
PAY_AND_STOCK = "Process order payment and update inventory"
FAST_RETRIES = {"ORRA_DISPATCHER_RETRY_BASE_S": "0.05", "ORRA_DISPATCHER_RETRY_JITTER": "0"}


def start_pipeline(
    procs: Processes,
    *,
    examples: int = 1,
    dispatcher_env: dict[str, str] | None = None,
    examples_env: dict[str, str] | None = None,
) -> None:
    procs.start("planner", "orra_planner")
    procs.start("dispatcher", "orra_dispatcher", **{**FAST_RETRIES, **(dispatcher_env or {})})
    for n in range(examples):
        procs.start(f"examples{n}", "orra_examples", **(examples_env or {}))


def effects(base_env: dict[str, str]) -> list[dict[str, Any]]:
    path = Path(base_env["ORRA_EXAMPLES_EFFECTS_FILE"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def completed(watcher: Watcher, orch: str) -> dict[str, TaskCompleted]:
    return {e.task_id: e for e in watcher.of(orch, TaskCompleted)}  # type: ignore[attr-defined]


def dispatched(watcher: Watcher, orch: str) -> list[TaskDispatched]:
    return watcher.of(orch, TaskDispatched)  # type: ignore[return-value]


async def test_seed_order_runs_each_group_in_parallel_and_the_groups_in_order(
    bus: Bus, procs: Processes, watcher: Watcher
) -> None:
    start_pipeline(procs)
    orch = await submit(bus, NEW_ORDER, NEW_ORDER_DATA)

    done = await watcher.terminal(orch)

    assert isinstance(done, OrchestrationDone), done
    plan = watcher.of(orch, PlanCreated)[0]
    assert [set(g) for g in plan.plan.parallel_groups] == [
        {"payment", "inventory"},
        {"delivery", "notification"},
    ]  # type: ignore[attr-defined]
    tasks = completed(watcher, orch)
    pay, inv = tasks["payment"], tasks["inventory"]
    pay_end = pay.started_at + pay.duration_ms / 1000
    inv_end = inv.started_at + inv.duration_ms / 1000
    # payment and inventory ran at the same time: their execution intervals overlap
    assert max(pay.started_at, inv.started_at) < min(pay_end, inv_end)
    # delivery and notification started only after both had completed
    for later in ("delivery", "notification"):
        assert tasks[later].started_at >= max(pay_end, inv_end)
    # the seed's webhook result, aggregated
    assert done.results["orderStatus"] == "processed"  # type: ignore[attr-defined]
    assert done.results["paymentStatus"] == "confirmed"  # type: ignore[attr-defined]
    assert done.results["deliveryTracking"].startswith("DLV")  # type: ignore[attr-defined]
    assert "estimatedDelivery" in done.results  # type: ignore[attr-defined]


async def test_data_flows_through_references_into_dependent_inputs(
    bus: Bus, procs: Processes, watcher: Watcher
) -> None:
    start_pipeline(procs)
    orch = await submit(bus, NEW_ORDER, NEW_ORDER_DATA)
    assert isinstance(await watcher.terminal(orch), OrchestrationDone)

    outputs = {t: e.output for t, e in completed(watcher, orch).items()}
    inputs = {d.task_id: d.input for d in dispatched(watcher, orch)}
    assert inputs["delivery"]["inStock"] is outputs["inventory"]["inStock"]
    assert (
        inputs["notification"]["paymentStatus"]
        == outputs["payment"]["paymentStatus"]
        == "confirmed"
    )
    assert inputs["inventory"]["items"] == NEW_ORDER_DATA["items"]


async def test_a_failing_service_is_retried_then_the_orchestration_fails_clearly(
    bus: Bus, procs: Processes, watcher: Watcher, base_env: dict[str, str]
) -> None:
    start_pipeline(
        procs,
        dispatcher_env={"ORRA_DISPATCHER_MAX_ATTEMPTS": "3"},
        examples_env={"ORRA_EXAMPLES_FAIL": "PaymentService:99"},
    )
    orch = await submit(bus, PAY_AND_STOCK, {"orderId": "ORD1", "amount": 10, "productId": "P1"})

    failed = await watcher.terminal(orch)

    assert isinstance(failed, OrchestrationFailed), failed
    assert failed.task_id == "payment"
    assert "payment" in failed.error
    assert "3 attempts" in failed.error
    attempts = [d.attempt for d in dispatched(watcher, orch) if d.task_id == "payment"]
    assert attempts == [1, 2, 3]
    assert len(watcher.of(orch, TaskRetrying)) == 2
    runs = [
        e
        for e in effects(base_env)
        if e["orchestration_id"] == orch and e["service"] == "PaymentService"
    ]
    assert sorted(e["attempt"] for e in runs) == [1, 2, 3]


async def test_a_retry_that_succeeds_completes_the_orchestration(
    bus: Bus, procs: Processes, watcher: Watcher
) -> None:
    start_pipeline(procs, examples_env={"ORRA_EXAMPLES_FAIL": "PaymentService:1"})
    orch = await submit(bus, PAY_AND_STOCK, {"orderId": "ORD2", "amount": 10, "productId": "P1"})

    assert isinstance(await watcher.terminal(orch), OrchestrationDone)
    assert completed(watcher, orch)["payment"].attempt == 2


async def test_two_replicas_of_a_service_split_its_tasks(
    bus: Bus, procs: Processes, watcher: Watcher, base_env: dict[str, str]
) -> None:
    start_pipeline(procs, examples=2)
    orchs = [
        await submit(bus, PAY_AND_STOCK, {"orderId": f"ORD{i}", "amount": 10, "productId": "P1"})
        for i in range(12)
    ]
    for orch in orchs:
        assert isinstance(await watcher.terminal(orch), OrchestrationDone)

    runs = [
        e
        for e in effects(base_env)
        if e["orchestration_id"] in set(orchs) and e["outcome"] == "completed"
    ]
    assert len(runs) == 24  # every task ran exactly once
    pids = {e["pid"] for e in runs}
    assert pids == {procs["examples0"].popen.pid, procs["examples1"].popen.pid}  # type: ignore[union-attr]


async def test_a_redelivered_task_does_not_run_its_handler_twice(
    bus: Bus, procs: Processes, watcher: Watcher, base_env: dict[str, str]
) -> None:
    start_pipeline(procs)
    orch = await submit(bus, PAY_AND_STOCK, {"orderId": "ORD3", "amount": 10, "productId": "P1"})
    assert isinstance(await watcher.terminal(orch), OrchestrationDone)
    first = next(d for d in dispatched(watcher, orch) if d.task_id == "payment")

    # The same task again (same idempotency key), as a redelivery or a retry would bring it.
    again = TaskDispatched(
        event_id=f"d:{orch}:payment:2",
        orchestration_id=orch,
        task_id="payment",
        service=first.service,
        input=first.input,
        attempt=2,
        idempotency_key=first.idempotency_key,
        timeout_s=first.timeout_s,
    )
    await bus.publish(again, subject=bus.topology.work(first.service))

    replay = await watcher.wait_for(orch, TaskCompleted, timeout_s=1)  # the original
    assert replay.attempt == 1  # type: ignore[attr-defined]

    async def replayed() -> TaskCompleted:
        import asyncio

        while True:
            for e in watcher.of(orch, TaskCompleted):
                if e.task_id == "payment" and e.attempt == 2:  # type: ignore[attr-defined]
                    return e  # type: ignore[return-value]
            await asyncio.sleep(0.02)

    import asyncio

    second = await asyncio.wait_for(replayed(), 15)
    assert second.replayed is True
    assert second.output == completed(watcher, orch)["payment"].output
    runs = [
        e
        for e in effects(base_env)
        if e["idempotency_key"] == first.idempotency_key and e["outcome"] == "completed"
    ]
    assert len(runs) == 1


@pytest.mark.parametrize("mode", ["eager", "groups"])
async def test_eager_mode_starts_a_ready_task_while_a_slow_sibling_still_runs(
    mode: str, bus: Bus, procs: Processes, watcher: Watcher
) -> None:
    # payment fails once and is retried after ~0.6 s: the slow sibling of inventory
    start_pipeline(
        procs,
        dispatcher_env={"ORRA_DISPATCHER_RETRY_BASE_S": "0.6"},
        examples_env={"ORRA_EXAMPLES_FAIL": "PaymentService:1"},
    )
    orch = await submit(bus, NEW_ORDER, NEW_ORDER_DATA, mode=mode)
    assert isinstance(await watcher.terminal(orch), OrchestrationDone)

    tasks = completed(watcher, orch)
    delivery_dispatched = next(d.at for d in dispatched(watcher, orch) if d.task_id == "delivery")
    if mode == "eager":
        # delivery needs only inventory: it starts while payment is still being retried
        assert delivery_dispatched < tasks["payment"].at
    else:
        assert delivery_dispatched >= tasks["payment"].at

"""Failure handling end to end: a real dispatcher and real example service processes.

Compensation (reverse order, retries, a compensation abandoned for an operator), an abort
raised by a service, progress updates, and a service whose heartbeats stop (pause,
resume, grace period). Plans are appended directly (what the planner would append), so
the plans are exact and the order of completion deterministic.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from orra_events import (
    Bus,
    OrchestrationAborted,
    OrchestrationCompensating,
    OrchestrationDone,
    OrchestrationFailed,
    OrchestrationPaused,
    OrchestrationResumed,
    Plan,
    PlanCreated,
    PlanTask,
    TaskCompensationAbandoned,
    TaskCompensationResolved,
    TaskProgress,
    new_orchestration_id,
)
from orra_events.projection import compensation_failures, fold
from tests.e2e.conftest import Watcher
from tests.e2e.processes import Processes

DISPATCHER_ENV = {
    "ORRA_DISPATCHER_RETRY_BASE_S": "0.05",
    "ORRA_DISPATCHER_RETRY_MAX_S": "0.2",
    "ORRA_DISPATCHER_RETRY_JITTER": "0",
    "ORRA_DISPATCHER_COMP_MAX_ATTEMPTS": "2",
    "ORRA_DISPATCHER_HEALTH_CHECK_S": "0.1",
    "ORRA_DISPATCHER_TASK_TIMEOUT_S": "10",
}

PAYMENT = PlanTask(id="payment", service="PaymentService", input={"orderId": "ORD1", "amount": 10})
INVENTORY = PlanTask(id="inventory", service="InventoryService", input={"productId": "P1"})
DELIVERY = PlanTask(id="delivery", service="DeliveryAgent", input={"orderId": "ORD1"})
NOTIFY = PlanTask(id="notify", service="NotificationService", input={"customerId": "C1"})


async def start_plan(bus: Bus, groups: list[list[PlanTask]], **fields: Any) -> str:
    orch = new_orchestration_id()
    plan = Plan(
        tasks=[t for group in groups for t in group],
        parallel_groups=[[t.id for t in group] for group in groups],
    )
    await bus.publish(
        PlanCreated(
            event_id=f"p:{orch}", orchestration_id=orch, plan=plan, planner="test", **fields
        )
    )
    return orch


def effects(path: Path, orch: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in lines if e.get("orchestration_id") == orch]


async def registered(bus: Bus, *services: str, timeout_s: float = 15.0) -> None:
    """Wait until every service sent a heartbeat (the dispatcher then knows it)."""
    topo = bus.topology
    async with asyncio.timeout(timeout_s):
        for service in services:
            beats = f"{topo.service_subject('service.heartbeat', service, None)}.*"
            while True:
                try:
                    info = await bus.js.stream_info(topo.heartbeats_stream, subjects_filter=beats)
                    if info.state.subjects:
                        break
                except Exception:  # not there yet
                    pass
                await asyncio.sleep(0.05)


async def test_failure_compensates_in_reverse_order_and_keeps_the_failed_one(
    bus: Bus, procs: Processes, watcher: Watcher, base_env: dict[str, str]
) -> None:
    procs.start("dispatcher", "orra_dispatcher", **DISPATCHER_ENV)
    procs.start(
        "services",
        "orra_examples",
        ORRA_EXAMPLES_FAIL="NotificationService:9",
        ORRA_EXAMPLES_FAIL_REVERT="InventoryService:always",
    )
    await registered(bus, "PaymentService", "InventoryService", "DeliveryAgent")
    await asyncio.sleep(0.3)  # the dispatcher's registry follows the stream live
    orch = await start_plan(bus, [[PAYMENT], [INVENTORY], [DELIVERY], [NOTIFY]])

    end = await watcher.terminal(orch, timeout_s=30)
    assert isinstance(end, OrchestrationFailed), end
    events = watcher.of(orch)
    (started,) = watcher.of(orch, OrchestrationCompensating)
    assert started.tasks == ["delivery", "inventory", "payment"]  # reverse order of completion
    (abandoned,) = watcher.of(orch, TaskCompensationAbandoned)
    assert abandoned.task_id == "inventory"
    assert abandoned.attempts == 2
    # the terminal event came after every compensation and carries their outcome
    assert events.index(end) > events.index(abandoned)
    assert end.compensation is not None
    assert end.compensation.compensated == ["delivery", "payment"]
    assert end.compensation.failed == ["inventory"]
    assert "compensation failed for inventory" in end.error
    assert "notify" in end.error
    # what the revert handlers did, in order
    done = [
        (e["service"], e["outcome"])
        for e in effects(Path(base_env["ORRA_EXAMPLES_EFFECTS_FILE"]), orch)
        if e["outcome"] in ("reverted", "revert_failed")
    ]
    assert done == [
        ("DeliveryAgent", "reverted"),
        ("InventoryService", "revert_failed"),
        ("InventoryService", "revert_failed"),
        ("PaymentService", "reverted"),
    ]
    # the delivery agent reported progress
    (progress,) = watcher.of(orch, TaskProgress)
    assert progress.update == {"step": "choosing carrier"}
    # the read model folds the open failure, and an operator's resolution closes it
    view = fold(watcher.of(orch))[orch]
    assert view.status == "failed"
    assert view.compensation is not None
    assert view.compensation.status == "failed"
    (open_failure,) = compensation_failures(view)
    assert open_failure.id == f"{orch}:inventory"
    assert open_failure.status == "failed"
    await bus.publish(
        TaskCompensationResolved(
            event_id=f"cres:{orch}:inventory",
            orchestration_id=orch,
            task_id="inventory",
            resolution="resolved",
            note="released by hand",
        )
    )
    await watcher.wait_for(orch, TaskCompensationResolved)
    (settled,) = compensation_failures(fold(watcher.of(orch))[orch])
    assert settled.status == "resolved"
    assert settled.resolution_note == "released by hand"


async def test_a_service_aborts_the_orchestration_with_a_payload(
    bus: Bus, procs: Processes, watcher: Watcher, base_env: dict[str, str]
) -> None:
    procs.start("dispatcher", "orra_dispatcher", **DISPATCHER_ENV)
    procs.start("services", "orra_examples", ORRA_EXAMPLES_ABORT="DeliveryAgent")
    await registered(bus, "PaymentService", "DeliveryAgent", "NotificationService")
    await asyncio.sleep(0.3)
    orch = await start_plan(bus, [[PAYMENT], [DELIVERY, NOTIFY]])

    end = await watcher.terminal(orch, timeout_s=30)
    assert isinstance(end, OrchestrationAborted), end
    assert end.payload == {"orderId": "ORD1", "by": "DeliveryAgent"}
    assert end.task_id == "delivery"
    assert "refused the order" in end.reason
    assert end.compensation is not None
    assert "payment" in end.compensation.compensated
    reverted = [
        e["service"]
        for e in effects(Path(base_env["ORRA_EXAMPLES_EFFECTS_FILE"]), orch)
        if e["outcome"] == "reverted"
    ]
    assert "PaymentService" in reverted
    view = fold(watcher.of(orch))[orch]
    assert view.status == "aborted"
    assert view.results == {"orderId": "ORD1", "by": "DeliveryAgent"}
    task = view.task("delivery")
    assert task is not None
    assert task.status == "aborted"


async def test_unhealthy_service_pauses_then_resumes_or_fails_after_the_grace(
    bus: Bus, procs: Processes, watcher: Watcher
) -> None:
    procs.start("dispatcher", "orra_dispatcher", **DISPATCHER_ENV)
    agent_env = {"ORRA_HEARTBEAT_INTERVAL_S": "0.2"}
    procs.start("agent", "orra_examples", "--only", "DeliveryAgent", **agent_env)
    await registered(bus, "DeliveryAgent")
    procs["agent"].kill()  # heartbeats stop: unhealthy after 3 x 0.2 s
    await asyncio.sleep(1.2)

    orch = await start_plan(bus, [[DELIVERY]])
    paused = await watcher.wait_for(orch, OrchestrationPaused, timeout_s=10)
    assert isinstance(paused, OrchestrationPaused)
    assert paused.services == ["DeliveryAgent"]
    assert fold(watcher.of(orch))[orch].status == "paused"
    await asyncio.sleep(0.5)
    assert not watcher.of(orch, OrchestrationDone)

    procs.start("agent", "orra_examples", "--only", "DeliveryAgent", **agent_env)
    resumed = await watcher.wait_for(orch, OrchestrationResumed, timeout_s=15)
    assert isinstance(resumed, OrchestrationResumed)
    end = await watcher.terminal(orch, timeout_s=15)
    assert isinstance(end, OrchestrationDone), end

    # the grace period: the agent goes away again and the action allows 1 s of waiting
    procs["agent"].kill()
    await asyncio.sleep(1.2)
    late = await start_plan(bus, [[DELIVERY]], pause_grace_s=1.0)
    failed = await watcher.terminal(late, timeout_s=15)
    assert isinstance(failed, OrchestrationFailed), failed
    assert "paused for more than 1s" in failed.error
    assert "DeliveryAgent" in failed.error

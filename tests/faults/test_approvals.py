"""kill -9 of the dispatcher while plans and tasks wait for approval: nothing is lost.

Real dispatcher and example-service processes on the session's nats-server. Three
orchestrations wait when the dispatcher is killed: a task held by its gate (after its
group's other task completed), a plan held for preview, and a plan held for preview whose
approval expires while the dispatcher is down. After the restart the approvals arrive
(one of them twice, under two event ids, as after the log's duplicate window): each held
thing runs once, and the expiry is still applied.
"""

from __future__ import annotations

import pytest

from orra_events import (
    Bus,
    Event,
    OrchestrationAborted,
    OrchestrationApproved,
    OrchestrationAwaitingApproval,
    OrchestrationDone,
    OrchestrationRejected,
    Plan,
    PlanCreated,
    PlanTask,
    TaskApprovalRequested,
    TaskDispatched,
    ids,
    new_orchestration_id,
)
from tests.faults.harness import Stack, read_log, wait_until

pytestmark = pytest.mark.e2e

PAYMENT = PlanTask(id="payment", service="PaymentService", input={"orderId": "O1", "amount": 5})
NOTIFY = PlanTask(
    id="notify", service="NotificationService", input={"customerId": "C1"}, gate="true"
)


async def plan(bus: Bus, tasks: list[list[PlanTask]], **fields: object) -> str:
    orch = new_orchestration_id()
    await bus.publish(
        PlanCreated(
            event_id=ids.plan_id(orch),
            orchestration_id=orch,
            plan=Plan(
                tasks=[t for group in tasks for t in group],
                parallel_groups=[[t.id for t in group] for group in tasks],
            ),
            planner="test",
            **fields,  # type: ignore[arg-type]
        )
    )
    return orch


async def events_of(bus: Bus, orch: str) -> list[Event]:
    return (await read_log(bus)).events.get(orch, [])


async def has(bus: Bus, orch: str, cls: type[Event]) -> bool:
    return any(isinstance(e, cls) for e in await events_of(bus, orch))


def approval(orch: str, task_id: str | None = None, event_id: str | None = None) -> Event:
    return OrchestrationApproved(
        event_id=event_id or ids.decision_id(orch, task_id),
        orchestration_id=orch,
        task_id=task_id,
        by="k_test",
    )


async def test_kill_9_of_the_dispatcher_while_approvals_wait_loses_nothing(
    bus: Bus, stack: Stack
) -> None:
    stack.start_many("dispatcher", "examples")
    gated = await plan(bus, [[PAYMENT], [NOTIFY]])
    preview = await plan(bus, [[PAYMENT]], execute=False)
    expiring = await plan(bus, [[PAYMENT]], execute=False, approval_timeout_s=4.0)
    assert await wait_until(lambda: has(bus, gated, TaskApprovalRequested), 30)
    for orch in (preview, expiring):
        assert await wait_until(lambda o=orch: has(bus, o, OrchestrationAwaitingApproval), 30)

    await stack.kill("dispatcher")
    await stack.restart("dispatcher")

    await bus.publish(approval(gated, "notify"))
    await bus.publish(approval(gated, "notify", event_id=f"dec2:{gated}:notify"))
    await bus.publish(approval(preview))
    await bus.publish(approval(preview, event_id=f"dec2:{preview}"))
    for orch in (gated, preview):
        assert await wait_until(lambda o=orch: has(bus, o, OrchestrationDone), 60), orch
    assert await wait_until(lambda: has(bus, expiring, OrchestrationAborted), 60)

    log = await read_log(bus)
    dispatched = {
        orch: sorted(e.task_id for e in log.events[orch] if isinstance(e, TaskDispatched))
        for orch in (gated, preview, expiring)
    }
    assert dispatched == {gated: ["notify", "payment"], preview: ["payment"], expiring: []}
    requests = [e for e in log.events[gated] if isinstance(e, TaskApprovalRequested)]
    assert [r.task_id for r in requests] == ["notify"]
    (expired,) = [e for e in log.events[expiring] if isinstance(e, OrchestrationRejected)]
    assert expired.expired
    (end,) = [e for e in log.events[expiring] if isinstance(e, OrchestrationAborted)]
    assert "approval expired" in end.reason
